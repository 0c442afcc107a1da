\set k random(1, 10000)
SELECT authorized FROM spendguard.budget_authorize_hold('replay-' || :k, 0, 1, event_id => 'e' || :k);
