-- 100 usage_cap_charge calls over 100 principals per statement
SELECT count(spendguard.usage_cap_charge('memchat', 'user', 'memp-' || g, 1, 9000000000000000000, '1 hour')) FROM generate_series(1, 100) g;
