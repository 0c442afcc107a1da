-- 100 replays of recorded event ids per statement (the first statement records them)
SELECT count(spendguard.budget_authorize_hold('memr-' || g, 0, 1, event_id => 'mr-' || g)) FROM generate_series(1, 100) g;
