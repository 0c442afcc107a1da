\set k random(1, 9000000000000000000)
WITH l AS (SELECT pg_advisory_xact_lock(hashtextextended('floor/agent/deploy/' || :k, 0))),
     t AS (INSERT INTO spendguard.tool_call (tenant_id, principal_kind, principal_id, transport, tool_name,
             effect, args_hash, status, proposed_at, expires_at, content_key)
           SELECT 'floor', 'application', 'agent', 'chat', 'deploy', 'mutate',
                  encode(sha256(convert_to('{"build":' || :k || ',"env":"prod"}', 'UTF8')), 'hex'),
                  'proposed', now(), now() + interval '10 minutes', hashtextextended('floor/agent/deploy/' || :k, 0)
           FROM l WHERE NOT EXISTS (
             SELECT 1 FROM spendguard.tool_call c
             WHERE c.content_key = hashtextextended('floor/agent/deploy/' || :k, 0)
               AND c.status = 'proposed' AND c.expires_at > now()
               AND c.tenant_id = 'floor' AND c.principal_kind = 'application' AND c.principal_id = 'agent'
               AND c.tool_name = 'deploy'
               AND c.args_hash = encode(sha256(convert_to('{"build":' || :k || ',"env":"prod"}', 'UTF8')), 'hex'))
           RETURNING id),
     s AS (INSERT INTO spendguard.proposal_secret (tenant_id, id, nonce_hash)
           SELECT 'floor', t.id, sha256(decode(md5('a' || :k) || md5('b' || :k), 'hex')) FROM t)
SELECT id AS i FROM t \gset
UPDATE spendguard.tool_call SET status = 'applied', applied_at = now(), applied_by_kind = 'user',
  applied_by_id = 'ops'
WHERE tenant_id = 'floor' AND id = :i AND status = 'proposed' AND expires_at > now()
  AND EXISTS (SELECT 1 FROM spendguard.proposal_secret s WHERE s.tenant_id = 'floor' AND s.id = :i
              AND s.nonce_hash = sha256(decode(md5('a' || :k) || md5('b' || :k), 'hex')));
