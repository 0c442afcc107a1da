-- Alerts (SPEC.md §7): each written once, in the transaction that crossed
-- its line; claimed with a lease, acked when delivered.
SET spendguard.tenant = 'regress-alert';
CREATE FUNCTION pg_temp.seen() RETURNS TABLE (scope text, period text, kind text, percent int,
                                               limit_micros bigint, spent_micros bigint)
LANGUAGE sql AS $$
  SELECT scope, period, kind, percent, limit_micros, spent_micros FROM spendguard.alerts() ORDER BY id
$$;

SELECT spendguard.scope_set_budget('org:a', 'day', 1000, alert_percents => '{80,50,100,50}');
SELECT alert_percents FROM spendguard.scope_budget
WHERE tenant_id = 'regress-alert' AND scope = 'org:a';

-- crossing 50, then 80: one alert each
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:a'], 499, '2026-06-24 12:00Z');
SELECT count(*) AS none_yet FROM spendguard.alerts();
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:a'], 1, '2026-06-24 12:00Z');
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:a'], 299, '2026-06-24 12:00Z');
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:a'], 1, '2026-06-24 12:00Z');
SELECT * FROM pg_temp.seen();

-- reservations alone give none; their settle does
SELECT allowed FROM spendguard.scope_reserve(ARRAY['org:a'], 200, 'r1', '2026-06-24 12:00Z');
SELECT count(*) AS after_reserve FROM spendguard.alerts();
SELECT allowed FROM spendguard.scope_settle('r1', 200);
SELECT * FROM pg_temp.seen() WHERE percent = 100;

-- the first denial in a period: one blocked alert; the second: none
SELECT allowed, blocked_scope FROM spendguard.scope_charge(ARRAY['org:a'], 1, '2026-06-24 12:00Z');
SELECT allowed, blocked_scope FROM spendguard.scope_charge(ARRAY['org:a'], 5, '2026-06-24 13:00Z');
SELECT allowed FROM spendguard.scope_reserve(ARRAY['org:a'], 5, 'r2', '2026-06-24 13:00Z');
SELECT kind, count(*) FROM spendguard.alerts() GROUP BY kind ORDER BY kind;

-- one spend from 40 % to 120 %: the 50, 80 and 100 alerts at once
SELECT spendguard.scope_set_budget('org:b', 'month', 1000, alert_percents => '{50,80,100}');
SELECT allowed FROM spendguard.scope_record(ARRAY['org:b'], 400, '2026-06-24 12:00Z');
SELECT allowed FROM spendguard.scope_record(ARRAY['org:b'], 800, '2026-06-24 12:00Z');
SELECT * FROM pg_temp.seen() WHERE scope = 'org:b';

-- a rolled back transaction leaves no alert; a replayed event_id no extra
SELECT spendguard.scope_set_budget('org:c', 'day', 100, alert_percents => '{50}');
BEGIN;
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:c'], 60, '2026-06-24 12:00Z', event_id => 'c1');
SELECT count(*) AS inside FROM spendguard.alerts(scope => 'org:c');
ROLLBACK;
SELECT count(*) AS after_rollback FROM spendguard.alerts(scope => 'org:c');
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:c'], 60, '2026-06-24 12:00Z', event_id => 'c1');
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:c'], 60, '2026-06-24 12:00Z', event_id => 'c1');
SELECT count(*) AS once FROM spendguard.alerts(scope => 'org:c');

-- a limit change re-arms: thresholds fired under the old limit that spend
-- is now below are resolved; they fire again when crossed anew
SELECT spendguard.scope_set_budget('org:now', 'total', 1000, alert_percents => '{50,80}');
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:now'], 850);
SELECT spendguard.scope_set_budget('org:now', 'total', 1500, alert_percents => '{50,80}');
SELECT * FROM pg_temp.seen() WHERE scope = 'org:now';
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:now'], 350);
SELECT * FROM pg_temp.seen() WHERE scope = 'org:now';
-- the same limit again: nothing
SELECT spendguard.scope_set_budget('org:now', 'total', 1500, alert_percents => '{50,80}');
SELECT count(*) AS still FROM spendguard.alerts(scope => 'org:now');

-- delivery: claim with a lease, ack; a second consumer gets nothing meanwhile
SELECT count(*) AS claimed FROM spendguard.alert_claim('w1', 3);
SELECT count(*) AS claimed_by_w2 FROM spendguard.alert_claim('w2', 100, '1 hour');
SELECT count(*) AS left_for_w3 FROM spendguard.alert_claim('w3');
SELECT spendguard.alert_ack(ARRAY(SELECT id FROM spendguard.alerts() WHERE claimed_by = 'w1')) AS acked;
SELECT spendguard.alert_ack(ARRAY(SELECT id FROM spendguard.alerts() WHERE claimed_by = 'w1')) AS acked_again;
SELECT count(*) FILTER (WHERE delivered_at IS NOT NULL) AS delivered,
       count(*) FILTER (WHERE delivered_at IS NULL) AS undelivered FROM spendguard.alerts();
-- an expired lease makes an alert claimable again
SET spendguard.tenant = 'regress-alert-lease';
SELECT spendguard.scope_set_budget('org:l', 'day', 10, alert_percents => '{100}');
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:l'], 10, '2026-06-24 12:00Z');
SELECT count(*) AS short_lease FROM spendguard.alert_claim('w4', 10, '1 microsecond');
SELECT pg_sleep(0.01);
SELECT claimed_by FROM spendguard.alert_claim('w5', 10, '1 hour');
SELECT count(*) AS held_by_w5 FROM spendguard.alert_claim('w6', 10, '1 hour');
SET spendguard.tenant = 'regress-alert';

-- bad input
\set VERBOSITY sqlstate
SELECT * FROM spendguard.alert_claim(NULL);
SELECT * FROM spendguard.alert_claim('');
SELECT * FROM spendguard.alert_claim('w', -1);
SELECT * FROM spendguard.alert_claim('w', 1, '0');
SELECT * FROM spendguard.alert_claim('w', 1, '2 days');
SELECT spendguard.alert_ack(NULL);
SELECT * FROM spendguard.alerts(scope => '');
SELECT spendguard.scope_set_budget('org:x', 'day', 1, alert_percents => '{0}');
-- the unique key: no second alert of a key, whoever writes it
INSERT INTO spendguard.alert (tenant_id, scope, period, period_start, kind, percent, limit_micros, spent_micros)
SELECT tenant_id, scope, period, period_start, kind, percent, limit_micros, spent_micros
FROM spendguard.alert WHERE tenant_id = 'regress-alert' AND kind = 'blocked' LIMIT 1;
\set VERBOSITY default

-- tenants: another tenant sees and claims none of these
SET spendguard.tenant = 'regress-alert-other';
SELECT count(*) FROM spendguard.alerts();
SELECT count(*) FROM spendguard.alert_claim('w9', 100, '1 hour');
SELECT array_agg(id) AS alert_ids FROM spendguard.alert WHERE tenant_id = 'regress-alert' \gset
SELECT spendguard.alert_ack(:'alert_ids') AS acks_nothing;

-- a transaction that PREPAREs: alert_notify off, the alert is still written
SET spendguard.tenant = 'regress-alert';
SELECT spendguard.scope_set_budget('org:2pc', 'day', 100, alert_percents => '{50}');
BEGIN;
SET LOCAL spendguard.alert_notify = off;
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:2pc'], 60, '2026-06-24 12:00Z');
PREPARE TRANSACTION 'sg-alert-2pc';
COMMIT PREPARED 'sg-alert-2pc';
SELECT kind, percent, spent_micros FROM spendguard.alerts(scope => 'org:2pc');
-- with the wake-up on, PostgreSQL refuses to prepare
BEGIN;
SELECT allowed FROM spendguard.scope_charge(ARRAY['org:2pc'], 50, '2026-06-24 12:00Z');
\set VERBOSITY sqlstate
PREPARE TRANSACTION 'sg-alert-2pc-notify';
\set VERBOSITY default
SELECT count(*) AS only_the_first FROM spendguard.alerts(scope => 'org:2pc');
SELECT * FROM spendguard.verify();
