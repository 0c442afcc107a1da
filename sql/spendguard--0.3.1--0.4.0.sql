-- spendguard 0.3.1 -> 0.4.0 (written from the 0.4.0 install SQL; every
-- copied statement is the install's own, so an updated schema equals a fresh
-- 0.4.0 install: tests/upgrade/run.sh compares schema, catalog and extconfig).
--
-- Scoped budgets (issue 17, SPEC §6): the scope_period domain, the tables
-- scope_budget, scope_reservation and scope_request, the scope_decision
-- type, the functions scope_set_budget, scope_reserve, scope_settle,
-- scope_cancel, scope_charge, scope_record, scope_usage and scope_spend,
-- and verify() checks scoped reservations' holds (scope_reservation.hold).
-- Prices (issue 18, SPEC §8): the price table (never changed in place) and
-- its id sequence, price_set, price_cost, scope_reserve_tokens and
-- scope_settle_tokens. Alerts (issue 18, SPEC §7): the alert table, its id
-- sequence and the alert_kind domain, alert_claim, alert_ack, their _all
-- forms (not executable by PUBLIC) and the reader alerts. Tenants bound to
-- roles (issue 19, SPEC §5): the tenant_role table, tenant_grant and
-- tenant_revoke (not executable by PUBLIC); the setting
-- spendguard.tenant_auth is the library's.
-- Nothing existing is rewritten: the update only adds.
\echo Use "ALTER EXTENSION spendguard UPDATE TO '0.4.0'" to load this file. \quit

-- sql/scope.sql
-- spendguard scopes: scoped budgets, one decision across every budget that
-- applies (SPEC.md §6). Loaded after bootstrap.sql and before the Rust
-- functions that return these types; RLS and function comments are in
-- finalize.sql.
--
-- A scope's spend and reservations are not kept here: they live on §1
-- budgets, one per scope and UTC day (capability_id 'scope:' || a digest of
-- the scope, grant_index the day; spendguard_core::scope::budget_id).
-- Spend is their realized spend, a reservation one hold on each scope it
-- names, so the event log, hold expiry, budget_expire_holds and verify()
-- are §1's. These tables say what the budgets are, which reservation holds
-- what, and what an event id decided.

CREATE DOMAIN spendguard.scope_period AS text CHECK (VALUE IN ('day', 'week', 'month', 'total'));
COMMENT ON DOMAIN spendguard.scope_period IS
  'The period of a scoped budget: a UTC day, week (from Monday) or month, or total (never resets)';

-- Budgets: at most one per scope and period kind. The scope column sorts
-- by bytes (COLLATE "C"): the order budgets are locked and named in.
CREATE TABLE spendguard.scope_budget (
  tenant_id      text        NOT NULL,
  scope          text        COLLATE "C" NOT NULL CHECK (scope <> ''),
  period         spendguard.scope_period NOT NULL,
  limit_micros   bigint      NOT NULL CHECK (limit_micros >= 0),
  alert_percents integer[]   NOT NULL DEFAULT '{}'
    CHECK (array_position(alert_percents, NULL) IS NULL
           AND 1 <= ALL (alert_percents) AND 1000 >= ALL (alert_percents)),
  slices         integer     NOT NULL DEFAULT 1 CHECK (slices BETWEEN 1 AND 64),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  -- tenant and scope are ids of at most 1,024 bytes each (SPEC §0): an
  -- entry of both still fits a btree page
  PRIMARY KEY (tenant_id, scope, period)
);
COMMENT ON TABLE spendguard.scope_budget IS
  'Scoped budgets: the limit of a scope per UTC day, week, month or in total, with its alert thresholds';
SELECT pg_catalog.pg_extension_config_dump('spendguard.scope_budget', '');

-- Reservations of scope_reserve: the hold of each scope named is a §1 hold
-- (its id spendguard_core::scope::hold_key(hold_id, scope)) on the scope's
-- budget of the UTC day of at; this row says which scopes, when, and how
-- the reservation was closed (once).
CREATE TABLE spendguard.scope_reservation (
  tenant_id       text        NOT NULL,
  hold_id         text        NOT NULL CHECK (hold_id <> ''),
  scopes          text[]      COLLATE "C" NOT NULL CHECK (cardinality(scopes) BETWEEN 1 AND 32),
  at              timestamptz NOT NULL,
  estimate_micros bigint      NOT NULL CHECK (estimate_micros >= 0),
  expires_at      timestamptz NOT NULL,
  status          spendguard.reservation_status NOT NULL DEFAULT 'open',
  cost_micros     bigint      CHECK (cost_micros >= 0),
  created_at      timestamptz NOT NULL DEFAULT now(),
  closed_at       timestamptz,
  -- a reservation of scope_reserve_tokens (SPEC §8): its model and the
  -- price row that priced it, and the tokens it was settled with
  model               text,
  price_id            bigint,
  input_tokens        bigint CHECK (input_tokens >= 0),
  output_tokens       bigint CHECK (output_tokens >= 0),
  cached_input_tokens bigint CHECK (cached_input_tokens >= 0 AND cached_input_tokens <= input_tokens),
  PRIMARY KEY (tenant_id, hold_id),
  CHECK ((model IS NULL) = (price_id IS NULL)),
  CHECK (price_id IS NOT NULL OR input_tokens IS NULL),
  CHECK ((input_tokens IS NULL) = (output_tokens IS NULL)
         AND (input_tokens IS NULL) = (cached_input_tokens IS NULL)),
  CHECK ((status = 'open') = (closed_at IS NULL)),
  CHECK ((status = 'settled') = (cost_micros IS NOT NULL))
);
COMMENT ON TABLE spendguard.scope_reservation IS
  'Reservations of scope_reserve: the scopes they hold room in, their at, estimate and expiry, and how they were closed';
SELECT pg_catalog.pg_extension_config_dump('spendguard.scope_reservation', '');

-- The result of every scoped call made with an event id, returned again by
-- a retry of the same request (SPEC §6 "Idempotent").
CREATE TABLE spendguard.scope_request (
  tenant_id           text        NOT NULL,
  event_id            text        NOT NULL CHECK (event_id <> ''),
  request_fingerprint text        NOT NULL,
  allowed             boolean     NOT NULL,
  blocked_scope       text,
  blocked_period      spendguard.scope_period,
  remaining_micros    bigint,
  hold_id             text,
  expires_at          timestamptz,
  headroom            jsonb       NOT NULL,
  recorded_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, event_id)
);
COMMENT ON TABLE spendguard.scope_request IS
  'What each scoped call with an event id decided: returned again for a retry of the same request';
SELECT pg_catalog.pg_extension_config_dump('spendguard.scope_request', '');

CREATE TYPE spendguard.scope_decision AS (
  allowed          boolean,
  blocked_scope    text,
  blocked_period   text,
  remaining_micros bigint,
  hold_id          text,
  expires_at       timestamptz,
  headroom         jsonb
);
COMMENT ON TYPE spendguard.scope_decision IS
  'Result of spendguard.scope_reserve, scope_settle, scope_charge and scope_record';

-- sql/price.sql
-- spendguard prices: tokens to cost, failing closed (SPEC.md §8). Loaded
-- after bootstrap.sql; RLS and function comments are in finalize.sql.

CREATE SEQUENCE spendguard.price_id AS bigint;
COMMENT ON SEQUENCE spendguard.price_id IS 'Ids of spendguard.price rows';
SELECT pg_catalog.pg_extension_config_dump('spendguard.price_id', '');

-- Prices per million tokens, in micros. A row is never changed: a new row
-- with a later effective_from supersedes it, so every past cost can be
-- recomputed from the row that priced it (scope_reservation.price_id).
CREATE TABLE spendguard.price (
  tenant_id                    text        NOT NULL,
  id                           bigint      NOT NULL DEFAULT nextval('spendguard.price_id'),
  model                        text        NOT NULL CHECK (model <> ''),
  effective_from               timestamptz NOT NULL CHECK (isfinite(effective_from)),
  input_micros_per_mtok        bigint      NOT NULL CHECK (input_micros_per_mtok >= 0),
  output_micros_per_mtok       bigint      NOT NULL CHECK (output_micros_per_mtok >= 0),
  cached_input_micros_per_mtok bigint      CHECK (cached_input_micros_per_mtok >= 0),
  created_at                   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  -- the price in force at a time: the greatest effective_from <= it (a
  -- backward scan of this index); tenant and model are ids of at most
  -- 1,024 bytes, so an entry fits a btree page
  UNIQUE (tenant_id, model, effective_from)
);
ALTER SEQUENCE spendguard.price_id OWNED BY spendguard.price.id;
COMMENT ON TABLE spendguard.price IS
  'Prices per million tokens by model, in micros, from effective_from on; rows are never changed';
SELECT pg_catalog.pg_extension_config_dump('spendguard.price', '');

CREATE FUNCTION spendguard.refuse_price_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  RAISE EXCEPTION 'spendguard.price rows are never changed (% refused): set a new price with a later effective_from', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION spendguard.refuse_price_change() IS
  'Trigger function that keeps spendguard.price rows as they were written';
CREATE TRIGGER price_never_changed BEFORE UPDATE OR DELETE ON spendguard.price
  FOR EACH ROW EXECUTE FUNCTION spendguard.refuse_price_change();
CREATE TRIGGER price_no_truncate BEFORE TRUNCATE ON spendguard.price
  FOR EACH STATEMENT EXECUTE FUNCTION spendguard.refuse_price_change();

-- sql/tenant_auth.sql
-- spendguard tenants bound to roles (SPEC.md §5): with spendguard.tenant_auth
-- = role, a call acts for a tenant only when the current role is a member
-- of a role granted it here (src/tenant.rs checks). The functions are not
-- executable by PUBLIC (finalize.sql); they name their tenant and are not
-- themselves checked.

CREATE TABLE spendguard.tenant_role (
  tenant_id  text        NOT NULL CHECK (tenant_id <> '' AND octet_length(tenant_id) <= 1024),
  -- a role, dumped and restored by its name
  role       regrole     NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, role)
);
COMMENT ON TABLE spendguard.tenant_role IS
  'Roles granted a tenant: with spendguard.tenant_auth = role, only their members act for it';
SELECT pg_catalog.pg_extension_config_dump('spendguard.tenant_role', '');

CREATE FUNCTION spendguard.tenant_grant(role regrole, tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'role and tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('tenant', $2);
  INSERT INTO spendguard.tenant_role (tenant_id, role) VALUES ($2, $1) ON CONFLICT DO NOTHING;
END
$$;

CREATE FUNCTION spendguard.tenant_revoke(role regrole, tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'role and tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('tenant', $2);
  DELETE FROM spendguard.tenant_role r WHERE r.tenant_id = $2 AND r.role = $1;
END
$$;

CREATE  FUNCTION "scope_set_budget"(
	"scope" TEXT, /* Option < String > */
	"period" TEXT, /* Option < String > */
	"limit_micros" bigint, /* Option < i64 > */
	"alert_percents" INT[] DEFAULT '{}', /* :: std :: option :: Option < Vec < Option < i32 > > > */
	"slices" INT DEFAULT 1 /* Option < i32 > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_set_budget_wrapper';

CREATE  FUNCTION "scope_reserve"(
	"scopes" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"estimate_micros" bigint, /* Option < i64 > */
	"hold_id" TEXT, /* Option < String > */
	"at" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"ttl" interval DEFAULT '15 minutes', /* Option < Interval > */
	"event_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS spendguard.scope_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_reserve_wrapper';

CREATE  FUNCTION "scope_settle"(
	"hold_id" TEXT, /* Option < String > */
	"cost_micros" bigint, /* Option < i64 > */
	"event_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS spendguard.scope_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_settle_wrapper';

CREATE  FUNCTION "scope_cancel"(
	"hold_id" TEXT /* Option < String > */
) RETURNS void
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_cancel_wrapper';

CREATE  FUNCTION "scope_charge"(
	"scopes" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"cost_micros" bigint, /* Option < i64 > */
	"at" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"event_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS spendguard.scope_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_charge_wrapper';

CREATE  FUNCTION "scope_record"(
	"scopes" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"cost_micros" bigint, /* Option < i64 > */
	"at" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"event_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS spendguard.scope_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_record_wrapper';

CREATE  FUNCTION "scope_usage"(
	"scope" TEXT DEFAULT NULL, /* Option < String > */
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS TABLE (
	"scope" TEXT,  /* String */
	"period" TEXT,  /* String */
	"period_start" date,  /* Date */
	"limit_micros" bigint,  /* i64 */
	"spent_micros" bigint,  /* i64 */
	"reserved_micros" bigint,  /* i64 */
	"remaining_micros" bigint  /* i64 */
)
STABLE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_usage_wrapper';

CREATE  FUNCTION "scope_spend"(
	"scope" TEXT, /* Option < String > */
	"period" TEXT, /* Option < String > */
	"since" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"until" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS TABLE (
	"period_start" date,  /* Date */
	"spent_micros" bigint  /* i64 */
)
STABLE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_spend_wrapper';

CREATE  FUNCTION "scope_reserve_tokens"(
	"scopes" TEXT[], /* :: std :: option :: Option < Vec < Option < String > > > */
	"model" TEXT, /* Option < String > */
	"max_input_tokens" bigint, /* Option < i64 > */
	"max_output_tokens" bigint, /* Option < i64 > */
	"hold_id" TEXT, /* Option < String > */
	"at" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"ttl" interval DEFAULT '15 minutes', /* Option < Interval > */
	"event_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS spendguard.scope_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_reserve_tokens_wrapper';

CREATE  FUNCTION "scope_settle_tokens"(
	"hold_id" TEXT, /* Option < String > */
	"input_tokens" bigint, /* Option < i64 > */
	"output_tokens" bigint, /* Option < i64 > */
	"cached_input_tokens" bigint DEFAULT 0, /* Option < i64 > */
	"event_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS spendguard.scope_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'scope_settle_tokens_wrapper';

CREATE  FUNCTION "price_set"(
	"model" TEXT, /* Option < String > */
	"effective_from" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"input_micros_per_mtok" bigint, /* Option < i64 > */
	"output_micros_per_mtok" bigint, /* Option < i64 > */
	"cached_input_micros_per_mtok" bigint DEFAULT NULL /* Option < i64 > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'price_set_wrapper';

CREATE  FUNCTION "price_cost"(
	"model" TEXT, /* Option < String > */
	"input_tokens" bigint, /* Option < i64 > */
	"output_tokens" bigint, /* Option < i64 > */
	"cached_input_tokens" bigint DEFAULT 0, /* Option < i64 > */
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS bigint /* i64 */
STABLE PARALLEL RESTRICTED 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'price_cost_wrapper';

-- sql/alert.sql
-- spendguard alerts: told once, when it matters (SPEC.md §7). The rows are
-- written by the scoped calls (src/alert, in the caller's transaction);
-- delivery is through this table: claim with a lease, ack when delivered.
-- Loaded after the Rust functions it calls; RLS and comments are in
-- finalize.sql.

CREATE DOMAIN spendguard.alert_kind AS text CHECK (VALUE IN ('threshold', 'blocked', 'resolved'));
COMMENT ON DOMAIN spendguard.alert_kind IS
  'What an alert says: a threshold crossed, the first denial of a budget in a period, spend below a fired threshold after a limit change';

CREATE SEQUENCE spendguard.alert_id AS bigint;
COMMENT ON SEQUENCE spendguard.alert_id IS 'Ids of spendguard.alert rows: the receiver''s idempotency key';
SELECT pg_catalog.pg_extension_config_dump('spendguard.alert_id', '');

CREATE TABLE spendguard.alert (
  id            bigint      NOT NULL DEFAULT nextval('spendguard.alert_id'),
  tenant_id     text        NOT NULL,
  scope         text        COLLATE "C" NOT NULL,
  period        spendguard.scope_period NOT NULL,
  period_start  date        NOT NULL,
  kind          spendguard.alert_kind NOT NULL,
  percent       integer     CHECK (percent BETWEEN 1 AND 1000),
  limit_micros  bigint      NOT NULL CHECK (limit_micros >= 0),
  spent_micros  bigint      NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  claimed_by    text,
  claimed_until timestamptz,
  delivered_at  timestamptz,
  PRIMARY KEY (id),
  CHECK ((kind = 'blocked') = (percent IS NULL)),
  CHECK ((claimed_by IS NULL) = (claimed_until IS NULL)),
  -- exactly once: one alert per budget period, kind, threshold and limit
  -- (a changed limit re-arms every threshold), a key, not a flag in memory
  CONSTRAINT alert_once UNIQUE NULLS NOT DISTINCT
    (tenant_id, scope, period, period_start, kind, percent, limit_micros)
);
ALTER SEQUENCE spendguard.alert_id OWNED BY spendguard.alert.id;
COMMENT ON TABLE spendguard.alert IS
  'Alerts of scoped budgets, each written once in the transaction that crossed its line; delivered at least once through alert_claim / alert_ack';
SELECT pg_catalog.pg_extension_config_dump('spendguard.alert', '');
-- what a consumer claims: the undelivered alerts of a tenant, oldest first
CREATE INDEX alert_undelivered ON spendguard.alert (tenant_id, id) WHERE delivered_at IS NULL;
CREATE INDEX alert_undelivered_all ON spendguard.alert (id) WHERE delivered_at IS NULL;

-- Checks shared by the claim functions: 22004 / 22023 before anything.
CREATE FUNCTION spendguard.check_claim(consumer text, max_rows integer, lease interval) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
BEGIN
  IF consumer IS NULL OR max_rows IS NULL OR lease IS NULL THEN
    RAISE EXCEPTION 'consumer, max_rows and lease must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('consumer', consumer);
  IF max_rows < 0 THEN
    RAISE EXCEPTION 'max_rows must be >= 0, got %', max_rows USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF lease <= interval '0' OR lease > interval '1 day' THEN
    RAISE EXCEPTION 'lease must be positive and at most 1 day, got %', lease
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END
$$;

-- Up to max_rows undelivered alerts of the current tenant whose lease is
-- free, leased to consumer until now() + lease. SKIP LOCKED: two consumers
-- never wait for each other, nor hold one alert at the same time.
CREATE FUNCTION spendguard.alert_claim(consumer text, max_rows integer DEFAULT 100,
                                       lease interval DEFAULT '1 minute')
RETURNS SETOF spendguard.alert
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM spendguard.check_claim(consumer, max_rows, lease);
  PERFORM spendguard.check_reader();
  RETURN QUERY
    UPDATE spendguard.alert a SET claimed_by = consumer, claimed_until = now() + lease
    FROM (SELECT x.id FROM spendguard.alert x
          WHERE x.tenant_id = spendguard.current_tenant() AND x.delivered_at IS NULL
            AND (x.claimed_until IS NULL OR x.claimed_until <= now())
          ORDER BY x.id LIMIT max_rows
          FOR UPDATE SKIP LOCKED) c
    WHERE a.id = c.id
    RETURNING a.*;
END
$$;

-- The same across tenants (each row says its tenant_id): for a delivery
-- worker's role; not executable by PUBLIC.
CREATE FUNCTION spendguard.alert_claim_all(consumer text, max_rows integer DEFAULT 100,
                                           lease interval DEFAULT '1 minute')
RETURNS SETOF spendguard.alert
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  PERFORM spendguard.check_claim(consumer, max_rows, lease);
  RETURN QUERY
    UPDATE spendguard.alert a SET claimed_by = consumer, claimed_until = now() + lease
    FROM (SELECT x.id FROM spendguard.alert x
          WHERE x.delivered_at IS NULL AND (x.claimed_until IS NULL OR x.claimed_until <= now())
          ORDER BY x.id LIMIT max_rows
          FOR UPDATE SKIP LOCKED) c
    WHERE a.id = c.id
    RETURNING a.*;
END
$$;

-- Marks the current tenant's alerts delivered; returns how many were not
-- delivered before (an ack of an acked or unknown id counts nothing).
CREATE FUNCTION spendguard.alert_ack(ids bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE n bigint;
BEGIN
  IF ids IS NULL THEN
    RAISE EXCEPTION 'ids must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_reader();
  UPDATE spendguard.alert a SET delivered_at = now()
  WHERE a.tenant_id = spendguard.current_tenant() AND a.id = ANY (ids) AND a.delivered_at IS NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

CREATE FUNCTION spendguard.alert_ack_all(ids bigint[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE n bigint;
BEGIN
  IF ids IS NULL THEN
    RAISE EXCEPTION 'ids must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  UPDATE spendguard.alert a SET delivered_at = now()
  WHERE a.id = ANY (ids) AND a.delivered_at IS NULL;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- The current tenant's alerts, oldest first, created since a time and of
-- one scope when given.
CREATE FUNCTION spendguard.alerts(since timestamptz DEFAULT NULL, scope text DEFAULT NULL)
RETURNS SETOF spendguard.alert
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_reader();
  PERFORM spendguard.check_id('scope', $2);
  RETURN QUERY
    SELECT * FROM spendguard.alert a
    WHERE a.tenant_id = spendguard.current_tenant()
      AND ($1 IS NULL OR a.created_at >= $1)
      AND ($2 IS NULL OR a.scope = $2)
    ORDER BY a.id;
END
$$;

-- sql/verify.sql: verify() checks scoped reservations
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

-- sql/finalize.sql, for the new objects (CREATE OR REPLACE resets a
-- function's SECURITY DEFINER and SET clauses, so verify() gets them again)
ALTER FUNCTION spendguard.scope_set_budget(text, text, bigint, integer[], integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_reserve(text[], bigint, text, timestamptz, interval, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_settle(text, bigint, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_cancel(text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_charge(text[], bigint, timestamptz, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_record(text[], bigint, timestamptz, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_usage(text, timestamptz) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_spend(text, text, timestamptz, timestamptz) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_reserve_tokens(text[], text, bigint, bigint, text, timestamptz, interval, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.scope_settle_tokens(text, bigint, bigint, bigint, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.price_set(text, timestamptz, bigint, bigint, bigint) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.price_cost(text, bigint, bigint, bigint, timestamptz) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.verify(text, integer) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.check_claim(text, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_claim(text, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_claim_all(text, integer, interval) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_ack(bigint[]) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alert_ack_all(bigint[]) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.alerts(timestamptz, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.tenant_grant(regrole, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION spendguard.tenant_revoke(regrole, text) SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE ALL ON FUNCTION spendguard.refuse_price_change() FROM PUBLIC;
REVOKE ALL ON SEQUENCE spendguard.price_id FROM PUBLIC;
REVOKE ALL ON SEQUENCE spendguard.alert_id FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.alert_claim_all(text, integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.alert_ack_all(bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.tenant_grant(regrole, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.tenant_revoke(regrole, text) FROM PUBLIC;
REVOKE ALL ON spendguard.scope_budget FROM PUBLIC;
ALTER TABLE spendguard.scope_budget ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON spendguard.scope_budget USING (tenant_id = spendguard.current_tenant());
REVOKE ALL ON spendguard.scope_reservation FROM PUBLIC;
ALTER TABLE spendguard.scope_reservation ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON spendguard.scope_reservation USING (tenant_id = spendguard.current_tenant());
REVOKE ALL ON spendguard.scope_request FROM PUBLIC;
ALTER TABLE spendguard.scope_request ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON spendguard.scope_request USING (tenant_id = spendguard.current_tenant());
REVOKE ALL ON spendguard.price FROM PUBLIC;
ALTER TABLE spendguard.price ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON spendguard.price USING (tenant_id = spendguard.current_tenant());
REVOKE ALL ON spendguard.alert FROM PUBLIC;
ALTER TABLE spendguard.alert ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON spendguard.alert USING (tenant_id = spendguard.current_tenant());
REVOKE ALL ON spendguard.tenant_role FROM PUBLIC;
ALTER TABLE spendguard.tenant_role ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON spendguard.tenant_role USING (tenant_id = spendguard.current_tenant());
COMMENT ON FUNCTION spendguard.scope_set_budget IS
  'Set a scope''s limit per UTC day, week (from Monday), month or in total, one per period kind; 0 blocks everything, a NULL limit removes it (history stays)';
COMMENT ON FUNCTION spendguard.scope_reserve IS
  'Reserve an estimate in every budget of every listed scope, all or nothing, under locks taken in one order; a denial names the first blocking budget and shows the headroom of each';
COMMENT ON FUNCTION spendguard.scope_settle IS
  'Record a reservation''s real cost in every scope it names, in the periods of its at, and close it (even above the estimate, even after it expired)';
COMMENT ON FUNCTION spendguard.scope_cancel IS 'Close a scoped reservation without spend';
COMMENT ON FUNCTION spendguard.scope_charge IS
  'Check every budget of every listed scope and, when the cost fits all of them, record it in every scope: all or nothing';
COMMENT ON FUNCTION spendguard.scope_record IS
  'Record spend that already happened in every listed scope; never refused (budgets may show an overdraft)';
COMMENT ON FUNCTION spendguard.scope_usage IS
  'One row per scoped budget (of one scope, or all): the period that contains at, its limit, spend, open reservations and room left';
COMMENT ON FUNCTION spendguard.scope_spend IS
  'A scope''s spend per period of a kind, from the period that contains since to the one that contains until; periods it was named in';
COMMENT ON FUNCTION spendguard.scope_reserve_tokens IS
  'scope_reserve with the estimate priced from token maxima at at, as if no input were cached (SG040 when the model has no price then)';
COMMENT ON FUNCTION spendguard.scope_settle_tokens IS
  'scope_settle with the cost priced from tokens by the reservation''s own price row; the tokens are kept with the reservation';
COMMENT ON FUNCTION spendguard.price_set IS
  'Add a price of a model per million tokens in micros from effective_from on; returns its id. Rows are never changed (22023 for a second row of the same model and time)';
COMMENT ON FUNCTION spendguard.price_cost IS
  'Micros of a call: ceil(((input - cached) x input + cached x cached + output x output rate) / 1e6) at the price in force at at; SG040 when there is none';
COMMENT ON FUNCTION spendguard.alert_claim IS
  'Lease up to max_rows undelivered alerts of the current tenant whose lease is free to consumer until now() + lease (SKIP LOCKED: no two consumers hold one alert)';
COMMENT ON FUNCTION spendguard.alert_claim_all IS
  'alert_claim across tenants (each row says its tenant_id), for a delivery worker''s role; not executable by PUBLIC';
COMMENT ON FUNCTION spendguard.alert_ack IS
  'Mark alerts of the current tenant delivered; returns how many were not delivered before';
COMMENT ON FUNCTION spendguard.alert_ack_all IS 'alert_ack across tenants; not executable by PUBLIC';
COMMENT ON FUNCTION spendguard.alerts IS
  'The alerts of the current tenant, oldest first, created since a time and of one scope when given';
COMMENT ON FUNCTION spendguard.check_claim IS
  'What the claim functions check first: consumer an id, max_rows >= 0, a lease of up to a day (22004, 22023)';
COMMENT ON FUNCTION spendguard.tenant_grant IS
  'Grant a tenant to a role: with spendguard.tenant_auth = role, members of the role may act for it. Not executable by PUBLIC';
COMMENT ON FUNCTION spendguard.tenant_revoke IS
  'Revoke a tenant from a role (takes effect at the role''s next call). Not executable by PUBLIC';
