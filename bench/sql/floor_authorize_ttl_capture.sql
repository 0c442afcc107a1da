\set k random(1, 10000)
\set r random(1, 9000000000000000000)
WITH u AS (UPDATE spendguard.budget_usage
           SET chain_n = chain_n + 1, chain_hash = sha256(coalesce(chain_hash, '\x'::bytea) || int8send(invocation_count)),
               invocation_count = invocation_count + 1, total_cost_exposed = total_cost_exposed + 2,
               seq = nextval('spendguard.commit_seq'), updated_at = now()
           WHERE tenant_id = 'floor' AND capability_id = 'b' || :k AND grant_index = 0
             AND total_cost_exposed + total_cost_realized + 2 <= 9000000000000000000
           RETURNING chain_n AS chain_n, chain_hash AS chain_hash, capability_id, seq, invocation_count, total_cost_exposed, total_cost_realized),
     h AS (INSERT INTO spendguard.budget_hold (tenant_id, hold_id, capability_id, grant_index,
             authorized_exposure, remaining_exposure, expires_at)
           SELECT 'floor', :client_id || '-' || :r, u.capability_id, 0, 2, 2, now() + interval '15 minutes' FROM u RETURNING hold_id)
INSERT INTO spendguard.budget_event (tenant_id, event_seq, hold_id, capability_id, grant_index, kind,
  allowed, exposure_units, max_total_cost, invocation_count_after, total_cost_exposed_after,
  total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
SELECT 'floor', u.seq, h.hold_id, u.capability_id, 0, 'authorize_exposure', true, 2,
  9000000000000000000, u.invocation_count, u.total_cost_exposed, u.total_cost_realized,
  'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = 0
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash FROM u, h;
WITH h AS (UPDATE spendguard.budget_hold SET remaining_exposure = 0, realized_spend = 1,
             disposition = 'reconciled', updated_at = now()
           WHERE tenant_id = 'floor' AND hold_id = :client_id || '-' || :r AND disposition = 'open'
           RETURNING hold_id, capability_id, grant_index),
     u AS (UPDATE spendguard.budget_usage b
           SET chain_n = b.chain_n + 1, chain_hash = sha256(coalesce(b.chain_hash, '\x'::bytea) || int8send(b.invocation_count)),
               total_cost_exposed = total_cost_exposed - 2, total_cost_realized = total_cost_realized + 1,
               seq = nextval('spendguard.commit_seq'), updated_at = now()
           FROM h WHERE b.tenant_id = 'floor' AND b.capability_id = h.capability_id AND b.grant_index = 0
           RETURNING b.chain_n AS chain_n, b.chain_hash AS chain_hash, b.capability_id, b.seq, b.invocation_count, b.total_cost_exposed, b.total_cost_realized)
INSERT INTO spendguard.budget_event (tenant_id, event_seq, hold_id, capability_id, grant_index, kind,
  allowed, exposure_units, realized_spend_units, invocation_count_after, total_cost_exposed_after,
  total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
SELECT 'floor', u.seq, h.hold_id, u.capability_id, 0, 'reconcile_spend', true, 2, 1,
  u.invocation_count, u.total_cost_exposed, u.total_cost_realized, 'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = 0
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash FROM u, h;
