\set k random(1, 10000)
\set r random(1, 9000000000000000000)
WITH lim AS (SELECT b.limit_micros FROM spendguard.spend_budget b WHERE b.tenant_id = 'floor' AND b.group_id = 'g'),
     u AS (UPDATE spendguard.budget_usage
           SET chain_n = chain_n + 1, chain_hash = sha256(coalesce(chain_hash, '\x'::bytea) || int8send(invocation_count)),
               invocation_count = invocation_count + 1, total_cost_exposed = total_cost_exposed + 5,
               seq = nextval('spendguard.commit_seq'), updated_at = now()
           WHERE tenant_id = 'floor' AND capability_id = 'spendu' || :k AND grant_index = 0
             AND (SELECT coalesce(sum(d.spend_micros), 0) FROM spendguard.daily_spend d
                  WHERE d.tenant_id = 'floor' AND spendguard.id_key(d.user_id, d.group_id) = spendguard.id_key('u' || :k, 'g')
             AND d.user_id = 'u' || :k AND d.group_id = 'g'
                    AND d.day >= CAST(now() AT TIME ZONE 'UTC' AS date) AND d.day < CAST(now() AT TIME ZONE 'UTC' AS date) + 1)
               + (SELECT coalesce(sum(h.remaining_exposure), 0) FROM spendguard.budget_hold h
                  WHERE h.tenant_id = 'floor' AND h.capability_id = 'spendu' || :k AND h.grant_index = 0
                    AND h.disposition = 'open' AND h.expires_at IS NOT NULL AND h.expires_at > now())
               + 5 <= (SELECT limit_micros FROM lim)
           RETURNING chain_n AS chain_n, chain_hash AS chain_hash, capability_id, seq, invocation_count, total_cost_exposed, total_cost_realized),
     h AS (INSERT INTO spendguard.budget_hold (tenant_id, hold_id, capability_id, grant_index,
             authorized_exposure, remaining_exposure, expires_at)
           SELECT 'floor', :client_id || '-' || :r, u.capability_id, 0, 5, 5, now() + interval '15 minutes' FROM u
           RETURNING hold_id),
     e AS (INSERT INTO spendguard.budget_event (tenant_id, event_seq, hold_id, capability_id, grant_index, kind,
             allowed, exposure_units, invocation_count_after, total_cost_exposed_after,
             total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
           SELECT 'floor', u.seq, h.hold_id, u.capability_id, 0, 'authorize_exposure', true, 5,
             u.invocation_count, u.total_cost_exposed, u.total_cost_realized, 'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = 0
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash FROM u, h)
INSERT INTO spendguard.spend_reservation (tenant_id, hold_id, user_id, group_id, day, estimate_micros)
SELECT 'floor', h.hold_id, 'u' || :k, 'g', CAST(now() AT TIME ZONE 'UTC' AS date), 5 FROM h;
WITH r AS (UPDATE spendguard.spend_reservation SET status = 'settled', cost_micros = 3, closed_at = now()
           WHERE tenant_id = 'floor' AND hold_id = :client_id || '-' || :r AND status = 'open'
           RETURNING user_id, group_id, day),
     h AS (UPDATE spendguard.budget_hold SET remaining_exposure = 0, disposition = 'released', updated_at = now()
           WHERE tenant_id = 'floor' AND hold_id = :client_id || '-' || :r AND disposition = 'open' AND EXISTS (SELECT 1 FROM r)
           RETURNING hold_id, capability_id, grant_index, 5 AS amount),
     u AS (UPDATE spendguard.budget_usage b SET chain_n = b.chain_n + 1, chain_hash = sha256(coalesce(b.chain_hash, '\x'::bytea) || int8send(b.invocation_count)),
               total_cost_exposed = total_cost_exposed - h.amount,
             seq = nextval('spendguard.commit_seq'), updated_at = now()
           FROM h WHERE b.tenant_id = 'floor' AND b.capability_id = h.capability_id AND b.grant_index = h.grant_index
           RETURNING b.chain_n AS chain_n, b.chain_hash AS chain_hash, b.capability_id, b.seq, b.invocation_count, b.total_cost_exposed, b.total_cost_realized),
     e AS (INSERT INTO spendguard.budget_event (tenant_id, event_seq, hold_id, capability_id, grant_index, kind,
             allowed, exposure_units, invocation_count_after, total_cost_exposed_after,
             total_cost_realized_after, guarantee_level, chain_n, prev_hash, hash)
           SELECT 'floor', u.seq, h.hold_id, u.capability_id, 0, 'release_exposure', true, 5,
             u.invocation_count, u.total_cost_exposed, u.total_cost_realized, 'single_node_atomic', u.chain_n, coalesce((SELECT e.hash FROM spendguard.budget_event e
    WHERE e.tenant_id = 'floor' AND e.capability_id = u.capability_id AND e.grant_index = 0
    ORDER BY e.event_seq DESC LIMIT 1), '\x'::bytea), u.chain_hash FROM u, h)
INSERT INTO spendguard.daily_spend AS d (tenant_id, user_id, group_id, day, spend_micros)
SELECT 'floor', r.user_id, r.group_id, r.day, 3 FROM r
ON CONFLICT (tenant_id, spendguard.id_key(user_id, group_id), day) DO UPDATE SET spend_micros = d.spend_micros + EXCLUDED.spend_micros;
