-- Hardening found by review and fuzzing (issue 16): each case below
-- misbehaved before (a LIMIT error, a silent 'default' tenant, nothing
-- returned, an unreadable date, a failing view, a crashed server).
SET spendguard.tenant = 'regress-hardening';
\set VERBOSITY sqlstate
-- readers: a negative lim is 22023 (not LIMIT's 2201W)
SELECT * FROM spendguard.budget_usages(-1);
SELECT * FROM spendguard.budget_holds(-1);
SELECT * FROM spendguard.budget_events(-1);
SELECT * FROM spendguard.tool_calls(-1);
-- a negative grant_index is 22023 in every function that takes one
SELECT * FROM spendguard.budget_retire_events(now(), 'c', -1);
SELECT * FROM spendguard.budget_usage('c', -1);
SELECT * FROM spendguard.budget_holds(grant_index => -1);
SELECT * FROM spendguard.budget_events(grant_index => -1);
SELECT * FROM spendguard.budget_checkpoints('c', -1);
SELECT * FROM spendguard.verify('c', -1);
-- an empty tenant is 22023, never 'default': at any lim, and where no row is read
SET spendguard.tenant = '';
SELECT spendguard.current_tenant();
SELECT spendguard.budget_authorize_hold('c', 0, 1);
SELECT * FROM spendguard.budget_usages(0);
SELECT * FROM spendguard.budget_holds(0);
SELECT * FROM spendguard.budget_events(0);
SELECT * FROM spendguard.tool_calls(0);
SELECT * FROM spendguard.proposal_get('00000000-0000-0000-0000-000000000001');
SELECT * FROM spendguard.budget_checkpoints();
SELECT * FROM spendguard.verify();
-- an over-long tenant likewise
SELECT set_config('spendguard.tenant', repeat('x', 1025), false) IS NOT NULL AS set;
SELECT * FROM spendguard.budget_usages(0);
-- require_tenant with none set: SG030 at lim 0 too
RESET spendguard.tenant;
SET spendguard.require_tenant = on;
SELECT * FROM spendguard.budget_usages(0);
SELECT * FROM spendguard.proposal_get('00000000-0000-0000-0000-000000000001');
RESET spendguard.require_tenant;
-- unset (never set, or RESET) stays 'default'
SELECT spendguard.current_tenant();
-- the spendguard. prefix is reserved once the library is loaded
SET spendguard.tenat = 'acme';
SET spendguard.tenant = 'regress-hardening';
-- spend periods start on 2000-01-01 or later: 22023 before anything is written
SELECT spendguard.spend_check('u', 'g', 1, '4714-11-24 00:00:00+00 BC');
SELECT spendguard.spend_charge('u', 'g', 1, '1999-12-31 12:00+00');
SELECT spendguard.spend_reserve('u', 'g', 1, 'r-old', '1999-12-31 12:00+00');
SELECT spendguard.spend_set_group_budget('weekly', 10, 'week');
-- 2000-01-01 was a Saturday: its week began on 1999-12-27
SELECT spendguard.spend_charge('u', 'weekly', 1, '2000-01-01 12:00+00');
-- a TTL or window that reaches past what a timestamptz holds is 22023 (it
-- was 22008 from the statement that adds it to now())
SELECT spendguard.budget_authorize_hold('c', 0, 1, hold_id => 'h-ttl', ttl => '178000000 years');
SELECT spendguard.spend_reserve('u', 'g', 1, 'r-ttl', ttl => '290000 years');
SELECT spendguard.proposal_create('user', 'u', 't', '{}', ttl => '178000000 years');
SELECT spendguard.usage_cap_check('i', 'user', 'p', 10, '7000 years');
SELECT spendguard.call_cap_charge('user', 'p', 't', 10, '2147483647 days');
-- usage recorded at an infinite time would count in every window forever
SELECT spendguard.usage_record('i', 'user', 'p', 1, 1, at => 'infinity');
\set VERBOSITY default
SELECT spendguard.spend_reserve('u', 'weekly', 1, 'r-old', '2000-01-01 12:00+00');
SELECT allowed, period_start FROM spendguard.spend_check('u', 'g', 1, '2000-01-01 00:00+00');
SELECT allowed, period_start FROM spendguard.spend_check('u', 'weekly', 1, '2000-01-03 00:00+00');
-- nothing of the refused calls was written
SELECT count(*) AS budgets FROM spendguard.budget_usages();
SELECT count(*) AS holds FROM spendguard.budget_holds();
SELECT count(*) AS proposals FROM spendguard.tool_calls();

-- a monitoring view never fails: a group's users together past bigint
SELECT spendguard.spend_upsert_daily('u1', 'big', now(), 9223372036854775807) IS NOT NULL AS recorded;
SELECT spendguard.spend_upsert_daily('u2', 'big', now(), 9223372036854775807) IS NOT NULL AS recorded;
SELECT group_id, spend_micros, users FROM spendguard.monitor_spend_by_group
WHERE tenant_id = 'regress-hardening' AND group_id = 'big';
-- and holds left open by a budget-level release (docs/operations.md) can add
-- up past bigint too (found by the fuzzer)
SELECT authorized FROM spendguard.budget_authorize_hold('m', 0, 9223372036854775807, hold_id => 'big1');
SELECT kind FROM spendguard.budget_release_hold('m', 0, 9223372036854775807);
SELECT authorized FROM spendguard.budget_authorize_hold('m', 0, 9223372036854775807, hold_id => 'big2');
SELECT open_holds, open_exposure FROM spendguard.monitor_open_holds
WHERE tenant_id = 'regress-hardening' AND capability_id = 'm';
SELECT holds, exposure FROM spendguard.monitor_expired_unswept WHERE tenant_id = 'regress-hardening';

-- a document nested deeper than the stack allows is 54001, whatever
-- max_stack_depth a DBA set (PostgreSQL's own parser takes it at 7MB; the
-- walk that canonicalizes it must check the stack as it does)
SET max_stack_depth = '7MB';
\set VERBOSITY sqlstate
SELECT spendguard.args_hash((repeat('[', 30000) || repeat(']', 30000))::jsonb);
SELECT spendguard.canonical_json((repeat('{"a":', 30000) || '1' || repeat('}', 30000))::jsonb);
SELECT spendguard.proposal_create('user', 'u', 'tool', (repeat('[', 30000) || repeat(']', 30000))::jsonb);
\set VERBOSITY default
RESET max_stack_depth;
SELECT length(spendguard.canonical_json((repeat('[', 1000) || repeat(']', 1000))::jsonb)) AS depth_1000_is_fine;

-- A misspelled setting made before the library loaded (it loads at the
-- first spendguard call of a session) is a placeholder PostgreSQL keeps:
-- the first call fails with 42704 naming it, never runs as 'default'.
\c -
SET spendguard.tenat = 'acme';
SELECT spendguard.current_tenant();
-- reported once; the setting itself is gone
SELECT spendguard.current_tenant();
