-- 100 authorizations per transaction over 100 budgets (10,000 of these = 1,000,000 calls)
SELECT count(spendguard.budget_authorize_hold('mem-' || g, 0, 1)) FROM generate_series(1, 100) g;
