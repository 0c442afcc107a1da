-- Bench fixtures: the baseline tables (the least plain SQL doing the same
-- work) and pre-recorded events for the replay workload.
DROP TABLE IF EXISTS bench_budget, bench_event, bench_log;
CREATE TABLE bench_budget (key int PRIMARY KEY, used bigint NOT NULL DEFAULT 0, cap bigint NOT NULL);
INSERT INTO bench_budget (key, cap) SELECT k, 9000000000000000000 FROM generate_series(1, 10000) k;
CREATE TABLE bench_event (id text PRIMARY KEY, result bigint NOT NULL);
-- the "+ log row" baseline: the append-only row SPEC §1 requires per decision,
-- with a primary key and a per-budget index as spendguard's event log has
CREATE TABLE bench_log (seq bigserial PRIMARY KEY, key int NOT NULL, used bigint NOT NULL,
                        at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON bench_log (key, seq);
INSERT INTO bench_event SELECT 'e' || k, k FROM generate_series(1, 10000) k;
-- 10,000 recorded authorizations to replay
SELECT count(spendguard.budget_authorize_hold('replay-' || k, 0, 1, event_id => 'e' || k))
FROM generate_series(1, 10000) k;
-- the budgets the workloads use exist before the clock starts, as the
-- baseline's rows do (authorize of 0 and a count of one invocation)
SELECT count(spendguard.budget_authorize_hold('b' || k, 0, 0)) FROM generate_series(1, 10000) k;
SELECT count(spendguard.budget_try_increment('c' || k, 0, NULL)) FROM generate_series(1, 10000) k;
SELECT spendguard.budget_authorize_hold('hot', 0, 0);
VACUUM ANALYZE;
