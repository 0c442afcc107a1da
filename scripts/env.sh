# Shared settings of the spendguard scripts; sourced, not run.
# Override any of them from the environment.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}"
PG_BIN="$("$PG_CONFIG" --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"
export SG_PORT="${SG_PORT:-28815}"
# Outside the checkout: the postgres user must reach it whatever the
# permissions of the directories above the checkout are. One per port.
export SG_CLUSTER="${SG_CLUSTER:-/tmp/spendguard-$SG_PORT}"
export SG_PGDATA="$SG_CLUSTER/data"
export SG_SOCKDIR="$SG_CLUSTER/sock"
export SG_DB="${SG_DB:-spendguard}"
# What clients (psql, the integration tests) use to connect.
export SG_CONNINFO="host=$SG_SOCKDIR port=$SG_PORT user=postgres dbname=$SG_DB"

as_postgres() {
  if [ "$(id -un)" = postgres ]; then "$@"; else sudo -u postgres -- "$@"; fi
}

step() { printf '\n== %s\n' "$*"; }
