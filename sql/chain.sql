-- spendguard: the hash chain of the event log (SPEC §9).
--
-- Every budget's events form a chain: each event carries chain_n (1, 2, 3
-- … per budget), prev_hash (the previous link's hash; the first one's is
-- chain_genesis of the budget's key) and hash, SHA-256 over a versioned,
-- length-prefixed encoding of prev_hash and every column of the event as
-- stored (spendguard_core::chain, docs/integrity.md). The writer appends
-- links under the budget's row lock and keeps the head on the budget row
-- (budget_usage.chain_n, chain_hash). History retirement appends a
-- checkpoint link (sql/retire.sql). verify() recomputes every kept link.

-- The hash of a stored event (the link function over its columns).
CREATE FUNCTION spendguard.event_hash(e spendguard.budget_event) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT spendguard.event_link(e.prev_hash, e.tenant_id, e.event_seq, e.event_id,
    e.request_fingerprint, e.hold_id, e.capability_id, e.grant_index, e.kind::text, e.allowed,
    e.denial_reason, e.recorded_at, e.exposure_units, e.realized_spend_units, e.max_invocations,
    e.max_cost_per_invocation, e.max_total_cost, e.invocation_count_after,
    e.total_cost_exposed_after, e.total_cost_realized_after, e.authority_id, e.lease_id,
    e.lease_epoch, e.guarantee_level, e.chain_n)
$$;

-- The hash of a stored checkpoint link.
CREATE FUNCTION spendguard.checkpoint_hash(k spendguard.budget_checkpoint) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT spendguard.checkpoint_link(k.prev_hash, k.tenant_id, k.capability_id, k.grant_index,
    k.through_seq, k.retired_before, k.retired_at, k.events, k.invocation_count,
    k.total_cost_exposed, k.total_cost_realized, k.unheld_exposed::text, k.last_allowed_seq,
    k.retired_holds, k.retired_hold_realized::text, k.cut_chain_n, k.cut_hash, k.chain_n)
$$;

-- Anchoring: the head of each of the current tenant's chains, in key order
-- (budgets without a link yet are not listed). recorded_at: when the head
-- link was written (the event's recorded_at, a checkpoint's retired_at).
CREATE FUNCTION spendguard.chain_heads()
RETURNS TABLE (capability_id text, grant_index integer, chain_n bigint, hash text,
               recorded_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  RETURN QUERY
    SELECT u.capability_id, u.grant_index, u.chain_n, encode(u.chain_hash, 'hex'),
      coalesce(
        (SELECT e.recorded_at FROM spendguard.budget_event e
         WHERE e.tenant_id = u.tenant_id AND e.capability_id = u.capability_id
           AND e.grant_index = u.grant_index AND e.chain_n = u.chain_n
         ORDER BY e.event_seq DESC LIMIT 1),
        (SELECT k.retired_at FROM spendguard.budget_checkpoint k
         WHERE k.tenant_id = u.tenant_id AND k.capability_id = u.capability_id
           AND k.grant_index = u.grant_index AND k.chain_n = u.chain_n
         LIMIT 1))
    FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant AND u.chain_n > 0
    ORDER BY u.capability_id COLLATE "C", u.grant_index;
END
$$;

-- Whether the link (capability_id, grant_index, chain_n) of the current
-- tenant still has the hash an anchor recorded: 'ok', 'mismatch' (another
-- hash, or no such link: a deleted tail, an unknown budget), or 'retired'
-- (behind the budget's newest retirement cut: the checkpoint carries the
-- cut's chain_n and hash to compare with instead).
CREATE FUNCTION spendguard.verify_anchor(
  capability_id text, grant_index integer, chain_n bigint, hash text)
RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t text;
  want bytea;
  cut bigint;
  found bytea;
BEGIN
  PERFORM spendguard.check_reader();
  IF $1 IS NULL OR $2 IS NULL OR $3 IS NULL OR $4 IS NULL THEN
    RAISE EXCEPTION 'verify_anchor needs capability_id, grant_index, chain_n and hash (a NULL was given)'
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('capability_id', $1);
  PERFORM spendguard.check_grant_index($2);
  IF $3 < 1 THEN
    RAISE EXCEPTION 'chain_n must be >= 1, got %', $3 USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF $4 !~ '^[0-9A-Fa-f]{64}$' THEN
    RAISE EXCEPTION 'hash must be 64 hexadecimal digits (a SHA-256), got % characters', length($4)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  want := decode($4, 'hex');
  t := spendguard.current_tenant();

  SELECT k.cut_chain_n INTO cut FROM spendguard.budget_checkpoint k
  WHERE k.tenant_id = t AND k.capability_id = $1 AND k.grant_index = $2
  ORDER BY k.through_seq DESC LIMIT 1;
  IF $3 <= coalesce(cut, 0) THEN
    RETURN 'retired';
  END IF;

  SELECT e.hash INTO found FROM spendguard.budget_event e
  WHERE e.tenant_id = t AND e.capability_id = $1 AND e.grant_index = $2 AND e.chain_n = $3
  ORDER BY e.event_seq LIMIT 1;
  IF found IS NULL THEN
    SELECT k.hash INTO found FROM spendguard.budget_checkpoint k
    WHERE k.tenant_id = t AND k.capability_id = $1 AND k.grant_index = $2 AND k.chain_n = $3
    ORDER BY k.through_seq LIMIT 1;
  END IF;
  RETURN CASE WHEN found = want THEN 'ok' ELSE 'mismatch' END;
END
$$;
