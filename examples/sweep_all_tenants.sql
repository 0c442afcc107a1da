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
--                        'SELECT spendguard_ops.expire_holds_all_tenants()');
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
