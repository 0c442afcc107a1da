-- 100 spend_charge calls over 100 users per statement (budget set by bench.py)
SELECT count(spendguard.spend_charge('memc-' || g, 'memg', 1)) FROM generate_series(1, 100) g;
