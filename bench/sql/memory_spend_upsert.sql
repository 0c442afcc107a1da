-- 100 spend_upsert_daily calls over 100 users per statement
SELECT count(spendguard.spend_upsert_daily('memu-' || g, 'memg', now(), 1)) FROM generate_series(1, 100) g;
