#!/usr/bin/env bash
# start | stop: a Citus coordinator and two workers on localhost, owned by
# postgres, in /tmp/spendguard-citus-PORT (ports $CITUS_PORT .. +2), each
# with database $SG_DB, the citus extension and the workers added. Uses a
# Citus that is already installed (citus.so in pg_config --pkglibdir); it
# never builds or downloads one.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
port0="${CITUS_PORT:-28860}"
base="/tmp/spendguard-citus-$port0"
ports=("$port0" "$((port0 + 1))" "$((port0 + 2))")
sock="$base/sock"
psql_at() { local p=$1; shift; "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$p" -U postgres "$@"; }

start() {
  mkdir -p "$base"; chown postgres:postgres "$base"
  as_postgres mkdir -p "$sock"
  local i
  for i in 0 1 2; do
    local d="$base/node$i" p="${ports[$i]}"
    if [ ! -s "$d/PG_VERSION" ]; then
      as_postgres "$PG_BIN/initdb" -D "$d" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
      cat >>"$d/postgresql.conf" <<CONF
# spendguard citus-test node $i
listen_addresses = '127.0.0.1'
port = $p
unix_socket_directories = '$sock'
shared_preload_libraries = 'citus'
max_connections = 200
max_prepared_transactions = 200
shared_buffers = 128MB
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
citus.enable_unsafe_triggers = on
citus.propagate_set_commands = 'local'
CONF
    fi
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$d" status >/dev/null 2>&1; then
      as_postgres "$PG_BIN/pg_ctl" -D "$d" -l "$base/node$i.log" -w start >/dev/null
    fi
  done
}

# Drops a database on every node (first rolling back the prepared
# transactions of it that a test which terminates backends can leave).
drop() {
  local name=$1 i gid
  for i in 0 1 2; do
    for gid in $(psql_at "${ports[$i]}" -d postgres -At -c \
        "SELECT gid FROM pg_prepared_xacts WHERE database = '$name'"); do
      psql_at "${ports[$i]}" -d "$name" -c "ROLLBACK PREPARED '$gid'" >/dev/null
    done
    psql_at "${ports[$i]}" -d postgres -c "SET client_min_messages = warning" \
      -c "DROP DATABASE IF EXISTS $name WITH (FORCE)"
  done
}

# A database on every node with citus, the workers added, spendguard created
# on the coordinator (Citus creates it on the workers) and distributed.
db() {
  local name=$1 i
  drop "$name"
  for i in 0 1 2; do
    psql_at "${ports[$i]}" -d postgres -c "CREATE DATABASE $name"
    psql_at "${ports[$i]}" -d "$name" -c "CREATE EXTENSION citus"
  done
  psql_at "$port0" -d "$name" -c "SELECT citus_set_coordinator_host('127.0.0.1', $port0)" >/dev/null
  for p in "${ports[1]}" "${ports[2]}"; do
    psql_at "$port0" -d "$name" -c "SELECT citus_add_node('127.0.0.1', $p)" >/dev/null
  done
  psql_at "$port0" -d "$name" -c "CREATE EXTENSION spendguard" \
    -c "SELECT count(*) AS distributed FROM spendguard.citus_distribute()"
}

stop() {
  local i
  for i in 0 1 2; do
    [ -s "$base/node$i/PG_VERSION" ] && as_postgres "$PG_BIN/pg_ctl" -D "$base/node$i" -m fast stop >/dev/null 2>&1 || true
  done
  rm -rf "$base"
}

case "${1:-}" in
  start) start ;;
  db) db "$2" ;;
  drop) drop "$2" ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop|db NAME|drop NAME" >&2; exit 2 ;;
esac
