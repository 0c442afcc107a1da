\set k random(1, 10000)
SELECT allowed FROM spendguard.scope_charge(ARRAY['akey:' || :k, 'auser:' || (:k % 1000), 'ateam:' || (:k % 100), 'aorg:' || (:k % 10)], 3);
