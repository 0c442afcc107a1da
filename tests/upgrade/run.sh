#!/usr/bin/env bash
# The upgrade test (make upgrade, part of make test): 0.1.0's install SQL
# (kept here, as are 0.2.0's, 0.3.0's, 0.3.1's and 0.4.0's, tested the same way at the end) with today's library, a history written through 0.1.0's
# functions, ALTER EXTENSION spendguard UPDATE, then
#  (a) the upgraded schema equals a fresh install (normalized pg_dump diff),
#  (b) every old row is intact and verify() is clean in every tenant.
#  (a) includes what pg_dump keeps: the tables registered with
#      pg_extension_config_dump and their filters (extconfig).
# (c) The integration suite runs on an upgraded database too: make test's
#     cluster is built with `scripts/cluster.sh upgraded`.
set -euo pipefail
source "$(dirname "$0")/../../scripts/env.sh"
here="$ROOT/tests/upgrade"
psql_() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres "$@"; }
version=$(grep -m1 '^version' "$ROOT/Cargo.toml" | cut -d'"' -f2)
for db in sg_upgrade_old sg_upgrade_fresh; do
  psql_ -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
psql_ -d sg_upgrade_fresh -c "CREATE EXTENSION spendguard"
psql_ -d sg_upgrade_old -c "CREATE EXTENSION spendguard VERSION '0.1.0'"
# A 0.1.0 history in two tenants, as 0.1.0's functions store it: holds in
# every 0.1.0 state, a denial, budget-level calls, fencing, try_increment,
# idempotency keys. (It is written as rows: today's library writes 0.2.0's
# schema, so a 0.1.0 database takes no calls until it is updated; see
# docs/operations.md "Upgrading".)
psql_ -d sg_upgrade_old <<'SQL'
INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index, invocation_count,
  total_cost_exposed, total_cost_realized, seq) VALUES
  ('acme', 'gpt', 0, 2, 0, 180, 8), ('acme', 'gpt', 1, 1, 10, 0, 9),
  ('acme', 'tool', 0, 1, 0, 0, 10), ('globex', 'gpt', 0, 1, 7, 0, 12);
INSERT INTO spendguard.budget_hold (tenant_id, hold_id, capability_id, grant_index,
  authorized_exposure, remaining_exposure, realized_spend, disposition, authority_id, lease_id, lease_epoch) VALUES
  ('acme', 'h1', 'gpt', 0, 400, 0, 180, 'reconciled', NULL, NULL, NULL),
  ('acme', 'h2', 'gpt', 0, 500, 0, 0, 'reversed', NULL, NULL, NULL),
  ('acme', 'hf', 'gpt', 1, 10, 10, 0, 'open', 'a', 'l', 2),
  ('globex', 'h1', 'gpt', 0, 7, 7, 0, 'open', NULL, NULL, NULL);
INSERT INTO spendguard.budget_event (tenant_id, event_seq, event_id, request_fingerprint, hold_id,
  capability_id, grant_index, kind, allowed, denial_reason, exposure_units, realized_spend_units,
  max_total_cost, invocation_count_after, total_cost_exposed_after, total_cost_realized_after,
  authority_id, lease_id, lease_epoch, guarantee_level) VALUES
  ('acme', 1, 'e1', 's18:authorize_exposure...', 'h1', 'gpt', 0, 'authorize_exposure', true, NULL, 400, 0, 1000, 1, 400, 0, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 2, NULL, NULL, 'h2', 'gpt', 0, 'authorize_exposure', true, NULL, 500, 0, 1000, 2, 900, 0, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 3, NULL, NULL, 'h3', 'gpt', 0, 'authorize_exposure', false, 'max_total_cost', 200, 0, 1000, 2, 900, 0, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 4, NULL, NULL, 'h1', 'gpt', 0, 'release_exposure', true, NULL, 150, 0, NULL, 2, 750, 0, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 5, 'c1', 's15:reconcile_spend...', 'h1', 'gpt', 0, 'reconcile_spend', true, NULL, 250, 180, NULL, 2, 500, 180, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 6, NULL, NULL, 'h2', 'gpt', 0, 'reverse_exposure', true, NULL, 500, 0, NULL, 1, 0, 180, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 7, NULL, NULL, NULL, 'gpt', 0, 'authorize_exposure', true, NULL, 50, 0, NULL, 2, 50, 180, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 8, NULL, NULL, NULL, 'gpt', 0, 'release_exposure', true, NULL, 50, 0, NULL, 2, 0, 180, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 9, NULL, NULL, 'hf', 'gpt', 1, 'authorize_exposure', true, NULL, 10, 0, NULL, 1, 10, 0, 'a', 'l', 2, 'single_node_atomic'),
  ('acme', 10, NULL, NULL, NULL, 'tool', 0, 'increment_invocation', true, NULL, 0, 0, NULL, 1, 0, 0, NULL, NULL, NULL, 'single_node_atomic'),
  ('acme', 11, NULL, NULL, NULL, 'tool', 0, 'increment_invocation', false, 'max_invocations', 0, 0, NULL, 1, 0, 0, NULL, NULL, NULL, 'single_node_atomic'),
  ('globex', 12, NULL, NULL, 'h1', 'gpt', 0, 'authorize_exposure', true, NULL, 7, 0, NULL, 1, 7, 0, NULL, NULL, NULL, 'single_node_atomic');
SELECT setval('spendguard.commit_seq', 12);
SQL
# The columns of a row before the update (0.5.0 adds the chain's columns
# to budget_event and budget_usage: they are checked by verify()).
event_cols="tenant_id, event_seq, event_id, request_fingerprint, hold_id, capability_id, grant_index, kind, allowed, denial_reason, recorded_at, exposure_units, realized_spend_units, max_invocations, max_cost_per_invocation, max_total_cost, invocation_count_after, total_cost_exposed_after, total_cost_realized_after, authority_id, lease_id, lease_epoch, guarantee_level"
usage_cols="tenant_id, capability_id, grant_index, invocation_count, total_cost_exposed, total_cost_realized, seq, updated_at"
rows() {
  psql_ -d sg_upgrade_old -At -c "
    SELECT format('%s', (tenant_id, capability_id, grant_index, invocation_count, total_cost_exposed,
                         total_cost_realized, seq, updated_at)) FROM spendguard.budget_usage
    UNION ALL SELECT format('%s', (tenant_id, hold_id, capability_id, grant_index, authorized_exposure,
                         remaining_exposure, realized_spend, disposition, authority_id, lease_id,
                         lease_epoch, created_at, updated_at)) FROM spendguard.budget_hold
    UNION ALL SELECT format('%s', ($event_cols)) FROM spendguard.budget_event e ORDER BY 1"
}
before=$(rows)
psql_ -d sg_upgrade_old -c "ALTER EXTENSION spendguard UPDATE"
got=$(psql_ -d sg_upgrade_old -At -c "SELECT extversion FROM pg_extension WHERE extname = 'spendguard'")
[ "$got" = "$version" ] || { echo "upgraded to $got, not $version" >&2; exit 1; }

# (a) the schema of an upgraded database is the schema of a fresh one
dump() {
  "$PG_BIN/pg_dump" -h "$SG_SOCKDIR" -p "$SG_PORT" -U postgres --schema-only -n spendguard "$1" |
    grep -vE '^(--|SET |SELECT pg_catalog.set_config|$)' | grep -vE '^.(un)?restrict '
}
if ! diff <(dump sg_upgrade_fresh) <(dump sg_upgrade_old) > "$here/schema.diff"; then
  echo "upgraded schema differs from a fresh $version install:" >&2
  cat "$here/schema.diff" >&2
  exit 1
fi
rm -f "$here/schema.diff"
# pg_dump leaves out what belongs to the extension itself: compare the
# catalog too (functions with their properties, comments, ACLs, policies)
catalog() {
  psql_ -d "$1" -At <<'SQL'
SELECT p.oid::regprocedure::text, pg_get_function_result(p.oid), p.provolatile::text,
       p.proisstrict::text, p.prosecdef::text, p.proparallel::text, p.proconfig::text, p.proacl::text,
       p.prosrc, obj_description(p.oid, 'pg_proc')
FROM pg_proc p WHERE p.pronamespace = 'spendguard'::regnamespace
UNION ALL
SELECT c.oid::regclass::text, c.relkind::text, c.relrowsecurity::text, c.relacl::text,
       obj_description(c.oid, 'pg_class'), NULL, NULL, NULL, NULL, NULL
FROM pg_class c WHERE c.relnamespace = 'spendguard'::regnamespace
UNION ALL
SELECT pol.polrelid::regclass::text, pol.polname, pg_get_expr(pol.polqual, pol.polrelid), NULL, NULL,
       NULL, NULL, NULL, NULL, NULL
FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
WHERE c.relnamespace = 'spendguard'::regnamespace
UNION ALL
SELECT t.typname, obj_description(t.oid, 'pg_type'), array_to_string(ARRAY(
         SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), ','),
       NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM pg_type t WHERE t.typnamespace = 'spendguard'::regnamespace
UNION ALL
-- what pg_dump keeps: the tables and sequences registered, with their filters
SELECT 'extconfig', u.rel::regclass::text, u.cond, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(rel, cond)
WHERE e.extname = 'spendguard'
ORDER BY 1, 2;
SQL
}
catalog sg_upgrade_fresh > "$here/catalog.fresh"
catalog sg_upgrade_old > "$here/catalog.upgraded"
lines=$(wc -l < "$here/catalog.fresh")
[ "$lines" -gt 100 ] || { echo "the catalog listing has only $lines lines" >&2; exit 1; }
if ! diff "$here/catalog.fresh" "$here/catalog.upgraded" > "$here/catalog.diff"; then
  echo "upgraded catalog differs from a fresh $version install:" >&2
  cat "$here/catalog.diff" >&2
  exit 1
fi
rm -f "$here/catalog.diff" "$here/catalog.fresh" "$here/catalog.upgraded"

# (b) every old row as it was, and the log (as 0.1.0 wrote it) still folds
after=$(rows)
[ "$before" = "$after" ] || { echo "rows changed by the upgrade" >&2; diff <(echo "$before") <(echo "$after") >&2; exit 1; }
for t in acme globex; do
  bad=$(psql_ -d sg_upgrade_old -At -c "SET spendguard.tenant = '$t'; SELECT count(*) FROM spendguard.verify()")
  [ "$bad" = 0 ] || { echo "verify() found $bad problems in tenant $t after the upgrade" >&2; exit 1; }
done
# and the upgraded database works: a TTL hold, its expiry, a spend charge
psql_ -d sg_upgrade_old -At <<'SQL'
SET spendguard.tenant = 'acme';
SELECT spendguard.budget_capture_hold(hold_id => 'hf', realized_spend => 4, authority_id => 'a', lease_id => 'l', lease_epoch => 2);
SELECT spendguard.budget_authorize_hold('gpt', 0, 1, hold_id => 'new', ttl => '1 microsecond');
SELECT spendguard.budget_expire_holds();
SELECT spendguard.spend_charge('u', 'g', 5);
SQL
bad=$(psql_ -d sg_upgrade_old -At -c "SET spendguard.tenant = 'acme'; SELECT count(*) FROM spendguard.verify()")
[ "$bad" = 0 ] || { echo "verify() found $bad problems after new calls on the upgraded database" >&2; exit 1; }
n=$(echo "$before" | wc -l)
echo "upgrade 0.1.0 -> $version: schema and catalog ($lines objects) equal to a fresh install, $n rows intact, verify() clean"

# From 0.2.0, 0.3.0, 0.3.1, 0.4.0, 0.5.0 and 0.6.0 (their install SQL is kept here too): a history
# written by real calls (today's library writes their tables as they did),
# then UPDATE.
from_release() {
  local from=$1 db="sg_upgrade_${1//./}"
  psql_ -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  psql_ -d "$db" -c "CREATE EXTENSION spendguard VERSION '$from'"
  psql_ -d "$db" -At >/dev/null <<'SQL'
SET spendguard.tenant = 'acme';
SELECT spendguard.budget_authorize_hold('gpt', 0, 100, max_total_cost => 1000, hold_id => 'h1', event_id => 'e1');
SELECT spendguard.budget_capture_hold(hold_id => 'h1', realized_spend => 60);
SELECT spendguard.budget_authorize_hold('gpt', 0, 50, hold_id => 'h2', ttl => '1 hour');
SELECT spendguard.budget_authorize_hold('gpt', 0, 5000, max_total_cost => 1000);
SELECT spendguard.spend_set_group_budget('g', 1000, 'day');
SELECT spendguard.spend_reserve('u', 'g', 300, 'r1');
SELECT spendguard.spend_settle('r1', 250);
SELECT spendguard.proposal_create('user', 'u', 'send_email', '{"to": "a@b.c"}');
SELECT spendguard.spend_set_user_override('u', 'g', 5000);
SELECT spendguard.spend_upsert_daily('u', 'g', now(), 7);
SELECT spendguard.spend_charge('u', 'g', 3);
SELECT spendguard.usage_cap_charge('api', 'user', 'u', 10, 100, '1 hour');
SELECT spendguard.call_cap_charge('user', 'u', 'search', 5, '1 hour');
SET spendguard.tenant = 'globex';
SELECT spendguard.budget_try_increment('tool', 0, 5);
SQL
  rows_of() {
    psql_ -d "$db" -At -c "
      SELECT format('%s', ($usage_cols)) FROM spendguard.budget_usage x
      UNION ALL SELECT format('%s', x) FROM spendguard.budget_hold x
      UNION ALL SELECT format('%s', ($event_cols)) FROM spendguard.budget_event x
      UNION ALL SELECT format('%s', x) FROM spendguard.daily_spend x
      UNION ALL SELECT format('%s', x) FROM spendguard.tool_call x ORDER BY 1"
  }
  local before after got
  before=$(rows_of)
  psql_ -d "$db" -c "ALTER EXTENSION spendguard UPDATE"
  if ! diff <(dump sg_upgrade_fresh) <(dump "$db") > "$here/schema.diff"; then
    echo "schema upgraded from $from differs from a fresh $version install:" >&2
    cat "$here/schema.diff" >&2
    exit 1
  fi
  rm -f "$here/schema.diff"
  catalog sg_upgrade_fresh > "$here/catalog.fresh"
  catalog "$db" > "$here/catalog.upgraded"
  if ! diff "$here/catalog.fresh" "$here/catalog.upgraded" > "$here/catalog.diff"; then
    echo "catalog upgraded from $from differs from a fresh $version install:" >&2
    cat "$here/catalog.diff" >&2
    exit 1
  fi
  rm -f "$here/catalog.diff" "$here/catalog.fresh" "$here/catalog.upgraded"
  after=$(rows_of)
  [ "$before" = "$after" ] || { echo "rows changed by the $from upgrade" >&2; diff <(echo "$before") <(echo "$after") >&2; exit 1; }
  # the history written before the update is chained: every budget with
  # events has a head, and verify() (which walks every link) is clean
  got=$(psql_ -d "$db" -At <<'SQL'
SET spendguard.tenant = 'acme';
SELECT (SELECT count(*) FROM spendguard.chain_heads()) =
       (SELECT count(DISTINCT (capability_id, grant_index)) FROM spendguard.budget_event
        WHERE tenant_id = 'acme'),
       (SELECT count(*) FROM spendguard.budget_event WHERE hash = spendguard.event_hash(budget_event)
          AND tenant_id = 'acme') = (SELECT count(*) FROM spendguard.budget_event WHERE tenant_id = 'acme'),
       (SELECT count(*) FROM spendguard.verify());
SQL
)
  [ "$got" = $'SET\nt|t|0' ] || [ "$got" = $'t|t|0' ] || { echo "the chain of the history written before the update from $from: $got" >&2; exit 1; }
  # retiring works on the upgraded database: h1 and r1 retire, h2 (open)
  # keeps the rest, and verify() stays clean
  got=$(psql_ -d "$db" -At <<'SQL'
SET spendguard.tenant = 'acme';
SELECT sum(retired_events) FROM spendguard.budget_retire_events(now());
SELECT count(*) FROM spendguard.verify();
SQL
)
  [ "$got" = $'SET\n4\n0' ] || [ "$got" = $'4\n0' ] || { echo "retiring on the database upgraded from $from: $got" >&2; exit 1; }
  # the rows the old library wrote by the old keys are found by the new
  # ones (the history above ran on the $from schema with today's library:
  # it serves the previous release until the update, SPEC §10)
  got=$(psql_ -d "$db" -At <<'SQL'
SET spendguard.tenant = 'acme';
SELECT spendguard.spend_set_user_override('u', 'g', 6000);
SELECT limit_micros, spent_micros FROM spendguard.spend_charge('u', 'g', 1);
SELECT spendguard.spend_since('u', 'g', now() - interval '1 day');
SELECT used FROM spendguard.usage_cap_charge('api', 'user', 'u', 5, 100, '1 hour');
SELECT used FROM spendguard.call_cap_charge('user', 'u', 'search', 5, '1 hour');
SELECT count(*) FROM spendguard.spend_user_override;
SQL
)
  [ "$got" = $'\n6000|261\n261\n15\n2\n1' ] ||
    { echo "spend and caps written before the update from $from, read after it: $got" >&2; exit 1; }
  # scoped budgets (0.4.0) work on the updated database
  got=$(psql_ -d "$db" -At <<'SQL'
SET spendguard.tenant = 'acme';
SELECT spendguard.scope_set_budget('org:a', 'day', 10);
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:a', 'user:u'], 6);
SELECT allowed, blocked_scope FROM spendguard.scope_charge(ARRAY['user:u', 'org:a'], 6);
SELECT count(*) FROM spendguard.verify();
SQL
)
  [ "$got" = $'\nt\nf|org:a\n0' ] || { echo "scoped budgets on the database updated from $from: $got" >&2; exit 1; }
  echo "upgrade $from -> $version: schema, catalog and pg_dump registrations equal to a fresh install, $(echo "$before" | wc -l) rows intact, history retires, calls before and after the update agree, scoped budgets work, verify() clean"
}
from_release 0.2.0
from_release 0.3.0
from_release 0.3.1
from_release 0.4.0
from_release 0.5.0
from_release 0.6.0

# 0.3.1 makes monitor_spend_by_group again (its spend_micros is numeric
# now): the SELECT an admin granted on it survives the update.
psql_ -d postgres -c "DROP DATABASE IF EXISTS sg_upgrade_grants" -c "CREATE DATABASE sg_upgrade_grants"
psql_ -d sg_upgrade_grants -At >/dev/null <<'SQL'
CREATE EXTENSION spendguard VERSION '0.3.0';
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sg_upgrade_monitor') THEN
    CREATE ROLE sg_upgrade_monitor;
  END IF;
END $$;
GRANT USAGE ON SCHEMA spendguard TO sg_upgrade_monitor;
GRANT SELECT ON spendguard.monitor_spend_by_group, spendguard.monitor_open_holds TO sg_upgrade_monitor;
-- one session across the update: its cached statements of the old schema
-- are not used after it
SELECT spendguard.spend_charge('u', 'g', 1);
SELECT spendguard.usage_cap_charge('api', 'user', 'u', 1, 100, '1 hour');
SELECT spendguard.budget_authorize_hold('gpt', 0, 5, hold_id => 'x1');
ALTER EXTENSION spendguard UPDATE;
SELECT spendguard.spend_charge('u', 'g', 1);
SELECT spendguard.usage_cap_charge('api', 'user', 'u', 1, 100, '1 hour');
SELECT spendguard.budget_capture_hold(hold_id => 'x1', realized_spend => 4);
SELECT spendguard.budget_authorize_hold('gpt', 0, 5, hold_id => 'x2');
SQL
got=$(psql_ -d sg_upgrade_grants -At -c "
  SELECT has_table_privilege('sg_upgrade_monitor', 'spendguard.monitor_spend_by_group', 'SELECT'),
         has_table_privilege('sg_upgrade_monitor', 'spendguard.monitor_open_holds', 'SELECT'),
         has_table_privilege('public', 'spendguard.monitor_spend_by_group', 'SELECT'),
         (SELECT format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = 'spendguard.monitor_spend_by_group'::regclass AND attname = 'spend_micros'),
         spendguard.spend_since('u', 'g', now() - interval '1 day'),
         (SELECT used FROM spendguard.usage_cap_check('api', 'user', 'u', 100, '1 hour')),
         (SELECT string_agg(chain_n::text, ',' ORDER BY event_seq) FROM spendguard.budget_event),
         (SELECT count(*) FROM spendguard.verify())")
[ "$got" = "t|t|f|numeric|2|2|1,2,3|0" ] || { echo "grants and calls across the update from 0.3.0: $got" >&2; exit 1; }
echo "upgrade 0.3.0 -> $version keeps the grants on the monitoring view it makes again; one session serves calls across the update (its hold events chained by the update and after it)"
echo "8 passed, 0 failed"
