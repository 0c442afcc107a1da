-- spendguard 0.5.0 -> 0.6.0 (every statement copied from the 0.6.0 install
-- SQL, so an updated schema equals a fresh 0.6.0 install:
-- tests/upgrade/run.sh compares schema, catalog and extconfig).
--
-- Scale-out on Citus (issue 20, SPEC §10): citus_distribute(),
-- citus_tables() and citus_is_coordinator(); the readers, the alert claims
-- and verify() take the tenant once and pass it to their query as a value
-- (a call in the query would run on the workers, which do not have the
-- caller's tenant), and verify() hashes checkpoint links from their
-- columns (a whole-row argument names the shard's row type on a worker).
-- Maintenance that never stalls a decision (issue 21):
-- budget_expire_holds_all and budget_retire_events_all, procedures that
-- commit per batch of holds or per budget, and retire_candidates.
--
-- No table changes: the update replaces functions only, so it takes no
-- lock a call waits for, and the 0.6.0 library serves a 0.5.0 database
-- the same (docs/operations.md "Upgrading").
\echo Use "ALTER EXTENSION spendguard UPDATE TO '0.6.0'" to load this file. \quit

-- sql/finalize.sql
CREATE OR REPLACE FUNCTION spendguard.budget_usage(capability_id text, grant_index integer)
RETURNS SETOF spendguard.budget_usage
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $1);
  PERFORM spendguard.check_grant_index($2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant
      AND u.capability_id = $1 AND u.grant_index = $2;
END
$$;

-- sql/finalize.sql
CREATE OR REPLACE FUNCTION spendguard.budget_usages(lim integer DEFAULT 100, capability_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_usage
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant
      AND ($2 IS NULL OR u.capability_id = $2)
    ORDER BY u.updated_at DESC, u.capability_id, u.grant_index
    LIMIT $1;
END
$$;

-- sql/finalize.sql
CREATE OR REPLACE FUNCTION spendguard.budget_holds(
  lim integer DEFAULT 100, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL,
  disposition text DEFAULT NULL, hold_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_hold
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_grant_index($3);
  PERFORM spendguard.check_id('hold_id', $5);
  PERFORM spendguard.check_enum('disposition', $4, 'hold_disposition');
  RETURN QUERY
    SELECT * FROM spendguard.budget_hold h
    WHERE h.tenant_id = sg_tenant
      AND ($2 IS NULL OR h.capability_id = $2)
      AND ($3 IS NULL OR h.grant_index = $3)
      AND ($4 IS NULL OR h.disposition = $4)
      AND ($5 IS NULL OR h.hold_id = $5)
    ORDER BY h.created_at DESC, h.hold_id
    LIMIT $1;
END
$$;

-- sql/finalize.sql
CREATE OR REPLACE FUNCTION spendguard.budget_events(
  lim integer DEFAULT 100, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS SETOF spendguard.budget_event
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_grant_index($3);
  RETURN QUERY
    SELECT * FROM (
      SELECT * FROM spendguard.budget_event e
      WHERE e.tenant_id = sg_tenant
        AND ($2 IS NULL OR e.capability_id = $2)
        AND ($3 IS NULL OR e.grant_index = $3)
      ORDER BY e.event_seq DESC
      LIMIT $1
    ) latest
    ORDER BY latest.event_seq;
END
$$;

-- sql/finalize.sql
CREATE OR REPLACE FUNCTION spendguard.proposal_get(id uuid)
RETURNS SETOF spendguard.tool_call
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  RETURN QUERY
    SELECT * FROM spendguard.tool_call t
    WHERE t.tenant_id = sg_tenant AND t.id = $1;
END
$$;

-- sql/finalize.sql
CREATE OR REPLACE FUNCTION spendguard.tool_calls(
  lim integer DEFAULT 100, principal_kind text DEFAULT NULL, principal_id text DEFAULT NULL,
  tool_name text DEFAULT NULL, status text DEFAULT NULL, conversation_id text DEFAULT NULL)
RETURNS SETOF spendguard.tool_call
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('principal_id', $3);
  PERFORM spendguard.check_id('tool_name', $4);
  PERFORM spendguard.check_id('conversation_id', $6);
  PERFORM spendguard.check_enum('principal_kind', $2, 'principal_kind');
  PERFORM spendguard.check_enum('status', $5, 'tool_call_status');
  RETURN QUERY
    SELECT * FROM spendguard.tool_call t
    WHERE t.tenant_id = sg_tenant
      AND ($2 IS NULL OR t.principal_kind = $2)
      AND ($3 IS NULL OR t.principal_id = $3)
      AND ($4 IS NULL OR t.tool_name = $4)
      AND ($5 IS NULL OR t.status = $5)
      AND ($6 IS NULL OR t.conversation_id = $6)
    ORDER BY t.created_at DESC, t.id
    LIMIT $1;
END
$$;

-- sql/alert.sql
CREATE OR REPLACE FUNCTION spendguard.alert_claim(consumer text, max_rows integer DEFAULT 100,
                                       lease interval DEFAULT '1 minute')
RETURNS SETOF spendguard.alert
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_claim(consumer, max_rows, lease);
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  RETURN QUERY
    UPDATE spendguard.alert a SET claimed_by = consumer, claimed_until = now() + lease
    FROM (SELECT x.tenant_id, x.id FROM spendguard.alert x
          WHERE x.tenant_id = sg_tenant AND x.delivered_at IS NULL
            AND (x.claimed_until IS NULL OR x.claimed_until <= now())
          ORDER BY x.id LIMIT max_rows
          FOR UPDATE SKIP LOCKED) c
    WHERE a.tenant_id = c.tenant_id AND a.id = c.id
    RETURNING a.*;
END
$$;

-- sql/alert.sql
CREATE OR REPLACE FUNCTION spendguard.alert_ack(ids bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  sg_tenant text; n bigint;
BEGIN
  IF ids IS NULL THEN
    RAISE EXCEPTION 'ids must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  UPDATE spendguard.alert a SET delivered_at = now()
  WHERE a.tenant_id = sg_tenant AND a.id = ANY (ids) AND a.delivered_at IS NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- sql/alert.sql
CREATE OR REPLACE FUNCTION spendguard.alerts(since timestamptz DEFAULT NULL, scope text DEFAULT NULL)
RETURNS SETOF spendguard.alert
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('scope', $2);
  RETURN QUERY
    SELECT * FROM spendguard.alert a
    WHERE a.tenant_id = sg_tenant
      AND ($1 IS NULL OR a.created_at >= $1)
      AND ($2 IS NULL OR a.scope = $2)
    ORDER BY a.id;
END
$$;

-- sql/chain.sql
CREATE OR REPLACE FUNCTION spendguard.chain_heads()
RETURNS TABLE (capability_id text, grant_index integer, chain_n bigint, hash text,
               recorded_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  RETURN QUERY
    SELECT u.capability_id, u.grant_index, u.chain_n, encode(u.chain_hash, 'hex'),
      coalesce(
        (SELECT e.recorded_at FROM spendguard.budget_event e
         WHERE e.tenant_id = u.tenant_id AND e.capability_id = u.capability_id
           AND e.grant_index = u.grant_index AND e.chain_n = u.chain_n
         ORDER BY e.event_seq DESC LIMIT 1),
        (SELECT k.retired_at FROM spendguard.budget_checkpoint k
         WHERE k.tenant_id = u.tenant_id AND k.capability_id = u.capability_id
           AND k.grant_index = u.grant_index AND k.chain_n = u.chain_n
         LIMIT 1))
    FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant AND u.chain_n > 0
    ORDER BY u.capability_id COLLATE "C", u.grant_index;
END
$$;

-- sql/retire.sql
CREATE OR REPLACE FUNCTION spendguard.budget_checkpoints(capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS SETOF spendguard.budget_checkpoint
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $1);
  PERFORM spendguard.check_grant_index($2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_checkpoint k
    WHERE k.tenant_id = sg_tenant
      AND ($1 IS NULL OR k.capability_id = $1)
      AND ($2 IS NULL OR k.grant_index = $2)
    ORDER BY k.capability_id, k.grant_index, k.through_seq;
END
$$;

-- sql/verify.sql
CREATE OR REPLACE FUNCTION spendguard.verify(capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
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
)
SELECT p.object, p.check_name, p.expected, p.actual FROM problems p
ORDER BY p.o, p.object;
END
$fn$;

-- sql/retire.sql
CREATE OR REPLACE FUNCTION spendguard.budget_retire_events(
  before timestamptz, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS SETOF spendguard.retirement
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
  t text;
  r spendguard.retirement;
  b record;
  prev spendguard.budget_checkpoint;
  prev_seq bigint;
  c0 bigint;
  cut bigint;
  f record;
  folded bigint;
  n bigint;
  head_n bigint;
  head_hash bytea;
  link spendguard.budget_checkpoint;
BEGIN
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_grant_index($3);
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'before must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF $1 > now() THEN
    RAISE EXCEPTION 'before (%) is in the future: only recorded history can be retired', $1
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  -- Each statement below must see what committed before it took its lock:
  -- a snapshot from the start of the transaction could miss an event.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'budget_retire_events runs in READ COMMITTED only (this transaction is %)',
      current_setting('transaction_isolation')
      USING ERRCODE = 'invalid_transaction_state';
  END IF;
  t := spendguard.current_tenant();
  -- on Citus, before the first locking read (sql/citus.sql)
  PERFORM spendguard.citus_pin_tenant(t);

  FOR b IN
    SELECT DISTINCT e.capability_id, e.grant_index
    FROM spendguard.budget_event e
    WHERE e.tenant_id = t AND e.recorded_at < $1
      AND ($2 IS NULL OR e.capability_id = $2)
      AND ($3 IS NULL OR e.grant_index = $3)
    ORDER BY 1, 2
  LOOP
    SELECT u.chain_n, u.chain_hash INTO head_n, head_hash FROM spendguard.budget_usage u
    WHERE u.tenant_id = t AND u.capability_id = b.capability_id AND u.grant_index = b.grant_index
    FOR UPDATE;

    IF EXISTS (SELECT 1 FROM spendguard.verify(b.capability_id, b.grant_index)) THEN
      RAISE EXCEPTION 'budget (%, %) does not verify: its history is not retired', b.capability_id, b.grant_index
        USING ERRCODE = 'SG006', HINT = 'SELECT * FROM spendguard.verify(capability_id, grant_index) says what is wrong';
    END IF;

    prev := NULL;
    SELECT * INTO prev FROM spendguard.budget_checkpoint k
    WHERE k.tenant_id = t AND k.capability_id = b.capability_id AND k.grant_index = b.grant_index
    ORDER BY k.through_seq DESC LIMIT 1;
    prev_seq := coalesce(prev.through_seq, 0);

    -- the longest prefix of the budget's remaining history recorded before $1
    SELECT coalesce(
      (SELECT min(e.event_seq) - 1 FROM spendguard.budget_event e
       WHERE e.tenant_id = t AND e.capability_id = b.capability_id AND e.grant_index = b.grant_index
         AND e.event_seq > prev_seq AND e.recorded_at >= $1),
      (SELECT max(e.event_seq) FROM spendguard.budget_event e
       WHERE e.tenant_id = t AND e.capability_id = b.capability_id AND e.grant_index = b.grant_index
         AND e.event_seq > prev_seq),
      prev_seq) INTO c0;

    -- each hold's span [first, last) of its allowed events; an open hold
    -- spans to the end. The cut is c0 or just before some hold's first event,
    -- whichever is largest and inside no span.
    WITH spans AS (
      SELECT min(e.event_seq) AS first_seq,
             CASE WHEN min(h.disposition) = 'open' THEN 9223372036854775807
                  ELSE max(e.event_seq) END AS last_seq
      FROM spendguard.budget_event e
      JOIN spendguard.budget_hold h ON h.tenant_id = e.tenant_id AND h.hold_id = e.hold_id
      WHERE e.tenant_id = t AND e.capability_id = b.capability_id AND e.grant_index = b.grant_index
        AND e.event_seq > prev_seq AND e.allowed AND e.hold_id IS NOT NULL
      GROUP BY e.hold_id
    ),
    candidates AS (
      SELECT c0 AS c UNION ALL SELECT s.first_seq - 1 FROM spans s WHERE s.first_seq <= c0
    )
    SELECT max(x.c) INTO cut FROM candidates x
    WHERE x.c > prev_seq
      AND NOT EXISTS (SELECT 1 FROM spans s WHERE s.first_seq <= x.c AND x.c < s.last_seq);

    folded := 0;
    IF cut IS NOT NULL THEN
      -- the fold of the events being retired (the same deltas as verify())
      WITH ev AS (
        SELECT e.*,
          CASE WHEN NOT e.allowed THEN 0
               WHEN e.kind IN ('authorize_exposure', 'increment_invocation') THEN 1
               WHEN e.kind = 'reverse_exposure' THEN -1
               ELSE 0 END AS d_count,
          CASE WHEN NOT e.allowed OR e.kind = 'increment_invocation' THEN 0
               WHEN e.kind = 'authorize_exposure' THEN e.exposure_units::numeric
               ELSE -(e.exposure_units::numeric) END AS d_exposed,
          CASE WHEN e.allowed AND e.kind = 'reconcile_spend' THEN e.realized_spend_units
               ELSE 0 END::numeric AS d_realized
        FROM spendguard.budget_event e
        WHERE e.tenant_id = t AND e.capability_id = b.capability_id AND e.grant_index = b.grant_index
          AND e.event_seq > prev_seq AND e.event_seq <= cut
      ),
      retired_holds AS (
        SELECT h.realized_spend FROM spendguard.budget_hold h
        WHERE h.tenant_id = t
          AND h.hold_id IN (SELECT ev.hold_id FROM ev WHERE ev.allowed AND ev.hold_id IS NOT NULL)
      )
      SELECT count(*) AS events, max(ev.event_seq) AS max_seq,
             sum(ev.d_count) AS d_count, sum(ev.d_exposed) AS d_exposed,
             sum(ev.d_realized) AS d_realized,
             coalesce(sum(ev.d_exposed) FILTER (WHERE ev.hold_id IS NULL), 0) AS d_unheld,
             max(ev.event_seq) FILTER (WHERE ev.allowed) AS last_allowed,
             (SELECT count(*) FROM retired_holds) AS holds,
             (SELECT coalesce(sum(rh.realized_spend), 0) FROM retired_holds rh) AS hold_realized
      INTO f FROM ev;
      folded := f.events;
      -- the checkpoint names the last event it covers (the same cut: no
      -- event of the budget lies between the two, and none can come)
      cut := f.max_seq;
    END IF;

    -- (a cut before the budget's first remaining event retires nothing)
    IF folded > 0 THEN
      link := NULL;
      link.tenant_id := t;
      link.capability_id := b.capability_id;
      link.grant_index := b.grant_index;
      link.through_seq := cut;
      link.retired_before := $1;
      link.retired_at := now();
      link.events := coalesce(prev.events, 0) + f.events;
      link.invocation_count := coalesce(prev.invocation_count, 0) + f.d_count;
      link.total_cost_exposed := coalesce(prev.total_cost_exposed, 0) + f.d_exposed;
      link.total_cost_realized := coalesce(prev.total_cost_realized, 0) + f.d_realized;
      link.unheld_exposed := coalesce(prev.unheld_exposed, 0) + f.d_unheld;
      link.last_allowed_seq := coalesce(f.last_allowed, prev.last_allowed_seq, 0);
      link.retired_holds := coalesce(prev.retired_holds, 0) + f.holds;
      link.retired_hold_realized := coalesce(prev.retired_hold_realized, 0) + f.hold_realized;
      -- the cut in the chain, and the checkpoint's own link at the head
      SELECT e.chain_n, e.hash INTO link.cut_chain_n, link.cut_hash FROM spendguard.budget_event e
      WHERE e.tenant_id = t AND e.event_seq = cut;
      link.chain_n := head_n + 1;
      link.prev_hash := head_hash;
      link.hash := spendguard.checkpoint_hash(link);
      INSERT INTO spendguard.budget_checkpoint SELECT (link).*;
      UPDATE spendguard.budget_usage u SET chain_n = link.chain_n, chain_hash = link.hash
      WHERE u.tenant_id = t AND u.capability_id = b.capability_id AND u.grant_index = b.grant_index;

      DELETE FROM spendguard.budget_event e
      WHERE e.tenant_id = t AND e.capability_id = b.capability_id AND e.grant_index = b.grant_index
        AND e.event_seq > prev_seq AND e.event_seq <= cut;
      GET DIAGNOSTICS n = ROW_COUNT;
      IF n <> f.events THEN   -- cannot happen under the budget's lock; never half-retire
        RAISE EXCEPTION 'budget (%, %): folded % events but deleted %', b.capability_id, b.grant_index, f.events, n
          USING ERRCODE = 'internal_error';
      END IF;
    ELSE
      n := 0;
      cut := NULL;
    END IF;

    r.capability_id := b.capability_id;
    r.grant_index := b.grant_index;
    r.retired_events := n;
    r.through_seq := coalesce(cut, prev_seq);
    SELECT count(*) INTO r.kept_events FROM spendguard.budget_event e
    WHERE e.tenant_id = t AND e.capability_id = b.capability_id AND e.grant_index = b.grant_index
      AND e.event_seq > coalesce(cut, prev_seq) AND e.recorded_at < $1;
    RETURN NEXT r;
  END LOOP;
END
$fn$;

-- The current tenant's budgets that have events recorded before `before`
-- after their newest checkpoint: what budget_retire_events_all works
-- through, one budget per transaction. Per budget, the per-budget event
-- index from its newest checkpoint on, up to the first event before
-- `before`: the retired log and other budgets' history are not read.
CREATE FUNCTION spendguard.retire_candidates(before timestamptz)
RETURNS TABLE (capability_id text, grant_index integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'before must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  RETURN QUERY
    SELECT u.capability_id, u.grant_index
    FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant
      AND EXISTS (
        SELECT 1 FROM spendguard.budget_event e
        WHERE e.tenant_id = u.tenant_id AND e.capability_id = u.capability_id
          AND e.grant_index = u.grant_index AND e.recorded_at < $1
          AND e.event_seq > coalesce(
            (SELECT max(k.through_seq) FROM spendguard.budget_checkpoint k
             WHERE k.tenant_id = u.tenant_id AND k.capability_id = u.capability_id
               AND k.grant_index = u.grant_index), 0))
    ORDER BY u.capability_id COLLATE "C", u.grant_index;
END
$$;

-- budget_expire_holds in batches of `batch` holds (1..10000, else
-- 22023), committing after each, until a batch expires none (what is
-- left is due later, or belongs to budgets busy right now: the next sweep
-- gets them). `now` is fixed at the first batch. Returns how many holds
-- it expired.
CREATE PROCEDURE spendguard.budget_expire_holds_all(
  INOUT expired bigint DEFAULT NULL, now timestamptz DEFAULT NULL, batch integer DEFAULT 100)
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := coalesce(now, pg_catalog.now());
  n bigint;
BEGIN
  IF batch IS NULL OR batch < 1 OR batch > 10000 THEN
    RAISE EXCEPTION 'batch must be between 1 and 10000, got %', coalesce(batch::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  expired := 0;
  LOOP
    n := spendguard.budget_expire_holds(at, batch);
    expired := expired + n;
    COMMIT;
    EXIT WHEN n = 0;
  END LOOP;
END
$$;

-- budget_retire_events for each of the current tenant's budgets with
-- history recorded before `before`, one budget per transaction. Returns
-- how many events it retired.
CREATE PROCEDURE spendguard.budget_retire_events_all(
  before timestamptz, INOUT retired bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
  caps text[];
  grants integer[];
  i integer;
  n bigint;
BEGIN
  SELECT pg_catalog.array_agg(c.capability_id), pg_catalog.array_agg(c.grant_index)
    INTO caps, grants
  FROM spendguard.retire_candidates(before) c;
  COMMIT;
  retired := 0;
  FOR i IN 1 .. coalesce(pg_catalog.array_length(caps, 1), 0) LOOP
    SELECT coalesce(pg_catalog.sum(r.retired_events), 0) INTO n
    FROM spendguard.budget_retire_events(before, caps[i], grants[i]) r;
    retired := retired + n;
    COMMIT;
  END LOOP;
END
$$;

-- The extension's tables, the budgets first (the colocation anchor).
CREATE FUNCTION spendguard.citus_tables() RETURNS SETOF regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
BEGIN
  RETURN QUERY
  SELECT c.oid::regclass
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'spendguard'
  WHERE c.relkind IN ('r', 'p')
  ORDER BY c.oid <> 'spendguard.budget_usage'::regclass, c.relname;
END
$$;

-- Run once, on the Citus coordinator, after CREATE EXTENSION spendguard
-- (by a superuser or the extension owner). Distributes every table by
-- tenant_id, colocated; tables already distributed are left as they are,
-- so it can run again (after an update that adds a table). Returns one row
-- per table and what it did.
CREATE FUNCTION spendguard.citus_distribute()
RETURNS TABLE (table_name regclass, action text)
LANGUAGE plpgsql SET search_path = pg_catalog SET client_min_messages = warning AS $$
DECLARE
  t regclass;
  had_rows boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'citus_distribute needs Citus: the citus extension is not installed in database %',
      current_database()
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'CREATE EXTENSION citus (with citus in shared_preload_libraries) on the coordinator and every worker first';
  END IF;
  IF NOT spendguard.citus_is_coordinator() THEN
    RAISE EXCEPTION 'citus_distribute runs on the Citus coordinator, and this node is a worker'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- The append-only triggers of budget_event, budget_checkpoint and price
  -- (row triggers on the shards, each reading only colocated shards).
  SET LOCAL citus.enable_unsafe_triggers = on;
  FOR t IN SELECT * FROM spendguard.citus_tables() LOOP
    table_name := t;
    IF EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = t) THEN
      action := 'already distributed';
    ELSE
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', t) INTO had_rows;
      PERFORM create_distributed_table(t, 'tenant_id',
        colocate_with => CASE WHEN t = 'spendguard.budget_usage'::regclass THEN 'default'
                              ELSE 'spendguard.budget_usage' END);
      IF had_rows THEN
        -- the rows were copied into the shards; the local copy is dead weight
        PERFORM truncate_local_data_after_distributing_table(t);
      END IF;
      action := 'distributed';
    END IF;
    RETURN NEXT;
  END LOOP;
  -- The event log's trigger reads the checkpoints from inside a shard
  -- query: the checkpoint shard is colocated (same node, same transaction),
  -- so the nested read is local.
  ALTER FUNCTION spendguard.refuse_event_change() SET citus.allow_nested_distributed_execution = on;
END
$$;

-- Whether this node is the Citus coordinator (false without Citus).
CREATE FUNCTION spendguard.citus_is_coordinator() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
  r boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT citus_is_coordinator()' INTO r;
  RETURN r;
END
$$;

-- The tenant's shard group pinned for the rest of the transaction (nothing
-- without Citus): the share lock on its shards' metadata that a Citus
-- write takes and a shard move waits for. A function whose first statement
-- is a locking read calls it first, so that it cannot read a row on the
-- placement a move is leaving and write on the new one (the Rust
-- functions do the same, src/spi.rs).
CREATE FUNCTION spendguard.citus_pin_tenant(tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
  distributed boolean;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('tenant', tenant);
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RETURN;
  END IF;
  EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_dist_partition
                          WHERE logicalrelid = ''spendguard.budget_usage''::regclass)'
    INTO distributed;
  IF distributed THEN
    EXECUTE 'SELECT lock_shard_metadata(5, ARRAY[get_shard_id_for_distribution_column(
               ''spendguard.budget_usage'', $1)])' USING tenant;
  END IF;
END
$$;

-- sql/finalize.sql: security (CREATE OR REPLACE resets SECURITY DEFINER and the settings)
ALTER FUNCTION spendguard.budget_usage(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_usages(integer, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_holds(integer, text, integer, text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_events(integer, text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.proposal_get(uuid) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.tool_calls(integer, text, text, text, text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_claim(text, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_ack(bigint[]) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alerts(timestamptz, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.chain_heads() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_checkpoints(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.verify(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_retire_events(timestamptz, text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.retire_candidates(timestamptz) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.citus_tables() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.citus_distribute() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.citus_is_coordinator() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.citus_pin_tenant(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION spendguard.citus_distribute() FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.citus_pin_tenant(text) FROM PUBLIC;
REVOKE ALL ON PROCEDURE spendguard.budget_retire_events_all(timestamptz, bigint) FROM PUBLIC;
COMMENT ON FUNCTION spendguard.citus_distribute() IS
  'On a Citus coordinator: distributes every spendguard table by tenant_id, colocated with budget_usage (SPEC §10, docs/scale-out.md); tables already distributed are left. 55000 without Citus or on a worker';
COMMENT ON FUNCTION spendguard.citus_tables() IS
  'The tables citus_distribute() distributes: every table of the extension, budget_usage (the colocation anchor) first';
COMMENT ON FUNCTION spendguard.citus_is_coordinator() IS
  'Whether this node is the Citus coordinator; false without Citus';
COMMENT ON FUNCTION spendguard.citus_pin_tenant(text) IS
  'On Citus, pins the tenant''s shard group for the transaction (the share lock a shard move waits for); nothing without Citus';
COMMENT ON FUNCTION spendguard.retire_candidates(timestamptz) IS
  'The current tenant''s budgets with events recorded before the time and after their newest checkpoint: what budget_retire_events_all retires, one budget per transaction';
COMMENT ON PROCEDURE spendguard.budget_expire_holds_all(bigint, timestamptz, integer) IS
  'budget_expire_holds in batches, committing after each: a decision waits for one batch at most. CALL at top level; returns how many holds expired';
COMMENT ON PROCEDURE spendguard.budget_retire_events_all(timestamptz, bigint) IS
  'budget_retire_events budget by budget, committing after each: a decision waits for one budget''s retirement at most. CALL at top level; returns how many events were retired. Not executable by PUBLIC';
