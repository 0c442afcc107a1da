-- 50 reserve + settle pairs (100 calls) per statement
SELECT count(spendguard.spend_settle(r.hold_id, 1)) FROM generate_series(1, 50) g, LATERAL spendguard.spend_reserve('memr-' || g, 'memg', 1, 'mres-' || gen_random_uuid()) r;
