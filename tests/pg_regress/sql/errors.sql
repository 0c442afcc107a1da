-- Each kind of bad call and its SQLSTATE (SPEC.md §0 error table).
SET spendguard.tenant = 'regress-errors';
SELECT authorized FROM spendguard.budget_authorize_hold('c', 0, 10, hold_id => 'h', event_id => 'e');
SELECT authorized FROM spendguard.budget_authorize_hold('c', 0, 5, hold_id => 'hf',
  authority_id => 'a', lease_id => 'l', lease_epoch => 2);

-- messages name the object and the rule
SELECT spendguard.budget_release_hold(hold_id => 'missing');
SELECT spendguard.budget_release_hold(hold_id => 'h', released_exposure => 11);
SELECT spendguard.budget_authorize_hold('c', 0, -1);

\set VERBOSITY sqlstate
-- 22023 invalid_parameter_value
SELECT spendguard.budget_authorize_hold('c', 0, -1);
SELECT spendguard.budget_authorize_hold('c', -1, 1);
SELECT spendguard.budget_authorize_hold('', 0, 1);
SELECT spendguard.budget_authorize_hold('c', 0, 1, max_total_cost => -1);
SELECT spendguard.budget_authorize_hold('c', 0, 1, authority_id => 'a');
SELECT spendguard.budget_release_hold(hold_id => '');
SELECT * FROM spendguard.budget_holds(disposition => 'gone');
-- 22004 null_value_not_allowed
SELECT spendguard.budget_authorize_hold(NULL, 0, 1);
SELECT spendguard.budget_authorize_hold('c', 0, NULL);
SELECT spendguard.budget_release_hold('c', 0, NULL);
SELECT spendguard.budget_reconcile_hold(hold_id => 'h');
SELECT spendguard.budget_try_increment(NULL, 0, 1);
-- 22003 numeric_value_out_of_range
SELECT authorized, committed_cost_after, invocation_count_after FROM spendguard.budget_authorize_hold('big', 0, 9223372036854775807);
SELECT spendguard.budget_authorize_hold('big', 0, 1);
-- SG001 hold not found
SELECT spendguard.budget_reverse_hold(hold_id => 'missing');
-- SG003 hold does not match
SELECT spendguard.budget_authorize_hold('c', 0, 1, hold_id => 'h');
SELECT spendguard.budget_release_hold('other', 0, 1, hold_id => 'h');
SELECT spendguard.budget_reverse_hold(hold_id => 'h', reversed_exposure => 3);
-- SG004 idempotency
SELECT spendguard.budget_authorize_hold('c', 0, 11, hold_id => 'h', event_id => 'e');
-- SG005 fencing
SELECT spendguard.budget_release_hold(hold_id => 'hf', authority_id => 'a', lease_id => 'l', lease_epoch => 1);
SELECT spendguard.budget_release_hold(hold_id => 'hf', authority_id => 'a', lease_id => 'l', lease_epoch => 3);
SELECT spendguard.budget_release_hold(hold_id => 'hf');
SELECT spendguard.budget_release_hold(hold_id => 'h', authority_id => 'a', lease_id => 'l', lease_epoch => 2);
-- SG006 budget invariant
SELECT spendguard.budget_reconcile_hold(hold_id => 'h', realized_spend => 11);
SELECT spendguard.budget_reverse_hold('never-used', 0, 0);
SELECT spendguard.budget_release_hold('c', 0, 1000);
-- SG002 hold no longer open
SELECT kind FROM spendguard.budget_capture_hold(hold_id => 'h', realized_spend => 9);
SELECT spendguard.budget_release_hold(hold_id => 'h');
-- SG030 tenant required
SET spendguard.require_tenant = on;
RESET spendguard.tenant;
SELECT spendguard.budget_authorize_hold('c', 0, 1);
SELECT * FROM spendguard.budget_usages();
-- 42501 the event log is append-only
SET spendguard.tenant = 'regress-errors';
UPDATE spendguard.budget_event SET allowed = false;
DELETE FROM spendguard.budget_event;
\set VERBOSITY default
-- nothing above changed anything but the calls that succeeded
SELECT invocation_count, total_cost_exposed, total_cost_realized FROM spendguard.budget_usage('c', 0);
SELECT count(*) AS events FROM spendguard.budget_events();
-- 23514: even the owner cannot drive a counter negative or past bigint in total
\set VERBOSITY sqlstate
UPDATE spendguard.budget_usage SET total_cost_exposed = -1 WHERE tenant_id = 'regress-errors' AND capability_id = 'c';
UPDATE spendguard.budget_usage SET invocation_count = -1 WHERE tenant_id = 'regress-errors' AND capability_id = 'c';
UPDATE spendguard.budget_usage SET total_cost_realized = 9223372036854775807 WHERE tenant_id = 'regress-errors' AND capability_id = 'c';
\set VERBOSITY default
