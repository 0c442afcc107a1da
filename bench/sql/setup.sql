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
