#!/usr/bin/env bash
# make package: an installable tarball of spendguard for an existing
# PostgreSQL 15, from `cargo pgrx package`: the library, the control file,
# the install SQL and every upgrade script, and install.sh.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
log=$(mktemp)
if ! cargo pgrx package --pg-config "$PG_CONFIG" >"$log" 2>&1; then cat "$log" >&2; exit 1; fi
rm -f "$log"
built="$ROOT/target/release/spendguard-pg15"
name="spendguard-$version-pg15-$arch"
stage="$ROOT/target/package/$name"
rm -rf "$stage" && mkdir -p "$stage/lib" "$stage/extension"
cp "$built$("$PG_CONFIG" --pkglibdir)/spendguard.so" "$stage/lib/"
cp "$built$("$PG_CONFIG" --sharedir)"/extension/spendguard* "$stage/extension/"
cat > "$stage/install.sh" <<'SH'
#!/bin/sh
# Installs spendguard into the PostgreSQL that pg_config (or $PG_CONFIG)
# names; run as root (or the owner of PostgreSQL's directories).
# Then, in a database: CREATE EXTENSION spendguard;  (no
# shared_preload_libraries needed). Upgrading: ALTER EXTENSION spendguard UPDATE;
set -eu
PG_CONFIG=${PG_CONFIG:-pg_config}
here=$(cd "$(dirname "$0")" && pwd)
libdir=$("$PG_CONFIG" --pkglibdir)
extdir=$("$PG_CONFIG" --sharedir)/extension
install -m 755 "$here/lib/spendguard.so" "$libdir/spendguard.so"
for f in "$here"/extension/*; do install -m 644 "$f" "$extdir/"; done
echo "spendguard installed into $libdir and $extdir"
SH
chmod +x "$stage/install.sh"
tar -C "$ROOT/target/package" -czf "$ROOT/target/package/$name.tar.gz" "$name"
echo "$ROOT/target/package/$name.tar.gz"
