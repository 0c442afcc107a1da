#!/usr/bin/env bash
# make citus-test (SPEC §10, docs/scale-out.md): with a Citus that is
# already installed (citus.so in pg_config --pkglibdir, as a user's
# packages would put it), a coordinator and two workers on localhost: the
# pg_regress suite on a distributed database, then writers racing one
# tenant while its shards move to the other worker
# (tests/integration/tests/citus.rs). Without Citus it says so and skips:
# Citus is not packaged where this project installs from, and this
# repository never builds or downloads it.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
lib="$("$PG_CONFIG" --pkglibdir)/citus.so"
if [ ! -f "$lib" ]; then
  echo "citus-test: skipped: $lib is not installed (install Citus for PostgreSQL 15 from your packages to run it)"
  exit 0
fi
port0="${CITUS_PORT:-28860}"
sock="/tmp/spendguard-citus-$port0/sock"
cluster() { bash "$ROOT/tests/citus/cluster.sh" "$@"; }
trap 'cluster stop' EXIT
cluster stop
step "Citus: a coordinator (port $port0) and two workers"
cluster start
step "Citus: the pg_regress suite on a distributed database"
cluster db spendguard_regress >/dev/null
bash "$ROOT/tests/citus/regress.sh" "$sock" "$port0" spendguard_regress
cluster drop spendguard_regress
step "Citus: a race, a shard move under load, verify()"
cluster db spendguard >/dev/null
(cd "$ROOT" && SPENDGUARD_CITUS_CONNINFO="host=$sock port=$port0 user=postgres dbname=spendguard" \
  cargo test -q -p spendguard-it --test citus -- --nocapture)
