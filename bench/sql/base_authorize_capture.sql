\set k random(1, 10000)
UPDATE bench_budget SET used = used + 2 WHERE key = :k AND used + 2 <= cap;
UPDATE bench_budget SET used = used - 1 WHERE key = :k;
