\set k random(1, 10000)
SELECT spend_micros FROM spendguard.spend_upsert_daily('u' || :k, 'g', now(), 1);
