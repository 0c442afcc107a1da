\set k random(1, 9000000000000000000)
SELECT token AS t FROM spendguard.proposal_create('application', 'agent', 'deploy', ('{"build": ' || :k || ', "env": "prod"}')::jsonb) \gset
SELECT status FROM spendguard.proposal_consume(:t, 'user', 'ops');
