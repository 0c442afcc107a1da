-- After a restore the database works on (issue 15, item 3). Run on every
-- restored copy and on the source itself after its dumps were taken; the
-- output must equal tests/backup/works_on.expected each time.
\set ON_ERROR_STOP on
\pset footer off
-- the SQLSTATE of a statement, 'ok' when it succeeds
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END
$$;
CREATE FUNCTION pg_temp.kept(t text, n text) RETURNS text LANGUAGE sql AS $$
  SELECT value FROM backup_app.kept WHERE tenant = t AND name = n
$$;

\echo 'the auditor is clean in both tenants'
SET spendguard.tenant = 'acme';
SELECT count(*) AS acme_problems FROM spendguard.verify();
SET spendguard.tenant = 'globex';
SELECT count(*) AS globex_problems FROM spendguard.verify();

SET spendguard.tenant = 'acme';
\echo 'the sentinel of unknown proposal ids is there once, not twice'
SELECT count(*) AS sentinels FROM spendguard.proposal_secret WHERE tenant_id = '';

\echo 'replaying event_ids from before the dump returns the recorded results'
SELECT r::text = pg_temp.kept('acme', 'auth_e1') AS authorize_e1_replayed
FROM spendguard.budget_authorize_hold('gpt', 0, 400, max_total_cost => 1000, hold_id => 'h-captured', event_id => 'e1') r;
SELECT r::text = pg_temp.kept('acme', 'capture_e2') AS capture_e2_replayed
FROM spendguard.budget_capture_hold(hold_id => 'h-captured', realized_spend => 180, event_id => 'e2') r;
SELECT r::text = pg_temp.kept('acme', 'denied_e3') AS denial_e3_replayed
FROM spendguard.budget_authorize_hold('gpt', 0, 5000, max_total_cost => 1000, event_id => 'e3') r;
SELECT pg_temp.sqlstate_of($$SELECT spendguard.budget_authorize_hold('gpt', 0, 1, event_id => 'e1')$$)
  AS e1_other_request;

\echo 'a new event is newer than every restored one (the sequence went on)'
SELECT max(event_seq) AS max_seq FROM spendguard.budget_event \gset
SELECT commit_index > :max_seq AS newer, authorized
FROM spendguard.budget_authorize_hold('gpt', 0, 1, hold_id => 'h-new', event_id => 'e-new');

\echo 'open holds are captured, released and expire'
SELECT kind, exposure_units, realized_spend_units FROM spendguard.budget_capture_hold(hold_id => 'h-open', realized_spend => 60);
SELECT kind, exposure_units FROM spendguard.budget_release_hold(hold_id => 'h-fenced', authority_id => 'a', lease_id => 'l', lease_epoch => 2);
SELECT pg_temp.sqlstate_of($$SELECT spendguard.budget_capture_hold(hold_id => 'h-captured', realized_spend => 1)$$)
  AS captured_again;
SELECT pg_temp.sqlstate_of($$SELECT spendguard.budget_release_hold(hold_id => 'h-expired')$$) AS expired_released;

\echo 'open reservations settle, closed ones stay closed, a due one expires'
SELECT spend_micros FROM spendguard.spend_settle('r-open', 4100);
SELECT pg_temp.sqlstate_of($$SELECT spendguard.spend_settle('r-settled', 1)$$) AS settled_again;
SELECT pg_temp.sqlstate_of($$SELECT spendguard.spend_cancel('r-cancelled')$$) AS cancelled_again;
SELECT spendguard.budget_expire_holds(now() + interval '2 hours') AS expired_now;
SELECT hold_id, disposition, remaining_exposure FROM spendguard.budget_holds(disposition => 'expired') ORDER BY hold_id;
SELECT allowed, spent_micros, reserved_micros, limit_micros FROM spendguard.spend_reserve('u1', 'free', 100, 'r-new');

\echo 'caps count what was recorded before the dump'
SELECT allowed, used FROM spendguard.usage_cap_check('openai', 'user', 'u1', 1000, '1 hour');
SELECT allowed, used FROM spendguard.usage_cap_charge('openai', 'user', 'u1', 600, 1000, '1 hour');
SELECT allowed, used FROM spendguard.call_cap_charge('application', 'agent', 'search', 1, '1 hour');

\echo 'proposals: consumed stays consumed, rejected and expired stay closed, an open one applies with its token'
SELECT pg_temp.sqlstate_of(format('SELECT spendguard.proposal_consume(%L, ''user'', ''ops'')', pg_temp.kept('acme', 'token_applied'))) AS consumed_again;
SELECT pg_temp.sqlstate_of(format('SELECT spendguard.proposal_consume(%L, ''user'', ''ops'')', pg_temp.kept('acme', 'token_rejected'))) AS rejected_consumed;
SELECT pg_temp.sqlstate_of(format('SELECT spendguard.proposal_consume(%L, ''user'', ''ops'')', pg_temp.kept('acme', 'token_expired'))) AS expired_consumed;
SELECT pg_temp.sqlstate_of(format('SELECT spendguard.proposal_consume(%L, ''user'', ''ops'')',
  regexp_replace(pg_temp.kept('acme', 'token_open'), '\.[0-9a-f]{8}', '.00000000'))) AS wrong_nonce;
SELECT pg_temp.sqlstate_of($$SELECT spendguard.proposal_consume('propose:11111111-1111-1111-1111-111111111111.' || repeat('ab', 32), 'user', 'ops')$$) AS unknown_id;
SELECT status, applied_by_id FROM spendguard.proposal_consume(pg_temp.kept('acme', 'token_open'), 'user', 'ops', '{"amount": 5, "order": 1}');
SELECT (SELECT duplicate_of IS NULL FROM spendguard.proposal_create('application', 'agent', 'refund', '{"order": 1, "amount": 5}')) AS new_proposal_not_a_duplicate;
SELECT status, count(*) FROM spendguard.tool_calls() GROUP BY status ORDER BY status;

SET spendguard.tenant = 'globex';
\echo 'globex: its own holds and tokens, history after retirement'
SELECT pg_temp.sqlstate_of(format('SELECT spendguard.proposal_consume(%L, ''user'', ''ops'')', pg_temp.kept('acme', 'token_applied'))) AS acme_token_in_globex;
SELECT status FROM spendguard.proposal_consume(pg_temp.kept('globex', 'token_open'), 'user', 'ops');
SELECT count(*) AS checkpoints FROM spendguard.budget_checkpoints('claude', 0);
SELECT kind, exposure_units, realized_spend_units FROM spendguard.budget_capture_hold(hold_id => 'h-after-retire', realized_spend => 5);
SELECT spendguard.budget_expire_holds(now() + interval '2 hours') AS expired_now;
SELECT capability_id, invocation_count, total_cost_exposed, total_cost_realized
FROM spendguard.budget_usages() ORDER BY capability_id;

\echo 'and the auditor is still clean in both tenants'
SET spendguard.tenant = 'acme';
SELECT count(*) AS acme_problems FROM spendguard.verify();
SET spendguard.tenant = 'globex';
SELECT count(*) AS globex_problems FROM spendguard.verify();

\echo 'scoped budgets and prices work on: the open reservation settles, the charge replays, the price holds'
SET spendguard.tenant = 'acme';
SELECT allowed, remaining_micros FROM spendguard.scope_charge(ARRAY['key:k1', 'org:acme'], 200, event_id => 'sc-1');
SELECT allowed, remaining_micros FROM spendguard.scope_settle('sr-open', 250);
SELECT spendguard.price_cost('gpt-x', 1000000, 0, 0, '2026-06-01') AS gpt_x_per_million_input;
SELECT scope, period, spent_micros, reserved_micros FROM spendguard.scope_usage('org:acme');
SELECT count(*) AS acme_problems_after_scopes FROM spendguard.verify();
