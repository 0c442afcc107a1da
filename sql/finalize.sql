-- spendguard finalize: readers, security, row level security, comments.
-- Loaded last by extension_sql_file!(…, finalize), after the Rust functions.

-- Readers ------------------------------------------------------------------
-- PL/pgSQL, every one: its plan cache plans each query for the values
-- given (a SQL function's one generic plan with parameters can scan whole
-- tables, and Citus cannot plan it for a distributed table, SPEC §10).

CREATE FUNCTION spendguard.budget_usage(capability_id text, grant_index integer)
RETURNS SETOF spendguard.budget_usage
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $1);
  PERFORM spendguard.check_grant_index($2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant
      AND u.capability_id = $1 AND u.grant_index = $2;
END
$$;

CREATE FUNCTION spendguard.budget_usages(lim integer DEFAULT 100, capability_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_usage
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $2);
  RETURN QUERY
    SELECT * FROM spendguard.budget_usage u
    WHERE u.tenant_id = sg_tenant
      AND ($2 IS NULL OR u.capability_id = $2)
    ORDER BY u.updated_at DESC, u.capability_id, u.grant_index
    LIMIT $1;
END
$$;

CREATE FUNCTION spendguard.budget_holds(
  lim integer DEFAULT 100, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL,
  disposition text DEFAULT NULL, hold_id text DEFAULT NULL)
RETURNS SETOF spendguard.budget_hold
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_grant_index($3);
  PERFORM spendguard.check_id('hold_id', $5);
  PERFORM spendguard.check_enum('disposition', $4, 'hold_disposition');
  RETURN QUERY
    SELECT * FROM spendguard.budget_hold h
    WHERE h.tenant_id = sg_tenant
      AND ($2 IS NULL OR h.capability_id = $2)
      AND ($3 IS NULL OR h.grant_index = $3)
      AND ($4 IS NULL OR h.disposition = $4)
      AND ($5 IS NULL OR h.hold_id = $5)
    ORDER BY h.created_at DESC, h.hold_id
    LIMIT $1;
END
$$;

-- The latest `lim` events, returned in commit order (oldest first).
-- PL/pgSQL so that the plan cache plans for the values given: with a budget
-- named, the per-budget index (budget_event_budget) is read, not the
-- tenant's whole log (a SQL function's generic plan did that).
CREATE FUNCTION spendguard.budget_events(
  lim integer DEFAULT 100, capability_id text DEFAULT NULL, grant_index integer DEFAULT NULL)
RETURNS SETOF spendguard.budget_event
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('capability_id', $2);
  PERFORM spendguard.check_grant_index($3);
  RETURN QUERY
    SELECT * FROM (
      SELECT * FROM spendguard.budget_event e
      WHERE e.tenant_id = sg_tenant
        AND ($2 IS NULL OR e.capability_id = $2)
        AND ($3 IS NULL OR e.grant_index = $3)
      ORDER BY e.event_seq DESC
      LIMIT $1
    ) latest
    ORDER BY latest.event_seq;
END
$$;

-- Proposals and the tool-call audit log (SPEC §4): readers; the row type
-- has no nonce material (the nonce hash lives in proposal_secret).
CREATE FUNCTION spendguard.proposal_get(id uuid)
RETURNS SETOF spendguard.tool_call
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader();
  sg_tenant := spendguard.current_tenant();
  RETURN QUERY
    SELECT * FROM spendguard.tool_call t
    WHERE t.tenant_id = sg_tenant AND t.id = $1;
END
$$;

-- The audit log, newest first, filtered by principal, tool, status and conversation.
CREATE FUNCTION spendguard.tool_calls(
  lim integer DEFAULT 100, principal_kind text DEFAULT NULL, principal_id text DEFAULT NULL,
  tool_name text DEFAULT NULL, status text DEFAULT NULL, conversation_id text DEFAULT NULL)
RETURNS SETOF spendguard.tool_call
LANGUAGE plpgsql STABLE AS $$
DECLARE
  sg_tenant text;
BEGIN
  PERFORM spendguard.check_reader($1);
  sg_tenant := spendguard.current_tenant();
  PERFORM spendguard.check_id('principal_id', $3);
  PERFORM spendguard.check_id('tool_name', $4);
  PERFORM spendguard.check_id('conversation_id', $6);
  PERFORM spendguard.check_enum('principal_kind', $2, 'principal_kind');
  PERFORM spendguard.check_enum('status', $5, 'tool_call_status');
  RETURN QUERY
    SELECT * FROM spendguard.tool_call t
    WHERE t.tenant_id = sg_tenant
      AND ($2 IS NULL OR t.principal_kind = $2)
      AND ($3 IS NULL OR t.principal_id = $3)
      AND ($4 IS NULL OR t.tool_name = $4)
      AND ($5 IS NULL OR t.status = $5)
      AND ($6 IS NULL OR t.conversation_id = $6)
    ORDER BY t.created_at DESC, t.id
    LIMIT $1;
END
$$;

-- Security (SPEC §5) -------------------------------------------------------
-- Callers change state only through the functions: every function that
-- touches the tables runs as the extension owner with a pinned search_path.

DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'spendguard'::regnamespace
      AND p.prorettype <> 'trigger'::regtype
      AND p.provolatile <> 'i'
      -- procedures that commit (sql/maintenance.sql) cannot be either
      AND p.prokind = 'f'
  LOOP
    EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f);
  END LOOP;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA spendguard FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA spendguard FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.refuse_event_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.refuse_checkpoint_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.refuse_price_change() FROM PUBLIC;
-- Claiming and acking across tenants is for a delivery worker's role, which
-- an admin grants them to (docs/alerts.md).
REVOKE ALL ON FUNCTION spendguard.alert_claim_all(text, integer, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.alert_ack_all(bigint[]) FROM PUBLIC;
-- Binding tenants to roles (SPEC §5): an admin's functions.
REVOKE ALL ON FUNCTION spendguard.tenant_grant(regrole, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.tenant_revoke(regrole, text) FROM PUBLIC;
-- Retiring history deletes audit rows: only the owner, or a role an admin
-- grants it to (docs/operations.md "Retiring history").
REVOKE ALL ON FUNCTION spendguard.budget_retire_events(timestamptz, text, integer) FROM PUBLIC;
REVOKE ALL ON PROCEDURE spendguard.budget_retire_events_all(timestamptz, bigint) FROM PUBLIC;
-- Distributing the tables on Citus (SPEC §10): the owner's, once.
REVOKE ALL ON FUNCTION spendguard.citus_distribute() FROM PUBLIC;
REVOKE ALL ON FUNCTION spendguard.citus_pin_tenant(text) FROM PUBLIC;

-- Direct reads (for roles an admin grants SELECT to) see the current tenant
-- only: every table of the schema has tenant_id and this policy.
DO $$
DECLARE t regclass;
BEGIN
  FOR t IN
    SELECT c.oid::regclass FROM pg_catalog.pg_class c
    WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind = 'r'
  LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %s USING (tenant_id = spendguard.current_tenant())', t);
  END LOOP;
END
$$;

-- Comments -----------------------------------------------------------------

COMMENT ON SCHEMA spendguard IS
  'spendguard: exact AI spend budgets, two-phase holds and agent action tokens';
COMMENT ON FUNCTION spendguard.budget_authorize_hold IS
  'Authorize exposure against a budget under its row lock; opens a hold when hold_id is given. A denial is a row, not an error';
COMMENT ON FUNCTION spendguard.budget_release_hold IS
  'Give back part or all of a hold''s exposure (or of a budget''s, without hold_id); the invocation count stays';
COMMENT ON FUNCTION spendguard.budget_reverse_hold IS
  'Undo an authorization that never ran: its exposure back and invocation_count - 1';
COMMENT ON FUNCTION spendguard.budget_reconcile_hold IS
  'Turn a hold''s exposure into realized spend (realized_spend <= exposed_cost)';
COMMENT ON FUNCTION spendguard.budget_capture_hold IS
  'Same as spendguard.budget_reconcile_hold';
COMMENT ON FUNCTION spendguard.budget_expire_holds IS
  'Expire the current tenant''s open holds past expires_at (at most lim, oldest first): exposure back, count stays, one expire_exposure event each; skips budgets other calls hold. Returns how many';
COMMENT ON FUNCTION spendguard.check_reader IS
  'What every reader checks first: lim >= 0 (22023) and the current tenant (22023, SG030, 42704), whatever it then reads';
COMMENT ON FUNCTION spendguard.check_grant_index IS
  'Raises 22023 for a negative grant_index; used by the readers';
COMMENT ON FUNCTION spendguard.id_key(text, text) IS
  'SHA-256 of the length-prefixed ids: what indexes hold instead of several ids of up to 1,024 bytes';
COMMENT ON FUNCTION spendguard.id_key(text, text, text) IS
  'SHA-256 of the length-prefixed ids: what indexes hold instead of several ids of up to 1,024 bytes';
COMMENT ON FUNCTION spendguard.check_enum IS
  'Raises 22023, with the message of the Rust functions, unless value is a label of the domain (spendguard_core::enums); NULL passes';
COMMENT ON FUNCTION spendguard.check_id IS
  'Raises 22023 for an empty id or one longer than 1,024 bytes (SPEC §0); used by the readers';
COMMENT ON FUNCTION spendguard.budget_try_increment IS
  'Count one invocation against max_invocations, no cost; true when counted';
COMMENT ON FUNCTION spendguard.current_tenant IS
  'The tenant of this call: spendguard.tenant, else ''default'' (SG030 when spendguard.require_tenant is on)';
COMMENT ON FUNCTION spendguard.guarantee_level IS
  'single_node_atomic, or ha_linearizable when commits wait for a synchronous standby';
COMMENT ON FUNCTION spendguard.budget_usage IS 'The usage row of one budget of the current tenant, or no row';
COMMENT ON FUNCTION spendguard.budget_usages IS 'Budgets of the current tenant, most recently updated first';
COMMENT ON FUNCTION spendguard.budget_holds IS
  'Holds of the current tenant with disposition, authorized and remaining exposure and expires_at, newest first';
COMMENT ON FUNCTION spendguard.budget_events IS
  'The latest lim events of the append-only budget log of the current tenant, in commit order';

-- Daily spend, period budgets and reservations (SPEC §2)
COMMENT ON FUNCTION spendguard.spend_upsert_daily IS
  'Add cost_micros (>= 0) to the user''s spend in the group on the UTC day of at; returns the day''s row';
COMMENT ON FUNCTION spendguard.spend_since IS
  'A user''s spend in a group from the UTC day of period_start on; 0 when none';
COMMENT ON FUNCTION spendguard.spend_group_since IS
  'A group''s spend, all users, from the UTC day of period_start on; 0 when none';
COMMENT ON FUNCTION spendguard.spend_set_group_budget IS
  'Set the limit of each user of a group per UTC day, week (from Monday) or month; a NULL limit removes it';
COMMENT ON FUNCTION spendguard.spend_set_user_override IS
  'Set a user''s own limit in a group (it beats the group budget); a NULL limit removes it';
COMMENT ON FUNCTION spendguard.spend_check IS
  'Would cost_micros fit the user''s limit in the period of at? Spend and open reservations count. Reads only';
COMMENT ON FUNCTION spendguard.spend_charge IS
  'Atomically check and, when it fits, record cost_micros; concurrent charges never pass the limit';
COMMENT ON FUNCTION spendguard.spend_charge_enforce IS
  'spend_charge that raises SG020 instead of returning allowed = false';
COMMENT ON FUNCTION spendguard.spend_reserve IS
  'Reserve an estimate against the user''s limit before the cost is known (a hold with a TTL); settle or cancel it once';
COMMENT ON FUNCTION spendguard.spend_settle IS
  'Record a reservation''s real cost on the UTC day of its at and close it (even above the estimate, even after it expired)';
COMMENT ON FUNCTION spendguard.spend_cancel IS 'Close a reservation without spend';
COMMENT ON FUNCTION spendguard.spend_purge IS
  'Delete the current tenant''s daily spend rows older than before; returns how many';

-- Scoped budgets (SPEC §6)
COMMENT ON FUNCTION spendguard.scope_set_budget IS
  'Set a scope''s limit per UTC day, week (from Monday), month or in total, one per period kind; 0 blocks everything, a NULL limit removes it (history stays)';
COMMENT ON FUNCTION spendguard.scope_reserve IS
  'Reserve an estimate in every budget of every listed scope, all or nothing, under locks taken in one order; a denial names the first blocking budget and shows the headroom of each';
COMMENT ON FUNCTION spendguard.scope_settle IS
  'Record a reservation''s real cost in every scope it names, in the periods of its at, and close it (even above the estimate, even after it expired)';
COMMENT ON FUNCTION spendguard.scope_cancel IS 'Close a scoped reservation without spend';
COMMENT ON FUNCTION spendguard.scope_charge IS
  'Check every budget of every listed scope and, when the cost fits all of them, record it in every scope: all or nothing';
COMMENT ON FUNCTION spendguard.scope_record IS
  'Record spend that already happened in every listed scope; never refused (budgets may show an overdraft)';
COMMENT ON FUNCTION spendguard.scope_usage IS
  'One row per scoped budget (of one scope, or all): the period that contains at, its limit, spend, open reservations and room left';
COMMENT ON FUNCTION spendguard.scope_spend IS
  'A scope''s spend per period of a kind, from the period that contains since to the one that contains until; periods it was named in';
COMMENT ON FUNCTION spendguard.scope_reserve_tokens IS
  'scope_reserve with the estimate priced from token maxima at at, as if no input were cached (SG040 when the model has no price then)';
COMMENT ON FUNCTION spendguard.scope_settle_tokens IS
  'scope_settle with the cost priced from tokens by the reservation''s own price row; the tokens are kept with the reservation';

-- Alerts (SPEC §7)
COMMENT ON FUNCTION spendguard.alert_claim IS
  'Lease up to max_rows undelivered alerts of the current tenant whose lease is free to consumer until now() + lease (SKIP LOCKED: no two consumers hold one alert)';
COMMENT ON FUNCTION spendguard.alert_claim_all IS
  'alert_claim across tenants (each row says its tenant_id), for a delivery worker''s role; not executable by PUBLIC';
COMMENT ON FUNCTION spendguard.alert_ack IS
  'Mark alerts of the current tenant delivered; returns how many were not delivered before';
COMMENT ON FUNCTION spendguard.alert_ack_all IS 'alert_ack across tenants; not executable by PUBLIC';
COMMENT ON FUNCTION spendguard.alerts IS
  'The alerts of the current tenant, oldest first, created since a time and of one scope when given';
COMMENT ON FUNCTION spendguard.check_claim IS
  'What the claim functions check first: consumer an id, max_rows >= 0, a lease of up to a day (22004, 22023)';

-- Tenants bound to roles (SPEC §5)
COMMENT ON FUNCTION spendguard.tenant_grant IS
  'Grant a tenant to a role: with spendguard.tenant_auth = role, members of the role may act for it. Not executable by PUBLIC';
COMMENT ON FUNCTION spendguard.tenant_revoke IS
  'Revoke a tenant from a role (takes effect at the role''s next call). Not executable by PUBLIC';

-- Prices (SPEC §8)
COMMENT ON FUNCTION spendguard.price_set IS
  'Add a price of a model per million tokens in micros from effective_from on; returns its id. Rows are never changed (22023 for a second row of the same model and time)';
COMMENT ON FUNCTION spendguard.price_cost IS
  'Micros of a call: ceil(((input - cached) x input + cached x cached + output x output rate) / 1e6) at the price in force at at; SG040 when there is none';

-- The hash chain of the event log (SPEC §9)
COMMENT ON FUNCTION spendguard.event_link IS
  'The hash of an event link from its stored columns (prev_hash first): SHA-256 over the versioned, length-prefixed encoding of docs/integrity.md; NULL for a malformed link';
COMMENT ON FUNCTION spendguard.checkpoint_link IS
  'The hash of a checkpoint link from its stored columns (prev_hash first; numerics as text), as event_link';
COMMENT ON FUNCTION spendguard.chain_genesis IS
  'The prev_hash of a budget''s first link, derived from its key';
COMMENT ON FUNCTION spendguard.event_hash(spendguard.budget_event) IS
  'event_link over a stored budget_event row';
COMMENT ON FUNCTION spendguard.checkpoint_hash(spendguard.budget_checkpoint) IS
  'checkpoint_link over a stored budget_checkpoint row';
COMMENT ON FUNCTION spendguard.chain_heads() IS
  'The head (last link) of each hash chain of the current tenant, in key order: what an anchor records';
COMMENT ON FUNCTION spendguard.chain_root() IS
  'SHA-256 over all chain heads of the current tenant in key order, and how many: a daily anchor to store outside the database';
COMMENT ON FUNCTION spendguard.verify_anchor(text, integer, bigint, text) IS
  'Whether a link an anchor recorded still has its hash: ok, mismatch, or retired (behind a retirement cut)';

-- Rolling-window caps (SPEC §3)
COMMENT ON FUNCTION spendguard.usage_record IS
  'Record tokens used by a principal on an integration at a time; returns the event id';
COMMENT ON FUNCTION spendguard.usage_cap_check IS
  'Tokens used in the trailing window; allowed while used < token_budget. Reads only';
COMMENT ON FUNCTION spendguard.usage_cap_enforce IS
  'usage_cap_check that raises SG020 instead of returning allowed = false';
COMMENT ON FUNCTION spendguard.usage_cap_charge IS
  'Atomically check and, when used + tokens <= token_budget, record the tokens; exact under concurrency';
COMMENT ON FUNCTION spendguard.call_cap_charge IS
  'Atomically count one call of a tool by a principal when fewer than max_calls are in the trailing window';
COMMENT ON FUNCTION spendguard.usage_purge IS
  'Delete the current tenant''s usage and call events recorded before a time; returns how many';

-- Proposals and the tool-call audit log (SPEC §4)
COMMENT ON FUNCTION spendguard.canonical_json IS
  'JSON text with keys sorted (by UTF-8 bytes) at every level, no insignificant whitespace, numbers as jsonb prints them';
COMMENT ON FUNCTION spendguard.args_hash IS 'Lowercase hex SHA-256 of spendguard.canonical_json';
COMMENT ON FUNCTION spendguard.proposal_create IS
  'Propose a tool call: returns a single-use token propose:<id>.<nonce> (only the nonce''s hash is stored), or duplicate_of an identical proposal in flight';
COMMENT ON FUNCTION spendguard.proposal_consume IS
  'Apply a proposal once: SG010 bad token, SG011 expired, SG012 already closed, SG013 other arguments; stamps the applier';
COMMENT ON FUNCTION spendguard.proposal_reject IS 'Reject a proposal by its token; stamps who rejected it';
COMMENT ON FUNCTION spendguard.proposal_get IS 'One tool call or proposal of the current tenant by id (no nonce material), or no row';
COMMENT ON FUNCTION spendguard.proposal_expire_stale IS
  'Mark the current tenant''s proposals past expires_at as expired (kept as history); returns how many';
COMMENT ON FUNCTION spendguard.tool_call_record IS 'Audit a directly executed or failed tool call; returns its id';
COMMENT ON FUNCTION spendguard.tool_calls IS
  'The tool-call audit log of the current tenant, newest first, filtered by principal, tool, status and conversation';
COMMENT ON FUNCTION spendguard.citus_distribute() IS
  'On a Citus coordinator: distributes every spendguard table by tenant_id, colocated with budget_usage (SPEC §10, docs/scale-out.md); tables already distributed are left. 55000 without Citus or on a worker';
COMMENT ON FUNCTION spendguard.citus_tables() IS
  'The tables citus_distribute() distributes: every table of the extension, budget_usage (the colocation anchor) first';
COMMENT ON FUNCTION spendguard.citus_is_coordinator() IS
  'Whether this node is the Citus coordinator; false without Citus';
COMMENT ON FUNCTION spendguard.citus_pin_tenant(text) IS
  'On Citus, pins the tenant''s shard group for the transaction (the share lock a shard move waits for); nothing without Citus';
COMMENT ON FUNCTION spendguard.retire_candidates(timestamptz) IS
  'The current tenant''s budgets with events recorded before the time and after their newest checkpoint: what budget_retire_events_all retires, one budget per transaction';
COMMENT ON PROCEDURE spendguard.budget_expire_holds_all(bigint, timestamptz, integer) IS
  'budget_expire_holds in batches, committing after each: a decision waits for one batch at most. CALL at top level; returns how many holds expired';
COMMENT ON PROCEDURE spendguard.budget_retire_events_all(timestamptz, bigint) IS
  'budget_retire_events budget by budget, committing after each: a decision waits for one budget''s retirement at most. CALL at top level; returns how many events were retired. Not executable by PUBLIC';
