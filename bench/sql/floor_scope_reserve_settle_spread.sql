\set k random(1, 10000)
\set r random(1, 9000000000000000000)
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
            + 5 <= b.limit_micros), true) AS fits FROM b JOIN s USING (scope)),
     u AS (UPDATE spendguard.budget_usage u SET chain_n = u.chain_n + 1, chain_hash = sha256(coalesce(u.chain_hash, '\x'::bytea) || int8send(u.invocation_count)),
               invocation_count = u.invocation_count + 1,
             total_cost_exposed = u.total_cost_exposed + 5, seq = nextval('spendguard.commit_seq'), updated_at = now()
           FROM s, d WHERE u.tenant_id = 'floor' AND u.capability_id = s.cap AND u.grant_index = d.day
             AND (SELECT fits FROM ok)
           RETURNING u.chain_n AS chain_n, u.chain_hash AS chain_hash, s.scope, u.capability_id, u.grant_index, u.seq, u.invocation_count, u.total_cost_exposed,
             u.total_cost_realized),
     h AS (INSERT INTO spendguard.budget_hold (tenant_id, hold_id, capability_id, grant_index,
             authorized_exposure, remaining_exposure, expires_at)
           SELECT 'floor', 'scope-hold:' || left(encode(sha256(int8send(octet_length(:client_id || '-' || :r)::int8) || convert_to(:client_id || '-' || :r, 'UTF8') || int8send(octet_length(u.scope)::int8) || convert_to(u.scope, 'UTF8')), 'hex'), 32), u.capability_id, u.grant_index, 5, 5,
             now() + interval '15 minutes' FROM u
           RETURNING hold_id, capability_id),
     e AS (INSERT INTO spendguard.budget_event (tenant_id, event_seq, hold_id, capability_id, grant_index, kind,
             allowed, exposure_units, invocation_count_after, total_cost_exposed_after,
             total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
           SELECT 'floor', u.seq, h.hold_id, u.capability_id, u.grant_index, 'authorize_exposure', true, 5,
             u.invocation_count, u.total_cost_exposed, u.total_cost_realized, 'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = u.grant_index
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash
           FROM u JOIN h USING (capability_id))
INSERT INTO spendguard.scope_reservation (tenant_id, hold_id, scopes, at, estimate_micros, expires_at)
SELECT 'floor', :client_id || '-' || :r, ARRAY(SELECT scope FROM s ORDER BY scope COLLATE "C"), now(), 5,
  now() + interval '15 minutes' WHERE (SELECT fits FROM ok);
WITH r AS (UPDATE spendguard.scope_reservation SET status = 'settled', cost_micros = 3, closed_at = now()
           WHERE tenant_id = 'floor' AND hold_id = :client_id || '-' || :r AND status = 'open'
           RETURNING scopes, at),
     s AS (SELECT x.scope, 'scope:' || left(encode(sha256(int8send(octet_length(x.scope)::int8) || convert_to(x.scope, 'UTF8')), 'hex'), 32) AS cap FROM r, unnest(r.scopes) x(scope)),
     b AS (SELECT sb.scope FROM spendguard.scope_budget sb
           WHERE sb.tenant_id = 'floor' AND sb.scope IN (SELECT scope FROM s)
           ORDER BY sb.scope, sb.period FOR UPDATE),
     h AS (UPDATE spendguard.budget_hold h SET remaining_exposure = 0, realized_spend = 3,
             disposition = 'reconciled', updated_at = now()
           FROM s WHERE h.tenant_id = 'floor' AND h.hold_id = 'scope-hold:' || left(encode(sha256(int8send(octet_length(:client_id || '-' || :r)::int8) || convert_to(:client_id || '-' || :r, 'UTF8') || int8send(octet_length(s.scope)::int8) || convert_to(s.scope, 'UTF8')), 'hex'), 32) AND h.disposition = 'open'
             AND (SELECT count(*) FROM b) >= 0
           RETURNING h.hold_id, h.capability_id, h.grant_index, 5 AS amount),
     u AS (UPDATE spendguard.budget_usage u SET chain_n = u.chain_n + 1, chain_hash = sha256(coalesce(u.chain_hash, '\x'::bytea) || int8send(u.invocation_count)),
               total_cost_exposed = u.total_cost_exposed - h.amount,
             total_cost_realized = u.total_cost_realized + 3, seq = nextval('spendguard.commit_seq'), updated_at = now()
           FROM h WHERE u.tenant_id = 'floor' AND u.capability_id = h.capability_id AND u.grant_index = h.grant_index
           RETURNING u.chain_n AS chain_n, u.chain_hash AS chain_hash, u.capability_id, u.grant_index, u.seq, u.invocation_count, u.total_cost_exposed, u.total_cost_realized)
INSERT INTO spendguard.budget_event (tenant_id, event_seq, hold_id, capability_id, grant_index, kind,
  allowed, exposure_units, realized_spend_units, invocation_count_after, total_cost_exposed_after,
  total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
SELECT 'floor', u.seq, h.hold_id, u.capability_id, u.grant_index, 'reconcile_spend', true, 5, 3,
  u.invocation_count, u.total_cost_exposed, u.total_cost_realized, 'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = u.grant_index
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash
FROM u JOIN h USING (capability_id);
