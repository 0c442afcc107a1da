\set k random(1, 10000)
SELECT authorized FROM spendguard.budget_authorize_hold('b' || :k, 0, 1, max_total_cost => 9000000000000000000);
