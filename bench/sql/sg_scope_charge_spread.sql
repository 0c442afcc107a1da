\set k random(1, 10000)
SELECT allowed FROM spendguard.scope_charge(ARRAY['key:' || :k, 'user:' || (:k % 1000), 'team:' || (:k % 100), 'org:' || (:k % 10)], 3);
