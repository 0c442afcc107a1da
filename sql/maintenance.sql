-- spendguard: maintenance that never stalls a decision (issue 21).
--
-- budget_expire_holds and budget_retire_events are functions: whatever
-- budgets one call locks stay locked until the caller's transaction
-- commits, so a large sweep or a retirement of the whole log holds up
-- every decision on those budgets for the whole call. These procedures
-- do the same work in small transactions, committing after each batch of
-- holds or each budget, so a decision waits at most for one batch or one
-- budget. CALL them at top level (psql, pg_cron): inside a transaction
-- block PostgreSQL refuses their COMMIT (2D000).
--
-- Procedures that commit cannot be SECURITY DEFINER nor carry SET
-- clauses: they run as the caller and call the functions, which are
-- SECURITY DEFINER; every name in them is schema-qualified.

-- The current tenant's budgets that have events recorded before `before`
-- after their newest checkpoint: what budget_retire_events_all works
-- through, one budget per transaction. Per budget, the per-budget event
-- index from its newest checkpoint on, up to the first event before
-- `before`: the retired log and other budgets' history are not read.
CREATE FUNCTION spendguard.retire_candidates(before timestamptz)
RETURNS TABLE (capability_id text, grant_index integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  IF $1 IS NULL THEN
    RAISE EXCEPTION 'before must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  RETURN QUERY
    SELECT u.capability_id, u.grant_index
    FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant
      AND EXISTS (
        SELECT 1 FROM spendguard.budget_event e
        WHERE e.tenant_id = u.tenant_id AND e.capability_id = u.capability_id
          AND e.grant_index = u.grant_index AND e.recorded_at < $1
          AND e.event_seq > coalesce(
            (SELECT max(k.through_seq) FROM spendguard.budget_checkpoint k
             WHERE k.tenant_id = u.tenant_id AND k.capability_id = u.capability_id
               AND k.grant_index = u.grant_index), 0))
    ORDER BY u.capability_id COLLATE "C", u.grant_index;
END
$$;

-- budget_expire_holds in batches of `batch` holds (1..10000, else
-- 22023), committing after each, until a batch expires none (what is
-- left is due later, or belongs to budgets busy right now: the next sweep
-- gets them). `now` is fixed at the first batch. Returns how many holds
-- it expired.
CREATE PROCEDURE spendguard.budget_expire_holds_all(
  INOUT expired bigint DEFAULT NULL, now timestamptz DEFAULT NULL, batch integer DEFAULT 100)
LANGUAGE plpgsql AS $$
DECLARE
  at timestamptz := coalesce(now, pg_catalog.now());
  n bigint;
BEGIN
  IF batch IS NULL OR batch < 1 OR batch > 10000 THEN
    RAISE EXCEPTION 'batch must be between 1 and 10000, got %', coalesce(batch::text, 'NULL')
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  expired := 0;
  LOOP
    n := spendguard.budget_expire_holds(at, batch);
    expired := expired + n;
    COMMIT;
    EXIT WHEN n = 0;
  END LOOP;
END
$$;

-- budget_retire_events for each of the current tenant's budgets with
-- history recorded before `before`, one budget per transaction. Returns
-- how many events it retired.
CREATE PROCEDURE spendguard.budget_retire_events_all(
  before timestamptz, INOUT retired bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
  caps text[];
  grants integer[];
  i integer;
  n bigint;
BEGIN
  SELECT pg_catalog.array_agg(c.capability_id), pg_catalog.array_agg(c.grant_index)
    INTO caps, grants
  FROM spendguard.retire_candidates(before) c;
  COMMIT;
  retired := 0;
  FOR i IN 1 .. coalesce(pg_catalog.array_length(caps, 1), 0) LOOP
    SELECT coalesce(pg_catalog.sum(r.retired_events), 0) INTO n
    FROM spendguard.budget_retire_events(before, caps[i], grants[i]) r;
    retired := retired + n;
    COMMIT;
  END LOOP;
END
$$;
