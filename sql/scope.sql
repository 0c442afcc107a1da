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
  -- true on every budget of a scope that has escrow slices (scope_slice
  -- rows): decisions then lock a slice, not these rows. Once set, it stays.
  sliced         boolean     NOT NULL DEFAULT false,
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
  -- the escrow slice each scope's hold was opened on, in the order of
  -- scopes (NULL: slice 0 everywhere, the scope's own family)
  scope_slices        integer[],
  CONSTRAINT scope_reservation_scope_slices_check
    CHECK (cardinality(scope_slices) = cardinality(scopes)
           AND 0 <= ALL (scope_slices) AND 63 >= ALL (scope_slices)),
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

-- Escrow slices of a sliced scope (SPEC §6 `slices`, docs/performance.md):
-- one row per slice, its lock taken by a decision instead of the scope's
-- budget rows. Slice k's spend and reservations are the §1 budgets of
-- capability 'scope:<digest>/k' (slice 0: the scope's own family). Each row
-- keeps, for the budgets of the scope (arrays indexed by period: day,
-- week, month, total), the split written by the last decision on the whole
-- budget (spendguard_core::escrow): the limit and period start it was made
-- for, the slice's quota (room: spent + reserved may grow to it) and line
-- (spend must stay below it, so that no alert threshold is crossed
-- unseen). NULL limits: no valid split, the next decision takes every
-- slice. Rows are never deleted: a scope's spend stays in its families.
CREATE TABLE spendguard.scope_slice (
  tenant_id text    NOT NULL,
  scope     text    COLLATE "C" NOT NULL CHECK (scope <> ''),
  slice     integer NOT NULL,
  -- how many slice families the scope has (every row the same)
  families  integer NOT NULL CHECK (families BETWEEN 1 AND 64),
  -- decisions take one of the first `slices` (the largest `slices` of the
  -- scope's budgets); the others only keep what they hold
  slices    integer NOT NULL CHECK (slices BETWEEN 1 AND 64 AND slices <= families),
  limits    bigint[]  CHECK (cardinality(limits) = 4 AND 0 <= ALL (limits)),
  starts    integer[] CHECK (cardinality(starts) = 4 AND 0 <= ALL (starts)),
  quotas    bigint[]  CHECK (cardinality(quotas) = 4 AND 0 <= ALL (quotas)),
  lines     bigint[]  CHECK (cardinality(lines) = 4 AND 0 <= ALL (lines)),
  PRIMARY KEY (tenant_id, scope, slice),
  CHECK (slice >= 0 AND slice < families),
  CHECK ((limits IS NULL) = (starts IS NULL) AND (limits IS NULL) = (quotas IS NULL)
         AND (limits IS NULL) = (lines IS NULL))
);
COMMENT ON TABLE spendguard.scope_slice IS
  'Escrow slices of sliced scopes: one lock per slice, each with its share (quota and alert line) of every budget of the scope';
SELECT pg_catalog.pg_extension_config_dump('spendguard.scope_slice', '');

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
