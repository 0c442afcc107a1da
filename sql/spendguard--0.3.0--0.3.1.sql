-- spendguard 0.3.0 -> 0.3.1 (hand-written from the 0.3.1 install SQL; every
-- copied statement is the install's own, so an updated schema equals a fresh
-- 0.3.1 install: tests/upgrade/run.sh compares schema, catalog and extconfig).
--
-- 1. Backups (issue 15): every table and sequence is registered for pg_dump
--    (until now pg_dump left out every row of spendguard's tables: take a
--    new dump after this update), and the three foreign keys between
--    spendguard's tables go (pg_restore -j loads tables in parallel without
--    ordering an extension's tables by their keys); verify() checks what
--    they checked (reservation.hold is new).
-- 2. Hardening (issue 16): readers check lim and the tenant first; a
--    negative grant_index is 22023 everywhere; monitor_spend_by_group sums
--    in numeric; indexes that held several ids of up to 1,024 bytes hold
--    their digest (spendguard.id_key); every enumeration is one domain.
--
-- The library of 0.3.1 keeps serving a 0.3.0 database until this runs
-- (docs/operations.md "Upgrading"). Rows are not changed; usage_event,
-- call_event, budget_hold, spend_budget, spend_reservation and tool_call are
-- rewritten (new column types and a generated column): on large tables run
-- it off peak.
\echo Use "ALTER EXTENSION spendguard UPDATE TO '0.3.1'" to load this file. \quit

-- 1. pg_dump keeps every row
SELECT pg_catalog.pg_extension_config_dump('spendguard.commit_seq', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_usage', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_hold', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_event', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.daily_spend', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.spend_budget', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.spend_user_override', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.spend_reservation', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.usage_event', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.call_event', '');
SELECT pg_catalog.pg_extension_config_dump('spendguard.tool_call', '');
-- without the sentinel row CREATE EXTENSION makes (sql/proposal.sql)
SELECT pg_catalog.pg_extension_config_dump('spendguard.proposal_secret', 'WHERE tenant_id <> ''''');
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_checkpoint', '');

ALTER TABLE spendguard.budget_hold DROP CONSTRAINT budget_hold_tenant_id_capability_id_grant_index_fkey;
ALTER TABLE spendguard.spend_reservation DROP CONSTRAINT spend_reservation_tenant_id_hold_id_fkey;
ALTER TABLE spendguard.budget_checkpoint DROP CONSTRAINT budget_checkpoint_tenant_id_capability_id_grant_index_fkey;

-- 2. new functions (C ones as the install declares them)
CREATE FUNCTION spendguard.id_key(a text, b text) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'id_key2_wrapper';
CREATE FUNCTION spendguard.id_key(a text, b text, c text) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'id_key3_wrapper';
CREATE FUNCTION spendguard.check_enum(arg_name text, value text, domain text) RETURNS void
IMMUTABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', 'check_enum_wrapper';
CREATE FUNCTION spendguard.check_reader(lim integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
BEGIN
  IF lim < 0 THEN
    RAISE EXCEPTION 'lim must be >= 0, got %', lim USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM spendguard.current_tenant();
END
$$;
CREATE FUNCTION spendguard.check_grant_index(grant_index integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
BEGIN
  IF grant_index < 0 THEN
    RAISE EXCEPTION 'grant_index must be >= 0, got %', grant_index
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END
$$;
COMMENT ON FUNCTION spendguard.id_key(text, text) IS
  'SHA-256 of the length-prefixed ids: what indexes hold instead of several ids of up to 1,024 bytes';
COMMENT ON FUNCTION spendguard.id_key(text, text, text) IS
  'SHA-256 of the length-prefixed ids: what indexes hold instead of several ids of up to 1,024 bytes';
COMMENT ON FUNCTION spendguard.check_enum IS
  'Raises 22023, with the message of the Rust functions, unless value is a label of the domain (spendguard_core::enums); NULL passes';
COMMENT ON FUNCTION spendguard.check_reader IS
  'What every reader checks first: lim >= 0 (22023) and the current tenant (22023, SG030, 42704), whatever it then reads';
COMMENT ON FUNCTION spendguard.check_grant_index IS
  'Raises 22023 for a negative grant_index; used by the readers';

-- every enumeration is one domain (sql/bootstrap.sql)
CREATE DOMAIN spendguard.hold_disposition AS text
  CHECK (VALUE IN ('open', 'released', 'reversed', 'reconciled', 'expired'));
COMMENT ON DOMAIN spendguard.hold_disposition IS 'Where a hold stands (budget_hold.disposition)';
CREATE DOMAIN spendguard.budget_period AS text CHECK (VALUE IN ('day', 'week', 'month'));
COMMENT ON DOMAIN spendguard.budget_period IS 'A UTC calendar period of a spend budget (weeks start on Monday)';
CREATE DOMAIN spendguard.reservation_status AS text CHECK (VALUE IN ('open', 'settled', 'cancelled'));
COMMENT ON DOMAIN spendguard.reservation_status IS 'Where a reservation stands (spend_reservation.status)';
CREATE DOMAIN spendguard.principal_kind AS text CHECK (VALUE IN ('user', 'application'));
COMMENT ON DOMAIN spendguard.principal_kind IS 'Who acts: a user or an application (caps, tool calls, who applied or rejected)';
CREATE DOMAIN spendguard.transport AS text CHECK (VALUE IN ('chat', 'mcp', 'automation'));
COMMENT ON DOMAIN spendguard.transport IS 'How a tool call reached the agent';
CREATE DOMAIN spendguard.tool_effect AS text CHECK (VALUE IN ('read', 'mutate', 'destructive'));
COMMENT ON DOMAIN spendguard.tool_effect IS 'What a tool call does';
CREATE DOMAIN spendguard.tool_call_status AS text
  CHECK (VALUE IN ('executed', 'failed', 'proposed', 'applied', 'rejected', 'expired'));
COMMENT ON DOMAIN spendguard.tool_call_status IS 'Where a tool call stands (tool_call.status)';

-- The monitoring views read the columns whose types change (and
-- monitor_spend_by_group's spend_micros becomes numeric): they are made
-- again, with the grants an admin gave on them (docs/operations.md
-- "Monitoring").
CREATE TEMPORARY TABLE spendguard_view_grants (stmt text);
INSERT INTO spendguard_view_grants
  SELECT format('GRANT %s ON %s TO %s%s', a.privilege_type, c.oid::regclass, a.grantee::regrole,
                CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
  FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
  WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind = 'v'
    AND a.grantee <> c.relowner AND a.grantee <> 0;
DROP VIEW spendguard.monitor_open_holds;
DROP VIEW spendguard.monitor_expired_unswept;
DROP VIEW spendguard.monitor_denials_last_hour;
DROP VIEW spendguard.monitor_spend_by_group;
DROP VIEW spendguard.monitor_pending_proposals;

-- ids of 1,024 bytes: indexes of several ids hold their digest (sql/spend.sql,
-- sql/usage.sql, sql/bootstrap.sql)
ALTER TABLE spendguard.daily_spend DROP CONSTRAINT daily_spend_pkey;
CREATE UNIQUE INDEX daily_spend_key
  ON spendguard.daily_spend (tenant_id, spendguard.id_key(user_id, group_id), day);
ALTER TABLE spendguard.daily_spend REPLICA IDENTITY FULL;
ALTER TABLE spendguard.spend_user_override DROP CONSTRAINT spend_user_override_pkey;
CREATE UNIQUE INDEX spend_user_override_key
  ON spendguard.spend_user_override (tenant_id, spendguard.id_key(user_id, group_id));
ALTER TABLE spendguard.spend_user_override REPLICA IDENTITY FULL;
DROP INDEX spendguard.usage_event_window;
ALTER TABLE spendguard.usage_event
  DROP CONSTRAINT usage_event_principal_kind_check,
  ALTER COLUMN principal_kind TYPE spendguard.principal_kind,
  ADD COLUMN window_key bytea NOT NULL GENERATED ALWAYS AS (spendguard.id_key(integration_id, principal_kind, principal_id)) STORED;
CREATE INDEX usage_event_window
  ON spendguard.usage_event (tenant_id, window_key, at)
  INCLUDE (input_tokens, output_tokens);
DROP INDEX spendguard.call_event_window;
ALTER TABLE spendguard.call_event
  DROP CONSTRAINT call_event_principal_kind_check,
  ALTER COLUMN principal_kind TYPE spendguard.principal_kind,
  ADD COLUMN window_key bytea NOT NULL GENERATED ALWAYS AS (spendguard.id_key(principal_kind, principal_id, tool_name)) STORED;
CREATE INDEX call_event_window ON spendguard.call_event (tenant_id, window_key, at);
DROP INDEX spendguard.budget_hold_budget_expiry;
CREATE INDEX budget_hold_budget_expiry
  ON spendguard.budget_hold (tenant_id, capability_id, grant_index, expires_at)
  WHERE disposition = 'open' AND expires_at IS NOT NULL;

-- the other columns of an enumeration take its domain (each one's CHECK goes)
ALTER TABLE spendguard.budget_hold
  DROP CONSTRAINT budget_hold_disposition_check,
  ALTER COLUMN disposition DROP DEFAULT,
  ALTER COLUMN disposition TYPE spendguard.hold_disposition,
  ALTER COLUMN disposition SET DEFAULT 'open';
ALTER TABLE spendguard.spend_budget
  DROP CONSTRAINT spend_budget_period_check,
  ALTER COLUMN period TYPE spendguard.budget_period;
ALTER TABLE spendguard.spend_reservation
  DROP CONSTRAINT spend_reservation_status_check,
  ALTER COLUMN status DROP DEFAULT,
  ALTER COLUMN status TYPE spendguard.reservation_status,
  ALTER COLUMN status SET DEFAULT 'open';
ALTER TABLE spendguard.tool_call
  DROP CONSTRAINT tool_call_principal_kind_check,
  DROP CONSTRAINT tool_call_transport_check,
  DROP CONSTRAINT tool_call_effect_check,
  DROP CONSTRAINT tool_call_status_check,
  DROP CONSTRAINT tool_call_applied_by_kind_check,
  DROP CONSTRAINT tool_call_rejected_by_kind_check,
  ALTER COLUMN principal_kind TYPE spendguard.principal_kind,
  ALTER COLUMN transport TYPE spendguard.transport,
  ALTER COLUMN effect TYPE spendguard.tool_effect,
  ALTER COLUMN status TYPE spendguard.tool_call_status,
  ALTER COLUMN applied_by_kind TYPE spendguard.principal_kind,
  ALTER COLUMN rejected_by_kind TYPE spendguard.principal_kind;

-- the monitoring views again (sql/monitoring.sql)
CREATE VIEW spendguard.monitor_open_holds AS
  SELECT h.tenant_id, h.capability_id, h.grant_index,
         -- sums are numeric: a monitoring view never fails (holds left open
         -- by budget-level calls can add up past bigint)
         count(*) AS open_holds, sum(h.remaining_exposure) AS open_exposure,
         min(h.created_at) AS oldest_created_at,
         count(*) FILTER (WHERE h.expires_at IS NULL) AS without_ttl
  FROM spendguard.budget_hold h
  WHERE h.disposition = 'open'
  GROUP BY h.tenant_id, h.capability_id, h.grant_index;
COMMENT ON VIEW spendguard.monitor_open_holds IS
  'Open holds per budget, all tenants: how many, their exposure, the oldest, how many have no TTL';
CREATE VIEW spendguard.monitor_expired_unswept AS
  SELECT h.tenant_id, count(*) AS holds, sum(h.remaining_exposure) AS exposure,
         min(h.expires_at) AS oldest_expires_at
  FROM spendguard.budget_hold h
  WHERE h.disposition = 'open' AND h.expires_at <= now()
  GROUP BY h.tenant_id;
COMMENT ON VIEW spendguard.monitor_expired_unswept IS
  'Holds past expires_at that no sweep has expired yet, per tenant (a growing number means no sweep runs)';
CREATE VIEW spendguard.monitor_denials_last_hour AS
  SELECT e.tenant_id, e.capability_id, e.denial_reason, count(*) AS denials,
         max(e.recorded_at) AS last_denied_at
  FROM spendguard.budget_event e
  WHERE NOT e.allowed AND e.recorded_at > now() - interval '1 hour'
  GROUP BY e.tenant_id, e.capability_id, e.denial_reason;
COMMENT ON VIEW spendguard.monitor_denials_last_hour IS
  'Denied authorizations and reservations of the last hour from the budget log, per budget and reason';
CREATE VIEW spendguard.monitor_spend_by_group AS
  SELECT d.tenant_id, d.group_id, coalesce(b.period, 'day') AS period, p.start AS period_start,
         -- numeric: a monitoring view never fails, and a group's users
         -- together can pass bigint
         sum(d.spend_micros) AS spend_micros, count(DISTINCT d.user_id) AS users,
         b.limit_micros AS limit_per_user
  FROM spendguard.daily_spend d
  LEFT JOIN spendguard.spend_budget b ON b.tenant_id = d.tenant_id AND b.group_id = d.group_id
  CROSS JOIN LATERAL (
    SELECT CASE coalesce(b.period, 'day')
             WHEN 'day' THEN (now() AT TIME ZONE 'UTC')::date
             WHEN 'week' THEN date_trunc('week', now() AT TIME ZONE 'UTC')::date
             ELSE date_trunc('month', now() AT TIME ZONE 'UTC')::date END AS start) p
  WHERE d.day >= p.start
  GROUP BY d.tenant_id, d.group_id, b.period, p.start, b.limit_micros;
COMMENT ON VIEW spendguard.monitor_spend_by_group IS
  'Spend per group in its current UTC period (the group budget''s, else today), all tenants';
CREATE VIEW spendguard.monitor_pending_proposals AS
  SELECT t.tenant_id, t.tool_name, t.effect, count(*) AS pending, min(t.proposed_at) AS oldest_proposed_at,
         min(t.expires_at) AS next_expiry
  FROM spendguard.tool_call t
  WHERE t.status = 'proposed' AND t.expires_at > now()
  GROUP BY t.tenant_id, t.tool_name, t.effect;
COMMENT ON VIEW spendguard.monitor_pending_proposals IS
  'Proposals waiting for approval (proposed, not expired) per tool and effect, all tenants';
REVOKE ALL ON spendguard.monitor_open_holds, spendguard.monitor_expired_unswept,
  spendguard.monitor_denials_last_hour, spendguard.monitor_spend_by_group,
  spendguard.monitor_pending_proposals FROM PUBLIC;
DO $$
DECLARE g text;
BEGIN
  FOR g IN SELECT stmt FROM spendguard_view_grants LOOP
    EXECUTE g;
  END LOOP;
END
$$;
DROP TABLE spendguard_view_grants;

-- 3. the readers, verify() and retirement as 0.3.1 has them
CREATE OR REPLACE FUNCTION spendguard.budget_usage(capability_id text, grant_index integer)
RETURNS SETOF spendguard.budget_usage
LANGUAGE sql STABLE AS $$
  SELECT spendguard.check_reader();
  SELECT spendguard.check_id('capability_id', $1);
  SELECT spendguard.check_grant_index($2);
  SELECT * FROM spendguard.budget_usage u
  WHERE u.tenant_id = spendguard.current_tenant()
    AND u.capability_id = $1 AND u.grant_index = $2
$$;
CREATE OR REPLACE FUNCTION spendguard.budget_usages(lim integer DEFAULT 100, capability_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_usage
LANGUAGE sql STABLE AS $$
  SELECT spendguard.check_reader($1);
  SELECT spendguard.check_id('capability_id', $2);
  SELECT * FROM spendguard.budget_usage u
  WHERE u.tenant_id = spendguard.current_tenant()
    AND ($2 IS NULL OR u.capability_id = $2)
  ORDER BY u.updated_at DESC, u.capability_id, u.grant_index
  LIMIT $1
$$;
CREATE OR REPLACE FUNCTION spendguard.budget_holds(
  lim integer DEFAULT 100, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL,
  disposition text DEFAULT NULL, hold_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_hold
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader($1);
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_grant_index($3);
  PERFORM spendguard.check_id('hold_id', $5);
  PERFORM spendguard.check_enum('disposition', $4, 'hold_disposition');
  RETURN QUERY
    SELECT * FROM spendguard.budget_hold h
    WHERE h.tenant_id = spendguard.current_tenant()
      AND ($2 IS NULL OR h.capability_id = $2)
      AND ($3 IS NULL OR h.grant_index = $3)
      AND ($4 IS NULL OR h.disposition = $4)
      AND ($5 IS NULL OR h.hold_id = $5)
    ORDER BY h.created_at DESC, h.hold_id
    LIMIT $1;
END
$$;
CREATE OR REPLACE FUNCTION spendguard.budget_events(
  lim integer DEFAULT 100, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS SETOF spendguard.budget_event
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader($1);
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_grant_index($3);
  RETURN QUERY
    SELECT * FROM (
      SELECT * FROM spendguard.budget_event e
      WHERE e.tenant_id = spendguard.current_tenant()
        AND ($2 IS NULL OR e.capability_id = $2)
        AND ($3 IS NULL OR e.grant_index = $3)
      ORDER BY e.event_seq DESC
      LIMIT $1
    ) latest
    ORDER BY latest.event_seq;
END
$$;
CREATE OR REPLACE FUNCTION spendguard.proposal_get(id uuid)
RETURNS SETOF spendguard.tool_call
LANGUAGE sql STABLE AS $$
  SELECT spendguard.check_reader();
  SELECT * FROM spendguard.tool_call t
  WHERE t.tenant_id = spendguard.current_tenant() AND t.id = $1
$$;
CREATE OR REPLACE FUNCTION spendguard.tool_calls(
  lim integer DEFAULT 100, principal_kind text DEFAULT NULL, principal_id text DEFAULT NULL,
  tool_name text DEFAULT NULL, status text DEFAULT NULL, conversation_id text DEFAULT NULL)
RETURNS SETOF spendguard.tool_call
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader($1);
  PERFORM spendguard.check_id('principal_id', $3);
  PERFORM spendguard.check_id('tool_name', $4);
  PERFORM spendguard.check_id('conversation_id', $6);
  PERFORM spendguard.check_enum('principal_kind', $2, 'principal_kind');
  PERFORM spendguard.check_enum('status', $5, 'tool_call_status');
  RETURN QUERY
    SELECT * FROM spendguard.tool_call t
    WHERE t.tenant_id = spendguard.current_tenant()
      AND ($2 IS NULL OR t.principal_kind = $2)
      AND ($3 IS NULL OR t.principal_id = $3)
      AND ($4 IS NULL OR t.tool_name = $4)
      AND ($5 IS NULL OR t.status = $5)
      AND ($6 IS NULL OR t.conversation_id = $6)
    ORDER BY t.created_at DESC, t.id
    LIMIT $1;
END
$$;
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
    PERFORM 1 FROM spendguard.budget_usage u
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
      INSERT INTO spendguard.budget_checkpoint (tenant_id, capability_id, grant_index, through_seq,
        retired_before, events, invocation_count, total_cost_exposed, total_cost_realized,
        unheld_exposed, last_allowed_seq, retired_holds, retired_hold_realized)
      VALUES (t, b.capability_id, b.grant_index, cut, $1,
        coalesce(prev.events, 0) + f.events,
        coalesce(prev.invocation_count, 0) + f.d_count,
        coalesce(prev.total_cost_exposed, 0) + f.d_exposed,
        coalesce(prev.total_cost_realized, 0) + f.d_realized,
        coalesce(prev.unheld_exposed, 0) + f.d_unheld,
        coalesce(f.last_allowed, prev.last_allowed_seq, 0),
        coalesce(prev.retired_holds, 0) + f.holds,
        coalesce(prev.retired_hold_realized, 0) + f.hold_realized);

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
CREATE OR REPLACE FUNCTION spendguard.budget_checkpoints(capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS SETOF spendguard.budget_checkpoint
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader();
  PERFORM spendguard.check_id('capability_id', $1);
  PERFORM spendguard.check_grant_index($2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_checkpoint k
    WHERE k.tenant_id = spendguard.current_tenant()
      AND ($1 IS NULL OR k.capability_id = $1)
      AND ($2 IS NULL OR k.grant_index = $2)
    ORDER BY k.capability_id, k.grant_index, k.through_seq;
END
$$;
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
)
SELECT p.object, p.check_name, p.expected, p.actual FROM problems p
ORDER BY p.o, p.object;
END
$fn$;

-- (CREATE OR REPLACE resets a function's SECURITY DEFINER and SET clauses;
-- sql/finalize.sql gives them to every function that is not IMMUTABLE)
ALTER FUNCTION spendguard.check_reader(integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_usage(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_usages(integer, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_holds(integer, text, integer, text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_events(integer, text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.proposal_get(uuid) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.tool_calls(integer, text, text, text, text, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_retire_events(timestamptz, text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.budget_checkpoints(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.verify(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
