-- spendguard: scale-out on Citus (SPEC §10, docs/scale-out.md).
--
-- Every table is distributed by tenant_id, all colocated with
-- budget_usage: a tenant's rows live in one shard group on one node, and
-- every statement a decision runs names its tenant, so Citus routes it to
-- that node alone (a router query), inside the caller's transaction.
-- Nothing here needs Citus to be installed: citus_distribute() looks for it
-- when it is called, and says so when it is not there.

-- The extension's tables, the budgets first (the colocation anchor).
CREATE FUNCTION spendguard.citus_tables() RETURNS SETOF regclass
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
BEGIN
  RETURN QUERY
  SELECT c.oid::regclass
  FROM pg_class c
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  JOIN pg_extension x ON x.oid = d.refobjid AND x.extname = 'spendguard'
  WHERE c.relkind IN ('r', 'p')
  ORDER BY c.oid <> 'spendguard.budget_usage'::regclass, c.relname;
END
$$;

-- Run once, on the Citus coordinator, after CREATE EXTENSION spendguard
-- (by a superuser or the extension owner). Distributes every table by
-- tenant_id, colocated; tables already distributed are left as they are,
-- so it can run again (after an update that adds a table). Returns one row
-- per table and what it did.
CREATE FUNCTION spendguard.citus_distribute()
RETURNS TABLE (table_name regclass, action text)
LANGUAGE plpgsql SET search_path = pg_catalog SET client_min_messages = warning AS $$
DECLARE
  t regclass;
  had_rows boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'citus_distribute needs Citus: the citus extension is not installed in database %',
      current_database()
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'CREATE EXTENSION citus (with citus in shared_preload_libraries) on the coordinator and every worker first';
  END IF;
  IF NOT spendguard.citus_is_coordinator() THEN
    RAISE EXCEPTION 'citus_distribute runs on the Citus coordinator, and this node is a worker'
      USING ERRCODE = 'object_not_in_prerequisite_state';
  END IF;
  -- The append-only triggers of budget_event, budget_checkpoint and price
  -- (row triggers on the shards, each reading only colocated shards).
  SET LOCAL citus.enable_unsafe_triggers = on;
  FOR t IN SELECT * FROM spendguard.citus_tables() LOOP
    table_name := t;
    IF EXISTS (SELECT 1 FROM pg_dist_partition p WHERE p.logicalrelid = t) THEN
      action := 'already distributed';
    ELSE
      EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', t) INTO had_rows;
      PERFORM create_distributed_table(t, 'tenant_id',
        colocate_with => CASE WHEN t = 'spendguard.budget_usage'::regclass THEN 'default'
                              ELSE 'spendguard.budget_usage' END);
      IF had_rows THEN
        -- the rows were copied into the shards; the local copy is dead weight
        PERFORM truncate_local_data_after_distributing_table(t);
      END IF;
      action := 'distributed';
    END IF;
    RETURN NEXT;
  END LOOP;
  -- The event log's trigger reads the checkpoints from inside a shard
  -- query: the checkpoint shard is colocated (same node, same transaction),
  -- so the nested read is local.
  ALTER FUNCTION spendguard.refuse_event_change() SET citus.allow_nested_distributed_execution = on;
END
$$;

-- Whether this node is the Citus coordinator (false without Citus).
CREATE FUNCTION spendguard.citus_is_coordinator() RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
  r boolean;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RETURN false;
  END IF;
  EXECUTE 'SELECT citus_is_coordinator()' INTO r;
  RETURN r;
END
$$;

-- The tenant's shard group pinned for the rest of the transaction (nothing
-- without Citus): the share lock on its shards' metadata that a Citus
-- write takes and a shard move waits for. A function whose first statement
-- is a locking read calls it first, so that it cannot read a row on the
-- placement a move is leaving and write on the new one (the Rust
-- functions do the same, src/spi.rs).
CREATE FUNCTION spendguard.citus_pin_tenant(tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog AS $$
DECLARE
  distributed boolean;
BEGIN
  IF tenant IS NULL THEN
    RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('tenant', tenant);
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus') THEN
    RETURN;
  END IF;
  EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_dist_partition
                          WHERE logicalrelid = ''spendguard.budget_usage''::regclass)'
    INTO distributed;
  IF distributed THEN
    EXECUTE 'SELECT lock_shard_metadata(5, ARRAY[get_shard_id_for_distribution_column(
               ''spendguard.budget_usage'', $1)])' USING tenant;
  END IF;
END
$$;
