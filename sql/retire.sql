-- spendguard history retirement (issue 11): old events of the budget log
-- are folded into a per-budget checkpoint and deleted, so that the log does
-- not grow without end while verify() stays exact.
--
-- * A checkpoint row records, for one budget, the state after every event
--   with event_seq <= through_seq: the three counters, the exposure
--   authorized or given back without a hold, the budget's last allowed
--   event, and how many holds (with their realized spend) had all their
--   events retired. Rows are cumulative: the newest one of a budget carries
--   everything retired so far. The table is append-only.
-- * verify() folds each budget from its newest checkpoint on.
-- * An event is only ever deleted when a checkpoint of its budget covers it
--   (the append-only trigger of budget_event checks that for every row), and
--   only at a cut that no hold spans: every hold has all of its events at or
--   before the cut, or none, so each hold's remaining events fold alone.
-- * Hold rows stay (one row per hold, not per event): a retired hold is a
--   closed row with remaining_exposure = 0, counted by the checkpoint.
-- * Idempotency keys (event_id) of retired events are forgotten with them:
--   a retry with such a key is a new request. Retire only past the longest
--   time a client may retry (docs/operations.md "Retiring history").

CREATE TABLE spendguard.budget_checkpoint (
  tenant_id             text        NOT NULL,
  capability_id         text        NOT NULL,
  grant_index           integer     NOT NULL,
  -- every event of the budget with event_seq <= through_seq is in this row
  through_seq           bigint      NOT NULL CHECK (through_seq > 0),
  retired_before        timestamptz NOT NULL,
  retired_at            timestamptz NOT NULL DEFAULT now(),
  events                bigint      NOT NULL CHECK (events > 0),
  invocation_count      bigint      NOT NULL CHECK (invocation_count >= 0),
  total_cost_exposed    bigint      NOT NULL CHECK (total_cost_exposed >= 0),
  total_cost_realized   bigint      NOT NULL CHECK (total_cost_realized >= 0),
  -- exposure authorized minus given back by events without a hold (a
  -- budget-level release may give back a hold's exposure: it can be < 0)
  unheld_exposed        numeric     NOT NULL,
  -- event_seq of the budget's last allowed event, 0 when none: usage.seq
  last_allowed_seq      bigint      NOT NULL CHECK (last_allowed_seq >= 0),
  retired_holds         bigint      NOT NULL CHECK (retired_holds >= 0),
  retired_hold_realized numeric     NOT NULL CHECK (retired_hold_realized >= 0),
  -- SPEC §9: the cut in the budget's hash chain (the chain_n and hash of
  -- the last retired event), and the checkpoint's own link, appended at the
  -- chain's head when it was written. NULL in a checkpoint written before
  -- 0.5.0, whose chain starts after it (its events were gone when the
  -- chain came).
  cut_chain_n           bigint      CHECK (cut_chain_n > 0),
  cut_hash              bytea,
  chain_n               bigint,
  prev_hash             bytea,
  hash                  bytea,
  CONSTRAINT budget_checkpoint_link CHECK (
    (cut_chain_n IS NULL) = (cut_hash IS NULL) AND (cut_hash IS NULL) = (chain_n IS NULL)
    AND (chain_n IS NULL) = (prev_hash IS NULL) AND (prev_hash IS NULL) = (hash IS NULL)
    AND chain_n > cut_chain_n),
  -- its budget: a budget_usage row; no foreign key, so that pg_restore -j
  -- can load both at once (sql/bootstrap.sql, budget_hold)
  PRIMARY KEY (tenant_id, capability_id, grant_index, through_seq)
);
COMMENT ON TABLE spendguard.budget_checkpoint IS
  'Append-only: per budget, the fold of its retired events (every event_seq <= through_seq); verify() folds on from the newest';
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_checkpoint', '');

CREATE FUNCTION spendguard.refuse_checkpoint_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  RAISE EXCEPTION 'spendguard.budget_checkpoint is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION spendguard.refuse_checkpoint_change() IS
  'Trigger function that keeps spendguard.budget_checkpoint append-only';
CREATE TRIGGER budget_checkpoint_append_only BEFORE UPDATE OR DELETE ON spendguard.budget_checkpoint
  FOR EACH ROW EXECUTE FUNCTION spendguard.refuse_checkpoint_change();
CREATE TRIGGER budget_checkpoint_no_truncate BEFORE TRUNCATE ON spendguard.budget_checkpoint
  FOR EACH STATEMENT EXECUTE FUNCTION spendguard.refuse_checkpoint_change();

CREATE TYPE spendguard.retirement AS (
  capability_id  text,
  grant_index    integer,
  retired_events bigint,
  kept_events    bigint,
  through_seq    bigint
);
COMMENT ON TYPE spendguard.retirement IS
  'Result row of spendguard.budget_retire_events: per budget, events retired now, older events kept (a hold spans the cut), and the cut';

-- Retire the current tenant's events recorded before `before` (one budget's
-- when given). Per budget, under its row lock (every call that writes a
-- budget's events holds that lock, so no event of it is in flight):
--   1. verify() of the budget must be clean (history that does not add up is
--      evidence, not something to fold away): else SG006;
--   2. the cut is the largest event_seq such that every event of the budget
--      up to it was recorded before `before` and no hold spans it (an open
--      hold keeps its own authorization and everything after it);
--   3. a cumulative checkpoint row is written and the events up to the cut
--      are deleted, in the same transaction. The checkpoint is a link of
--      the budget's hash chain (SPEC §9): it carries the cut (chain_n and
--      hash of the last retired event) and is appended at the chain's
--      head, so the kept links still verify from the cut and a later
--      change to the checkpoint breaks the chain like a changed event.
-- Returns one row per budget that has events recorded before `before` that
-- were not retired earlier: how many were retired now, how many of them had
-- to be kept (a hold spans the cut), and the cut.
CREATE FUNCTION spendguard.budget_retire_events(
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
COMMENT ON FUNCTION spendguard.budget_retire_events(timestamptz, text, integer) IS
  'Fold the current tenant''s events recorded before a time into per-budget checkpoints and delete them, cutting only where no hold spans; verify() stays exact. Not granted to PUBLIC';

-- The checkpoints of the current tenant (one budget's when given), oldest first.
CREATE FUNCTION spendguard.budget_checkpoints(capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
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
COMMENT ON FUNCTION spendguard.budget_checkpoints(text, integer) IS
  'Checkpoints of retired history of the current tenant (one budget''s when given), oldest first';
