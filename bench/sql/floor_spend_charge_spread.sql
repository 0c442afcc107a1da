\set k random(1, 10000)
WITH lim AS (SELECT b.limit_micros FROM spendguard.spend_budget b WHERE b.tenant_id = 'floor' AND b.group_id = 'g'),
     lk AS (SELECT 1 FROM spendguard.budget_usage
            WHERE tenant_id = 'floor' AND capability_id = 'spendu' || :k AND grant_index = 0 FOR UPDATE),
     s AS (SELECT coalesce(sum(d.spend_micros), 0) AS spent FROM spendguard.daily_spend d
           WHERE d.tenant_id = 'floor' AND spendguard.id_key(d.user_id, d.group_id) = spendguard.id_key('u' || :k, 'g')
             AND d.user_id = 'u' || :k AND d.group_id = 'g'
             AND d.day >= CAST(now() AT TIME ZONE 'UTC' AS date) AND d.day < CAST(now() AT TIME ZONE 'UTC' AS date) + 1
             AND EXISTS (SELECT 1 FROM lk))
INSERT INTO spendguard.daily_spend AS d (tenant_id, user_id, group_id, day, spend_micros)
SELECT 'floor', 'u' || :k, 'g', CAST(now() AT TIME ZONE 'UTC' AS date), 1 FROM s, lim WHERE s.spent + 1 <= lim.limit_micros
ON CONFLICT (tenant_id, spendguard.id_key(user_id, group_id), day) DO UPDATE SET spend_micros = d.spend_micros + EXCLUDED.spend_micros;
