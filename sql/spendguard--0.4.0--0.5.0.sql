-- spendguard 0.4.0 -> 0.5.0 (written from the 0.5.0 install SQL; every
-- copied statement is the install's own, so an updated schema equals a fresh
-- 0.5.0 install: tests/upgrade/run.sh compares schema, catalog and extconfig).
--
-- The hash chain of the event log (issue 19, SPEC §9): budget_event gains
-- chain_n, prev_hash and hash, budget_usage the chain head (chain_n,
-- chain_hash), budget_checkpoint its link (cut_chain_n, cut_hash, chain_n,
-- prev_hash, hash); the functions event_link, checkpoint_link,
-- chain_genesis, event_hash, checkpoint_hash, chain_heads, chain_root and
-- verify_anchor; verify() walks the chain and budget_retire_events appends
-- checkpoint links.
-- Keys (issue 20, SPEC §10): usage_event, call_event, tool_call,
-- proposal_secret and alert get primary keys that start with tenant_id;
-- the readers budget_usage, budget_usages and proposal_get are PL/pgSQL.
--
-- Every event already in the log is chained here, once, budget by budget
-- in event_seq order, as the writer would have chained it: an updated
-- database verifies like a fresh one. This rewrites each event row once
-- (VACUUM budget_event afterwards) and holds budget_event's lock for the
-- update's transaction: calls wait for it (docs/operations.md
-- "Upgrading"). A checkpoint written before 0.5.0 stays without a link:
-- its events were retired before the chain came, so the chain of its
-- budget starts after it.
\echo Use "ALTER EXTENSION spendguard UPDATE TO '0.5.0'" to load this file. \quit

-- Every table this update changes, locked at once before anything is
-- done. Calls lock them in more than one order, so the update may still
-- wait for a call, or deadlock with one: run it with a lock_timeout below
-- deadlock_timeout and try again (docs/operations.md "Upgrading"), so that
-- it is the one that gives way, not a call.
-- (scope_budget and scope_reservation are changed by the update to 0.7.0:
-- an update from 0.4.0 to 0.7.0 runs this script first, and takes every
-- lock it will need here, in one statement.)
LOCK TABLE spendguard.budget_event, spendguard.budget_usage, spendguard.budget_checkpoint,
  spendguard.usage_event, spendguard.call_event, spendguard.tool_call,
  spendguard.proposal_secret, spendguard.alert,
  spendguard.scope_budget, spendguard.scope_reservation IN ACCESS EXCLUSIVE MODE;

-- sql/bootstrap.sql: the link columns
ALTER TABLE spendguard.budget_usage
  ADD COLUMN chain_n bigint NOT NULL DEFAULT 0 CHECK (chain_n >= 0),
  ADD COLUMN chain_hash bytea,
  ADD CONSTRAINT budget_usage_chain_head CHECK ((chain_n = 0) = (chain_hash IS NULL));
ALTER TABLE spendguard.budget_event
  ADD COLUMN chain_n bigint,
  ADD COLUMN prev_hash bytea,
  ADD COLUMN hash bytea;
-- sql/retire.sql: the checkpoint's link
ALTER TABLE spendguard.budget_checkpoint
  ADD COLUMN cut_chain_n bigint CHECK (cut_chain_n > 0),
  ADD COLUMN cut_hash bytea,
  ADD COLUMN chain_n bigint,
  ADD COLUMN prev_hash bytea,
  ADD COLUMN hash bytea,
  ADD CONSTRAINT budget_checkpoint_link CHECK (
    (cut_chain_n IS NULL) = (cut_hash IS NULL) AND (cut_hash IS NULL) = (chain_n IS NULL)
    AND (chain_n IS NULL) = (prev_hash IS NULL) AND (prev_hash IS NULL) = (hash IS NULL)
    AND chain_n > cut_chain_n);

-- SPEC §10: every primary key starts with tenant_id (the five whose key
-- was the id alone). Each is rebuilt, which takes the table's lock for the
-- time it takes to build the index.
ALTER TABLE spendguard.usage_event DROP CONSTRAINT usage_event_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE spendguard.call_event DROP CONSTRAINT call_event_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE spendguard.tool_call DROP CONSTRAINT tool_call_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE spendguard.proposal_secret DROP CONSTRAINT proposal_secret_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE spendguard.alert DROP CONSTRAINT alert_pkey, ADD PRIMARY KEY (tenant_id, id);

CREATE  FUNCTION "event_link"(
	"prev_hash" bytea, /* Option < & [u8] > */
	"tenant_id" TEXT, /* Option < & str > */
	"event_seq" bigint, /* Option < i64 > */
	"event_id" TEXT, /* Option < & str > */
	"request_fingerprint" TEXT, /* Option < & str > */
	"hold_id" TEXT, /* Option < & str > */
	"capability_id" TEXT, /* Option < & str > */
	"grant_index" INT, /* Option < i32 > */
	"kind" TEXT, /* Option < & str > */
	"allowed" bool, /* Option < bool > */
	"denial_reason" TEXT, /* Option < & str > */
	"recorded_at" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"exposure_units" bigint, /* Option < i64 > */
	"realized_spend_units" bigint, /* Option < i64 > */
	"max_invocations" bigint, /* Option < i64 > */
	"max_cost_per_invocation" bigint, /* Option < i64 > */
	"max_total_cost" bigint, /* Option < i64 > */
	"invocation_count_after" bigint, /* Option < i64 > */
	"total_cost_exposed_after" bigint, /* Option < i64 > */
	"total_cost_realized_after" bigint, /* Option < i64 > */
	"authority_id" TEXT, /* Option < & str > */
	"lease_id" TEXT, /* Option < & str > */
	"lease_epoch" bigint, /* Option < i64 > */
	"guarantee_level" TEXT, /* Option < & str > */
	"chain_n" bigint /* Option < i64 > */
) RETURNS bytea /* :: std :: option :: Option < Vec < u8 > > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'event_link_wrapper';

CREATE  FUNCTION "checkpoint_link"(
	"prev_hash" bytea, /* Option < & [u8] > */
	"tenant_id" TEXT, /* Option < & str > */
	"capability_id" TEXT, /* Option < & str > */
	"grant_index" INT, /* Option < i32 > */
	"through_seq" bigint, /* Option < i64 > */
	"retired_before" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"retired_at" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"events" bigint, /* Option < i64 > */
	"invocation_count" bigint, /* Option < i64 > */
	"total_cost_exposed" bigint, /* Option < i64 > */
	"total_cost_realized" bigint, /* Option < i64 > */
	"unheld_exposed" TEXT, /* Option < & str > */
	"last_allowed_seq" bigint, /* Option < i64 > */
	"retired_holds" bigint, /* Option < i64 > */
	"retired_hold_realized" TEXT, /* Option < & str > */
	"cut_chain_n" bigint, /* Option < i64 > */
	"cut_hash" bytea, /* Option < & [u8] > */
	"chain_n" bigint /* Option < i64 > */
) RETURNS bytea /* :: std :: option :: Option < Vec < u8 > > */
IMMUTABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'checkpoint_link_wrapper';

CREATE  FUNCTION "chain_genesis"(
	"tenant_id" TEXT, /* & str */
	"capability_id" TEXT, /* & str */
	"grant_index" INT /* i32 */
) RETURNS bytea /* Vec < u8 > */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'chain_genesis_wrapper';

CREATE  FUNCTION "chain_root"() RETURNS TABLE (
	"budgets" bigint,  /* i64 */
	"root" TEXT  /* String */
)
STRICT STABLE PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'chain_root_wrapper';

-- sql/chain.sql
-- spendguard: the hash chain of the event log (SPEC §9).
--
-- Every budget's events form a chain: each event carries chain_n (1, 2, 3
-- … per budget), prev_hash (the previous link's hash; the first one's is
-- chain_genesis of the budget's key) and hash, SHA-256 over a versioned,
-- length-prefixed encoding of prev_hash and every column of the event as
-- stored (spendguard_core::chain, docs/integrity.md). The writer appends
-- links under the budget's row lock and keeps the head on the budget row
-- (budget_usage.chain_n, chain_hash). History retirement appends a
-- checkpoint link (sql/retire.sql). verify() recomputes every kept link.

-- The hash of a stored event (the link function over its columns).
CREATE FUNCTION spendguard.event_hash(e spendguard.budget_event) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT spendguard.event_link(e.prev_hash, e.tenant_id, e.event_seq, e.event_id,
    e.request_fingerprint, e.hold_id, e.capability_id, e.grant_index, e.kind::text, e.allowed,
    e.denial_reason, e.recorded_at, e.exposure_units, e.realized_spend_units, e.max_invocations,
    e.max_cost_per_invocation, e.max_total_cost, e.invocation_count_after,
    e.total_cost_exposed_after, e.total_cost_realized_after, e.authority_id, e.lease_id,
    e.lease_epoch, e.guarantee_level, e.chain_n)
$$;

-- The hash of a stored checkpoint link.
CREATE FUNCTION spendguard.checkpoint_hash(k spendguard.budget_checkpoint) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT spendguard.checkpoint_link(k.prev_hash, k.tenant_id, k.capability_id, k.grant_index,
    k.through_seq, k.retired_before, k.retired_at, k.events, k.invocation_count,
    k.total_cost_exposed, k.total_cost_realized, k.unheld_exposed::text, k.last_allowed_seq,
    k.retired_holds, k.retired_hold_realized::text, k.cut_chain_n, k.cut_hash, k.chain_n)
$$;

-- Anchoring: the head of each of the current tenant's chains, in key order
-- (budgets without a link yet are not listed). recorded_at: when the head
-- link was written (the event's recorded_at, a checkpoint's retired_at).
CREATE FUNCTION spendguard.chain_heads()
RETURNS TABLE (capability_id text, grant_index integer, chain_n bigint, hash text,
               recorded_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader();
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
    WHERE u.tenant_id = spendguard.current_tenant() AND u.chain_n > 0
    ORDER BY u.capability_id COLLATE "C", u.grant_index;
END
$$;

-- Whether the link (capability_id, grant_index, chain_n) of the current
-- tenant still has the hash an anchor recorded: 'ok', 'mismatch' (another
-- hash, or no such link: a deleted tail, an unknown budget), or 'retired'
-- (behind the budget's newest retirement cut: the checkpoint carries the
-- cut's chain_n and hash to compare with instead).
CREATE FUNCTION spendguard.verify_anchor(
  capability_id text, grant_index integer, chain_n bigint, hash text)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t text;
  want bytea;
  cut bigint;
  found bytea;
BEGIN
  PERFORM spendguard.check_reader();
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL OR $4 IS NULL THEN
    RAISE EXCEPTION 'verify_anchor needs capability_id, grant_index, chain_n and hash (a NULL was given)'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('capability_id', $1);
  PERFORM spendguard.check_grant_index($2);
  IF $3 < 1 THEN
    RAISE EXCEPTION 'chain_n must be >= 1, got %', $3 USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF $4 !~ '^[0-9A-Fa-f]{64}$' THEN
    RAISE EXCEPTION 'hash must be 64 hexadecimal digits (a SHA-256), got % characters', length($4)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  want := decode($4, 'hex');
  t := spendguard.current_tenant();

  SELECT k.cut_chain_n INTO cut FROM spendguard.budget_checkpoint k
  WHERE k.tenant_id = t AND k.capability_id = $1 AND k.grant_index = $2
  ORDER BY k.through_seq DESC LIMIT 1;
  IF $3 <= coalesce(cut, 0) THEN
    RETURN 'retired';
  END IF;

  SELECT e.hash INTO found FROM spendguard.budget_event e
  WHERE e.tenant_id = t AND e.capability_id = $1 AND e.grant_index = $2 AND e.chain_n = $3
  ORDER BY e.event_seq LIMIT 1;
  IF found IS NULL THEN
    SELECT k.hash INTO found FROM spendguard.budget_checkpoint k
    WHERE k.tenant_id = t AND k.capability_id = $1 AND k.grant_index = $2 AND k.chain_n = $3
    ORDER BY k.through_seq LIMIT 1;
  END IF;
  RETURN CASE WHEN found = want THEN 'ok' ELSE 'mismatch' END;
END
$$;

-- Chain the events already in the log: per budget in event_seq order, from
-- the budget's genesis (a budget with a pre-0.5.0 checkpoint too: its
-- chain starts after it), exactly as the writer links a new event.
ALTER TABLE spendguard.budget_event DISABLE TRIGGER budget_event_append_only;
DO $chain$
DECLARE
  e spendguard.budget_event;
  prev bytea;
  n bigint := 0;
  t text;
  c text;
  g integer;
BEGIN
  FOR e IN SELECT * FROM spendguard.budget_event x
           ORDER BY x.tenant_id, x.capability_id, x.grant_index, x.event_seq LOOP
    IF t IS DISTINCT FROM e.tenant_id OR c IS DISTINCT FROM e.capability_id
       OR g IS DISTINCT FROM e.grant_index THEN
      t := e.tenant_id;
      c := e.capability_id;
      g := e.grant_index;
      n := 0;
      prev := spendguard.chain_genesis(t, c, g);
    END IF;
    n := n + 1;
    e.chain_n := n;
    e.prev_hash := prev;
    e.hash := spendguard.event_hash(e);
    UPDATE spendguard.budget_event x SET chain_n = e.chain_n, prev_hash = e.prev_hash, hash = e.hash
    WHERE x.tenant_id = e.tenant_id AND x.event_seq = e.event_seq;
    prev := e.hash;
  END LOOP;
END
$chain$;
ALTER TABLE spendguard.budget_event ENABLE TRIGGER budget_event_append_only;
UPDATE spendguard.budget_usage u SET chain_n = l.chain_n, chain_hash = l.hash
FROM (SELECT DISTINCT ON (e.tenant_id, e.capability_id, e.grant_index)
        e.tenant_id, e.capability_id, e.grant_index, e.chain_n, e.hash
      FROM spendguard.budget_event e
      ORDER BY e.tenant_id, e.capability_id, e.grant_index, e.event_seq DESC) l
WHERE u.tenant_id = l.tenant_id AND u.capability_id = l.capability_id
  AND u.grant_index = l.grant_index;
ALTER TABLE spendguard.budget_event
  ALTER COLUMN chain_n SET NOT NULL,
  ALTER COLUMN prev_hash SET NOT NULL,
  ALTER COLUMN hash SET NOT NULL;

-- sql/alert.sql: the claim joins by the whole key
CREATE OR REPLACE FUNCTION spendguard.alert_claim(consumer text, max_rows integer DEFAULT 100,
                                       lease interval DEFAULT '1 minute')
RETURNS SETOF spendguard.alert
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM spendguard.check_claim(consumer, max_rows, lease);
  PERFORM spendguard.check_reader();
  RETURN QUERY
    UPDATE spendguard.alert a SET claimed_by = consumer, claimed_until = now() + lease
    FROM (SELECT x.tenant_id, x.id FROM spendguard.alert x
          WHERE x.tenant_id = spendguard.current_tenant() AND x.delivered_at IS NULL
            AND (x.claimed_until IS NULL OR x.claimed_until <= now())
          ORDER BY x.id LIMIT max_rows
          FOR UPDATE SKIP LOCKED) c
    WHERE a.tenant_id = c.tenant_id AND a.id = c.id
    RETURNING a.*;
END
$$;

-- sql/alert.sql: the claim joins by the whole key
CREATE OR REPLACE FUNCTION spendguard.alert_claim_all(consumer text, max_rows integer DEFAULT 100,
                                           lease interval DEFAULT '1 minute')
RETURNS SETOF spendguard.alert
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM spendguard.check_claim(consumer, max_rows, lease);
  RETURN QUERY
    UPDATE spendguard.alert a SET claimed_by = consumer, claimed_until = now() + lease
    FROM (SELECT x.tenant_id, x.id FROM spendguard.alert x
          WHERE x.delivered_at IS NULL AND (x.claimed_until IS NULL OR x.claimed_until <= now())
          ORDER BY x.id LIMIT max_rows
          FOR UPDATE SKIP LOCKED) c
    WHERE a.tenant_id = c.tenant_id AND a.id = c.id
    RETURNING a.*;
END
$$;

-- sql/finalize.sql: the SQL-language readers in PL/pgSQL (SPEC §10)
CREATE OR REPLACE FUNCTION spendguard.budget_usage(capability_id text, grant_index integer)
RETURNS SETOF spendguard.budget_usage
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader();
  PERFORM spendguard.check_id('capability_id', $1);
  PERFORM spendguard.check_grant_index($2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_usage u
    WHERE u.tenant_id = spendguard.current_tenant()
      AND u.capability_id = $1 AND u.grant_index = $2;
END
$$;

-- sql/finalize.sql: the SQL-language readers in PL/pgSQL (SPEC §10)
CREATE OR REPLACE FUNCTION spendguard.budget_usages(lim integer DEFAULT 100, capability_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_usage
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader($1);
  PERFORM spendguard.check_id('capability_id', $2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_usage u
    WHERE u.tenant_id = spendguard.current_tenant()
      AND ($2 IS NULL OR u.capability_id = $2)
    ORDER BY u.updated_at DESC, u.capability_id, u.grant_index
    LIMIT $1;
END
$$;

-- sql/finalize.sql: the SQL-language readers in PL/pgSQL (SPEC §10)
CREATE OR REPLACE FUNCTION spendguard.proposal_get(id uuid)
RETURNS SETOF spendguard.tool_call
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader();
  RETURN QUERY
    SELECT * FROM spendguard.tool_call t
    WHERE t.tenant_id = spendguard.current_tenant() AND t.id = $1;
END
$$;

-- sql/verify.sql: verify() walks the chain
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
CREATE OR REPLACE FUNCTION spendguard.verify(capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS TABLE (object text, check_name text, expected text, actual text)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
PERFORM spendguard.check_reader();
PERFORM spendguard.check_id('capability_id', $1);
PERFORM spendguard.check_grant_index($2);
RETURN QUERY
WITH
tenant AS (SELECT spendguard.current_tenant() AS id),
-- each budget's newest checkpoint: where its fold starts
ckpt AS (
  SELECT DISTINCT ON (k.capability_id, k.grant_index) k.*
  FROM spendguard.budget_checkpoint k, tenant t
  WHERE k.tenant_id = t.id
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
  JOIN tenant t ON e.tenant_id = t.id
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
    spendguard.checkpoint_hash(k), format('checkpoint through event %s', k.through_seq), 1,
    k.through_seq
  FROM spendguard.budget_checkpoint k
  JOIN tenant t ON k.tenant_id = t.id
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
         THEN coalesce(c.cut_hash, spendguard.chain_genesis(t.id, l.capability_id, l.grant_index))
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
  WHERE u.tenant_id = t.id
    AND ($1 IS NULL OR u.capability_id = $1)
    AND ($2 IS NULL OR u.grant_index = $2)
),
holds AS (
  SELECT h.* FROM spendguard.budget_hold h, tenant t
  WHERE h.tenant_id = t.id
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
  WHERE $1 IS NULL AND $2 IS NULL AND r.tenant_id = t.id
    AND NOT EXISTS (SELECT 1 FROM spendguard.budget_hold h
                    WHERE h.tenant_id = r.tenant_id AND h.hold_id = r.hold_id)
),
-- scoped reservations (SPEC §6): one §1 hold per scope named, its id
-- spendguard_core::scope::hold_key; missing, or still open once the
-- reservation was settled or cancelled. Whole tenant only, as above.
scope_holds AS (
  SELECT r.hold_id, r.status, s.scope, h.disposition
  FROM spendguard.scope_reservation r
  JOIN tenant t ON r.tenant_id = t.id
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
COMMENT ON FUNCTION spendguard.verify(text, integer) IS
  'The auditor: replays the current tenant''s event log (one budget''s when given) and returns one row per invariant that does not hold, none when sound';

-- sql/retire.sql: retirement appends a checkpoint link
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

-- sql/finalize.sql, for the new objects (CREATE OR REPLACE resets a
-- function's SECURITY DEFINER and SET clauses, so verify() and
-- budget_retire_events get them again)
ALTER FUNCTION spendguard.chain_root() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.chain_heads() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.verify_anchor(text, integer, bigint, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.event_hash(spendguard.budget_event) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.checkpoint_hash(spendguard.budget_checkpoint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.verify(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_retire_events(timestamptz, text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_claim(text, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_claim_all(text, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_usage(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_usages(integer, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.proposal_get(uuid) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION spendguard.event_link IS
  'The hash of an event link from its stored columns (prev_hash first): SHA-256 over the versioned, length-prefixed encoding of docs/integrity.md; NULL for a malformed link';
COMMENT ON FUNCTION spendguard.checkpoint_link IS
  'The hash of a checkpoint link from its stored columns (prev_hash first; numerics as text), as event_link';
COMMENT ON FUNCTION spendguard.chain_genesis IS
  'The prev_hash of a budget''s first link, derived from its key';
COMMENT ON FUNCTION spendguard.event_hash(spendguard.budget_event) IS
  'event_link over a stored budget_event row';
COMMENT ON FUNCTION spendguard.checkpoint_hash(spendguard.budget_checkpoint) IS
  'checkpoint_link over a stored budget_checkpoint row';
COMMENT ON FUNCTION spendguard.chain_heads() IS
  'The head (last link) of each hash chain of the current tenant, in key order: what an anchor records';
COMMENT ON FUNCTION spendguard.chain_root() IS
  'SHA-256 over all chain heads of the current tenant in key order, and how many: a daily anchor to store outside the database';
COMMENT ON FUNCTION spendguard.verify_anchor(text, integer, bigint, text) IS
  'Whether a link an anchor recorded still has its hash: ok, mismatch, or retired (behind a retirement cut)';
