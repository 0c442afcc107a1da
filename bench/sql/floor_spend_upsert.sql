\set k random(1, 10000)
INSERT INTO spendguard.daily_spend AS d (tenant_id, user_id, group_id, day, spend_micros)
VALUES ('floor', 'u' || :k, 'g', CAST(now() AT TIME ZONE 'UTC' AS date), 1)
ON CONFLICT (tenant_id, spendguard.id_key(user_id, group_id), day) DO UPDATE SET spend_micros = d.spend_micros + EXCLUDED.spend_micros
RETURNING d.spend_micros;
