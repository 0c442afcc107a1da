\set k random(1, 10000)
SELECT allowed FROM spendguard.usage_cap_charge('chat', 'user', 'p' || :k, 1, 9000000000000000000, '1 hour');
