\set k random(1, 10000)
WITH l AS (SELECT pg_advisory_xact_lock(hashtextextended('floor/chat/user/p' || :k, 0))),
     s AS (SELECT coalesce(sum(e.input_tokens + e.output_tokens), 0) AS used FROM spendguard.usage_event e
           WHERE e.tenant_id = 'floor' AND e.window_key = spendguard.id_key('chat', 'user', 'p' || :k)
             AND e.at > now() - interval '1 hour' AND EXISTS (SELECT 1 FROM l))
INSERT INTO spendguard.usage_event (tenant_id, integration_id, principal_kind, principal_id,
                                    input_tokens, output_tokens, at)
SELECT 'floor', 'chat', 'user', 'p' || :k, 1, 0, now() FROM s WHERE s.used + 1 <= 9000000000000000000;
