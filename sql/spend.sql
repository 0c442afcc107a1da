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
  spend_micros bigint NOT NULL CHECK (spend_micros >= 0)
);
COMMENT ON TABLE spendguard.daily_spend IS
  'Spend per user, group and UTC day, in micros: the record of every cost spendguard was told of';
SELECT pg_catalog.pg_extension_config_dump('spendguard.daily_spend', '');
-- The key of a row: the tenant, a digest of the user and group ids, the day.
-- Not a primary key on (tenant_id, user_id, group_id, day): with ids of
-- 1,024 incompressible bytes (SPEC §0) such an entry passes PostgreSQL's
-- limit for an index entry and the call fails (54000). spendguard.id_key is
-- SHA-256 of the length-prefixed ids (spendguard_core::key); lookups also
-- compare the ids themselves. An expression, not a column, so that the
-- row type spend_upsert_daily and spend_settle return stays as it was.
CREATE UNIQUE INDEX daily_spend_key
  ON spendguard.daily_spend (tenant_id, spendguard.id_key(user_id, group_id), day);
-- without a primary key, logical replication needs the whole row to find one
ALTER TABLE spendguard.daily_spend REPLICA IDENTITY FULL;
CREATE INDEX daily_spend_group ON spendguard.daily_spend (tenant_id, group_id, day);

-- Period budgets: the limit of each user of a group per UTC calendar period.
CREATE TABLE spendguard.spend_budget (
  tenant_id    text        NOT NULL,
  group_id     text        NOT NULL,
  limit_micros bigint      NOT NULL CHECK (limit_micros >= 0),
  period       spendguard.budget_period NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, group_id)
);
COMMENT ON TABLE spendguard.spend_budget IS
  'Group budgets: the limit each user of the group may spend per UTC day, week (from Monday) or month';
SELECT pg_catalog.pg_extension_config_dump('spendguard.spend_budget', '');

-- A user's own limit in a group; it beats the group budget (same period).
CREATE TABLE spendguard.spend_user_override (
  tenant_id    text        NOT NULL,
  user_id      text        NOT NULL,
  group_id     text        NOT NULL,
  limit_micros bigint      NOT NULL CHECK (limit_micros >= 0),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE spendguard.spend_user_override IS
  'Per-user limits in a group; they beat the group budget, in its period (a day when the group has none)';
SELECT pg_catalog.pg_extension_config_dump('spendguard.spend_user_override', '');
-- keyed like daily_spend (its ids can be as long)
CREATE UNIQUE INDEX spend_user_override_key
  ON spendguard.spend_user_override (tenant_id, spendguard.id_key(user_id, group_id));
ALTER TABLE spendguard.spend_user_override REPLICA IDENTITY FULL;

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
  status          spendguard.reservation_status NOT NULL DEFAULT 'open',
  cost_micros     bigint      CHECK (cost_micros >= 0),
  closed_at       timestamptz,
  -- its hold: (tenant_id, hold_id) of budget_hold; no foreign key, so that
  -- pg_restore -j can load both at once (sql/bootstrap.sql, budget_hold)
  PRIMARY KEY (tenant_id, hold_id),
  CHECK ((status = 'open') = (closed_at IS NULL)),
  CHECK ((status = 'settled') = (cost_micros IS NOT NULL))
);
COMMENT ON TABLE spendguard.spend_reservation IS
  'Reservations of spend_reserve: the hold of each, its user, group and UTC day, and how it was closed';
SELECT pg_catalog.pg_extension_config_dump('spendguard.spend_reservation', '');

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
