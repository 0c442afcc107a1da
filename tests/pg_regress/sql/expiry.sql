-- Hold expiry and the auditor as a user sees them (SPEC.md §1 "Hold expiry",
-- "Verifying"). Timestamps are never printed: expires_at - created_at is
-- the TTL exactly, both being now() of the authorizing transaction.
SET spendguard.tenant = 'regress-expiry';

-- a hold with a TTL gets expires_at; one without never expires
SELECT authorized, hold_id, committed_cost_after
FROM spendguard.budget_authorize_hold('llm', 0, 300, max_total_cost => 1000, hold_id => 'long', ttl => '1 hour');
SELECT authorized, hold_id, committed_cost_after
FROM spendguard.budget_authorize_hold('llm', 0, 400, max_total_cost => 1000, hold_id => 'short',
                                      ttl => '1 microsecond', event_id => 'auth-short');
SELECT authorized, hold_id, committed_cost_after
FROM spendguard.budget_authorize_hold('llm', 0, 300, max_total_cost => 1000, hold_id => 'forever');
SELECT hold_id, disposition, expires_at - created_at AS ttl
FROM spendguard.budget_holds() ORDER BY hold_id;

-- from expires_at on the hold is not open, before any sweep
\set VERBOSITY sqlstate
SELECT spendguard.budget_release_hold(hold_id => 'short');
SELECT spendguard.budget_reverse_hold(hold_id => 'short');
SELECT spendguard.budget_capture_hold(hold_id => 'short', realized_spend => 1);
\set VERBOSITY default
SELECT spendguard.budget_release_hold(hold_id => 'short');
-- its replay still returns the recorded decision; another TTL is another request
SELECT authorized, hold_id, committed_cost_after
FROM spendguard.budget_authorize_hold('llm', 0, 400, max_total_cost => 1000, hold_id => 'short',
                                      ttl => '1 microsecond', event_id => 'auth-short');
\set VERBOSITY sqlstate
SELECT spendguard.budget_authorize_hold('llm', 0, 400, max_total_cost => 1000, hold_id => 'short',
                                        ttl => '2 microseconds', event_id => 'auth-short');
\set VERBOSITY default

-- the budget is full (1000 of 1000), but 400 of it is an expired hold: a new
-- authorize expires it in the same call and is authorized
SELECT authorized, denial_reason, committed_cost_after
FROM spendguard.budget_authorize_hold('llm', 0, 400, max_total_cost => 1000, hold_id => 'next');
SELECT hold_id, disposition, remaining_exposure FROM spendguard.budget_holds() ORDER BY hold_id;

-- the sweep: at now() nothing else is due; an hour later the 1-hour hold is
SELECT spendguard.budget_expire_holds();
SELECT spendguard.budget_expire_holds(now() + interval '61 minutes');
SELECT spendguard.budget_expire_holds(now() + interval '61 minutes');
SELECT hold_id, disposition, remaining_exposure FROM spendguard.budget_holds(disposition => 'expired')
ORDER BY hold_id;
SELECT invocation_count, total_cost_exposed, total_cost_realized FROM spendguard.budget_usage('llm', 0);
SELECT kind, hold_id, exposure_units, invocation_count_after, total_cost_exposed_after
FROM spendguard.budget_events(100, 'llm', 0);

-- bad sweep arguments
\set VERBOSITY sqlstate
SELECT spendguard.budget_expire_holds(NULL);
SELECT spendguard.budget_expire_holds(now(), NULL);
SELECT spendguard.budget_expire_holds(now(), -1);
\set VERBOSITY default
SELECT spendguard.budget_expire_holds(now(), 0);

-- the auditor finds nothing wrong, for the tenant and for one budget
SELECT * FROM spendguard.verify();
SELECT * FROM spendguard.verify('llm', 0);

-- the sweep's reads use the partial indexes of open holds with a TTL
SET plan_cache_mode = force_generic_plan;
PREPARE candidates(text, timestamptz, int8) AS
  SELECT capability_id, grant_index FROM spendguard.budget_hold
  WHERE tenant_id = $1 AND disposition = 'open' AND expires_at <= $2
  ORDER BY expires_at, hold_id LIMIT $3;
EXPLAIN (COSTS OFF) EXECUTE candidates('t', now(), 10);
PREPARE budget_expired(text, text, int4, timestamptz, int8) AS
  SELECT hold_id FROM spendguard.budget_hold
  WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3
    AND disposition = 'open' AND expires_at <= $4
  ORDER BY expires_at LIMIT $5 FOR UPDATE SKIP LOCKED;
EXPLAIN (COSTS OFF) EXECUTE budget_expired('t', 'c', 0, now(), 10);
RESET plan_cache_mode;
