SELECT authorized FROM spendguard.budget_authorize_hold('hot', 0, 1, max_total_cost => 9000000000000000000);
