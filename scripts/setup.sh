#!/usr/bin/env bash
# Installs what building and running spendguard needs on a fresh Debian
# machine (as root, or with sudo): PostgreSQL 15 and its server headers,
# sudo, clang for bindgen, cargo-pgrx 0.18.0; then points pgrx at the
# system PostgreSQL. Idempotent and quick when everything is present.
set -euo pipefail
source "$(dirname "$0")/env.sh"

PKGS=(postgresql-15 postgresql-server-dev-15 postgresql-contrib sudo clang libclang-dev pkg-config make pgbouncer
      postgresql-15-auto-failover pg-auto-failover-cli)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's postgresql package starts a cluster of its own on 5432; ours
# uses its own port and data directory, so that one is left alone.

want="cargo-pgrx 0.18.0"
if ! cargo pgrx --version 2>/dev/null | grep -q "^$want"; then
  step "cargo install cargo-pgrx 0.18.0 --locked"
  cargo install cargo-pgrx --version 0.18.0 --locked
fi

if ! grep -qs "pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  step "cargo pgrx init --pg15 $PG_CONFIG"
  cargo pgrx init --pg15 "$PG_CONFIG"
fi
