\set k random(1, 10000)
SELECT result FROM bench_event WHERE id = 'e' || :k;
