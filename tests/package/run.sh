#!/usr/bin/env bash
# The package test (make test): spendguard's installed files are removed,
# the tarball of `make package` is unpacked and its install.sh run, and a
# brand-new cluster creates the extension and uses it.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
tarball=$(bash "$ROOT/scripts/package.sh" | tail -1)
work=$(mktemp -d)
tar -C "$work" -xzf "$tarball"
libdir=$("$PG_CONFIG" --pkglibdir); extdir=$("$PG_CONFIG" --sharedir)/extension
# keep the dev-only 0.1.0 install SQL aside (tests/upgrade puts it there)
saved=$(mktemp -d); cp "$extdir"/spendguard--0.1.0.sql "$saved/" 2>/dev/null || true
rm -f "$libdir/spendguard.so" "$extdir"/spendguard*
bash "$work"/spendguard-*/install.sh
port=28840; dir=/tmp/spendguard-package-$port
as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
rm -rf "$dir"; mkdir -p "$dir/sock"; chown -R postgres:postgres "$dir"
as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust >/dev/null
printf "port = %s\nlisten_addresses = ''\nunix_socket_directories = '%s'\n" "$port" "$dir/sock" >>"$dir/data/postgresql.conf"
as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >/dev/null
trap 'as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1; rm -rf "$dir" "$work"; cp "$saved"/* "$extdir/" 2>/dev/null || true' EXIT
out=$("$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres -d postgres <<'SQL'
CREATE EXTENSION spendguard;
SELECT extversion FROM pg_extension WHERE extname = 'spendguard';
SELECT authorized FROM spendguard.budget_authorize_hold('c', 0, 1, hold_id => 'h', ttl => '1 minute');
SELECT count(*) FROM spendguard.verify();
SQL
)
expected="$(grep -m1 '^version' "$ROOT/Cargo.toml" | cut -d'"' -f2)
t
0"
[ "$out" = "$expected" ] || { echo "package test: got '$out'" >&2; exit 1; }
ls "$work"/spendguard-*/extension | grep -q -- '--0.1.0--' || { echo "no upgrade script in the package" >&2; exit 1; }
echo "package $(basename "$tarball"): installed by its install.sh into an emptied PostgreSQL, CREATE EXTENSION in a new cluster works"
echo "1 passed, 0 failed"
