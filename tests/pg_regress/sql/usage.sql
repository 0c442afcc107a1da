-- Rolling-window token and call caps as a user sees them (SPEC.md §3), and
-- the plan of the window sum with a million usage rows in the table.
SET spendguard.tenant = 'regress-usage';
SELECT spendguard.usage_record('chat-api', 'user', 'u1', 300, 200, 'gpt-4o', 'conv-1') IS NOT NULL AS recorded;
SELECT spendguard.usage_record('chat-api', 'user', 'u1', 4000, 1000, at => now() - interval '2 hours') IS NOT NULL AS recorded;
SELECT * FROM spendguard.usage_cap_check('chat-api', 'user', 'u1', 1000, '1 hour');
SELECT * FROM spendguard.usage_cap_check('chat-api', 'user', 'u1', 1000, '3 hours');
SELECT * FROM spendguard.usage_cap_charge('chat-api', 'user', 'u1', 500, 1000, '1 hour');
SELECT * FROM spendguard.usage_cap_charge('chat-api', 'user', 'u1', 1, 1000, '1 hour');
\set VERBOSITY sqlstate
SELECT * FROM spendguard.usage_cap_enforce('chat-api', 'user', 'u1', 1000, '1 hour');
\set VERBOSITY default
SELECT * FROM spendguard.usage_cap_enforce('chat-api', 'user', 'u1', 1000, '1 hour');
-- another integration is not blocked
SELECT * FROM spendguard.usage_cap_check('batch-api', 'user', 'u1', 1000, '1 hour');
-- call caps
SELECT * FROM spendguard.call_cap_charge('application', 'agent-7', 'send_email', 2, '1 day');
SELECT * FROM spendguard.call_cap_charge('application', 'agent-7', 'send_email', 2, '1 day');
SELECT * FROM spendguard.call_cap_charge('application', 'agent-7', 'send_email', 2, '1 day');
SELECT * FROM spendguard.call_cap_charge('application', 'agent-7', 'search', 2, '1 day');
SELECT spendguard.usage_purge(now() - interval '1 hour');

-- a million rows over 1,000 principals, half an hour off every hour so
-- the counts below do not depend on how long the insert takes; then the window sum's plan: an
-- index range scan of usage_event_window, whatever the table's size. The
-- statement is spendguard's own (WINDOW_TOKENS in src/usage/store.rs; a
-- #[pg_test] explains that exact text too).
INSERT INTO spendguard.usage_event (tenant_id, integration_id, principal_kind, principal_id,
                                    input_tokens, output_tokens, at)
SELECT 'regress-usage', 'chat-api', 'user', 'p' || (g % 1000), 10, 5,
       now() - (g % 24) * interval '1 hour' - interval '30 minutes'
FROM generate_series(1, 1000000) g;
ANALYZE spendguard.usage_event;
SET plan_cache_mode = force_generic_plan;
PREPARE window_tokens(text, text, text, text, interval) AS
  SELECT coalesce(sum(input_tokens + output_tokens), 0)::bigint
  FROM spendguard.usage_event
  WHERE tenant_id = $1 AND window_key = spendguard.id_key($2, $3, $4)
    AND at > now() - $5;
EXPLAIN (COSTS OFF) EXECUTE window_tokens('regress-usage', 'chat-api', 'user', 'p8', '1 hour');
RESET plan_cache_mode;
SELECT * FROM spendguard.usage_cap_check('chat-api', 'user', 'p8', 100000, '1 hour');
SELECT * FROM spendguard.usage_cap_check('chat-api', 'user', 'p8', 100000, '1 day');
