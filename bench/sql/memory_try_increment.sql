-- 100 try_increment calls over 100 budgets per statement
SELECT count(spendguard.budget_try_increment('memt-' || g, 0, NULL)) FROM generate_series(1, 100) g;
