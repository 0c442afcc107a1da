-- Bench fixtures. spendguard's side runs in the default tenant; the floors
-- (the least plain SQL writing the same rows) write spendguard's own tables
-- in tenant 'floor', so both sides have the same indexes and constraints.
-- The bare-UPDATE reference rows use bench_budget.
DROP TABLE IF EXISTS bench_budget, bench_event;
CREATE TABLE bench_budget (key int PRIMARY KEY, used bigint NOT NULL DEFAULT 0, cap bigint NOT NULL);
INSERT INTO bench_budget (key, cap) SELECT k, 9000000000000000000 FROM generate_series(1, 10000) k;
CREATE TABLE bench_event (id text PRIMARY KEY, result bigint NOT NULL);
INSERT INTO bench_event SELECT 'e' || k, k FROM generate_series(1, 10000) k;
-- 10,000 recorded authorizations to replay
SELECT count(spendguard.budget_authorize_hold('replay-' || k, 0, 1, event_id => 'e' || k))
FROM generate_series(1, 10000) k;
-- the budgets the workloads use exist before the clock starts, on both sides
SELECT count(spendguard.budget_authorize_hold('b' || k, 0, 0)) FROM generate_series(1, 10000) k;
SELECT count(spendguard.budget_try_increment('c' || k, 0, NULL)) FROM generate_series(1, 10000) k;
SELECT spendguard.budget_authorize_hold('hot', 0, 0);
INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index)
SELECT 'floor', capability_id, grant_index FROM spendguard.budget_usage WHERE tenant_id = 'default';
VACUUM ANALYZE;
-- §2/§3 workloads: budgets in both tenants (high enough never to deny),
-- the users' period budget rows, and 1M usage rows (half per tenant) over
-- 10,000 principals within the window
DROP TABLE IF EXISTS bench_daily;
CREATE TABLE bench_daily (key int, day date, spend bigint NOT NULL, PRIMARY KEY (key, day));
SELECT spendguard.spend_set_group_budget('g', 9000000000000000000, 'day');
INSERT INTO spendguard.spend_budget (tenant_id, group_id, limit_micros, period)
VALUES ('floor', 'g', 9000000000000000000, 'day');
SELECT count(spendguard.spend_charge('u' || k, 'g', 0)) FROM generate_series(1, 10000) k;
SELECT spendguard.spend_charge('hot', 'g', 0);
INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index)
SELECT 'floor', 'spendu' || k, 0 FROM generate_series(1, 10000) k
UNION ALL SELECT 'floor', 'spendhot', 0;
INSERT INTO spendguard.daily_spend (tenant_id, user_id, group_id, day, spend_micros)
SELECT 'floor', user_id, group_id, day, 0 FROM spendguard.daily_spend WHERE tenant_id = 'default';
INSERT INTO spendguard.usage_event (tenant_id, integration_id, principal_kind, principal_id,
                                    input_tokens, output_tokens, at)
SELECT t, 'chat', 'user', 'p' || (g % 10000 + 1), 1, 1, now() - (g % 3000) * interval '1 second'
FROM generate_series(1, 500000) g, (VALUES ('default'), ('floor')) v(t);
VACUUM ANALYZE;
-- §4 workloads: documents of about 1 KB and 64 KB for args_hash
CREATE EXTENSION IF NOT EXISTS pgcrypto;
DROP TABLE IF EXISTS bench_doc;
CREATE TABLE bench_doc (name text PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO bench_doc
SELECT n, (SELECT jsonb_object_agg('key_' || i, jsonb_build_object('id', i, 'name', 'item ' || i,
             'price', i * 1.25, 'tags', jsonb_build_array('a', 'b')))
           FROM generate_series(1, k) i)
FROM (VALUES ('1k', 12), ('64k', 800)) v(n, k);
SELECT name, octet_length(doc::text) FROM bench_doc;
-- §6 workloads: a day budget (never denying) on 10,000 keys, 1,000 users,
-- 100 teams, 10 orgs and one hot org, in both tenants, and the §1 budgets
-- that keep today's spend of every scope, on both sides
SELECT count(*) FROM (
  SELECT 'key:' || k FROM generate_series(1, 10000) k
  UNION ALL SELECT 'user:' || k FROM generate_series(0, 999) k
  UNION ALL SELECT 'team:' || k FROM generate_series(0, 99) k
  UNION ALL SELECT 'org:' || k FROM generate_series(0, 9) k
  UNION ALL SELECT 'org:hot') x(s),
  LATERAL (SELECT spendguard.scope_set_budget(x.s, 'day', 9000000000000000000)) f;
INSERT INTO spendguard.scope_budget (tenant_id, scope, period, limit_micros)
SELECT 'floor', scope, period, limit_micros FROM spendguard.scope_budget WHERE tenant_id = 'default';
SELECT count(spendguard.scope_record(ARRAY['key:' || k, 'user:' || (k % 1000), 'team:' || (k % 100),
                                           'org:' || (k % 10), 'org:hot'], 0))
FROM generate_series(1, 10000) k;
INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index)
SELECT 'floor', capability_id, grant_index FROM spendguard.budget_usage
WHERE tenant_id = 'default' AND capability_id LIKE 'scope:%';
VACUUM ANALYZE;
-- §7 workload: the same four scopes with thresholds at 50, 80 and 100 %
-- armed (never reached), in both tenants
SELECT count(*) FROM (
  SELECT 'akey:' || k FROM generate_series(1, 10000) k
  UNION ALL SELECT 'auser:' || k FROM generate_series(0, 999) k
  UNION ALL SELECT 'ateam:' || k FROM generate_series(0, 99) k
  UNION ALL SELECT 'aorg:' || k FROM generate_series(0, 9) k) x(s),
  LATERAL (SELECT spendguard.scope_set_budget(x.s, 'day', 9000000000000000000,
                                              alert_percents => '{50,80,100}')) f;
INSERT INTO spendguard.scope_budget (tenant_id, scope, period, limit_micros, alert_percents)
SELECT 'floor', scope, period, limit_micros, alert_percents FROM spendguard.scope_budget
WHERE tenant_id = 'default' AND scope LIKE 'a%';
SELECT count(spendguard.scope_record(ARRAY['akey:' || k, 'auser:' || (k % 1000), 'ateam:' || (k % 100),
                                           'aorg:' || (k % 10)], 0))
FROM generate_series(1, 10000) k;
INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index)
SELECT 'floor', u.capability_id, u.grant_index FROM spendguard.budget_usage u
WHERE u.tenant_id = 'default' AND u.capability_id LIKE 'scope:%'
ON CONFLICT DO NOTHING;
-- §8 workload: 1,000 models with three prices each, in both tenants
SELECT count(spendguard.price_set('m' || k, now() - d * interval '30 days', 2500000, 10000000, 1250000))
FROM generate_series(1, 1000) k, generate_series(1, 3) d;
INSERT INTO spendguard.price (tenant_id, model, effective_from, input_micros_per_mtok,
                              output_micros_per_mtok, cached_input_micros_per_mtok)
SELECT 'floor', model, effective_from, input_micros_per_mtok, output_micros_per_mtok,
       cached_input_micros_per_mtok FROM spendguard.price WHERE tenant_id = 'default';
VACUUM ANALYZE;
