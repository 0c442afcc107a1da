-- 50 proposal create + consume pairs (100 calls) per statement
SELECT count(spendguard.proposal_consume(p.token, 'user', 'ops')) FROM generate_series(1, 50) g, LATERAL spendguard.proposal_create('application', 'mema-' || g, 'deploy', jsonb_build_object('n', gen_random_uuid())) p;
