-- The expiry sweep for every tenant, for pg_cron (or any scheduler).
--
-- budget_expire_holds() sweeps the current tenant only (SPEC §0: every
-- function reads and writes only rows of the current tenant). A job that
-- serves all tenants runs as a superuser (or the extension owner, whom
-- row level security does not filter), finds the tenants with holds due,
-- and sweeps each one in turn. Run it as often as you want expired holds
-- to give their exposure back; an authorize that would be denied expires
-- its own budget's due holds anyway, so the sweep only keeps
-- budget_usage / budget_holds tidy for readers and reports.
--
-- Install, in the database that has spendguard, as a superuser:
--   \i examples/sweep_all_tenants.sql
--   CREATE EXTENSION pg_cron;   -- Debian: apt-get install postgresql-15-cron,
--                               -- shared_preload_libraries = 'pg_cron',
--                               -- cron.database_name = '<this database>'
--   SELECT cron.schedule('spendguard-expire-holds', '* * * * *',
--                        'CALL spendguard_ops.expire_holds_all_tenants_batched()');
-- (the procedure at the end of this file; the function below does the same
-- in one transaction, holding every budget it sweeps until it ends).
-- Several schedulers at once are safe (a worker in every pod, say): each
-- hold expires once, and a busy budget is skipped, not waited for.

CREATE SCHEMA IF NOT EXISTS spendguard_ops;
REVOKE ALL ON SCHEMA spendguard_ops FROM PUBLIC;

CREATE OR REPLACE FUNCTION spendguard_ops.expire_holds_all_tenants(lim_per_tenant integer DEFAULT 10000)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  t text;
  n bigint := 0;
BEGIN
  FOR t IN
    SELECT DISTINCT h.tenant_id FROM spendguard.budget_hold h
    WHERE h.disposition = 'open' AND h.expires_at <= now()
  LOOP
    PERFORM set_config('spendguard.tenant', t, true);
    n := n + spendguard.budget_expire_holds(now(), lim_per_tenant);
  END LOOP;
  RETURN n;
END
$$;
COMMENT ON FUNCTION spendguard_ops.expire_holds_all_tenants(integer) IS
  'Runs spendguard.budget_expire_holds() for every tenant that has holds due; for pg_cron';

-- The same without stalling decisions (issue 21): a procedure that sweeps
-- each tenant with spendguard.budget_expire_holds_all, which commits after
-- every batch of holds, so no budget stays locked for the whole job. CALL
-- it at top level (pg_cron runs each job's command so):
--   SELECT cron.schedule('spendguard-expire-holds', '* * * * *',
--                        'CALL spendguard_ops.expire_holds_all_tenants_batched()');
CREATE OR REPLACE PROCEDURE spendguard_ops.expire_holds_all_tenants_batched(
  INOUT expired bigint DEFAULT NULL, batch integer DEFAULT 100)
LANGUAGE plpgsql AS $$
DECLARE
  tenants text[];
  i integer;
  n bigint;
BEGIN
  SELECT array_agg(DISTINCT h.tenant_id) INTO tenants FROM spendguard.budget_hold h
  WHERE h.disposition = 'open' AND h.expires_at <= now();
  expired := 0;
  FOR i IN 1 .. coalesce(array_length(tenants, 1), 0) LOOP
    -- a session setting: the procedure's commits end transaction-local ones
    PERFORM set_config('spendguard.tenant', tenants[i], false);
    n := NULL;
    CALL spendguard.budget_expire_holds_all(n, NULL, batch);
    expired := expired + n;
  END LOOP;
  RESET spendguard.tenant;
END
$$;
COMMENT ON PROCEDURE spendguard_ops.expire_holds_all_tenants_batched(bigint, integer) IS
  'Runs CALL spendguard.budget_expire_holds_all() for every tenant that has holds due, committing per batch; for pg_cron';
