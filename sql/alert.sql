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
  -- every key starts with the tenant (SPEC §10)
  PRIMARY KEY (tenant_id, id),
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
    FROM (SELECT x.tenant_id, x.id FROM spendguard.alert x
          WHERE x.delivered_at IS NULL AND (x.claimed_until IS NULL OR x.claimed_until <= now())
          ORDER BY x.id LIMIT max_rows
          FOR UPDATE SKIP LOCKED) c
    WHERE a.tenant_id = c.tenant_id AND a.id = c.id
    RETURNING a.*;
END
$$;

-- Marks the current tenant's alerts delivered; returns how many were not
-- delivered before (an ack of an acked or unknown id counts nothing).
CREATE FUNCTION spendguard.alert_ack(ids bigint[]) RETURNS bigint
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
