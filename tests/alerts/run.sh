#!/usr/bin/env bash
# Alerts end to end (make alerts, part of make test): a local HTTP receiver,
# examples/alert_worker.py, and 8 connections crossing thresholds on 20
# scopes while the worker is killed with SIGKILL twice and restarted. The
# receiver must end with every alert row at least once, and, after dedup by
# id, exactly the set of alert rows. Its own database, so every alert in it
# is this run's.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
here="$ROOT/tests/alerts"
db=sg_alerts_e2e
port=${SG_ALERTS_PORT:-28820}
work=$(mktemp -d)
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres "$@"; }
venv="$ROOT/target/venv-examples"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/examples/python/requirements.lock"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

psql_ -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql_ -d "$db" -c "CREATE EXTENSION spendguard"
conninfo="host=$SG_SOCKDIR port=$SG_PORT user=postgres dbname=$db"
# 20 scopes in two tenants, each with a day budget of 1000 and thresholds
# at 25, 50, 75 and 100 % (and a first denial: blocked)
for t in acme globex; do
  psql_ -d "$db" -c "SET spendguard.tenant = '$t';
    SELECT count(*) FROM generate_series(0, 9) i,
      LATERAL (SELECT spendguard.scope_set_budget('org:' || i, 'day', 1000,
                                                  alert_percents => '{25,50,75,100}')) f"
done

"$venv/bin/python" "$here/receiver.py" "$port" "$work/received" &
pids+=($!)
worker() {
  SG_CONNINFO="$conninfo" "$venv/bin/python" "$ROOT/examples/alert_worker.py" \
    --url "http://127.0.0.1:$port/hook" --consumer "e2e-$1" --batch 7 --lease 2 --poll 0.5 \
    --backoff 0.1 --max-backoff 1 2>>"$work/worker.log" &
  wpid=$!
  pids+=($wpid)
}
sleep 0.5
worker 1

# 8 connections, each 60 charges of 10..60 on random scopes of both tenants
writers=()
for w in $(seq 1 8); do
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres -d "$db" >/dev/null <<SQL &
SELECT setseed(0.$w);
DO \$\$
DECLARE i int;
BEGIN
  FOR i IN 1..60 LOOP
    PERFORM set_config('spendguard.tenant', CASE WHEN random() < 0.5 THEN 'acme' ELSE 'globex' END, false);
    PERFORM spendguard.scope_charge(ARRAY['org:' || floor(random() * 10)::int], 10 + floor(random() * 50)::int);
    PERFORM pg_sleep(0.01);
    COMMIT;
  END LOOP;
END
\$\$;
SQL
  writers+=($!)
done

# kill the worker twice while the writers run, restarting it each time
sleep 1.5
kill -9 "$wpid"; wait "$wpid" 2>/dev/null || true; echo "worker killed (SIGKILL)"
sleep 0.5
worker 2
sleep 1.5
kill -9 "$wpid"; wait "$wpid" 2>/dev/null || true; echo "worker killed (SIGKILL) again"
sleep 0.5
worker 3
for p in "${writers[@]}"; do wait "$p"; done

# the worker delivers everything (unacked claims of the killed workers come
# back when their 2 s leases run out)
left=1
for _ in $(seq 1 120); do
  left=$(psql_ -d "$db" -At -c "SELECT count(*) FROM spendguard.alert WHERE delivered_at IS NULL")
  [ "$left" = 0 ] && break
  sleep 0.5
done
[ "$left" = 0 ] || { echo "alerts left undelivered: $left" >&2; cat "$work/worker.log" >&2; exit 1; }

rows=$(psql_ -d "$db" -At -c "SELECT id FROM spendguard.alert ORDER BY id")
n_rows=$(echo "$rows" | grep -c .)
received=$(sort -n "$work/received")
n_received=$(echo "$received" | grep -c .)
if ! diff <(echo "$rows") <(echo "$received" | uniq) >/dev/null; then
  echo "the receiver's alerts (deduplicated by id) are not the alert rows:" >&2
  diff <(echo "$rows") <(echo "$received" | uniq) | head -20 >&2
  exit 1
fi
kinds=$(psql_ -d "$db" -At -c "SELECT string_agg(k, ', ') FROM (SELECT format('%s %s', count(*), kind) AS k FROM spendguard.alert GROUP BY kind ORDER BY kind) x")
[ "$n_rows" -ge 40 ] || { echo "only $n_rows alerts were written" >&2; exit 1; }
for t in acme globex; do
  bad=$(psql_ -d "$db" -At -c "SET spendguard.tenant = '$t'; SELECT count(*) FROM spendguard.verify()")
  [ "$bad" = 0 ] || { echo "verify() found $bad problems in $t" >&2; exit 1; }
done
echo "alerts end to end: $n_rows alert rows ($kinds), $n_received deliveries through 3 workers (2 killed with SIGKILL) and refused POSTs; every row delivered, and exactly the rows after dedup by id"
echo "1 passed, 0 failed"
