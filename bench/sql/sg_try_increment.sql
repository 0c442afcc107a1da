\set k random(1, 10000)
SELECT spendguard.budget_try_increment('c' || :k, 0, NULL);
