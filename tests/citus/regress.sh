#!/usr/bin/env bash
# The pg_regress suite (tests/pg_regress) against a Citus coordinator whose
# database has spendguard distributed (tests/citus/cluster.sh db). Each
# file's output must equal tests/pg_regress/expected's, or, where Citus
# prints something else, tests/citus/expected's (every such difference is
# explained in tests/citus/README.md). Both sides are compared after
# normalizing what changes from run to run on Citus: worker ports, the
# timestamps Citus's EXPLAIN inlines (and the width of the plan's header
# that follows them), pg_temp schema numbers.
# Args: host port db [--accept] (--accept writes tests/citus/expected for
# the files that differ from the single-node output; review with git diff).
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
host=$1 port=$2 db=$3 accept=${4:-}
work="$ROOT/tests/citus/regress-work"
citus_expected="$ROOT/tests/citus/expected"
rm -rf "$work"; mkdir -p "$work/expected"
cp -r "$ROOT/tests/pg_regress/sql" "$work/sql"
cp "$ROOT"/tests/pg_regress/expected/*.out "$work/expected/"
tests=()
for f in $(cd "$work/sql" && ls -1 *.sql | sort); do
  [ "$f" = setup.sql ] || tests+=("${f%.sql}")
done
"$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
  --use-existing --bindir="$PG_BIN" --host="$host" --port="$port" --user=postgres \
  --dbname="$db" --inputdir="$work" --outputdir="$work" "${tests[@]}" >"$work/pg_regress.log" 2>&1 || true
normalize() {
  sed -E -e 's/port=[0-9]+/port=N/g' -e 's/dbname=[a-z_]+/dbname=DB/g' -e 's/pg_temp_[0-9]+/pg_temp_N/g' \
    -e "s/'[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+\+00'::timestamp with time zone/'T'::timestamptz/g" \
    -e 's/_[0-9]{6}\b/_SHARD/g' -e 's/^-{10,}$/---/' -e 's/^ +QUERY PLAN +$/ QUERY PLAN/' "$1"
}
failed=0 passed=0
for t in "${tests[@]}"; do
  got=$(normalize "$work/results/$t.out")
  if [ "$got" = "$(normalize "$ROOT/tests/pg_regress/expected/$t.out")" ]; then
    passed=$((passed + 1)); echo "citus regress $t ... ok"
    [ "$accept" = --accept ] && rm -f "$citus_expected/$t.out"
    continue
  fi
  if [ "$accept" = --accept ]; then
    mkdir -p "$citus_expected"; printf '%s\n' "$got" >"$citus_expected/$t.out"
    echo "citus regress $t ... accepted into tests/citus/expected"; continue
  fi
  if [ -f "$citus_expected/$t.out" ] && [ "$got" = "$(cat "$citus_expected/$t.out")" ]; then
    passed=$((passed + 1)); echo "citus regress $t ... ok (Citus's expected output)"
    continue
  fi
  failed=$((failed + 1)); echo "citus regress $t ... FAILED"
  ref="$ROOT/tests/pg_regress/expected/$t.out"
  [ -f "$citus_expected/$t.out" ] && ref="$citus_expected/$t.out"
  diff -u <(normalize "$ref") <(printf '%s\n' "$got") | head -80 || true
done
echo "citus regress: $passed passed, $failed failed"
[ "$failed" = 0 ]
