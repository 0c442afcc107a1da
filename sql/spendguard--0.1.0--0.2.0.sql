-- spendguard 0.1.0 -> 0.2.0. Hand-written; every statement below is the
-- 0.2.0 install's own DDL for what 0.1.0 did not have (sql/*.sql and the
-- functions pgrx generates), so an upgraded schema equals a fresh 0.2.0
-- install (tests/upgrade/run.sh diffs the two with pg_dump). No row is
-- rewritten: the new column of budget_hold is NULL (never expires) for
-- every existing hold, and every new table starts empty.
\echo Use "ALTER EXTENSION spendguard UPDATE TO '0.2.0'" to load this file. \quit

-- §1 hold expiry --------------------------------------------------------------
ALTER TABLE spendguard.budget_hold ADD COLUMN expires_at timestamptz;
ALTER TABLE spendguard.budget_hold DROP CONSTRAINT budget_hold_disposition_check;
ALTER TABLE spendguard.budget_hold ADD CONSTRAINT budget_hold_disposition_check
  CHECK (disposition IN ('open', 'released', 'reversed', 'reconciled', 'expired'));
ALTER TYPE spendguard.budget_event_kind ADD VALUE 'expire_exposure';
CREATE INDEX budget_hold_expiry ON spendguard.budget_hold (tenant_id, expires_at, hold_id)
  WHERE disposition = 'open' AND expires_at IS NOT NULL;
CREATE INDEX budget_hold_budget_expiry
  ON spendguard.budget_hold (tenant_id, capability_id, grant_index, expires_at, hold_id)
  WHERE disposition = 'open' AND expires_at IS NOT NULL;

-- §0 ids of at most 1,024 bytes ----------------------------------------------
-- SPEC §0: an id argument that is empty or longer than 1,024 bytes is 22023
-- before anything is read, in the readers as in the Rust functions (same
-- rule and message as spendguard_core::validate::check_id).
CREATE FUNCTION spendguard.check_id(arg_name text, id text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
BEGIN
  IF id = '' THEN
    RAISE EXCEPTION '% must not be empty', arg_name USING ERRCODE = 'invalid_parameter_value';
  ELSIF octet_length(id) > 1024 THEN
    RAISE EXCEPTION '% is % bytes long; ids are at most 1024 bytes', arg_name, octet_length(id)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END
$$;

-- budget_authorize_hold gains ttl: the 0.1.0 function (C symbol
-- budget_authorize_hold_wrapper, still exported) is replaced by 0.2.0's.
DROP FUNCTION spendguard.budget_authorize_hold(text, integer, bigint, bigint, bigint, bigint, text, text, text, text, bigint);
-- spendguard::budget::budget_authorize_hold
CREATE  FUNCTION "budget_authorize_hold"(
	"capability_id" TEXT, /* Option < String > */
	"grant_index" INT, /* Option < i32 > */
	"requested_exposure" bigint, /* Option < i64 > */
	"max_invocations" bigint DEFAULT NULL, /* Option < i64 > */
	"max_cost_per_invocation" bigint DEFAULT NULL, /* Option < i64 > */
	"max_total_cost" bigint DEFAULT NULL, /* Option < i64 > */
	"hold_id" TEXT DEFAULT NULL, /* Option < String > */
	"event_id" TEXT DEFAULT NULL, /* Option < String > */
	"authority_id" TEXT DEFAULT NULL, /* Option < String > */
	"lease_id" TEXT DEFAULT NULL, /* Option < String > */
	"lease_epoch" bigint DEFAULT NULL, /* Option < i64 > */
	"ttl" interval DEFAULT NULL /* Option < Interval > */
) RETURNS spendguard.hold_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'budget_authorize_hold_v2_wrapper';

-- §2: sql/spend.sql ---------------------------------------------------------
-- spendguard spend: daily spend, period budgets and reservations (SPEC.md §2).
-- Loaded after bootstrap.sql and before the Rust functions that return
-- these types; RLS and function comments are in finalize.sql.

-- Per-user, per-group spend by UTC day. This table is the record of spend:
-- every recorded cost lands here, nowhere else.
CREATE TABLE spendguard.daily_spend (
  tenant_id    text   NOT NULL,
  user_id      text   NOT NULL,
  group_id     text   NOT NULL,
  day          date   NOT NULL,
  spend_micros bigint NOT NULL CHECK (spend_micros >= 0),
  PRIMARY KEY (tenant_id, user_id, group_id, day)
);
COMMENT ON TABLE spendguard.daily_spend IS
  'Spend per user, group and UTC day, in micros: the record of every cost spendguard was told of';
CREATE INDEX daily_spend_group ON spendguard.daily_spend (tenant_id, group_id, day);

-- Period budgets: the limit of each user of a group per UTC calendar period.
CREATE TABLE spendguard.spend_budget (
  tenant_id    text        NOT NULL,
  group_id     text        NOT NULL,
  limit_micros bigint      NOT NULL CHECK (limit_micros >= 0),
  period       text        NOT NULL CHECK (period IN ('day', 'week', 'month')),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, group_id)
);
COMMENT ON TABLE spendguard.spend_budget IS
  'Group budgets: the limit each user of the group may spend per UTC day, week (from Monday) or month';

-- A user's own limit in a group; it beats the group budget (same period).
CREATE TABLE spendguard.spend_user_override (
  tenant_id    text        NOT NULL,
  user_id      text        NOT NULL,
  group_id     text        NOT NULL,
  limit_micros bigint      NOT NULL CHECK (limit_micros >= 0),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id, group_id)
);
COMMENT ON TABLE spendguard.spend_user_override IS
  'Per-user limits in a group; they beat the group budget, in its period (a day when the group has none)';

-- Reservations are §1 holds: the hold carries the exposure (estimate), its
-- TTL and expiry; this row says whose it is, on which UTC day its cost will
-- be recorded, and whether it was settled or cancelled (once).
CREATE TABLE spendguard.spend_reservation (
  tenant_id       text        NOT NULL,
  hold_id         text        NOT NULL,
  user_id         text        NOT NULL,
  group_id        text        NOT NULL,
  day             date        NOT NULL,
  estimate_micros bigint      NOT NULL CHECK (estimate_micros >= 0),
  status          text        NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'settled', 'cancelled')),
  cost_micros     bigint      CHECK (cost_micros >= 0),
  closed_at       timestamptz,
  PRIMARY KEY (tenant_id, hold_id),
  FOREIGN KEY (tenant_id, hold_id) REFERENCES spendguard.budget_hold (tenant_id, hold_id),
  CHECK ((status = 'open') = (closed_at IS NULL)),
  CHECK ((status = 'settled') = (cost_micros IS NOT NULL))
);
COMMENT ON TABLE spendguard.spend_reservation IS
  'Reservations of spend_reserve: the hold of each, its user, group and UTC day, and how it was closed';

-- spend_check / spend_charge / spend_charge_enforce
CREATE TYPE spendguard.spend_decision AS (
  allowed          boolean,
  spent_micros     bigint,
  limit_micros     bigint,
  remaining_micros bigint,
  period_start     date
);
COMMENT ON TYPE spendguard.spend_decision IS
  'Result of spendguard.spend_check, spend_charge and spend_charge_enforce';

CREATE TYPE spendguard.spend_reservation_decision AS (
  allowed          boolean,
  spent_micros     bigint,
  reserved_micros  bigint,
  limit_micros     bigint,
  remaining_micros bigint,
  period_start     date,
  hold_id          text,
  expires_at       timestamptz
);
COMMENT ON TYPE spendguard.spend_reservation_decision IS 'Result of spendguard.spend_reserve';

-- §3: sql/usage.sql ---------------------------------------------------------
-- spendguard usage: rolling-window token and call caps (SPEC.md §3).
-- The event tables are the record: every recorded use is one row.

CREATE TABLE spendguard.usage_event (
  id              uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
  tenant_id       text        NOT NULL,
  integration_id  text        NOT NULL,
  principal_kind  text        NOT NULL CHECK (principal_kind IN ('user', 'application')),
  principal_id    text        NOT NULL,
  input_tokens    bigint      NOT NULL CHECK (input_tokens >= 0),
  output_tokens   bigint      NOT NULL CHECK (output_tokens >= 0),
  model           text,
  conversation_id text,
  at              timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE spendguard.usage_event IS
  'Tokens used per integration and principal: the record the rolling-window token caps sum over';
-- A window sum is a range scan of this index, answered from the index
-- alone where the visibility map allows (the token counts are included).
CREATE INDEX usage_event_window
  ON spendguard.usage_event (tenant_id, integration_id, principal_kind, principal_id, at)
  INCLUDE (input_tokens, output_tokens);
CREATE INDEX usage_event_at ON spendguard.usage_event (tenant_id, at);

CREATE TABLE spendguard.call_event (
  id             uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
  tenant_id      text        NOT NULL,
  principal_kind text        NOT NULL CHECK (principal_kind IN ('user', 'application')),
  principal_id   text        NOT NULL,
  tool_name      text        NOT NULL,
  at             timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE spendguard.call_event IS
  'Tool calls per principal and tool: the record the rolling-window call caps count over';
CREATE INDEX call_event_window
  ON spendguard.call_event (tenant_id, principal_kind, principal_id, tool_name, at);
CREATE INDEX call_event_at ON spendguard.call_event (tenant_id, at);

CREATE TYPE spendguard.usage_cap AS (
  allowed   boolean,
  used      bigint,
  remaining bigint
);
COMMENT ON TYPE spendguard.usage_cap IS
  'Result of spendguard.usage_cap_check, usage_cap_enforce, usage_cap_charge and call_cap_charge';

-- §4: sql/proposal.sql ---------------------------------------------------------
-- spendguard proposals: propose / apply tokens and the tool-call audit log
-- (SPEC.md §4). RLS and function comments are in finalize.sql.

-- The audit log and the token store in one: every directly executed or
-- failed tool call, and every proposal with how it ended. No nonce material
-- lives here (see proposal_secret).
CREATE TABLE spendguard.tool_call (
  id               uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
  tenant_id        text        NOT NULL,
  principal_kind   text        NOT NULL CHECK (principal_kind IN ('user', 'application')),
  principal_id     text        NOT NULL,
  transport        text        NOT NULL CHECK (transport IN ('chat', 'mcp', 'automation')),
  conversation_id  text,
  tool_name        text        NOT NULL,
  effect           text        NOT NULL CHECK (effect IN ('read', 'mutate', 'destructive')),
  args_hash        text        NOT NULL CHECK (args_hash ~ '^[0-9a-f]{64}$'),
  status           text        NOT NULL
                   CHECK (status IN ('executed', 'failed', 'proposed', 'applied', 'rejected', 'expired')),
  result_snapshot  jsonb,
  error            text,
  proposed_payload jsonb,
  proposed_at      timestamptz,
  expires_at       timestamptz,
  applied_at       timestamptz,
  applied_by_kind  text        CHECK (applied_by_kind IN ('user', 'application')),
  applied_by_id    text,
  rejected_at      timestamptz,
  rejected_by_kind text        CHECK (rejected_by_kind IN ('user', 'application')),
  rejected_by_id   text,
  -- the audit order: clock time, so calls within one transaction keep theirs
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- a proposal's content digest (tenant, principal, tool, args_hash): the
  -- key of its dedup look-up and lock; NULL for direct records
  content_key      bigint,
  -- a proposal has its times; a direct record has none
  CHECK ((status IN ('executed', 'failed')) = (proposed_at IS NULL)),
  CHECK ((proposed_at IS NULL) = (expires_at IS NULL)),
  CHECK ((status = 'applied') = (applied_at IS NOT NULL)),
  CHECK ((applied_at IS NULL) = (applied_by_kind IS NULL) AND (applied_by_kind IS NULL) = (applied_by_id IS NULL)),
  CHECK ((status = 'rejected') = (rejected_at IS NOT NULL)),
  CHECK ((rejected_at IS NULL) = (rejected_by_kind IS NULL) AND (rejected_by_kind IS NULL) = (rejected_by_id IS NULL))
);
COMMENT ON TABLE spendguard.tool_call IS
  'Agent tool calls: executed and failed ones, and proposals with who applied or rejected them; no nonce material';
-- the audit readers: newest first, by principal
CREATE INDEX tool_call_recent ON spendguard.tool_call (tenant_id, created_at);
CREATE INDEX tool_call_principal
  ON spendguard.tool_call (tenant_id, principal_kind, principal_id, created_at);
-- proposals in flight: the content dedup look-up goes by content_key, an
-- index no other query can use, so no generic plan can prefer another
-- index and filter the principal's history or the tenant's in-flight set
-- on every create (both happened with text-column indexes); the sweep of
-- stale ones goes by tenant and expiry
CREATE INDEX tool_call_in_flight ON spendguard.tool_call (content_key, expires_at)
  WHERE status = 'proposed';
CREATE INDEX tool_call_stale ON spendguard.tool_call (tenant_id, expires_at)
  WHERE status = 'proposed';

-- The SHA-256 of each proposal's nonce, apart from the audit row so that
-- no reader of tool_call ever returns it. The nonce itself is never stored.
-- No foreign key to tool_call: the row of tenant '' below has no proposal.
CREATE TABLE spendguard.proposal_secret (
  tenant_id  text  NOT NULL,
  id         uuid  NOT NULL PRIMARY KEY,
  nonce_hash bytea NOT NULL CHECK (octet_length(nonce_hash) = 32)
);
COMMENT ON TABLE spendguard.proposal_secret IS
  'SHA-256 of each proposal token''s nonce (the nonce itself is never stored)';
-- The sentinel a token with an unknown id is checked against, so that an
-- unknown id costs the same index probe, row fetch and comparison as a
-- wrong nonce. Tenant '' is no tenant: spendguard.tenant is never empty.
INSERT INTO spendguard.proposal_secret (tenant_id, id, nonce_hash)
VALUES ('', '00000000-0000-0000-0000-000000000000', decode(repeat('5a', 32), 'hex'));

CREATE TYPE spendguard.proposal_created AS (
  id           uuid,
  token        text,
  expires_at   timestamptz,
  args_hash    text,
  duplicate_of uuid
);
COMMENT ON TYPE spendguard.proposal_created IS 'Result of spendguard.proposal_create';

-- the new functions, as pgrx declares them in a 0.2.0 install --------------
-- spendguard::proposal::args_hash
CREATE  FUNCTION "args_hash"(
	"doc" jsonb /* JsonbText */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'args_hash_wrapper';

-- spendguard::budget::budget_expire_holds
CREATE  FUNCTION "budget_expire_holds"(
	"now" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"lim" INT DEFAULT 10000 /* Option < i32 > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'budget_expire_holds_wrapper';

-- spendguard::usage::call_cap_charge
-- requires:
--   usage_schema
CREATE  FUNCTION "call_cap_charge"(
	"principal_kind" TEXT, /* Option < String > */
	"principal_id" TEXT, /* Option < String > */
	"tool_name" TEXT, /* Option < String > */
	"max_calls" bigint, /* Option < i64 > */
	"time_window" interval /* Option < Interval > */
) RETURNS spendguard.usage_cap /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'call_cap_charge_wrapper';

-- spendguard::proposal::canonical_json
CREATE  FUNCTION "canonical_json"(
	"doc" jsonb /* JsonbText */
) RETURNS TEXT /* String */
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'canonical_json_wrapper';

-- spendguard::proposal::proposal_consume
-- requires:
--   proposal_schema
CREATE  FUNCTION "proposal_consume"(
	"token" TEXT, /* Option < String > */
	"applier_kind" TEXT, /* Option < String > */
	"applier_id" TEXT, /* Option < String > */
	"args" jsonb DEFAULT NULL /* Option < JsonbText > */
) RETURNS spendguard.tool_call /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'proposal_consume_wrapper';

-- spendguard::proposal::proposal_create
-- requires:
--   proposal_schema
CREATE  FUNCTION "proposal_create"(
	"principal_kind" TEXT, /* Option < String > */
	"principal_id" TEXT, /* Option < String > */
	"tool_name" TEXT, /* Option < String > */
	"args" jsonb, /* Option < JsonbText > */
	"effect" TEXT DEFAULT 'mutate', /* Option < String > */
	"transport" TEXT DEFAULT 'chat', /* Option < String > */
	"payload" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"conversation_id" TEXT DEFAULT NULL, /* Option < String > */
	"ttl" interval DEFAULT '10 minutes' /* Option < Interval > */
) RETURNS spendguard.proposal_created /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'proposal_create_wrapper';

-- spendguard::proposal::proposal_expire_stale
CREATE  FUNCTION "proposal_expire_stale"(
	"now" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'proposal_expire_stale_wrapper';

-- spendguard::proposal::proposal_reject
-- requires:
--   proposal_schema
CREATE  FUNCTION "proposal_reject"(
	"token" TEXT, /* Option < String > */
	"by_kind" TEXT, /* Option < String > */
	"by_id" TEXT /* Option < String > */
) RETURNS spendguard.tool_call /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'proposal_reject_wrapper';

-- spendguard::spend::spend_cancel
CREATE  FUNCTION "spend_cancel"(
	"hold_id" TEXT /* Option < String > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_cancel_wrapper';

-- spendguard::spend::spend_charge
-- requires:
--   spend_schema
CREATE  FUNCTION "spend_charge"(
	"user_id" TEXT, /* Option < String > */
	"group_id" TEXT, /* Option < String > */
	"cost_micros" bigint, /* Option < i64 > */
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS spendguard.spend_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_charge_wrapper';

-- spendguard::spend::spend_charge_enforce
-- requires:
--   spend_schema
CREATE  FUNCTION "spend_charge_enforce"(
	"user_id" TEXT, /* Option < String > */
	"group_id" TEXT, /* Option < String > */
	"cost_micros" bigint, /* Option < i64 > */
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS spendguard.spend_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_charge_enforce_wrapper';

-- spendguard::spend::spend_check
-- requires:
--   spend_schema
CREATE  FUNCTION "spend_check"(
	"user_id" TEXT, /* Option < String > */
	"group_id" TEXT, /* Option < String > */
	"cost_micros" bigint, /* Option < i64 > */
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS spendguard.spend_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL RESTRICTED 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_check_wrapper';

-- spendguard::spend::spend_group_since
CREATE  FUNCTION "spend_group_since"(
	"group_id" TEXT, /* Option < String > */
	"period_start" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS bigint /* i64 */
STABLE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_group_since_wrapper';

-- spendguard::spend::spend_purge
CREATE  FUNCTION "spend_purge"(
	"before" date /* Option < Date > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_purge_wrapper';

-- spendguard::spend::spend_reserve
-- requires:
--   spend_schema
CREATE  FUNCTION "spend_reserve"(
	"user_id" TEXT, /* Option < String > */
	"group_id" TEXT, /* Option < String > */
	"estimate_micros" bigint, /* Option < i64 > */
	"hold_id" TEXT, /* Option < String > */
	"at" timestamp with time zone DEFAULT now(), /* Option < TimestampWithTimeZone > */
	"ttl" interval DEFAULT '15 minutes' /* Option < Interval > */
) RETURNS spendguard.spend_reservation_decision /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_reserve_wrapper';

-- spendguard::spend::spend_set_group_budget
CREATE  FUNCTION "spend_set_group_budget"(
	"group_id" TEXT, /* Option < String > */
	"limit_micros" bigint, /* Option < i64 > */
	"period" TEXT /* Option < String > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_set_group_budget_wrapper';

-- spendguard::spend::spend_set_user_override
CREATE  FUNCTION "spend_set_user_override"(
	"user_id" TEXT, /* Option < String > */
	"group_id" TEXT, /* Option < String > */
	"limit_micros" bigint /* Option < i64 > */
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_set_user_override_wrapper';

-- spendguard::spend::spend_settle
-- requires:
--   spend_schema
CREATE  FUNCTION "spend_settle"(
	"hold_id" TEXT, /* Option < String > */
	"cost_micros" bigint /* Option < i64 > */
) RETURNS spendguard.daily_spend /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_settle_wrapper';

-- spendguard::spend::spend_since
CREATE  FUNCTION "spend_since"(
	"user_id" TEXT, /* Option < String > */
	"group_id" TEXT, /* Option < String > */
	"period_start" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS bigint /* i64 */
STABLE PARALLEL RESTRICTED
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_since_wrapper';

-- spendguard::spend::spend_upsert_daily
-- requires:
--   spend_schema
CREATE  FUNCTION "spend_upsert_daily"(
	"user_id" TEXT, /* Option < String > */
	"group_id" TEXT, /* Option < String > */
	"at" timestamp with time zone, /* Option < TimestampWithTimeZone > */
	"cost_micros" bigint /* Option < i64 > */
) RETURNS spendguard.daily_spend /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'spend_upsert_daily_wrapper';

-- spendguard::proposal::tool_call_record
CREATE  FUNCTION "tool_call_record"(
	"principal_kind" TEXT, /* Option < String > */
	"principal_id" TEXT, /* Option < String > */
	"tool_name" TEXT, /* Option < String > */
	"args" jsonb, /* Option < JsonbText > */
	"status" TEXT, /* Option < String > */
	"effect" TEXT DEFAULT 'read', /* Option < String > */
	"transport" TEXT DEFAULT 'chat', /* Option < String > */
	"result" jsonb DEFAULT NULL, /* Option < JsonbText > */
	"error" TEXT DEFAULT NULL, /* Option < String > */
	"conversation_id" TEXT DEFAULT NULL /* Option < String > */
) RETURNS uuid /* pgrx :: datum :: Uuid */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'tool_call_record_wrapper';

-- spendguard::usage::usage_cap_charge
-- requires:
--   usage_schema
CREATE  FUNCTION "usage_cap_charge"(
	"integration_id" TEXT, /* Option < String > */
	"principal_kind" TEXT, /* Option < String > */
	"principal_id" TEXT, /* Option < String > */
	"tokens" bigint, /* Option < i64 > */
	"token_budget" bigint, /* Option < i64 > */
	"time_window" interval /* Option < Interval > */
) RETURNS spendguard.usage_cap /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
VOLATILE PARALLEL UNSAFE 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'usage_cap_charge_wrapper';

-- spendguard::usage::usage_cap_check
-- requires:
--   usage_schema
CREATE  FUNCTION "usage_cap_check"(
	"integration_id" TEXT, /* Option < String > */
	"principal_kind" TEXT, /* Option < String > */
	"principal_id" TEXT, /* Option < String > */
	"token_budget" bigint, /* Option < i64 > */
	"time_window" interval /* Option < Interval > */
) RETURNS spendguard.usage_cap /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL RESTRICTED 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'usage_cap_check_wrapper';

-- spendguard::usage::usage_cap_enforce
-- requires:
--   usage_schema
CREATE  FUNCTION "usage_cap_enforce"(
	"integration_id" TEXT, /* Option < String > */
	"principal_kind" TEXT, /* Option < String > */
	"principal_id" TEXT, /* Option < String > */
	"token_budget" bigint, /* Option < i64 > */
	"time_window" interval /* Option < Interval > */
) RETURNS spendguard.usage_cap /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL RESTRICTED 
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'usage_cap_enforce_wrapper';

-- spendguard::usage::usage_purge
CREATE  FUNCTION "usage_purge"(
	"before" timestamp with time zone /* Option < TimestampWithTimeZone > */
) RETURNS bigint /* i64 */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'usage_purge_wrapper';

-- spendguard::usage::usage_record
CREATE  FUNCTION "usage_record"(
	"integration_id" TEXT, /* Option < String > */
	"principal_kind" TEXT, /* Option < String > */
	"principal_id" TEXT, /* Option < String > */
	"input_tokens" bigint, /* Option < i64 > */
	"output_tokens" bigint, /* Option < i64 > */
	"model" TEXT DEFAULT NULL, /* Option < String > */
	"conversation_id" TEXT DEFAULT NULL, /* Option < String > */
	"at" timestamp with time zone DEFAULT now() /* Option < TimestampWithTimeZone > */
) RETURNS uuid /* pgrx :: datum :: Uuid */
VOLATILE PARALLEL UNSAFE
LANGUAGE c /* Rust */
AS 'MODULE_PATHNAME', 'usage_record_wrapper';

-- the auditor: sql/verify.sql ---------------------------------------------
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
-- the usage primary key). PL/pgSQL, not SQL, for that: its plan cache
-- plans the query for the values given, folding the "$1 IS NULL OR" tests,
-- where a SQL function's one generic plan scanned whole tables.
CREATE FUNCTION spendguard.verify(capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS TABLE (object text, check_name text, expected text, actual text)
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
PERFORM spendguard.check_id('capability_id', $1);
RETURN QUERY
WITH
tenant AS (SELECT spendguard.current_tenant() AS id),
-- every event of the scope with what it did to the counters (denials: nothing)
ev AS (
  SELECT e.*,
    CASE WHEN NOT e.allowed THEN 0
         WHEN e.kind IN ('authorize_exposure', 'increment_invocation') THEN 1
         WHEN e.kind = 'reverse_exposure' THEN -1
         ELSE 0 END::numeric AS d_count,
    CASE WHEN NOT e.allowed OR e.kind = 'increment_invocation' THEN 0
         WHEN e.kind = 'authorize_exposure' THEN e.exposure_units::numeric
         ELSE -(e.exposure_units::numeric) END AS d_exposed,
    CASE WHEN e.allowed AND e.kind = 'reconcile_spend' THEN e.realized_spend_units
         ELSE 0 END::numeric AS d_realized
  FROM spendguard.budget_event e, tenant t
  WHERE e.tenant_id = t.id
    AND ($1 IS NULL OR e.capability_id = $1)
    AND ($2 IS NULL OR e.grant_index = $2)
),
-- the running fold along each budget's history in event_seq order
chain AS (
  SELECT ev.*,
    sum(ev.d_count) OVER w AS f_count,
    sum(ev.d_exposed) OVER w AS f_exposed,
    sum(ev.d_realized) OVER w AS f_realized
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
fold AS (
  SELECT ev.capability_id, ev.grant_index,
    sum(ev.d_count) AS count, sum(ev.d_exposed) AS exposed, sum(ev.d_realized) AS realized,
    coalesce(max(ev.event_seq) FILTER (WHERE ev.allowed), 0) AS seq,
    sum(ev.d_exposed) FILTER (WHERE ev.hold_id IS NULL) AS unheld_exposed
  FROM ev GROUP BY ev.capability_id, ev.grant_index
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
         h.authorized_exposure, h.remaining_exposure, h.realized_spend, h.disposition,
         f.authorizations, f.authorized AS f_authorized, f.remaining AS f_remaining,
         f.realized AS f_realized, f.disposition AS f_disposition
  FROM holds h FULL JOIN hold_fold f ON f.hold_id = h.hold_id
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
  FROM hold_pairs p WHERE NOT (p.has_row AND p.has_events)
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
)
SELECT p.object, p.check_name, p.expected, p.actual FROM problems p
ORDER BY p.o, p.object;
END
$fn$;
COMMENT ON FUNCTION spendguard.verify(text, integer) IS
  'The auditor: replays the current tenant''s event log (one budget''s when given) and returns one row per invariant that does not hold, none when sound';

-- monitoring: sql/monitoring.sql ------------------------------------------
-- spendguard monitoring: views an operator reads or exports (postgres_exporter
-- queries in docs/postgres_exporter.yml). They cover every tenant, with a
-- tenant_id column: they run with their owner's rights, so row level
-- security does not filter them. PUBLIC has no access; an admin grants
-- SELECT to a monitoring role (docs/operations.md).

-- recorded_at of the log is in insertion order: a BRIN index answers "the
-- last hour" for a few bytes per insert.
CREATE INDEX budget_event_recorded ON spendguard.budget_event USING brin (recorded_at);

CREATE VIEW spendguard.monitor_open_holds AS
  SELECT h.tenant_id, h.capability_id, h.grant_index,
         count(*) AS open_holds, sum(h.remaining_exposure)::bigint AS open_exposure,
         min(h.created_at) AS oldest_created_at,
         count(*) FILTER (WHERE h.expires_at IS NULL) AS without_ttl
  FROM spendguard.budget_hold h
  WHERE h.disposition = 'open'
  GROUP BY h.tenant_id, h.capability_id, h.grant_index;
COMMENT ON VIEW spendguard.monitor_open_holds IS
  'Open holds per budget, all tenants: how many, their exposure, the oldest, how many have no TTL';

CREATE VIEW spendguard.monitor_expired_unswept AS
  SELECT h.tenant_id, count(*) AS holds, sum(h.remaining_exposure)::bigint AS exposure,
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
         sum(d.spend_micros)::bigint AS spend_micros, count(DISTINCT d.user_id) AS users,
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

-- Readers ------------------------------------------------------------------

CREATE OR REPLACE FUNCTION spendguard.budget_usage(capability_id text, grant_index integer)
RETURNS SETOF spendguard.budget_usage
LANGUAGE sql STABLE AS $$
  SELECT spendguard.check_id('capability_id', $1);
  SELECT * FROM spendguard.budget_usage u
  WHERE u.tenant_id = spendguard.current_tenant()
    AND u.capability_id = $1 AND u.grant_index = $2
$$;

CREATE OR REPLACE FUNCTION spendguard.budget_usages(lim integer DEFAULT 100, capability_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_usage
LANGUAGE sql STABLE AS $$
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
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_id('hold_id', $5);
  IF $4 IS NOT NULL AND $4 NOT IN ('open', 'released', 'reversed', 'reconciled', 'expired') THEN
    RAISE EXCEPTION 'invalid hold disposition: "%" (expected open, released, reversed, reconciled or expired)', $4
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
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

-- The latest `lim` events, returned in commit order (oldest first).
-- PL/pgSQL so that the plan cache plans for the values given: with a budget
-- named, the per-budget index (budget_event_budget) is read, not the
-- tenant's whole log (a SQL function's generic plan did that).
CREATE OR REPLACE FUNCTION spendguard.budget_events(
  lim integer DEFAULT 100, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS SETOF spendguard.budget_event
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_id('capability_id', $2);
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

-- Proposals and the tool-call audit log (SPEC §4): readers; the row type
-- has no nonce material (the nonce hash lives in proposal_secret).
CREATE FUNCTION spendguard.proposal_get(id uuid)
RETURNS SETOF spendguard.tool_call
LANGUAGE sql STABLE AS $$
  SELECT * FROM spendguard.tool_call t
  WHERE t.tenant_id = spendguard.current_tenant() AND t.id = $1
$$;

-- The audit log, newest first, filtered by principal, tool, status and conversation.
CREATE FUNCTION spendguard.tool_calls(
  lim integer DEFAULT 100, principal_kind text DEFAULT NULL, principal_id text DEFAULT NULL,
  tool_name text DEFAULT NULL, status text DEFAULT NULL, conversation_id text DEFAULT NULL)
RETURNS SETOF spendguard.tool_call
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM spendguard.check_id('principal_id', $3);
  PERFORM spendguard.check_id('tool_name', $4);
  PERFORM spendguard.check_id('conversation_id', $6);
  IF $2 IS NOT NULL AND $2 NOT IN ('user', 'application') THEN
    RAISE EXCEPTION 'invalid principal_kind: "%" (expected user, application)', $2
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF $5 IS NOT NULL AND $5 NOT IN ('executed', 'failed', 'proposed', 'applied', 'rejected', 'expired') THEN
    RAISE EXCEPTION 'invalid tool call status: "%" (expected executed, failed, proposed, applied, rejected or expired)', $5
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
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

-- Security (SPEC §5) -------------------------------------------------------
-- Callers change state only through the functions: every function that
-- touches the tables runs as the extension owner with a pinned search_path.

DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'spendguard'::regnamespace
      AND p.prorettype <> 'trigger'::regtype
      AND p.provolatile <> 'i'
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f);
  END LOOP;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA spendguard FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA spendguard FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.refuse_event_change() FROM PUBLIC;

-- Row level security for the tables 0.2.0 adds (the 0.1.0 ones have it).
DO $$
DECLARE t regclass;
BEGIN
  FOR t IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
  LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = spendguard.current_tenant())', t);
  END LOOP;
END
$$;

-- Comments -----------------------------------------------------------------

COMMENT ON SCHEMA spendguard IS
  'spendguard: exact AI spend budgets, two-phase holds and agent action tokens';
COMMENT ON FUNCTION spendguard.budget_authorize_hold IS
  'Authorize exposure against a budget under its row lock; opens a hold when hold_id is given. A denial is a row, not an error';
COMMENT ON FUNCTION spendguard.budget_release_hold IS
  'Give back part or all of a hold''s exposure (or of a budget''s, without hold_id); the invocation count stays';
COMMENT ON FUNCTION spendguard.budget_reverse_hold IS
  'Undo an authorization that never ran: its exposure back and invocation_count - 1';
COMMENT ON FUNCTION spendguard.budget_reconcile_hold IS
  'Turn a hold''s exposure into realized spend (realized_spend <= exposed_cost)';
COMMENT ON FUNCTION spendguard.budget_capture_hold IS
  'Same as spendguard.budget_reconcile_hold';
COMMENT ON FUNCTION spendguard.budget_expire_holds IS
  'Expire the current tenant''s open holds past expires_at (at most lim, oldest first): exposure back, count stays, one expire_exposure event each; skips budgets other calls hold. Returns how many';
COMMENT ON FUNCTION spendguard.check_id IS
  'Raises 22023 for an empty id or one longer than 1,024 bytes (SPEC §0); used by the readers';
COMMENT ON FUNCTION spendguard.budget_try_increment IS
  'Count one invocation against max_invocations, no cost; true when counted';
COMMENT ON FUNCTION spendguard.current_tenant IS
  'The tenant of this call: spendguard.tenant, else ''default'' (SG030 when spendguard.require_tenant is on)';
COMMENT ON FUNCTION spendguard.guarantee_level IS
  'single_node_atomic, or ha_linearizable when commits wait for a synchronous standby';
COMMENT ON FUNCTION spendguard.budget_usage IS 'The usage row of one budget of the current tenant, or no row';
COMMENT ON FUNCTION spendguard.budget_usages IS 'Budgets of the current tenant, most recently updated first';
COMMENT ON FUNCTION spendguard.budget_holds IS
  'Holds of the current tenant with disposition, authorized and remaining exposure and expires_at, newest first';
COMMENT ON FUNCTION spendguard.budget_events IS
  'The latest lim events of the append-only budget log of the current tenant, in commit order';

-- Daily spend, period budgets and reservations (SPEC §2)
COMMENT ON FUNCTION spendguard.spend_upsert_daily IS
  'Add cost_micros (>= 0) to the user''s spend in the group on the UTC day of at; returns the day''s row';
COMMENT ON FUNCTION spendguard.spend_since IS
  'A user''s spend in a group from the UTC day of period_start on; 0 when none';
COMMENT ON FUNCTION spendguard.spend_group_since IS
  'A group''s spend, all users, from the UTC day of period_start on; 0 when none';
COMMENT ON FUNCTION spendguard.spend_set_group_budget IS
  'Set the limit of each user of a group per UTC day, week (from Monday) or month; a NULL limit removes it';
COMMENT ON FUNCTION spendguard.spend_set_user_override IS
  'Set a user''s own limit in a group (it beats the group budget); a NULL limit removes it';
COMMENT ON FUNCTION spendguard.spend_check IS
  'Would cost_micros fit the user''s limit in the period of at? Spend and open reservations count. Reads only';
COMMENT ON FUNCTION spendguard.spend_charge IS
  'Atomically check and, when it fits, record cost_micros; concurrent charges never pass the limit';
COMMENT ON FUNCTION spendguard.spend_charge_enforce IS
  'spend_charge that raises SG020 instead of returning allowed = false';
COMMENT ON FUNCTION spendguard.spend_reserve IS
  'Reserve an estimate against the user''s limit before the cost is known (a hold with a TTL); settle or cancel it once';
COMMENT ON FUNCTION spendguard.spend_settle IS
  'Record a reservation''s real cost on the UTC day of its at and close it (even above the estimate, even after it expired)';
COMMENT ON FUNCTION spendguard.spend_cancel IS 'Close a reservation without spend';
COMMENT ON FUNCTION spendguard.spend_purge IS
  'Delete the current tenant''s daily spend rows older than before; returns how many';

-- Rolling-window caps (SPEC §3)
COMMENT ON FUNCTION spendguard.usage_record IS
  'Record tokens used by a principal on an integration at a time; returns the event id';
COMMENT ON FUNCTION spendguard.usage_cap_check IS
  'Tokens used in the trailing window; allowed while used < token_budget. Reads only';
COMMENT ON FUNCTION spendguard.usage_cap_enforce IS
  'usage_cap_check that raises SG020 instead of returning allowed = false';
COMMENT ON FUNCTION spendguard.usage_cap_charge IS
  'Atomically check and, when used + tokens <= token_budget, record the tokens; exact under concurrency';
COMMENT ON FUNCTION spendguard.call_cap_charge IS
  'Atomically count one call of a tool by a principal when fewer than max_calls are in the trailing window';
COMMENT ON FUNCTION spendguard.usage_purge IS
  'Delete the current tenant''s usage and call events recorded before a time; returns how many';

-- Proposals and the tool-call audit log (SPEC §4)
COMMENT ON FUNCTION spendguard.canonical_json IS
  'JSON text with keys sorted (by UTF-8 bytes) at every level, no insignificant whitespace, numbers as jsonb prints them';
COMMENT ON FUNCTION spendguard.args_hash IS 'Lowercase hex SHA-256 of spendguard.canonical_json';
COMMENT ON FUNCTION spendguard.proposal_create IS
  'Propose a tool call: returns a single-use token propose:<id>.<nonce> (only the nonce''s hash is stored), or duplicate_of an identical proposal in flight';
COMMENT ON FUNCTION spendguard.proposal_consume IS
  'Apply a proposal once: SG010 bad token, SG011 expired, SG012 already closed, SG013 other arguments; stamps the applier';
COMMENT ON FUNCTION spendguard.proposal_reject IS 'Reject a proposal by its token; stamps who rejected it';
COMMENT ON FUNCTION spendguard.proposal_get IS 'One tool call or proposal of the current tenant by id (no nonce material), or no row';
COMMENT ON FUNCTION spendguard.proposal_expire_stale IS
  'Mark the current tenant''s proposals past expires_at as expired (kept as history); returns how many';
COMMENT ON FUNCTION spendguard.tool_call_record IS 'Audit a directly executed or failed tool call; returns its id';
COMMENT ON FUNCTION spendguard.tool_calls IS
  'The tool-call audit log of the current tenant, newest first, filtered by principal, tool, status and conversation';
