-- The hold lifecycle as a user sees it (SPEC.md §1).
SET spendguard.tenant = 'regress-holds';
-- Commit indexes are printed relative to the last one taken before this
-- file (files run in any order in one database: tests/pg_regress/README.md).
SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS base FROM spendguard.commit_seq \gset
\set mutation 'hold_id, kind, exposure_units, realized_spend_units, committed_cost_after, invocation_count_after, commit_index - ' :base ' AS commit_index, event_id, guarantee_level, budget_term'

-- authorize two holds against a total of 1000
SELECT authorized, denial_reason, hold_id, exposure_units, committed_cost_after,
       invocation_count_after, commit_index - :base AS commit_index, event_id, guarantee_level, budget_term
FROM spendguard.budget_authorize_hold('gpt', 0, 400, max_total_cost => 1000, hold_id => 'h1', event_id => 'auth-1');
SELECT authorized, denial_reason, committed_cost_after
FROM spendguard.budget_authorize_hold('gpt', 0, 500, max_invocations => 10, max_cost_per_invocation => 500,
                                      max_total_cost => 1000, hold_id => 'h2');
-- denials: each reason, with usage unchanged and no hold opened
SELECT authorized, denial_reason, hold_id, committed_cost_after, invocation_count_after, commit_index - :base AS commit_index
FROM spendguard.budget_authorize_hold('gpt', 0, 200, max_total_cost => 1000, hold_id => 'h3');
SELECT denial_reason FROM spendguard.budget_authorize_hold('gpt', 0, 1, max_invocations => 2);
SELECT denial_reason FROM spendguard.budget_authorize_hold('gpt', 0, 501, max_cost_per_invocation => 500);
-- replay of auth-1 returns the recorded decision, not a new one
SELECT authorized, hold_id, committed_cost_after, invocation_count_after, commit_index - :base AS commit_index, event_id
FROM spendguard.budget_authorize_hold('gpt', 0, 400, max_total_cost => 1000, hold_id => 'h1', event_id => 'auth-1');
-- partial release, capture of the rest, reverse of the other hold
SELECT :mutation FROM spendguard.budget_release_hold(hold_id => 'h1', released_exposure => 150);
SELECT :mutation FROM spendguard.budget_capture_hold(hold_id => 'h1', realized_spend => 180, event_id => 'cap-1');
SELECT :mutation FROM spendguard.budget_reverse_hold(hold_id => 'h2');
-- budget-level calls name the budget and the amount
SELECT authorized, committed_cost_after FROM spendguard.budget_authorize_hold('gpt', 0, 50);
SELECT :mutation FROM spendguard.budget_release_hold('gpt', 0, 50);
SELECT spendguard.budget_try_increment('gpt', 0, 3), spendguard.budget_try_increment('gpt', 0, 3);

SELECT capability_id, grant_index, invocation_count, total_cost_exposed, total_cost_realized, seq - :base AS seq
FROM spendguard.budget_usage('gpt', 0);
SELECT hold_id, capability_id, disposition, authorized_exposure, remaining_exposure, realized_spend
FROM spendguard.budget_holds() ORDER BY hold_id;
SELECT hold_id, disposition FROM spendguard.budget_holds(disposition => 'open');
SELECT event_seq - :base AS event_seq, event_id, hold_id, kind, allowed, denial_reason, exposure_units, realized_spend_units,
       max_invocations, max_cost_per_invocation, max_total_cost,
       invocation_count_after, total_cost_exposed_after, total_cost_realized_after
FROM spendguard.budget_events();
SELECT event_seq - :base AS event_seq, kind FROM spendguard.budget_events(2);

-- fencing metadata travels with the hold
SELECT authorized, budget_term FROM spendguard.budget_authorize_hold('gpt', 1, 10, hold_id => 'hf',
  authority_id => 'node-a', lease_id => 'lease-7', lease_epoch => 3);
SELECT kind, budget_term FROM spendguard.budget_release_hold(hold_id => 'hf',
  authority_id => 'node-a', lease_id => 'lease-7', lease_epoch => 3);

-- budgets, most recently updated first (gpt/1 was touched last)
SELECT capability_id, grant_index, invocation_count FROM spendguard.budget_usages();
SELECT capability_id, grant_index FROM spendguard.budget_usages(1);

-- another tenant sees none of it
SET spendguard.tenant = 'regress-holds-other';
SELECT count(*) FROM spendguard.budget_usages();
SELECT count(*) FROM spendguard.budget_holds();
SELECT count(*) FROM spendguard.budget_events();
