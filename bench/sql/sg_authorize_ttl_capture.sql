\set k random(1, 10000)
\set r random(1, 9000000000000000000)
SELECT authorized FROM spendguard.budget_authorize_hold('b' || :k, 0, 2, max_total_cost => 9000000000000000000, hold_id => :client_id || '-' || :r, ttl => '15 minutes');
SELECT kind FROM spendguard.budget_capture_hold(hold_id => :client_id || '-' || :r, realized_spend => 1);
