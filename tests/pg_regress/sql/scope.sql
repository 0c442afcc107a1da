-- Scoped budgets as a user sees them (SPEC.md §6): the state machine of a
-- reservation and the all-or-nothing rule, each step with its exact result.
-- (Direct table reads filter the tenant: the regress user is a superuser,
-- whom row level security does not filter, and other files share the
-- database.)
SET spendguard.tenant = 'regress-scope';

-- one line per budget of a decision's headroom:
-- scope/period start spent+reserved/limit (room) [BLOCKS]
CREATE FUNCTION pg_temp.room(d spendguard.scope_decision) RETURNS text
LANGUAGE sql AS $$
  SELECT coalesce(string_agg(format('%s/%s %s %s+%s/%s (%s)%s', h->>'scope', h->>'period',
           h->>'period_start', h->>'spent_micros', h->>'reserved_micros', h->>'limit_micros',
           h->>'remaining_micros', CASE WHEN (h->>'blocks')::boolean THEN ' BLOCKS' ELSE '' END),
           '; ' ORDER BY o), '(no budget)')
  FROM jsonb_array_elements(d.headroom) WITH ORDINALITY AS x(h, o)
$$;

-- key -> user -> team -> org; the org has a day and a month budget
SELECT spendguard.scope_set_budget('org:acme', 'day', 1000);
SELECT spendguard.scope_set_budget('org:acme', 'month', 5000);
SELECT spendguard.scope_set_budget('team:ml', 'week', 3000);
SELECT spendguard.scope_set_budget('user:u1', 'day', 600);
SELECT spendguard.scope_set_budget('key:k1', 'total', 10000);
SELECT scope, period, limit_micros, alert_percents, slices
FROM spendguard.scope_budget WHERE tenant_id = 'regress-scope' ORDER BY scope, period;

-- 1. allowed: held in every budget (and in model:m, which has none)
SELECT d.allowed, d.blocked_scope, d.blocked_period, d.remaining_micros, d.hold_id,
       d.expires_at - now() AS ttl, pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['key:k1', 'user:u1', 'team:ml', 'org:acme', 'model:m'],
                              400, 'r1', '2026-06-24 12:00Z') d;
-- 2. denied at the user (400 + 300 > 600): nothing held anywhere
SELECT d.allowed, d.blocked_scope, d.blocked_period, d.remaining_micros, d.hold_id, d.expires_at,
       pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['org:acme', 'team:ml', 'user:u1', 'key:k1'],
                              300, 'r2', '2026-06-24 12:00Z') d;
SELECT count(*) AS r2_rows FROM spendguard.scope_reservation
WHERE tenant_id = 'regress-scope' AND hold_id = 'r2';
-- 3. denied at the org's day for another user (400 held + 700 > 1000)
SELECT d.allowed, d.blocked_scope, d.blocked_period, pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['user:u2', 'org:acme'], 700, 'r3', '2026-06-24 12:00Z') d;
-- 4. denied at the org's day and the team's week: the first blocking
--    budget in scope order (org:acme < team:ml) is named, both block
SELECT d.allowed, d.blocked_scope, d.blocked_period, pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['team:ml', 'user:u3', 'org:acme'], 2700, 'r4',
                              '2026-06-24 12:00Z') d;
-- 5. two budgets block: the first in order (scope bytes, then day < month)
SELECT d.allowed, d.blocked_scope, d.blocked_period, pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['user:u9', 'org:acme'], 5000, 'r5', '2026-06-24 12:00Z') d;
-- 6. settle above the estimate: spend that happened is recorded
SELECT d.allowed, d.hold_id, d.remaining_micros, pg_temp.room(d)
FROM spendguard.scope_settle('r1', 450) d;
-- 7. settle again, cancel after settle, unknown
\set VERBOSITY sqlstate
SELECT * FROM spendguard.scope_settle('r1', 1);
SELECT spendguard.scope_cancel('r1');
SELECT * FROM spendguard.scope_settle('nope', 1);
SELECT spendguard.scope_cancel('nope');
\set VERBOSITY default
-- 8. settle below the estimate, then cancel: room comes back
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['user:u1', 'org:acme'], 100, 'r6', '2026-06-24 12:00Z') d;
SELECT pg_temp.room(d) FROM spendguard.scope_settle('r6', 40) d;
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['user:u1', 'org:acme'], 100, 'r7', '2026-06-24 12:00Z') d;
SELECT spendguard.scope_cancel('r7');
\set VERBOSITY sqlstate
SELECT spendguard.scope_cancel('r7');
SELECT * FROM spendguard.scope_settle('r7', 5);
\set VERBOSITY default
SELECT scope, period, period_start, limit_micros, spent_micros, reserved_micros, remaining_micros
FROM spendguard.scope_usage(at => '2026-06-24 12:00Z');
-- 9. a taken hold id is SG003 before any budget is read
\set VERBOSITY sqlstate
SELECT * FROM spendguard.scope_reserve(ARRAY['org:other'], 1, 'r6');
\set VERBOSITY default

-- 10. a reservation that expired stops counting, and still settles late
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_reserve(ARRAY['user:u1'], 100, 'r8', '2026-06-24 12:00Z',
                              ttl => '1 microsecond') d;
SELECT pg_sleep(0.01);
SELECT spent_micros, reserved_micros FROM spendguard.scope_usage('user:u1', '2026-06-24 12:00Z');
SELECT d.allowed, pg_temp.room(d) FROM spendguard.scope_settle('r8', 70) d;
SELECT disposition, count(*) FROM spendguard.budget_hold
WHERE tenant_id = 'regress-scope'
  AND hold_id IN (SELECT 'scope-hold:' || left(encode(spendguard.id_key(r.hold_id, s), 'hex'), 32)
                  FROM spendguard.scope_reservation r, unnest(r.scopes) s
                  WHERE r.tenant_id = 'regress-scope')
GROUP BY 1 ORDER BY 1;

-- 11. scopes without a budget are recorded, never block; a repeated scope
--     counts once
SELECT d.allowed, d.remaining_micros, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['run:r-42', 'run:r-42', 'model:m'], 5000, '2026-06-24 13:00Z') d;
SELECT * FROM spendguard.scope_spend('run:r-42', 'day', '2026-06-01');
SELECT * FROM spendguard.scope_spend('model:m', 'total', '2026-06-01');
-- a budget set later counts the spend its period already holds
SELECT spendguard.scope_set_budget('run:r-42', 'day', 6000);
SELECT d.allowed, d.blocked_scope, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['run:r-42'], 1001, '2026-06-24 13:00Z') d;

-- 12. limit 0: nothing may be spent; records are never refused
SELECT spendguard.scope_set_budget('key:frozen', 'day', 0);
SELECT d.allowed, d.blocked_scope, d.remaining_micros, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['key:frozen'], 1, '2026-06-24 13:00Z') d;
SELECT d.allowed, d.blocked_scope, d.remaining_micros, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['key:frozen'], 0, '2026-06-24 13:00Z') d;
SELECT d.allowed, d.remaining_micros, pg_temp.room(d)
FROM spendguard.scope_record(ARRAY['key:frozen'], 25, '2026-06-24 13:00Z') d;
-- removing the budget keeps its history
SELECT spendguard.scope_set_budget('key:frozen', 'day', NULL);
SELECT d.allowed, pg_temp.room(d) FROM spendguard.scope_charge(ARRAY['key:frozen'], 1, '2026-06-24 13:00Z') d;
SELECT * FROM spendguard.scope_spend('key:frozen', 'day', '2026-06-24', '2026-06-24');

-- 13. day and month budgets on one scope, and the last microsecond of a
--     day, a week and a month (2026-06-28 is a Sunday, 2026-06-30 ends June)
SELECT spendguard.scope_set_budget('org:edge', 'day', 100);
SELECT spendguard.scope_set_budget('org:edge', 'week', 150);
SELECT spendguard.scope_set_budget('org:edge', 'month', 250);
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:edge'], 100, '2026-06-28 23:59:59.999999Z') d;
SELECT d.allowed, d.blocked_period, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:edge'], 1, '2026-06-28 23:59:59.999999Z') d;
-- a microsecond later: a new day and a new week, the same month
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:edge'], 100, '2026-06-29 00:00Z') d;
SELECT d.allowed, d.blocked_period, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:edge'], 100, '2026-06-30 23:59:59.999999Z') d;
SELECT d.allowed, d.blocked_period, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:edge'], 50, '2026-06-30 23:59:59.999999Z') d;
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:edge'], 100, '2026-07-01 00:00Z') d;
SELECT * FROM spendguard.scope_spend('org:edge', 'week', '2026-06-01', '2026-07-31');
SELECT * FROM spendguard.scope_spend('org:edge', 'month', '2026-06-01', '2026-07-31');

-- 14. a changed limit applies to the next decision, and never rewrites spend
SELECT spendguard.scope_set_budget('org:edge', 'day', 1000);
SELECT d.allowed, d.blocked_period, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:edge'], 1, '2026-07-01 10:00Z') d;

-- 15. idempotency: the recorded decision again, SG004 for another request;
--     an at left to its default is not part of the request
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:idem'], 10, '2026-06-24 13:00Z', event_id => 'e1') d;
SELECT d.allowed, pg_temp.room(d)
FROM spendguard.scope_charge(ARRAY['org:idem'], 10, '2026-06-24 13:00Z', event_id => 'e1') d;
\set VERBOSITY sqlstate
SELECT * FROM spendguard.scope_charge(ARRAY['org:idem'], 11, '2026-06-24 13:00Z', event_id => 'e1');
SELECT * FROM spendguard.scope_record(ARRAY['org:idem'], 10, '2026-06-24 13:00Z', event_id => 'e1');
\set VERBOSITY default
SELECT (spendguard.scope_record(ARRAY['org:idem2'], 10, event_id => 'e2')).allowed;
SELECT (spendguard.scope_record(ARRAY['org:idem2'], 10, event_id => 'e2')).allowed;
SELECT sum(spent_micros) AS idem2 FROM spendguard.scope_spend('org:idem2', 'total', '2000-01-01');

-- 16. bad input: its SQLSTATE, nothing written
\set VERBOSITY sqlstate
SELECT * FROM spendguard.scope_reserve('{}', 1, 'b1');
SELECT * FROM spendguard.scope_reserve(ARRAY['a', NULL], 1, 'b1');
SELECT * FROM spendguard.scope_reserve(NULL, 1, 'b1');
SELECT * FROM spendguard.scope_reserve(ARRAY['a'], -1, 'b1');
SELECT * FROM spendguard.scope_reserve(ARRAY['a'], NULL, 'b1');
SELECT * FROM spendguard.scope_reserve(ARRAY['a'], 1, '');
SELECT * FROM spendguard.scope_reserve(ARRAY[''], 1, 'b1');
SELECT * FROM spendguard.scope_reserve(ARRAY[repeat('x', 1025)], 1, 'b1');
SELECT * FROM spendguard.scope_reserve(array_fill('s'::text, ARRAY[33]), 1, 'b1');
SELECT * FROM spendguard.scope_reserve(ARRAY['a'], 1, 'b1', 'infinity');
SELECT * FROM spendguard.scope_reserve(ARRAY['a'], 1, 'b1', '1999-12-31 23:59:59Z');
SELECT * FROM spendguard.scope_reserve(ARRAY['a'], 1, 'b1', ttl => '0');
\set VERBOSITY default
-- no budget: the whole bigint is recorded, one more unit overflows (22003)
SELECT allowed, headroom FROM spendguard.scope_charge(ARRAY['a'], 9223372036854775807, '2026-06-24 13:00Z');
\set VERBOSITY sqlstate
SELECT * FROM spendguard.scope_charge(ARRAY['a'], 1, '2026-06-24 13:00Z');
SELECT * FROM spendguard.scope_record(ARRAY['org:edge'], 9223372036854775807, '2026-07-01 10:00Z');
SELECT spendguard.scope_set_budget('a', 'year', 1);
SELECT spendguard.scope_set_budget('a', NULL, 1);
SELECT spendguard.scope_set_budget('a', 'day', -1);
SELECT spendguard.scope_set_budget('a', 'day', 1, slices => 65);
SELECT spendguard.scope_set_budget('a', 'day', 1, slices => 0);
SELECT spendguard.scope_set_budget('a', 'day', 1, alert_percents => '{0}');
SELECT spendguard.scope_set_budget('a', 'day', 1, alert_percents => '{1001}');
SELECT spendguard.scope_set_budget('a', 'day', 1, alert_percents => '{50,NULL}');
SELECT * FROM spendguard.scope_usage('');
SELECT * FROM spendguard.scope_spend('a', 'year', '2026-01-01');
SELECT * FROM spendguard.scope_spend('a', 'day', '1999-01-01');
\set VERBOSITY default
SELECT count(*) AS reservations, count(*) FILTER (WHERE hold_id LIKE 'b%') AS bad
FROM spendguard.scope_reservation WHERE tenant_id = 'regress-scope';
SELECT count(*) AS budgets_of_a FROM spendguard.scope_budget
WHERE tenant_id = 'regress-scope' AND scope = 'a';

-- 17. tenants never see each other's scopes
SET spendguard.tenant = 'regress-scope-other';
SELECT count(*) FROM spendguard.scope_usage();
SELECT * FROM spendguard.scope_spend('org:acme', 'total', '2000-01-01');
\set VERBOSITY sqlstate
SELECT * FROM spendguard.scope_settle('r6', 1);
\set VERBOSITY default
SET spendguard.tenant = 'regress-scope';
SELECT * FROM spendguard.verify();

-- 18. escrow slices (SPEC §6 `slices`): the same decisions, one slice
-- locked instead of the budget. org:hot has 4 slices; a decision on the
-- whole budget (the first, or one whose slice is short) writes a split:
-- each slice's quota (room) and line (spend below the next threshold)
SELECT spendguard.scope_set_budget('org:hot', 'day', 1000, alert_percents => '{50,90}', slices => 4);
SELECT slice, families, slices, limits, quotas FROM spendguard.scope_slice
WHERE tenant_id = 'regress-scope' ORDER BY slice;
SELECT allowed, remaining_micros, hold_id FROM spendguard.scope_reserve(ARRAY['org:hot', 'key:k9'], 100, 'hot1', '2026-06-24 12:00Z');
-- quotas add up to the limit, the reservation's slice holds its 100
SELECT sum(quotas[1]) AS quotas, sum(lines[1]) AS lines FROM spendguard.scope_slice
WHERE tenant_id = 'regress-scope' AND scope = 'org:hot';
SELECT scope_slices IS NOT NULL AS sliced FROM spendguard.scope_reservation
WHERE tenant_id = 'regress-scope' AND hold_id = 'hot1';
SELECT allowed, remaining_micros FROM spendguard.scope_settle('hot1', 450);
-- 450 + 80 crosses 50 %: a whole-budget decision sees it, one alert
SELECT allowed, remaining_micros FROM spendguard.scope_charge(ARRAY['org:hot'], 80, '2026-06-24 12:00Z');
SELECT kind, percent, spent_micros FROM spendguard.alerts(scope => 'org:hot');
-- no slice has 500 to itself; the whole budget has 470 left: denied
SELECT allowed, blocked_scope, remaining_micros FROM spendguard.scope_charge(ARRAY['org:hot'], 500, '2026-06-24 12:00Z');
SELECT allowed, remaining_micros FROM spendguard.scope_charge(ARRAY['org:hot'], 470, '2026-06-24 12:00Z');
SELECT scope, period, limit_micros, spent_micros, reserved_micros, remaining_micros
FROM spendguard.scope_usage('org:hot', '2026-06-24 12:00Z');
SELECT * FROM spendguard.scope_spend('org:hot', 'day', '2026-06-24', '2026-06-24');
-- back to one slice: the four families keep their spend, decisions take slice 0
SELECT spendguard.scope_set_budget('org:hot', 'day', 2000, slices => 1);
SELECT slice, families, slices, limits FROM spendguard.scope_slice
WHERE tenant_id = 'regress-scope' AND scope = 'org:hot' ORDER BY slice;
SELECT allowed, remaining_micros FROM spendguard.scope_charge(ARRAY['org:hot'], 1000, '2026-06-24 12:00Z');
SELECT allowed, remaining_micros FROM spendguard.scope_charge(ARRAY['org:hot'], 1, '2026-06-24 12:00Z');
SELECT * FROM spendguard.verify();
