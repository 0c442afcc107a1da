-- 50 authorize + capture pairs (100 calls) per statement, a new hold each
SELECT count(spendguard.budget_capture_hold(hold_id => a.hold_id, realized_spend => 1)) FROM generate_series(1, 50) g, LATERAL spendguard.budget_authorize_hold('memc-' || g, 0, 2, hold_id => 'mh-' || gen_random_uuid()) a;
