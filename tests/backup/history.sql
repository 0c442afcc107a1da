-- A history over every capability in two tenants, written by real calls:
-- what tests/backup/run.sh dumps and restores. The application's own table
-- backup_app.kept (an ordinary table, dumped like any other) keeps what a
-- client would keep: proposal tokens and the results of calls with an
-- event_id, to replay and compare after the restore.
\set ON_ERROR_STOP on
CREATE SCHEMA backup_app;
CREATE TABLE backup_app.kept (tenant text, name text, value text, PRIMARY KEY (tenant, name));

SET spendguard.tenant = 'acme';
-- §1 holds in every disposition, a denial, budget-level calls, fencing, idempotency keys
INSERT INTO backup_app.kept SELECT 'acme', 'auth_e1', r::text
  FROM spendguard.budget_authorize_hold('gpt', 0, 400, max_total_cost => 1000, hold_id => 'h-captured', event_id => 'e1') r;
SELECT spendguard.budget_release_hold(hold_id => 'h-captured', released_exposure => 150);
INSERT INTO backup_app.kept SELECT 'acme', 'capture_e2', r::text
  FROM spendguard.budget_capture_hold(hold_id => 'h-captured', realized_spend => 180, event_id => 'e2') r;
SELECT spendguard.budget_authorize_hold('gpt', 0, 100, max_total_cost => 1000, hold_id => 'h-released');
SELECT spendguard.budget_release_hold(hold_id => 'h-released');
SELECT spendguard.budget_authorize_hold('gpt', 0, 50, hold_id => 'h-reversed');
SELECT spendguard.budget_reverse_hold(hold_id => 'h-reversed');
INSERT INTO backup_app.kept SELECT 'acme', 'denied_e3', r::text
  FROM spendguard.budget_authorize_hold('gpt', 0, 5000, max_total_cost => 1000, event_id => 'e3') r;
SELECT spendguard.budget_authorize_hold('gpt', 0, 30, hold_id => 'h-expired', ttl => '1 microsecond');
SELECT spendguard.budget_authorize_hold('gpt', 0, 70, hold_id => 'h-open', ttl => '1 hour');
SELECT spendguard.budget_authorize_hold('gpt', 0, 20, hold_id => 'h-open-forever', event_id => 'e4');
SELECT spendguard.budget_authorize_hold('gpt', 1, 10, hold_id => 'h-fenced', authority_id => 'a', lease_id => 'l', lease_epoch => 2);
SELECT spendguard.budget_authorize_hold('gpt', 2, 40);
SELECT spendguard.budget_release_hold('gpt', 2, 15);
SELECT spendguard.budget_try_increment('tool', 0, 1);
SELECT spendguard.budget_try_increment('tool', 0, 1);
-- §2 spend: budgets, an override, charges, reservations open / settled / cancelled
SELECT spendguard.spend_set_group_budget('free', 50000, 'day');
SELECT spendguard.spend_set_group_budget('pro', 900000, 'month');
SELECT spendguard.spend_set_user_override('vip', 'free', 80000);
SELECT spendguard.spend_upsert_daily('u1', 'free', '2026-01-15 10:00+00', 1234);
SELECT spendguard.spend_charge('u1', 'free', 2000);
SELECT spendguard.spend_charge('u1', 'free', 999999);
SELECT spendguard.spend_reserve('u1', 'free', 3000, 'r-settled');
SELECT spendguard.spend_settle('r-settled', 3500);
SELECT spendguard.spend_reserve('u1', 'free', 1000, 'r-cancelled');
SELECT spendguard.spend_cancel('r-cancelled');
SELECT spendguard.spend_reserve('u2', 'pro', 4000, 'r-open', ttl => '1 hour');
SELECT spendguard.spend_reserve('vip', 'free', 5000, 'r-expiring', ttl => '1 hour');
-- §3 caps
SELECT spendguard.usage_record('openai', 'user', 'u1', 100, 50, model => 'gpt-4o', conversation_id => 'c1') IS NOT NULL;
SELECT spendguard.usage_cap_charge('openai', 'user', 'u1', 300, 1000, '1 hour');
SELECT spendguard.call_cap_charge('application', 'agent', 'search', 5, '1 hour');
-- §4 proposals in every status, and direct records
INSERT INTO backup_app.kept SELECT 'acme', 'token_open', token
  FROM spendguard.proposal_create('application', 'agent', 'refund', '{"order": 1, "amount": 5}', effect => 'destructive');
INSERT INTO backup_app.kept SELECT 'acme', 'token_applied', token
  FROM spendguard.proposal_create('application', 'agent', 'refund', '{"order": 2}');
SELECT status FROM spendguard.proposal_consume((SELECT value FROM backup_app.kept WHERE tenant = 'acme' AND name = 'token_applied'), 'user', 'ops');
INSERT INTO backup_app.kept SELECT 'acme', 'token_rejected', token
  FROM spendguard.proposal_create('user', 'u1', 'send_email', '{"to": "a@b.c"}', payload => '{"draft": true}');
SELECT status FROM spendguard.proposal_reject((SELECT value FROM backup_app.kept WHERE tenant = 'acme' AND name = 'token_rejected'), 'user', 'ops');
INSERT INTO backup_app.kept SELECT 'acme', 'token_expired', token
  FROM spendguard.proposal_create('user', 'u1', 'delete_file', '{"path": "/x"}', ttl => '1 microsecond');
SELECT spendguard.tool_call_record('user', 'u1', 'search', '{"q": "x"}', 'executed', result => '{"hits": 3}') IS NOT NULL;
SELECT spendguard.tool_call_record('user', 'u1', 'search', '{"q": "y"}', 'failed', error => 'timeout') IS NOT NULL;

SET spendguard.tenant = 'globex';
SELECT spendguard.budget_authorize_hold('gpt', 0, 7, hold_id => 'h-open', ttl => '1 hour', event_id => 'e1');
SELECT spendguard.budget_authorize_hold('claude', 0, 90, hold_id => 'h-old');
SELECT spendguard.budget_capture_hold(hold_id => 'h-old', realized_spend => 60);
SELECT spendguard.spend_charge('u9', 'g', 10);
INSERT INTO backup_app.kept SELECT 'globex', 'token_open', token
  FROM spendguard.proposal_create('user', 'u9', 'refund', '{"order": 1, "amount": 5}');

-- expiry, history retirement with checkpoints, stale proposals: in later
-- transactions, so the short TTLs have passed and the events are older
SELECT pg_sleep(0.01);
SET spendguard.tenant = 'acme';
SELECT spendguard.budget_expire_holds();
SELECT spendguard.proposal_expire_stale();
SET spendguard.tenant = 'globex';
SELECT capability_id, retired_events, kept_events FROM spendguard.budget_retire_events(now()) ORDER BY 1;
-- events after the checkpoint, on the retired budget
SELECT spendguard.budget_authorize_hold('claude', 0, 5, hold_id => 'h-after-retire', event_id => 'e2');
SET spendguard.tenant = 'acme';
SELECT capability_id, retired_events, kept_events FROM spendguard.budget_retire_events(now(), 'tool', 0);
SELECT spendguard.budget_try_increment('tool', 0, 5);

-- scoped budgets (SPEC §6) and prices (§8): budgets, an open and a settled
-- reservation (one priced by tokens), a charge with an event id, a denial
SET spendguard.tenant = 'acme';
SELECT spendguard.scope_set_budget('org:acme', 'day', 10000, alert_percents => '{50,80}');
SELECT spendguard.scope_set_budget('org:acme', 'total', 100000);
SELECT spendguard.price_set('gpt-x', '2026-01-01 00:00Z', 2500000, 10000000, 1250000);
SELECT allowed FROM spendguard.scope_reserve(ARRAY['user:u1', 'org:acme'], 300, 'sr-open', ttl => '1 hour');
SELECT allowed FROM spendguard.scope_reserve_tokens(ARRAY['user:u2', 'org:acme'], 'gpt-x', 1000, 100, 'sr-tok');
SELECT allowed FROM spendguard.scope_settle_tokens('sr-tok', 800, 50, 200);
SELECT allowed FROM spendguard.scope_charge(ARRAY['key:k1', 'org:acme'], 200, event_id => 'sc-1');
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:acme'], 50000);
-- a tenant granted to a role (SPEC §5): dumped and restored by the role's name
SELECT spendguard.tenant_grant('pg_monitor', 'acme');
