-- The hot organisation (SPEC §6 `slices`, docs/performance.md "A hot
-- organisation"): 1,000 keys of 500 users in 100 teams, all under one org,
-- its day budget without slices (org:hot-off) or with 32 (org:hot-on),
-- next to the same keys spread over 100 orgs (sorg:0..99). Default tenant
-- only: these workloads compare with each other, not with a floor. Run by
-- bench.py's hot_org() on the main database (the unchained one is 0.4.0).
SELECT count(*) FROM (
  SELECT 'hkey:' || k FROM generate_series(1, 1000) k
  UNION ALL SELECT 'huser:' || k FROM generate_series(0, 499) k
  UNION ALL SELECT 'hteam:' || k FROM generate_series(0, 99) k
  UNION ALL SELECT 'sorg:' || k FROM generate_series(0, 99) k
  UNION ALL SELECT 'org:hot-off') x(s),
  LATERAL (SELECT spendguard.scope_set_budget(x.s, 'day', 9000000000000000000)) f;
SELECT spendguard.scope_set_budget('org:hot-on', 'day', 9000000000000000000, slices => 32);
SELECT count(spendguard.scope_record(ARRAY['hkey:' || k, 'huser:' || (k % 500), 'hteam:' || (k % 100),
                                           'sorg:' || (k % 100), 'org:hot-off'], 0))
FROM generate_series(1, 1000) k;
VACUUM ANALYZE;
