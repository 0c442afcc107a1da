UPDATE bench_budget SET used = used + 1 WHERE key = 1 AND used + 1 <= cap;
