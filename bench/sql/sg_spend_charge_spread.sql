\set k random(1, 10000)
SELECT allowed FROM spendguard.spend_charge('u' || :k, 'g', 1);
