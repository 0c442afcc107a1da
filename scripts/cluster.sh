#!/usr/bin/env bash
# start | stop | install: a local PostgreSQL 15 cluster owned by `postgres`
# in $SG_CLUSTER (/tmp/spendguard-PORT) on port $SG_PORT with spendguard in database
# $SG_DB. `start` creates the cluster once and reuses it after.
set -euo pipefail
source "$(dirname "$0")/env.sh"

install_ext() {
  step "cargo pgrx install --release"
  # quiet on success, the whole log on failure
  local log; log=$(mktemp)
  if ! (cd "$ROOT" && cargo pgrx install --release --pg-config "$PG_CONFIG") >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; return 1
  fi
  rm -f "$log"
  # earlier releases' install SQL, for the upgrade test (tests/upgrade/run.sh)
  # and the upgraded test database (`upgraded` below)
  cp "$ROOT"/tests/upgrade/spendguard--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
}

start() {
  mkdir -p "$SG_CLUSTER"
  chown postgres:postgres "$SG_CLUSTER" 2>/dev/null || true
  if [ ! -s "$SG_PGDATA/PG_VERSION" ]; then
    step "initdb $SG_PGDATA"
    as_postgres mkdir -p "$SG_PGDATA" "$SG_SOCKDIR"
    as_postgres "$PG_BIN/initdb" -D "$SG_PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$SG_PGDATA/postgresql.conf" <<CONF
# spendguard local cluster
listen_addresses = '127.0.0.1'
port = $SG_PORT
unix_socket_directories = '$SG_SOCKDIR'
max_connections = 120
shared_buffers = 256MB
fsync = on
# alerts are tested inside a prepared transaction (SPEC §7, alert_notify)
max_prepared_transactions = 10
CONF
  fi
  as_postgres mkdir -p "$SG_SOCKDIR"
  # clusters made before 0.4.0 lack this; the setting needs a restart
  if ! grep -q '^max_prepared_transactions' "$SG_PGDATA/postgresql.conf"; then
    echo "max_prepared_transactions = 10" | as_postgres tee -a "$SG_PGDATA/postgresql.conf" >/dev/null
    as_postgres "$PG_BIN/pg_ctl" -D "$SG_PGDATA" status >/dev/null 2>&1 &&
      as_postgres "$PG_BIN/pg_ctl" -D "$SG_PGDATA" -l "$SG_PGDATA/server.log" -w restart >/dev/null
  fi
  if ! as_postgres "$PG_BIN/pg_ctl" -D "$SG_PGDATA" status >/dev/null 2>&1; then
    step "pg_ctl start (port $SG_PORT)"
    as_postgres "$PG_BIN/pg_ctl" -D "$SG_PGDATA" -l "$SG_PGDATA/server.log" -w start >/dev/null
  fi
  psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$SG_DB'" | grep -q 1 ||
    psql_ -d postgres -c "CREATE DATABASE $SG_DB" >/dev/null
}

# (Re)create the extension so a rebuilt .so and SQL are what runs.
fresh_ext() {
  psql_ -d "$SG_DB" -q -c "DROP EXTENSION IF EXISTS spendguard CASCADE" -c "CREATE EXTENSION spendguard"
}

# The extension at 0.1.0, then ALTER EXTENSION ... UPDATE: make test runs
# the integration suite on an upgraded database.
upgraded_ext() {
  psql_ -d "$SG_DB" -q -c "DROP EXTENSION IF EXISTS spendguard CASCADE" \
    -c "CREATE EXTENSION spendguard VERSION '0.1.0'" -c "ALTER EXTENSION spendguard UPDATE"
}

stop() {
  if [ -s "$SG_PGDATA/PG_VERSION" ]; then
    as_postgres "$PG_BIN/pg_ctl" -D "$SG_PGDATA" -m fast stop >/dev/null 2>&1 || true
  fi
}

psql_() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres "$@"; }

case "${1:-}" in
  install) install_ext ;;
  start) start ;;
  fresh) start; fresh_ext ;;
  upgraded) start; upgraded_ext ;;
  stop) stop ;;
  *) echo "usage: $0 install|start|fresh|upgraded|stop" >&2; exit 2 ;;
esac
