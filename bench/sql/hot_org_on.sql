\set k random(1, 1000)
\set r random(1, 9000000000000000000)
SELECT allowed FROM spendguard.scope_reserve(ARRAY['hkey:' || :k, 'huser:' || (:k % 500), 'hteam:' || (:k % 100), 'org:' || 'hot-on'], 5, :client_id || '-' || :r);
SELECT allowed FROM spendguard.scope_settle(:client_id || '-' || :r, 3);
