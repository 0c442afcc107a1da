\set k random(1, 10000)
\set r random(1, 9000000000000000000)
SELECT allowed FROM spendguard.scope_reserve(ARRAY['key:' || :k, 'user:' || (:k % 1000), 'team:' || (:k % 100), 'org:' || 'hot'], 5, :client_id || '-' || :r);
SELECT allowed FROM spendguard.scope_settle(:client_id || '-' || :r, 3);
