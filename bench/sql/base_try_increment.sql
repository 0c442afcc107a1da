\set k random(1, 10000)
UPDATE bench_budget SET used = used + 1 WHERE key = :k;
