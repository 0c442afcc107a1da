WITH u AS (UPDATE spendguard.budget_usage
           SET chain_n = chain_n + 1, chain_hash = sha256(coalesce(chain_hash, '\x'::bytea) || int8send(invocation_count)),
               invocation_count = invocation_count + 1, total_cost_exposed = total_cost_exposed + 1,
               seq = nextval('spendguard.commit_seq'), updated_at = now()
           WHERE tenant_id = 'floor' AND capability_id = 'hot' AND grant_index = 0
             AND total_cost_exposed + total_cost_realized + 1 <= 9000000000000000000
           RETURNING chain_n AS chain_n, chain_hash AS chain_hash, capability_id, seq, invocation_count, total_cost_exposed, total_cost_realized)
INSERT INTO spendguard.budget_event (tenant_id, event_seq, capability_id, grant_index, kind, allowed,
  exposure_units, max_total_cost, invocation_count_after, total_cost_exposed_after,
  total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
SELECT 'floor', u.seq, u.capability_id, 0, 'authorize_exposure', true, 1, 9000000000000000000,
  u.invocation_count, u.total_cost_exposed, u.total_cost_realized, 'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = 0
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash FROM u;
