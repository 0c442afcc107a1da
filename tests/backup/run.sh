#!/usr/bin/env bash
# The backup test (make backup, part of make test): a history over every
# capability in two tenants (tests/backup/history.sql) is dumped and
# restored the ways users do it:
#   custom  pg_dump -Fc, pg_restore into an empty database
#   jobs    the same with pg_restore -j 2 (parallel data loads)
#   plain   pg_dump as plain SQL, psql into an empty database
#   all     pg_dumpall of the cluster, psql into a new cluster
# and, physical, a pg_basebackup of the cluster started as a new server.
# Each restored copy must hold every row of every table of the extension
# (sorted row sets compared, not counts; the tables are read from the
# catalog, so a new one is compared too), every sequence at its value, and
# the application's own table; then tests/backup/works_on.sql must print
# tests/backup/works_on.expected there (verify() clean, replays, holds,
# reservations and proposals going on), as it does on the source.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
here="$ROOT/tests/backup"
work=$(mktemp -d)
chmod 755 "$work"
trap 'stop_other; rm -rf "$work" "$OTHER"' EXIT
# the cluster pg_dumpall restores into: new every run
OTHER_PORT="${SG_BACKUP_PORT:-28818}"
OTHER="/tmp/spendguard-$OTHER_PORT"
stop_other() {
  if [ -s "$OTHER/data/PG_VERSION" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$OTHER/data" -m fast stop >/dev/null 2>&1 || true
  fi
}
psql_main() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres "$@"; }
psql_other() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$OTHER/sock" -p "$OTHER_PORT" -U postgres "$@"; }
passed=0 failed=0
ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*" >&2; failed=$((failed + 1)); }

# Every row of every table of the extension and of backup_app, as text,
# sorted; every sequence of the extension with its state.
snapshot() {
  "$@" -At <<'SQL'
SELECT format('SELECT %L || '': '' || x::text FROM %s x ORDER BY 1', c.oid::regclass, c.oid::regclass)
FROM pg_class c
WHERE c.relkind IN ('r', 'p')
  AND (c.relnamespace = 'backup_app'::regnamespace
       OR c.oid IN (SELECT objid FROM pg_depend
                    WHERE classid = 'pg_class'::regclass AND deptype = 'e'
                      AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'spendguard')))
ORDER BY 1 \gexec
SELECT format('SELECT %L || '': '' || last_value || '' '' || is_called FROM %s', c.oid::regclass, c.oid::regclass)
FROM pg_class c
WHERE c.relkind = 'S'
  AND c.oid IN (SELECT objid FROM pg_depend
                WHERE classid = 'pg_class'::regclass AND deptype = 'e'
                  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'spendguard'))
ORDER BY 1 \gexec
SQL
}

for db in sg_backup_src sg_backup_custom sg_backup_jobs sg_backup_plain; do
  psql_main -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
# SG_BACKUP_VERSION=0.3.0 shows what an older release's dumps lose
psql_main -d sg_backup_src -c "CREATE EXTENSION spendguard ${SG_BACKUP_VERSION:+VERSION '$SG_BACKUP_VERSION'}"
psql_main -d sg_backup_src -f "$here/history.sql" > "$work/history.out"
snapshot psql_main -d sg_backup_src > "$work/src.rows"
tables=$(cut -d: -f1 "$work/src.rows" | sort -u | wc -l)
rows=$(wc -l < "$work/src.rows")
echo "source: $rows rows and sequences in $tables tables and sequences"

# the three ways (and pg_restore's parallel mode)
t0=$(ms)
"$PG_BIN/pg_dump" -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres -Fc -f "$work/src.dump" sg_backup_src
"$PG_BIN/pg_dump" -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres -f "$work/src.sql" sg_backup_src
others=$(psql_main -d postgres -At -c "SELECT string_agg(format('--exclude-database=%s', datname), ' ')
  FROM pg_database WHERE datname NOT IN ('sg_backup_src', 'template0', 'template1')")
# shellcheck disable=SC2086
"$PG_BIN/pg_dumpall" -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres $others -f "$work/all.sql"
t1=$(ms)
"$PG_BIN/pg_restore" -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres --exit-on-error -d sg_backup_custom "$work/src.dump"
"$PG_BIN/pg_restore" -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres --exit-on-error -j 2 -d sg_backup_jobs "$work/src.dump"
psql_main -d sg_backup_plain -f "$work/src.sql" > /dev/null
new_other() {
  stop_other
  rm -rf "$OTHER"
  mkdir -p "$OTHER"
  chown postgres:postgres "$OTHER"
  as_postgres mkdir -p "$OTHER/data" "$OTHER/sock"
}
start_other() {
  as_postgres "$PG_BIN/pg_ctl" -D "$OTHER/data" -l "$OTHER/server.log" -w \
    -o "-p $OTHER_PORT -c listen_addresses='' -c unix_socket_directories='$OTHER/sock'" start >/dev/null
}
new_other
as_postgres "$PG_BIN/initdb" -D "$OTHER/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
start_other
# as users run it: psql without ON_ERROR_STOP, where the one error
# expected is the superuser that initdb made already existing
"$PG_BIN/psql" -X -q -h "$OTHER/sock" -p "$OTHER_PORT" -U postgres -d postgres \
  -f "$work/all.sql" > /dev/null 2> "$work/all.err"
if grep -v 'ERROR:  role "postgres" already exists' "$work/all.err" | grep -q .; then
  echo "restoring pg_dumpall's output into a new cluster printed:" >&2; cat "$work/all.err" >&2; exit 1
fi
t2=$(ms)
printf 'dumps (custom, plain, dumpall) %s ms; restores (custom, -j 2, plain, new cluster with initdb) %s ms; dump sizes: custom %s B, plain %s B\n' \
  "$((t1 - t0))" "$((t2 - t1))" "$(stat -c %s "$work/src.dump")" "$(stat -c %s "$work/src.sql")"

check() { # name, psql function, database
  local name=$1 conn=$2 db=$3
  snapshot "$conn" -d "$db" > "$work/$name.rows"
  if diff "$work/src.rows" "$work/$name.rows" > "$work/$name.diff"; then
    ok "$name: every row of every table and every sequence restored ($rows)"
  else
    fail "$name: rows differ after the restore (< source, > restored):"; head -40 "$work/$name.diff" >&2
  fi
  if "$conn" -d "$db" -f "$here/works_on.sql" > "$work/$name.works" 2>&1 &&
     diff "$here/works_on.expected" "$work/$name.works" > "$work/$name.wdiff"; then
    ok "$name: the restored database works on (tests/backup/works_on.sql)"
  else
    fail "$name: works_on.sql differs from works_on.expected (< expected, > got):"
    cat "$work/$name.wdiff" >&2 2>/dev/null || true
    [ -s "$work/$name.wdiff" ] || tail -20 "$work/$name.works" >&2
  fi
}
check custom psql_main sg_backup_custom
check jobs psql_main sg_backup_jobs
check plain psql_main sg_backup_plain
check all psql_other sg_backup_src
# physical: a base backup of the whole cluster (as pg_basebackup takes it
# for PITR), started as a server of its own
new_other
t3=$(ms)
as_postgres "$PG_BIN/pg_basebackup" -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres -D "$OTHER/data" -X stream -c fast
as_postgres chmod 700 "$OTHER/data"
start_other
echo "pg_basebackup and start: $(($(ms) - t3)) ms"
check basebackup psql_other sg_backup_src
# the source itself, after its dumps, gives the same answers: the expected
# output is what the original database says, not a restore artefact
if psql_main -d sg_backup_src -f "$here/works_on.sql" > "$work/src.works" 2>&1 &&
   diff "$here/works_on.expected" "$work/src.works" > "$work/src.wdiff"; then
  ok "source: works_on.sql prints works_on.expected on the original database too"
else
  fail "source: works_on.sql differs on the original database:"; cat "$work/src.wdiff" >&2 || tail -20 "$work/src.works" >&2
fi
[ "${BACKUP_ACCEPT:-}" = 1 ] && cp "$work/src.works" "$here/works_on.expected"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
