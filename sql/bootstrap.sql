-- spendguard bootstrap: tables, types, constraints and indexes (SPEC.md §0, §1).
-- Loaded first by extension_sql_file!(…, bootstrap); the Rust functions are
-- created after it, and sql/finalize.sql last.

-- One database-wide counter for event_seq / commit_index. CACHE 1 (the
-- default) matters: with a per-backend cache, two backends could commit
-- values out of order along one budget's history.
CREATE SEQUENCE spendguard.commit_seq AS bigint CACHE 1;
COMMENT ON SEQUENCE spendguard.commit_seq IS
  'Database-wide commit index: event_seq of every event, seq of every budget mutation';
-- Tables and sequences an extension creates are left out of pg_dump unless
-- registered: every one that holds user data is (docs/operations.md "Backup
-- and restore"; tests/pg_regress/sql/dump.sql fails for one that is not).
-- A restore then sets the sequence to its dumped value, so a new event is
-- newer than every restored one.
SELECT pg_catalog.pg_extension_config_dump('spendguard.commit_seq', '');

-- Every enumeration once (spendguard_core::enums has the same labels; a
-- #[pg_test] compares them): a domain over text, the type of every column
-- that holds it. Clients see text. spendguard.check_enum validates an
-- argument against one with the Rust functions' message.
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

-- CHECK constraints cost a re-read of their expression on every INSERT and
-- UPDATE statement, so the hot tables carry the ones that guard money (the
-- counters) and leave argument checks (empty ids, negative grant index) to
-- the functions, the only writers.
CREATE TABLE spendguard.budget_usage (
  tenant_id           text        NOT NULL,
  capability_id       text        NOT NULL,
  grant_index         integer     NOT NULL,
  invocation_count    bigint      NOT NULL DEFAULT 0 CHECK (invocation_count >= 0),
  total_cost_exposed  bigint      NOT NULL DEFAULT 0 CHECK (total_cost_exposed >= 0),
  total_cost_realized bigint      NOT NULL DEFAULT 0 CHECK (total_cost_realized >= 0),
  seq                 bigint      NOT NULL DEFAULT 0,
  updated_at          timestamptz NOT NULL DEFAULT now(),
  -- the head of the budget's hash chain (SPEC §9, sql/chain.sql): its last
  -- link's chain_n and hash; 0 and NULL before the first
  chain_n             bigint      NOT NULL DEFAULT 0 CHECK (chain_n >= 0),
  chain_hash          bytea,
  PRIMARY KEY (tenant_id, capability_id, grant_index),
  CONSTRAINT budget_usage_chain_head CHECK ((chain_n = 0) = (chain_hash IS NULL)),
  -- committed cost = exposed + realized must itself be a bigint
  CONSTRAINT budget_usage_committed_fits
    CHECK (total_cost_exposed <= 9223372036854775807 - total_cost_realized)
);
COMMENT ON TABLE spendguard.budget_usage IS
  'One row per budget (capability_id, grant_index): invocation count, open exposure and realized spend';
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_usage', '');
-- No index on updated_at: every mutation changes it, and an index on it
-- would make each usage UPDATE a non-HOT update (new entries in every index).

CREATE TABLE spendguard.budget_hold (
  tenant_id           text        NOT NULL,
  hold_id             text        NOT NULL CHECK (hold_id <> ''),
  capability_id       text        NOT NULL,
  grant_index         integer     NOT NULL,
  authorized_exposure bigint      NOT NULL CHECK (authorized_exposure >= 0),
  remaining_exposure  bigint      NOT NULL CHECK (remaining_exposure >= 0),
  realized_spend      bigint      NOT NULL DEFAULT 0 CHECK (realized_spend >= 0),
  disposition         spendguard.hold_disposition NOT NULL DEFAULT 'open',
  authority_id        text,
  lease_id            text,
  lease_epoch         bigint      CHECK (lease_epoch >= 0),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  -- NULL: never expires. From expires_at on the hold is no longer open
  -- (SPEC §1 "Hold expiry"), swept or not.
  expires_at          timestamptz,
  PRIMARY KEY (tenant_id, hold_id),
  CHECK (remaining_exposure <= authorized_exposure),
  CHECK (disposition = 'open' OR remaining_exposure = 0),
  CHECK ((authority_id IS NULL) = (lease_id IS NULL) AND (lease_id IS NULL) = (lease_epoch IS NULL))
  -- No foreign key to budget_usage (nor from spend_reservation or
  -- budget_checkpoint): pg_restore -j loads the tables' rows in parallel,
  -- each in its own transaction, and does not order the rows of an
  -- extension's tables by their foreign keys, so a hold could be loaded
  -- before its budget and the restore would fail. The functions, the only
  -- writers, write the budget first; verify() reports a hold, checkpoint
  -- or reservation without its budget or hold (usage.exists, hold.exists,
  -- reservation.hold).
);
COMMENT ON TABLE spendguard.budget_hold IS
  'Two-phase holds: exposure authorized against a budget, then released, reversed or reconciled';
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_hold', '');
CREATE INDEX budget_hold_budget ON spendguard.budget_hold (tenant_id, capability_id, grant_index);
-- Open holds with a TTL, oldest expiry first: per tenant for the sweep
-- (budget_expire_holds), per budget for the lazy expiry on the deny path.
-- Only holds with a TTL that are still open are in them, so they stay as
-- small as the backlog of holds the sweep has not reached yet.
-- hold_id last: the sweep's order (expires_at, hold_id) is the index order,
-- so LIMIT stops the scan instead of sorting the whole backlog.
CREATE INDEX budget_hold_expiry ON spendguard.budget_hold (tenant_id, expires_at, hold_id)
  WHERE disposition = 'open' AND expires_at IS NOT NULL;
-- Without hold_id: the tenant, a capability id and a hold id of 1,024
-- incompressible bytes each pass PostgreSQL's limit for an index entry
-- (SPEC §0 allows them). A budget's due holds are taken by expires_at
-- alone (ties in index order).
CREATE INDEX budget_hold_budget_expiry
  ON spendguard.budget_hold (tenant_id, capability_id, grant_index, expires_at)
  WHERE disposition = 'open' AND expires_at IS NOT NULL;

CREATE TYPE spendguard.budget_event_kind AS ENUM (
  'increment_invocation', 'authorize_exposure', 'reverse_exposure', 'release_exposure',
  'reconcile_spend', 'expire_exposure');
COMMENT ON TYPE spendguard.budget_event_kind IS 'What a budget event did';

CREATE TABLE spendguard.budget_event (
  tenant_id                 text        NOT NULL,
  event_seq                 bigint      NOT NULL,
  event_id                  text,
  request_fingerprint       text,
  hold_id                   text,
  capability_id             text        NOT NULL,
  grant_index               integer     NOT NULL,
  kind                      spendguard.budget_event_kind NOT NULL,
  allowed                   boolean     NOT NULL,
  denial_reason             text,
  recorded_at               timestamptz NOT NULL DEFAULT now(),
  exposure_units            bigint      NOT NULL DEFAULT 0,
  realized_spend_units      bigint      NOT NULL DEFAULT 0,
  max_invocations           bigint,
  max_cost_per_invocation   bigint,
  max_total_cost            bigint,
  invocation_count_after    bigint      NOT NULL,
  total_cost_exposed_after  bigint      NOT NULL,
  total_cost_realized_after bigint      NOT NULL,
  authority_id              text,
  lease_id                  text,
  lease_epoch               bigint,
  guarantee_level           text        NOT NULL,
  -- SPEC §9: the event's link in its budget's hash chain (1, 2, 3 … per
  -- budget), the previous link's hash and this one's: SHA-256 over every
  -- column above as stored (spendguard_core::chain::event_link)
  chain_n                   bigint      NOT NULL,
  prev_hash                 bytea       NOT NULL,
  hash                      bytea       NOT NULL,
  PRIMARY KEY (tenant_id, event_seq)
);
COMMENT ON TABLE spendguard.budget_event IS
  'Append-only log of every budget decision and mutation, denials included';
SELECT pg_catalog.pg_extension_config_dump('spendguard.budget_event', '');
CREATE UNIQUE INDEX budget_event_event_id ON spendguard.budget_event (tenant_id, event_id)
  WHERE event_id IS NOT NULL;
CREATE INDEX budget_event_budget ON spendguard.budget_event (tenant_id, capability_id, grant_index, event_seq);

-- The event log is append-only: no UPDATE, DELETE or TRUNCATE, not even by
-- the owner. (DROP EXTENSION still drops it.) The one exception is history
-- retirement (sql/retire.sql): an event may be deleted once a checkpoint of
-- its budget covers it, i.e. once its effect is folded into that checkpoint.
CREATE FUNCTION spendguard.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  IF TG_OP = 'DELETE' AND EXISTS (
       SELECT 1 FROM spendguard.budget_checkpoint k
       WHERE k.tenant_id = OLD.tenant_id AND k.capability_id = OLD.capability_id
         AND k.grant_index = OLD.grant_index AND k.through_seq >= OLD.event_seq) THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'spendguard.budget_event is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION spendguard.refuse_event_change() IS
  'Trigger function that keeps spendguard.budget_event append-only';
CREATE TRIGGER budget_event_append_only BEFORE UPDATE OR DELETE ON spendguard.budget_event
  FOR EACH ROW EXECUTE FUNCTION spendguard.refuse_event_change();
CREATE TRIGGER budget_event_no_truncate BEFORE TRUNCATE ON spendguard.budget_event
  FOR EACH STATEMENT EXECUTE FUNCTION spendguard.refuse_event_change();

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

-- What every reader checks first, before and whatever it reads: `lim`
-- (when it has one) is not negative (22023, not LIMIT's 2201W), and the
-- current tenant is valid (22023, SG030, 42704 as for every call). A reader
-- whose query does not run (LIMIT 0, or no row to filter) must fail the
-- same way as one that does.
CREATE FUNCTION spendguard.check_reader(lim integer DEFAULT NULL) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
BEGIN
  IF lim < 0 THEN
    RAISE EXCEPTION 'lim must be >= 0, got %', lim USING ERRCODE = 'invalid_parameter_value';
  END IF;
  PERFORM spendguard.current_tenant();
END
$$;

-- The same rule and message as spendguard_core::validate::grant_index.
CREATE FUNCTION spendguard.check_grant_index(grant_index integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog AS $$
BEGIN
  IF grant_index < 0 THEN
    RAISE EXCEPTION 'grant_index must be >= 0, got %', grant_index
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
END
$$;

CREATE TYPE spendguard.hold_decision AS (
  authorized             boolean,
  denial_reason          text,
  hold_id                text,
  exposure_units         bigint,
  committed_cost_after   bigint,
  invocation_count_after bigint,
  commit_index           bigint,
  event_id               text,
  guarantee_level        text,
  budget_term            text
);
COMMENT ON TYPE spendguard.hold_decision IS 'Result of spendguard.budget_authorize_hold';

CREATE TYPE spendguard.hold_mutation AS (
  hold_id                text,
  kind                   text,
  exposure_units         bigint,
  realized_spend_units   bigint,
  committed_cost_after   bigint,
  invocation_count_after bigint,
  commit_index           bigint,
  event_id               text,
  guarantee_level        text,
  budget_term            text
);
COMMENT ON TYPE spendguard.hold_mutation IS
  'Result of spendguard.budget_release_hold, _reverse_hold, _reconcile_hold and _capture_hold';
