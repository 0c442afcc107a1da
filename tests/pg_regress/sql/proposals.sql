-- Propose / apply tokens and the tool-call audit log as a user sees them
-- (SPEC.md §4). Tokens and ids are random: only their shape is printed.
SET spendguard.tenant = 'regress-proposals';

-- canonical JSON and its hash: key order and whitespace never matter
SELECT spendguard.canonical_json('{"b": [1, 2.50, {"z": null, "a": "x"}], "a": 1e3, "é": true, "Z": ""}');
SELECT spendguard.args_hash('{"to": "bob", "amount": 10}') AS h1,
       spendguard.args_hash('{ "amount" : 10 ,"to":"bob"}') AS h2,
       spendguard.args_hash('{}') = encode(sha256('{}'), 'hex') AS empty_is_sha256_of_braces;
SELECT spendguard.canonical_json(NULL) IS NULL AS strict;

-- an agent proposes; the token is shown once
SELECT token ~ '^propose:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9a-f]{64}$' AS token_shape,
       expires_at - now() AS ttl, args_hash, duplicate_of
FROM spendguard.proposal_create('application', 'agent-7', 'refund', '{"order": 42, "amount": 1999}',
                                effect => 'destructive', conversation_id => 'conv-1') \gset
\echo :token_shape :ttl :duplicate_of
-- the same content in flight again: no new proposal, no token
SELECT token IS NULL AS no_token, duplicate_of IS NOT NULL AS duplicate
FROM spendguard.proposal_create('application', 'agent-7', 'refund', '{"amount": 1999, "order": 42}',
                                effect => 'destructive');
SELECT token AS refund_token, id AS refund_id
FROM spendguard.proposal_create('application', 'agent-7', 'refund', '{"order": 43, "amount": 5}') \gset

\set VERBOSITY sqlstate
-- a bad token tells nothing: malformed, unknown and wrong nonce are all SG010
SELECT spendguard.proposal_consume('propose:nope', 'user', 'ops-1');
SELECT spendguard.proposal_consume(regexp_replace(:'refund_token', '.{4}$', 'ffff'), 'user', 'ops-1');
SELECT spendguard.proposal_consume('propose:00000000-0000-0000-0000-000000000001.' || repeat('0', 64), 'user', 'ops-1');
-- the right token with other arguments: SG013, and it stays consumable
SELECT spendguard.proposal_consume(:'refund_token', 'user', 'ops-1', '{"order": 43, "amount": 500}');
\set VERBOSITY default
SELECT status FROM spendguard.proposal_get(:'refund_id');

-- apply it together with the application's own write: one transaction
CREATE TEMP TABLE refunds (order_id int, amount int);
BEGIN;
SELECT status, applied_by_kind, applied_by_id
FROM spendguard.proposal_consume(:'refund_token', 'user', 'ops-1', '{"amount": 5, "order": 43}');
INSERT INTO refunds VALUES (43, 5);
COMMIT;
\set VERBOSITY sqlstate
SELECT spendguard.proposal_consume(:'refund_token', 'user', 'ops-2');
\set VERBOSITY default

-- reject, expire, and the audit log
SELECT token AS wipe_token FROM spendguard.proposal_create('user', 'u1', 'wipe_disk', '{}',
                                                           effect => 'destructive') \gset
SELECT status, rejected_by_kind, rejected_by_id FROM spendguard.proposal_reject(:'wipe_token', 'user', 'sec-team');
SELECT token AS late_token FROM spendguard.proposal_create('user', 'u1', 'late', '{}', ttl => '1 microsecond') \gset
\set VERBOSITY sqlstate
SELECT spendguard.proposal_consume(:'late_token', 'user', 'u1');
\set VERBOSITY default
SELECT spendguard.proposal_expire_stale();
SELECT spendguard.tool_call_record('user', 'u1', 'search', '{"q": "refund policy"}', 'executed',
                                   result => '{"hits": 3}', conversation_id => 'conv-1') IS NOT NULL AS recorded;
SELECT principal_id, tool_name, effect, status, applied_by_id, rejected_by_id, result_snapshot
FROM spendguard.tool_calls() ORDER BY tool_name, status;
SELECT tool_name, status FROM spendguard.tool_calls(conversation_id => 'conv-1') ORDER BY tool_name;
SELECT count(*) AS refunds FROM refunds;
