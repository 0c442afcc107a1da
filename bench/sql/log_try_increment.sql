\set k random(1, 10000)
WITH u AS (UPDATE bench_budget SET used = used + 1 WHERE key = :k RETURNING key, used)
INSERT INTO bench_log (key, used) SELECT key, used FROM u;
