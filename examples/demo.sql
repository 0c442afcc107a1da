-- spendguard demo: one budget, two-phase holds, a denial, a partial release,
-- a capture, an idempotent replay and the event log. Run by `make run`;
-- safe to run again: each run is its own tenant, so it starts from zero.
\set ON_ERROR_STOP on
\pset footer off
SELECT 'demo-' || txid_current() AS tenant \gset
SELECT set_config('spendguard.tenant', :'tenant', false) AS "spendguard.tenant";
\set h1 h-1
\set h2 h-2
\set evt evt-1

\echo
\echo '1. An agent asks to spend up to 400 of a 1000 budget (hold h-1).'
SELECT authorized, denial_reason, hold_id, committed_cost_after, commit_index
FROM spendguard.budget_authorize_hold('openai:gpt', 0, 400, max_total_cost => 1000,
       hold_id => :'h1', event_id => :'evt');

\echo '2. A second hold of 500 fits; a third of 200 would overspend and is denied (a row, not an error).'
SELECT authorized, denial_reason, committed_cost_after
FROM spendguard.budget_authorize_hold('openai:gpt', 0, 500, max_total_cost => 1000, hold_id => :'h2');
SELECT authorized, denial_reason, committed_cost_after
FROM spendguard.budget_authorize_hold('openai:gpt', 0, 200, max_total_cost => 1000);

\echo '3. The first call finished early: release 150 of its 400, then capture the rest at a real cost of 180.'
SELECT kind, exposure_units, committed_cost_after
FROM spendguard.budget_release_hold(hold_id => :'h1', released_exposure => 150);
SELECT kind, exposure_units, realized_spend_units, committed_cost_after
FROM spendguard.budget_capture_hold(hold_id => :'h1', realized_spend => 180);

\echo '4. A retry of the first authorize with the same event_id returns the recorded decision; nothing changes.'
SELECT authorized, hold_id, committed_cost_after, commit_index
FROM spendguard.budget_authorize_hold('openai:gpt', 0, 400, max_total_cost => 1000,
       hold_id => :'h1', event_id => :'evt');

\echo '5. The budget and its append-only event log (latest 8 events).'
SELECT capability_id, invocation_count, total_cost_exposed, total_cost_realized
FROM spendguard.budget_usage('openai:gpt', 0);
SELECT event_seq, kind, allowed, denial_reason, exposure_units, realized_spend_units,
       total_cost_exposed_after AS exposed, total_cost_realized_after AS realized
FROM spendguard.budget_events(8, 'openai:gpt', 0);
SELECT hold_id, disposition, authorized_exposure, remaining_exposure, realized_spend
FROM spendguard.budget_holds() ORDER BY hold_id;

\echo '6. A hold whose caller died: a TTL gives its exposure back (here a very short one, then the sweep).'
SELECT authorized, committed_cost_after
FROM spendguard.budget_authorize_hold('openai:gpt', 0, 100, hold_id => :'h1' || '-ttl', ttl => '1 millisecond');
SELECT pg_sleep(0.01);
SELECT spendguard.budget_expire_holds() AS expired;

\echo '7. A user''s daily budget: reserve before the model call, settle with the real cost after.'
SELECT spendguard.spend_set_group_budget('free-tier', 50000, 'day');
SELECT allowed, reserved_micros, remaining_micros
FROM spendguard.spend_reserve('user-42', 'free-tier', 30000, :'h1' || '-res');
SELECT day, spend_micros FROM spendguard.spend_settle(:'h1' || '-res', 27450);
SELECT allowed, spent_micros, remaining_micros FROM spendguard.spend_check('user-42', 'free-tier', 30000);

\echo '8. Scoped budgets: one decision over key, user, team and org. The org has 100 a day; a 60 request'
\echo '   is held in every scope, a second one is denied at the org, and the headroom says why.'
SELECT spendguard.scope_set_budget('org:acme', 'day', 100);
SELECT spendguard.scope_set_budget('org:acme', 'month', 2000);
SELECT spendguard.scope_set_budget('user:u1', 'day', 500);
SELECT allowed, blocked_scope, remaining_micros
FROM spendguard.scope_reserve(ARRAY['key:k1', 'user:u1', 'team:ml', 'org:acme'], 60, 'scoped-1');
SELECT allowed, blocked_scope, blocked_period, remaining_micros
FROM spendguard.scope_reserve(ARRAY['key:k2', 'user:u2', 'team:ml', 'org:acme'], 60, 'scoped-2');
SELECT h->>'scope' AS scope, h->>'period' AS period, (h->>'limit_micros')::bigint AS limit_micros,
       (h->>'spent_micros')::bigint AS spent, (h->>'reserved_micros')::bigint AS reserved,
       (h->>'remaining_micros')::bigint AS remaining, (h->>'blocks')::boolean AS blocks
FROM spendguard.scope_reserve(ARRAY['key:k2', 'user:u2', 'team:ml', 'org:acme'], 60, 'scoped-3') d,
     jsonb_array_elements(d.headroom) h;
SELECT scope, period, spent_micros, reserved_micros, remaining_micros
FROM spendguard.scope_usage(at => now()) WHERE scope = 'org:acme';

\echo '9. Prices and alerts: gpt-4o is priced per million tokens; org:globex has 2000 a month and warns'
\echo '   at 50, 80 and 100 %. A call reserved by its token maxima is settled by the tokens it used,'
\echo '   at the reservation''s price; its spend crosses 50 and 80 %, and the alerts arrive (a NOTIFY, then a claim).'
SELECT spendguard.price_set('gpt-4o', now() - interval '1 day', 2500000, 10000000, 1250000) > 0 AS priced;
SELECT spendguard.scope_set_budget('org:globex', 'month', 2000, alert_percents => '{50,80,100}');
LISTEN spendguard_alerts;
SELECT allowed, remaining_micros
FROM spendguard.scope_reserve_tokens(ARRAY['user:u3', 'org:globex'], 'gpt-4o', 400, 100, 'tokens-1');
SELECT allowed, remaining_micros
FROM spendguard.scope_settle_tokens('tokens-1', input_tokens => 400, output_tokens => 100,
                                    cached_input_tokens => 100);
SELECT model, estimate_micros, cost_micros, input_tokens, output_tokens, cached_input_tokens
FROM spendguard.scope_reservation WHERE hold_id = 'tokens-1';
SELECT id AS alert_id, scope, period, kind, percent, limit_micros, spent_micros
FROM spendguard.alert_claim('demo-worker', 10, '1 minute') ORDER BY id;
SELECT spendguard.alert_ack(ARRAY(SELECT id FROM spendguard.alerts() WHERE claimed_by = 'demo-worker')) AS acked;
UNLISTEN spendguard_alerts;

\echo '10. An agent proposes a refund; it is applied once, with the arguments it was proposed with.'
SELECT token AS refund_token FROM spendguard.proposal_create('application', 'agent-7', 'refund',
       '{"order": 43, "amount": 500}', effect => 'destructive') \gset
SELECT status, applied_by_id FROM spendguard.proposal_consume(:'refund_token', 'user', 'ops-1',
       '{"amount": 500, "order": 43}');

\echo '11. The auditor: no row means the log and the state agree (it also walks every budget''s hash chain).'
SELECT * FROM spendguard.verify();
\echo '    The chain heads an operator stores outside the database every day (examples/anchor.sh), and'
\echo '    the check of a stored head: ok while the log is as it was, mismatch once it was rewritten.'
SELECT capability_id, grant_index, chain_n, left(hash, 16) || '…' AS hash
FROM spendguard.chain_heads() WHERE capability_id = 'openai:gpt';
SELECT budgets, left(root, 16) || '…' AS root FROM spendguard.chain_root();
SELECT spendguard.verify_anchor(h.capability_id, h.grant_index, h.chain_n, h.hash) AS anchor
FROM spendguard.chain_heads() h WHERE h.capability_id = 'openai:gpt';

\echo '12. Old history retires into per-budget checkpoints; the auditor still agrees (an open hold keeps its events).'
SELECT capability_id, retired_events, kept_events FROM spendguard.budget_retire_events(now()) ORDER BY 1;
SELECT * FROM spendguard.verify();
