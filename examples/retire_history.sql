-- Retiring old budget events, for pg_cron (or any scheduler).
--
-- spendguard.budget_retire_events(before, ...) retires the current tenant's
-- history (SPEC §0: a function reads and writes only the current tenant's
-- rows). This procedure serves every tenant (or the ones named): it runs
-- as a superuser or the extension owner, and retires one budget per
-- transaction, so no budget's row lock is held for longer than its own
-- retirement takes. A budget whose history does not verify is kept as it is
-- (its history is the evidence) and reported with a WARNING.
--
-- Install, in the database that has spendguard, as a superuser:
--   \i examples/retire_history.sql
-- Run by hand (CALL must not be inside a transaction block):
--   CALL spendguard_ops.retire_history(now() - interval '90 days');
-- or every night with pg_cron (see examples/sweep_all_tenants.sql for the
-- pg_cron set-up):
--   SELECT cron.schedule('spendguard-retire-history', '15 3 * * *',
--     $$CALL spendguard_ops.retire_history(now() - interval '90 days')$$);
-- Choose the age past the longest time a client may retry a call: the
-- event_id of a retired event is forgotten with it (docs/operations.md).

CREATE SCHEMA IF NOT EXISTS spendguard_ops;
REVOKE ALL ON SCHEMA spendguard_ops FROM PUBLIC;

CREATE OR REPLACE PROCEDURE spendguard_ops.retire_history(
  before timestamptz, tenants text[] DEFAULT NULL,
  INOUT retired bigint DEFAULT 0, INOUT kept_broken integer DEFAULT 0)
LANGUAGE plpgsql AS $$
DECLARE
  b record;
  n bigint;
BEGIN
  FOR b IN
    SELECT DISTINCT e.tenant_id, e.capability_id, e.grant_index
    FROM spendguard.budget_event e
    WHERE e.recorded_at < before AND (tenants IS NULL OR e.tenant_id = ANY (tenants))
    ORDER BY 1, 2, 3
  LOOP
    PERFORM set_config('spendguard.tenant', b.tenant_id, true);
    BEGIN
      SELECT coalesce(sum(r.retired_events), 0) INTO n
      FROM spendguard.budget_retire_events(before, b.capability_id, b.grant_index) r;
      retired := retired + n;
    EXCEPTION WHEN SQLSTATE 'SG006' THEN
      RAISE WARNING 'tenant %, budget (%, %): %', b.tenant_id, b.capability_id, b.grant_index, SQLERRM;
      kept_broken := kept_broken + 1;
    END;
    COMMIT;
  END LOOP;
END
$$;
COMMENT ON PROCEDURE spendguard_ops.retire_history(timestamptz, text[], bigint, integer) IS
  'Retire budget events recorded before a time, every tenant (or those named), one budget per transaction';
