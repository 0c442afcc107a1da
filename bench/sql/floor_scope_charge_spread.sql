\set k random(1, 10000)
WITH s AS (SELECT x.scope, 'scope:' || left(encode(sha256(int8send(octet_length(x.scope)::int8) || convert_to(x.scope, 'UTF8')), 'hex'), 32) AS cap
           FROM (VALUES ('key:' || :k), ('user:' || (:k % 1000)), ('team:' || (:k % 100)), ('org:' || (:k % 10))) x(scope)),
     d AS (SELECT CAST(now() AT TIME ZONE 'UTC' AS date) - date '2000-01-01' AS day),
     b AS (SELECT sb.scope, sb.limit_micros FROM spendguard.scope_budget sb
           WHERE sb.tenant_id = 'floor' AND sb.scope IN (SELECT scope FROM s)
           ORDER BY sb.scope, sb.period FOR UPDATE),
     ok AS (SELECT coalesce(bool_and(
              (SELECT coalesce(sum(u.total_cost_realized), 0) FROM spendguard.budget_usage u, d
               WHERE u.tenant_id = 'floor' AND u.capability_id = s.cap AND u.grant_index >= d.day AND u.grant_index < d.day + 1)
            + (SELECT coalesce(sum(h.remaining_exposure), 0) FROM spendguard.budget_hold h, d
               WHERE h.tenant_id = 'floor' AND h.capability_id = s.cap AND h.grant_index >= d.day AND h.grant_index < d.day + 1
                 AND h.disposition = 'open' AND h.expires_at IS NOT NULL AND h.expires_at > now())
            + 3 <= b.limit_micros), true) AS fits FROM b JOIN s USING (scope)),
     u AS (UPDATE spendguard.budget_usage u SET chain_n = u.chain_n + 1, chain_hash = sha256(coalesce(u.chain_hash, '\x'::bytea) || int8send(u.invocation_count)),
               total_cost_realized = u.total_cost_realized + 3,
             seq = nextval('spendguard.commit_seq'), updated_at = now()
           FROM s, d WHERE u.tenant_id = 'floor' AND u.capability_id = s.cap AND u.grant_index = d.day
             AND (SELECT fits FROM ok)
           RETURNING u.chain_n AS chain_n, u.chain_hash AS chain_hash, u.capability_id, u.grant_index, u.seq, u.invocation_count, u.total_cost_exposed, u.total_cost_realized)
INSERT INTO spendguard.budget_event (tenant_id, event_seq, capability_id, grant_index, kind, allowed,
  realized_spend_units, invocation_count_after, total_cost_exposed_after, total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
SELECT 'floor', u.seq, u.capability_id, u.grant_index, 'reconcile_spend', true, 3,
  u.invocation_count, u.total_cost_exposed, u.total_cost_realized, 'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = u.grant_index
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash FROM u;
