-- 50 scoped reserve + settle pairs (100 calls) per statement, on the org with 32 slices
SELECT count(spendguard.scope_settle(r.hold_id, 1)) FROM generate_series(1, 50) g, LATERAL spendguard.scope_reserve(ARRAY['hkey:' || g, 'huser:' || g, 'hteam:' || (g % 100), 'org:hot-on'], 1, 'mscope-' || gen_random_uuid()) r;
