-- Daily spend, period budgets and reservations as a user sees them (SPEC.md §2).
SET spendguard.tenant = 'regress-spend';

-- the UTC day of at, whatever zone it is written in
SELECT * FROM spendguard.spend_upsert_daily('alice', 'team', '2026-06-22 23:30-05', 1500);
SELECT * FROM spendguard.spend_upsert_daily('alice', 'team', '2026-06-23 08:00Z', 500);
SELECT * FROM spendguard.spend_upsert_daily('bob', 'team', '2026-06-22 10:00Z', 700);
SELECT spendguard.spend_since('alice', 'team', '2026-06-22 22:00-05') AS alice_from_23rd,
       spendguard.spend_since('alice', 'team', '2026-06-22') AS alice_from_22nd,
       spendguard.spend_group_since('team', '2026-06-22') AS team;

-- a weekly budget of 5000 per user; alice gets 2500 of her own
SELECT spendguard.spend_set_group_budget('team', 5000, 'week');
SELECT spendguard.spend_set_user_override('alice', 'team', 2500);
SELECT * FROM spendguard.spend_check('alice', 'team', 500, '2026-06-24 12:00Z');
SELECT * FROM spendguard.spend_check('alice', 'team', 501, '2026-06-24 12:00Z');
SELECT * FROM spendguard.spend_check('bob', 'team', 4300, '2026-06-24 12:00Z');

-- reserve before the model call, settle with the real cost after it
SELECT allowed, spent_micros, reserved_micros, limit_micros, remaining_micros, period_start, hold_id,
       expires_at - now() AS ttl
FROM spendguard.spend_reserve('bob', 'team', 3000, 'call-1', '2026-06-24 12:00Z');
SELECT allowed, spent_micros, reserved_micros, remaining_micros
FROM spendguard.spend_reserve('bob', 'team', 1500, 'call-2', '2026-06-24 12:00Z', ttl => '30 seconds');
SELECT * FROM spendguard.spend_charge('bob', 'team', 1301, '2026-06-24 13:00Z');
SELECT * FROM spendguard.spend_charge('bob', 'team', 1300, '2026-06-24 13:00Z');
SELECT * FROM spendguard.spend_settle('call-1', 3200);
SELECT * FROM spendguard.spend_check('bob', 'team', 0, '2026-06-24 14:00Z');
\set VERBOSITY sqlstate
SELECT * FROM spendguard.spend_settle('call-1', 1);
SELECT * FROM spendguard.spend_charge_enforce('bob', 'team', 1, '2026-06-24 15:00Z');
\set VERBOSITY default
SELECT * FROM spendguard.spend_charge_enforce('bob', 'team', 1, '2026-06-24 15:00Z');
-- a new week starts at 0
SELECT * FROM spendguard.spend_check('bob', 'team', 5000, '2026-06-29 00:00Z');

-- the reservation is a §1 hold: its log folds, verify() is clean
SELECT hold_id, disposition, authorized_exposure, remaining_exposure FROM spendguard.budget_holds()
ORDER BY hold_id;
SELECT * FROM spendguard.verify();

-- purge
SELECT spendguard.spend_purge('2026-06-23');
SELECT day, user_id, spend_micros FROM spendguard.daily_spend
WHERE tenant_id = 'regress-spend' ORDER BY day, user_id;
