-- spendguard.verify(): the auditor of SPEC §1 "Verifying".
--
-- It replays the current tenant's event log and returns one row for every
-- invariant that does not hold, none when the state is sound. It is written
-- in SQL on purpose: a second implementation of the fold, independent of
-- the Rust rules that wrote the rows, so a bug in those rules cannot hide
-- itself. It is one statement, so it reads one consistent snapshot, and it
-- only reads (AccessShareLock), so it never blocks a call.
--
-- The optional budget key narrows it to one budget; every read then goes
-- through the per-budget indexes (budget_event_budget, budget_hold_budget,
-- the usage primary key).
--
-- The hash chain (SPEC §9, sql/chain.sql): every kept link of each budget
-- (its events after the newest checkpoint's cut, and the checkpoint links
-- after it) is recomputed with the one link function and walked in chain_n
-- order from the cut (or the budget's genesis): chain_n dense, each
-- prev_hash the previous link's hash, each hash the recomputed one, and
-- the budget row's head the last link. The first broken link of a budget
-- is reported (check_name 'chain'), and a head that is not the last link.
--
-- Retired history (sql/retire.sql): each budget's fold starts from its
-- newest checkpoint (counters, unheld exposure, last allowed event) and goes
-- on with the events after it; a hold row whose events were all retired must
-- be closed with nothing left, and their number and realized spend must be
-- the checkpoint's. PL/pgSQL, not SQL, for that: its plan cache
-- plans the query for the values given, folding the "$1 IS NULL OR" tests,
-- where a SQL function's one generic plan scanned whole tables.
CREATE FUNCTION spendguard.verify(capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS TABLE (object text, check_name text, expected text, actual text)
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
  -- a value, not a call in the query: every read names the tenant, so on
  -- Citus (SPEC §10) the whole query goes to the node that holds it
  sg_tenant text;
BEGIN
PERFORM spendguard.check_reader();
sg_tenant := spendguard.current_tenant();
PERFORM spendguard.check_id('capability_id', $1);
PERFORM spendguard.check_grant_index($2);
RETURN QUERY
WITH
tenant AS (SELECT sg_tenant AS id),
-- each budget's newest checkpoint: where its fold starts
ckpt AS (
  SELECT DISTINCT ON (k.capability_id, k.grant_index) k.*
  FROM spendguard.budget_checkpoint k, tenant t
  WHERE k.tenant_id = sg_tenant
    AND ($1 IS NULL OR k.capability_id = $1)
    AND ($2 IS NULL OR k.grant_index = $2)
  ORDER BY k.capability_id, k.grant_index, k.through_seq DESC
),
-- every event of the scope after its budget's checkpoint, with what it did
-- to the counters (denials: nothing)
ev AS (
  SELECT e.*,
    coalesce(k.invocation_count, 0)::numeric AS k_count,
    coalesce(k.total_cost_exposed, 0)::numeric AS k_exposed,
    coalesce(k.total_cost_realized, 0)::numeric AS k_realized,
    CASE WHEN NOT e.allowed THEN 0
         WHEN e.kind IN ('authorize_exposure', 'increment_invocation') THEN 1
         WHEN e.kind = 'reverse_exposure' THEN -1
         ELSE 0 END::numeric AS d_count,
    CASE WHEN NOT e.allowed OR e.kind = 'increment_invocation' THEN 0
         WHEN e.kind = 'authorize_exposure' THEN e.exposure_units::numeric
         ELSE -(e.exposure_units::numeric) END AS d_exposed,
    CASE WHEN e.allowed AND e.kind = 'reconcile_spend' THEN e.realized_spend_units
         ELSE 0 END::numeric AS d_realized
  FROM spendguard.budget_event e
  JOIN tenant t ON e.tenant_id = sg_tenant
  LEFT JOIN ckpt k ON k.capability_id = e.capability_id AND k.grant_index = e.grant_index
  WHERE ($1 IS NULL OR e.capability_id = $1)
    AND ($2 IS NULL OR e.grant_index = $2)
    AND e.event_seq > coalesce(k.through_seq, 0)
),
-- the running fold along each budget's history in event_seq order
chain AS (
  SELECT ev.*,
    ev.k_count + sum(ev.d_count) OVER w AS f_count,
    ev.k_exposed + sum(ev.d_exposed) OVER w AS f_exposed,
    ev.k_realized + sum(ev.d_realized) OVER w AS f_realized
  FROM ev
  WINDOW w AS (PARTITION BY ev.capability_id, ev.grant_index ORDER BY ev.event_seq
               ROWS UNBOUNDED PRECEDING)
),
-- the first event of each budget whose recorded totals are not the fold
-- up to it (later ones follow from it, so only the first is reported)
broken_chain AS (
  SELECT DISTINCT ON (c.capability_id, c.grant_index) c.*
  FROM chain c
  WHERE (c.invocation_count_after::numeric, c.total_cost_exposed_after::numeric,
         c.total_cost_realized_after::numeric)
        IS DISTINCT FROM (c.f_count, c.f_exposed, c.f_realized)
  ORDER BY c.capability_id, c.grant_index, c.event_seq
),
-- SPEC §9: the kept links of each budget, events and checkpoint links
links AS (
  SELECT ev.capability_id, ev.grant_index, ev.chain_n, ev.prev_hash, ev.hash,
    spendguard.event_link(ev.prev_hash, ev.tenant_id, ev.event_seq, ev.event_id,
      ev.request_fingerprint, ev.hold_id, ev.capability_id, ev.grant_index, ev.kind::text,
      ev.allowed, ev.denial_reason, ev.recorded_at, ev.exposure_units, ev.realized_spend_units,
      ev.max_invocations, ev.max_cost_per_invocation, ev.max_total_cost,
      ev.invocation_count_after, ev.total_cost_exposed_after, ev.total_cost_realized_after,
      ev.authority_id, ev.lease_id, ev.lease_epoch, ev.guarantee_level, ev.chain_n) AS computed,
    format('event %s', ev.event_seq) AS what, 0 AS is_checkpoint, ev.event_seq AS o
  FROM ev
  UNION ALL
  SELECT k.capability_id, k.grant_index, k.chain_n, k.prev_hash, k.hash,
    spendguard.checkpoint_link(k.prev_hash, k.tenant_id, k.capability_id, k.grant_index,
      k.through_seq, k.retired_before, k.retired_at, k.events, k.invocation_count,
      k.total_cost_exposed, k.total_cost_realized, k.unheld_exposed::text, k.last_allowed_seq,
      k.retired_holds, k.retired_hold_realized::text, k.cut_chain_n, k.cut_hash, k.chain_n),
    format('checkpoint through event %s', k.through_seq), 1,
    k.through_seq
  FROM spendguard.budget_checkpoint k
  JOIN tenant t ON k.tenant_id = sg_tenant
  JOIN ckpt c ON c.capability_id = k.capability_id AND c.grant_index = k.grant_index
  WHERE ($1 IS NULL OR k.capability_id = $1)
    AND ($2 IS NULL OR k.grant_index = $2)
    AND k.chain_n > coalesce(c.cut_chain_n, 0)
),
-- each link next to what the walk expects of it
walk AS (
  SELECT l.*,
    coalesce(c.cut_chain_n, 0) + row_number() OVER w AS want_n,
    CASE WHEN row_number() OVER w = 1
         THEN coalesce(c.cut_hash, spendguard.chain_genesis(sg_tenant, l.capability_id, l.grant_index))
         ELSE lag(l.hash) OVER w END AS want_prev
  FROM links l
  CROSS JOIN tenant t
  LEFT JOIN ckpt c ON c.capability_id = l.capability_id AND c.grant_index = l.grant_index
  WINDOW w AS (PARTITION BY l.capability_id, l.grant_index
               ORDER BY l.chain_n, l.is_checkpoint, l.o)
),
broken_links AS (
  SELECT DISTINCT ON (w.capability_id, w.grant_index) w.*
  FROM walk w
  WHERE w.chain_n IS DISTINCT FROM w.want_n OR w.prev_hash IS DISTINCT FROM w.want_prev
     OR w.hash IS DISTINCT FROM w.computed
  ORDER BY w.capability_id, w.grant_index, w.want_n
),
last_links AS (
  SELECT DISTINCT ON (w.capability_id, w.grant_index) w.capability_id, w.grant_index,
    w.chain_n, w.hash
  FROM walk w
  ORDER BY w.capability_id, w.grant_index, w.want_n DESC
),
ev_fold AS (
  SELECT ev.capability_id, ev.grant_index,
    sum(ev.d_count) AS count, sum(ev.d_exposed) AS exposed, sum(ev.d_realized) AS realized,
    max(ev.event_seq) FILTER (WHERE ev.allowed) AS seq,
    sum(ev.d_exposed) FILTER (WHERE ev.hold_id IS NULL) AS unheld_exposed
  FROM ev GROUP BY ev.capability_id, ev.grant_index
),
-- checkpoint + the events after it
fold AS (
  SELECT coalesce(f.capability_id, k.capability_id) AS capability_id,
    coalesce(f.grant_index, k.grant_index) AS grant_index,
    coalesce(k.invocation_count, 0) + coalesce(f.count, 0) AS count,
    coalesce(k.total_cost_exposed, 0) + coalesce(f.exposed, 0) AS exposed,
    coalesce(k.total_cost_realized, 0) + coalesce(f.realized, 0) AS realized,
    coalesce(f.seq, k.last_allowed_seq, 0) AS seq,
    coalesce(k.unheld_exposed, 0) + coalesce(f.unheld_exposed, 0) AS unheld_exposed
  FROM ev_fold f
  FULL JOIN ckpt k ON k.capability_id = f.capability_id AND k.grant_index = f.grant_index
),
usage AS (
  SELECT u.* FROM spendguard.budget_usage u, tenant t
  WHERE u.tenant_id = sg_tenant
    AND ($1 IS NULL OR u.capability_id = $1)
    AND ($2 IS NULL OR u.grant_index = $2)
),
holds AS (
  SELECT h.* FROM spendguard.budget_hold h, tenant t
  WHERE h.tenant_id = sg_tenant
    AND ($1 IS NULL OR h.capability_id = $1)
    AND ($2 IS NULL OR h.grant_index = $2)
),
open_holds AS (
  SELECT h.capability_id, h.grant_index, sum(h.remaining_exposure) AS remaining
  FROM holds h WHERE h.disposition = 'open'
  GROUP BY h.capability_id, h.grant_index
),
budgets AS (
  SELECT coalesce(u.capability_id, f.capability_id) AS capability_id,
         coalesce(u.grant_index, f.grant_index) AS grant_index,
         u.capability_id IS NOT NULL AS has_row,
         u.invocation_count, u.total_cost_exposed, u.total_cost_realized, u.seq,
         coalesce(f.count, 0) AS f_count, coalesce(f.exposed, 0) AS f_exposed,
         coalesce(f.realized, 0) AS f_realized, coalesce(f.seq, 0) AS f_seq,
         coalesce(f.unheld_exposed, 0) + coalesce(o.remaining, 0) AS split_exposed
  FROM usage u
  FULL JOIN fold f ON f.capability_id = u.capability_id AND f.grant_index = u.grant_index
  LEFT JOIN open_holds o
    ON o.capability_id = coalesce(u.capability_id, f.capability_id)
   AND o.grant_index = coalesce(u.grant_index, f.grant_index)
),
-- each hold's own events folded: authorized, given back, realized, and the
-- kind of its last event (which decides its disposition)
hold_ev AS (
  SELECT ev.hold_id,
    min(ev.capability_id) AS capability_id, min(ev.grant_index) AS grant_index,
    count(*) FILTER (WHERE ev.kind = 'authorize_exposure') AS authorizations,
    sum(ev.exposure_units) FILTER (WHERE ev.kind = 'authorize_exposure') AS authorized,
    coalesce(sum(ev.exposure_units) FILTER (WHERE ev.kind <> 'authorize_exposure'), 0) AS given_back,
    coalesce(sum(ev.realized_spend_units) FILTER (WHERE ev.kind = 'reconcile_spend'), 0) AS realized,
    (array_agg(ev.kind ORDER BY ev.event_seq DESC))[1] AS last_kind
  FROM ev WHERE ev.allowed AND ev.hold_id IS NOT NULL
  GROUP BY ev.hold_id
),
hold_fold AS (
  SELECT x.*, coalesce(x.authorized, 0) - x.given_back AS remaining,
    CASE x.last_kind
      WHEN 'authorize_exposure' THEN 'open'
      WHEN 'release_exposure' THEN
        CASE WHEN coalesce(x.authorized, 0) - x.given_back > 0 THEN 'open' ELSE 'released' END
      WHEN 'reverse_exposure' THEN 'reversed'
      WHEN 'reconcile_spend' THEN 'reconciled'
      WHEN 'expire_exposure' THEN 'expired'
    END AS disposition
  FROM hold_ev x
),
hold_pairs AS (
  SELECT coalesce(h.hold_id, f.hold_id) AS hold_id,
         h.hold_id IS NOT NULL AS has_row, f.hold_id IS NOT NULL AS has_events,
         h.capability_id, h.grant_index,
         k.capability_id IS NOT NULL AS has_checkpoint,
         h.authorized_exposure, h.remaining_exposure, h.realized_spend, h.disposition,
         f.authorizations, f.authorized AS f_authorized, f.remaining AS f_remaining,
         f.realized AS f_realized, f.disposition AS f_disposition
  FROM holds h FULL JOIN hold_fold f ON f.hold_id = h.hold_id
  LEFT JOIN ckpt k ON k.capability_id = h.capability_id AND k.grant_index = h.grant_index
),
-- hold rows whose events were all retired, per budget with a checkpoint
retired AS (
  SELECT k.capability_id, k.grant_index, k.retired_holds, k.retired_hold_realized,
         count(p.hold_id) AS holds, coalesce(sum(p.realized_spend), 0) AS realized
  FROM ckpt k
  LEFT JOIN hold_pairs p ON p.has_row AND NOT p.has_events
   AND p.capability_id = k.capability_id AND p.grant_index = k.grant_index
  GROUP BY k.capability_id, k.grant_index, k.retired_holds, k.retired_hold_realized
),
-- reservations (SPEC §2) whose hold row is missing: only for the whole
-- tenant (without a hold a reservation has no budget to filter by)
lost_reservations AS (
  SELECT r.hold_id FROM spendguard.spend_reservation r, tenant t
  WHERE $1 IS NULL AND $2 IS NULL AND r.tenant_id = sg_tenant
    AND NOT EXISTS (SELECT 1 FROM spendguard.budget_hold h
                    WHERE h.tenant_id = r.tenant_id AND h.hold_id = r.hold_id)
),
-- scoped reservations (SPEC §6): one §1 hold per scope named, its id
-- spendguard_core::scope::hold_key; missing, or still open once the
-- reservation was settled or cancelled. Whole tenant only, as above.
scope_holds AS (
  SELECT r.hold_id, r.status, s.scope, h.disposition
  FROM spendguard.scope_reservation r
  JOIN tenant t ON r.tenant_id = sg_tenant
  CROSS JOIN LATERAL unnest(r.scopes) s(scope)
  LEFT JOIN spendguard.budget_hold h
    ON h.tenant_id = r.tenant_id
   AND h.hold_id = 'scope-hold:' || left(encode(spendguard.id_key(r.hold_id, s.scope), 'hex'), 32)
  WHERE $1 IS NULL AND $2 IS NULL
),
-- escrow slices of sliced scopes (SPEC §6 `slices`): every slice of a
-- scope has a split or none has; a split is made for one limit and period
-- start per budget, and its quotas add up to at most the limit. Whole
-- tenant only.
slice_scopes AS (
  SELECT s.scope, count(*) AS n, count(s.limits) AS split
  FROM spendguard.scope_slice s
  WHERE $1 IS NULL AND $2 IS NULL AND s.tenant_id = sg_tenant
  GROUP BY s.scope
),
slice_splits AS (
  SELECT s.scope, p.rank, p.period,
         count(DISTINCT s.limits[p.rank]) AS n_limits,
         count(DISTINCT s.starts[p.rank]) AS n_starts,
         max(s.limits[p.rank]) AS lim,
         sum(s.quotas[p.rank]) AS quota_sum,
         count(s.quotas[p.rank]) AS quota_n,
         count(*) AS n
  FROM spendguard.scope_slice s
  CROSS JOIN (VALUES (1, 'day'), (2, 'week'), (3, 'month'), (4, 'total')) p(rank, period)
  WHERE $1 IS NULL AND $2 IS NULL AND s.tenant_id = sg_tenant AND s.limits[p.rank] IS NOT NULL
  GROUP BY s.scope, p.rank, p.period
),
problems AS (
  -- budgets: counters = fold of allowed events
  SELECT format('budget (%L, %s)', b.capability_id, b.grant_index) AS object,
         'usage.exists' AS check_name, 'a budget_usage row' AS expected, 'none' AS actual, 1 AS o
  FROM budgets b WHERE NOT b.has_row
  UNION ALL
  SELECT format('budget (%L, %s)', b.capability_id, b.grant_index), 'usage.invocation_count',
         b.f_count::text, b.invocation_count::text, 2
  FROM budgets b WHERE b.has_row AND b.invocation_count::numeric <> b.f_count
  UNION ALL
  SELECT format('budget (%L, %s)', b.capability_id, b.grant_index), 'usage.total_cost_exposed',
         b.f_exposed::text, b.total_cost_exposed::text, 3
  FROM budgets b WHERE b.has_row AND b.total_cost_exposed::numeric <> b.f_exposed
  UNION ALL
  SELECT format('budget (%L, %s)', b.capability_id, b.grant_index), 'usage.total_cost_realized',
         b.f_realized::text, b.total_cost_realized::text, 4
  FROM budgets b WHERE b.has_row AND b.total_cost_realized::numeric <> b.f_realized
  UNION ALL
  -- the budget's seq is the commit index of its last allowed event
  SELECT format('budget (%L, %s)', b.capability_id, b.grant_index), 'usage.seq',
         b.f_seq::text, b.seq::text, 5
  FROM budgets b WHERE b.has_row AND b.seq <> b.f_seq
  UNION ALL
  SELECT format('budget (%L, %s)', b.capability_id, b.grant_index), 'usage.non_negative',
         'every counter >= 0',
         format('invocation_count=%s, total_cost_exposed=%s, total_cost_realized=%s',
                b.invocation_count, b.total_cost_exposed, b.total_cost_realized), 6
  FROM budgets b
  WHERE b.has_row AND least(b.invocation_count, b.total_cost_exposed, b.total_cost_realized) < 0
  UNION ALL
  -- exposure = open holds' remaining + exposure authorized without a hold
  SELECT format('budget (%L, %s)', b.capability_id, b.grant_index), 'usage.exposure_split',
         b.split_exposed::text, b.total_cost_exposed::text, 7
  FROM budgets b WHERE b.has_row AND b.total_cost_exposed::numeric <> b.split_exposed
  UNION ALL
  -- along each budget's history in event_seq order, each event's *_after
  -- totals are the fold up to and including it
  SELECT format('event %s of budget (%L, %s)', c.event_seq, c.capability_id, c.grant_index),
         'event.chain',
         format('after=(%s, %s, %s)', c.f_count, c.f_exposed, c.f_realized),
         format('after=(%s, %s, %s)', c.invocation_count_after, c.total_cost_exposed_after,
                c.total_cost_realized_after), 8
  FROM broken_chain c
  UNION ALL
  -- SPEC §9: the first link of each budget that does not verify
  SELECT format('%s of budget (%L, %s)', c.what, c.capability_id, c.grant_index), 'chain',
         format('chain_n=%s, prev_hash=%s, hash=%s', c.want_n, encode(c.want_prev, 'hex'),
                coalesce(encode(c.computed, 'hex'), 'none')),
         format('chain_n=%s, prev_hash=%s, hash=%s', c.chain_n, encode(c.prev_hash, 'hex'),
                encode(c.hash, 'hex')), 19
  FROM broken_links c
  UNION ALL
  -- the head kept on the budget row is the last link
  SELECT format('budget (%L, %s)', u.capability_id, u.grant_index), 'chain',
         format('head chain_n=%s, hash=%s', coalesce(l.chain_n, 0),
                coalesce(encode(l.hash, 'hex'), 'none')),
         format('head chain_n=%s, hash=%s', u.chain_n, coalesce(encode(u.chain_hash, 'hex'), 'none')), 20
  FROM usage u
  LEFT JOIN last_links l ON l.capability_id = u.capability_id AND l.grant_index = u.grant_index
  WHERE (u.chain_n, u.chain_hash) IS DISTINCT FROM (coalesce(l.chain_n, 0), l.hash)
  UNION ALL
  -- holds: row and events agree
  SELECT format('hold %L', p.hold_id), 'hold.exists',
         CASE WHEN p.has_row THEN 'an authorize_exposure event' ELSE 'a budget_hold row' END,
         'none', 9
  FROM hold_pairs p
  WHERE NOT (p.has_row AND p.has_events) AND NOT (p.has_row AND p.has_checkpoint)
  UNION ALL
  -- a hold whose events were retired is closed and has nothing left
  SELECT format('hold %L', p.hold_id), 'hold.retired',
         'closed with remaining_exposure=0',
         format('disposition=%s, remaining_exposure=%s', p.disposition, p.remaining_exposure), 15
  FROM hold_pairs p
  WHERE p.has_row AND NOT p.has_events AND p.has_checkpoint
    AND (p.disposition = 'open' OR p.remaining_exposure <> 0)
  UNION ALL
  SELECT format('budget (%L, %s)', r.capability_id, r.grant_index), 'checkpoint.retired_holds',
         format('%s holds, realized_spend=%s', r.retired_holds, r.retired_hold_realized),
         format('%s holds, realized_spend=%s', r.holds, r.realized), 16
  FROM retired r
  WHERE (r.holds, r.realized) IS DISTINCT FROM (r.retired_holds, r.retired_hold_realized)
  UNION ALL
  SELECT format('hold %L', p.hold_id), 'hold.authorized',
         format('one authorization of %s', p.f_authorized),
         format('%s authorizations, authorized_exposure=%s', p.authorizations, p.authorized_exposure), 10
  FROM hold_pairs p
  WHERE p.has_row AND p.has_events
    AND (p.authorizations <> 1 OR p.authorized_exposure::numeric <> p.f_authorized)
  UNION ALL
  SELECT format('hold %L', p.hold_id), 'hold.remaining_exposure',
         p.f_remaining::text, p.remaining_exposure::text, 11
  FROM hold_pairs p
  WHERE p.has_row AND p.has_events AND p.remaining_exposure::numeric <> p.f_remaining
  UNION ALL
  SELECT format('hold %L', p.hold_id), 'hold.realized_spend',
         p.f_realized::text, p.realized_spend::text, 12
  FROM hold_pairs p
  WHERE p.has_row AND p.has_events AND p.realized_spend::numeric <> p.f_realized
  UNION ALL
  SELECT format('hold %L', p.hold_id), 'hold.disposition', p.f_disposition, p.disposition, 13
  FROM hold_pairs p
  WHERE p.has_row AND p.has_events AND p.disposition IS DISTINCT FROM p.f_disposition
  UNION ALL
  SELECT format('hold %L', p.hold_id), 'hold.non_negative',
         '0 <= remaining_exposure <= authorized_exposure, realized_spend >= 0',
         format('authorized_exposure=%s, remaining_exposure=%s, realized_spend=%s',
                p.authorized_exposure, p.remaining_exposure, p.realized_spend), 14
  FROM hold_pairs p
  WHERE p.has_row AND (p.remaining_exposure < 0 OR p.remaining_exposure > p.authorized_exposure
                       OR p.realized_spend < 0)
  UNION ALL
  SELECT format('reservation %L', r.hold_id), 'reservation.hold', 'a budget_hold row', 'none', 17
  FROM lost_reservations r
  UNION ALL
  SELECT format('scoped reservation %L, scope %L', x.hold_id, x.scope), 'scope_reservation.hold',
         CASE WHEN x.status = 'open' THEN 'a budget_hold row' ELSE 'a closed hold' END,
         coalesce('disposition=' || x.disposition, 'none'), 18
  FROM scope_holds x
  WHERE x.disposition IS NULL OR (x.status <> 'open' AND x.disposition = 'open')
  UNION ALL
  SELECT format('scope %L', x.scope), 'scope_slice.split',
         format('a split on all %s slices or none', x.n), format('%s with one', x.split), 19
  FROM slice_scopes x WHERE x.split NOT IN (0, x.n)
  UNION ALL
  SELECT format('scope %L (%s)', x.scope, x.period), 'scope_slice.split',
         'one limit and period start', format('%s limits, %s period starts', x.n_limits, x.n_starts), 19
  FROM slice_splits x WHERE x.n_limits <> 1 OR x.n_starts <> 1
  UNION ALL
  SELECT format('scope %L (%s)', x.scope, x.period), 'scope_slice.quotas',
         format('quotas adding up to at most %s', x.lim), x.quota_sum::text, 20
  FROM slice_splits x WHERE x.quota_n = x.n AND x.quota_sum > x.lim
)
SELECT p.object, p.check_name, p.expected, p.actual FROM problems p
ORDER BY p.o, p.object;
END
$fn$;
COMMENT ON FUNCTION spendguard.verify(text, integer) IS
  'The auditor: replays the current tenant''s event log (one budget''s when given) and returns one row per invariant that does not hold, none when sound';
