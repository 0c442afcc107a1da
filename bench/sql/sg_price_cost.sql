\set k random(1, 1000)
SELECT spendguard.price_cost('m' || :k, 1200, 300, 200);
