\set k random(1, 10000)
\set r random(1, 9000000000000000000)
SELECT allowed FROM spendguard.spend_reserve('u' || :k, 'g', 5, :client_id || '-' || :r);
SELECT spend_micros FROM spendguard.spend_settle(:client_id || '-' || :r, 3);
