\set k random(1, 10000)
INSERT INTO bench_daily (key, day, spend) VALUES (:k, current_date, 1)
ON CONFLICT (key, day) DO UPDATE SET spend = bench_daily.spend + EXCLUDED.spend;
