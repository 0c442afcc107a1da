#!/usr/bin/env bash
# Runs tests/pg_regress with PostgreSQL's own pg_regress against the local
# cluster, the way `cargo pgrx regress` does (which make test cannot use: as
# root, cargo-pgrx 0.18.0 runs initdb as root and fails): one new database,
# `setup` first (it creates the extension), then every other file in
# alphabetical order. So the files must not depend on each other's order:
# each uses its own tenant, and prints nothing that another file changes
# (tests/pg_regress/README.md). With --accept, copies results over expected
# (review the diff after).
set -euo pipefail
source "$(dirname "$0")/env.sh"
dir="$ROOT/tests/pg_regress"
rm -rf "$dir/results" "$dir/regression.diffs" "$dir/regression.out"
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres "$@"; }
psql_ -d postgres -c "DROP DATABASE IF EXISTS spendguard_regress" -c "CREATE DATABASE spendguard_regress"
tests=(setup)
for f in $(cd "$dir/sql" && ls -1 *.sql | sort); do
  [ "$f" = setup.sql ] || tests+=("${f%.sql}")
done
status=0
"$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
  --use-existing --bindir="$PG_BIN" \
  --host="$SG_SOCKDIR" --port="$SG_PORT" --user=postgres \
  --dbname=spendguard_regress \
  --inputdir="$dir" --outputdir="$dir" "${tests[@]}" || status=$?
if [ "${1:-}" = --accept ]; then
  for f in "$dir"/results/*.out; do cp "$f" "$dir/expected/"; done
  echo "accepted: $(ls "$dir"/results/*.out | wc -l) files; review with git diff"
  exit 0
fi
if [ "$status" != 0 ] && [ -f "$dir/regression.diffs" ]; then
  cat "$dir/regression.diffs"
fi
exit "$status"
