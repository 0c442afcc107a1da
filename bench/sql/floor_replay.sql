\set k random(1, 10000)
SELECT request_fingerprint, allowed, invocation_count_after, total_cost_exposed_after
FROM spendguard.budget_event WHERE tenant_id = 'default' AND event_id = 'e' || :k;
