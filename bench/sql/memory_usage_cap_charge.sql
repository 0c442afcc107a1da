-- 100 usage_cap_charge calls per statement over 10,000 principals (about
-- 100 rows per principal in the window by the end, like the timed workload;
-- 100 principals made every window sum grow to 10,000 rows, and the 1M
-- calls took 31 minutes)
SELECT count(spendguard.usage_cap_charge('memchat', 'user', 'memp-' || (random() * 9999)::int, 1, 9000000000000000000, '1 hour')) FROM generate_series(1, 100) g;
