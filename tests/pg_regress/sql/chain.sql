-- The hash chain of the event log (SPEC.md §9).
SET spendguard.tenant = 'regress-chain';

-- The test vectors of spendguard_core::chain (crates/spendguard-core/src/chain.rs
-- and tests/chain/vectors.py), through the SQL functions verify() uses.
SELECT encode(spendguard.chain_genesis('acme', 'gpt', 7), 'hex') =
       'a4d7ad19a24abd52846d45a352937567bd57f3b04534de43fc06f179c1fe54e4' AS genesis_vector;
SELECT encode(spendguard.event_link(spendguard.chain_genesis('acme', 'gpt', 7),
         'acme', 42, 'ev-1', 'fp', 'h1', 'gpt', 7, 'authorize_exposure', true, NULL,
         '2026-01-01 03:04:05.678901Z', 1500, 0, NULL, 2000, 10000, 1, 1500, 0,
         NULL, NULL, NULL, 'single_primary_linearizable', 1), 'hex') =
       '7aefe6eb704ac9ee002b52459084d82aa21be1480206c855a85d4ec55b6a726e' AS event_vector;
SELECT encode(spendguard.checkpoint_link(
         '\x7aefe6eb704ac9ee002b52459084d82aa21be1480206c855a85d4ec55b6a726e',
         'acme', 'gpt', 7, 42, '2026-01-01 03:04:05.678901Z', '2026-01-01 03:05:00Z', 1, 1, 1500, 0,
         (-12.50)::numeric::text, 42, 0, 0::numeric::text, 1,
         '\x7aefe6eb704ac9ee002b52459084d82aa21be1480206c855a85d4ec55b6a726e', 2), 'hex') =
       '66865caf052cffffed3b8c36c95f14473aa4a7f545bb9f792a29e17cbd9b9d4c' AS checkpoint_vector;
-- a prev_hash that is not 32 bytes, a missing NOT NULL column: no hash
SELECT spendguard.event_link('\x00', 'acme', 42, NULL, NULL, NULL, 'gpt', 7, 'authorize_exposure',
         true, NULL, now(), 0, 0, NULL, NULL, NULL, 0, 0, 0, NULL, NULL, NULL, 'x', 1) IS NULL AS short_prev,
       spendguard.event_link(spendguard.chain_genesis('a', 'b', 0), 'acme', 42, NULL, NULL, NULL,
         'gpt', 7, 'authorize_exposure', true, NULL, now(), 0, 0, NULL, NULL, NULL, 0, 0, 0,
         NULL, NULL, NULL, 'x', NULL) IS NULL AS no_chain_n;

-- A budget's life: every event a link, chain_n 1, 2, 3 …, denials included.
SELECT authorized FROM spendguard.budget_authorize_hold('c', 0, 60, hold_id => 'c1', max_total_cost => 100);
SELECT authorized, denial_reason FROM spendguard.budget_authorize_hold('c', 0, 60, hold_id => 'c2', max_total_cost => 100);
SELECT kind FROM spendguard.budget_reconcile_hold(hold_id => 'c1', realized_spend => 50);
SELECT authorized FROM spendguard.budget_authorize_hold('c', 0, 40, hold_id => 'c3', max_total_cost => 100);
SELECT kind FROM spendguard.budget_release_hold(hold_id => 'c3');
SELECT authorized FROM spendguard.budget_authorize_hold('c', 1, 5);
SELECT e.chain_n, e.kind, e.allowed,
       e.chain_n = 1 AND e.prev_hash = spendguard.chain_genesis('regress-chain', 'c', 0) OR
       e.prev_hash = lag(e.hash) OVER (ORDER BY e.event_seq) AS linked,
       e.hash = spendguard.event_hash(e) AS hashed, octet_length(e.hash) AS bytes
FROM spendguard.budget_events(capability_id => 'c', grant_index => 0) e ORDER BY e.event_seq;
SELECT capability_id, grant_index, chain_n, length(hash) AS hex_digits, recorded_at IS NOT NULL AS dated
FROM spendguard.chain_heads();
-- (stored hashes read first, then passed: a query over a table that calls
-- a spendguard function would nest distributed queries on Citus)
SELECT encode(hash, 'hex') AS hash_5 FROM spendguard.budget_event
WHERE tenant_id = 'regress-chain' AND capability_id = 'c' AND chain_n = 5 \gset
SELECT h.hash = :'hash_5' AS head_is_last_event
FROM spendguard.chain_heads() h WHERE h.capability_id = 'c' AND h.grant_index = 0;
SELECT budgets, length(root) AS hex_digits FROM spendguard.chain_root();
SELECT count(*) AS problems FROM spendguard.verify();

-- Anchors: ok, another hash, a link past the head, an unknown budget.
SELECT encode(hash, 'hex') AS hash_3 FROM spendguard.budget_event
WHERE tenant_id = 'regress-chain' AND capability_id = 'c' AND chain_n = 3 \gset
SELECT spendguard.verify_anchor('c', 0, 3, :'hash_3') AS at_3,
       spendguard.verify_anchor('c', 0, 3, upper(:'hash_3')) AS upper_case,
       spendguard.verify_anchor('c', 0, 3, repeat('ab', 32)) AS other_hash,
       spendguard.verify_anchor('c', 0, 6, repeat('ab', 32)) AS past_head,
       spendguard.verify_anchor('nope', 0, 1, repeat('ab', 32)) AS unknown;
-- bad anchors
\set VERBOSITY sqlstate
SELECT spendguard.verify_anchor('c', 0, 0, repeat('ab', 32));
SELECT spendguard.verify_anchor('c', 0, 1, repeat('ab', 31));
SELECT spendguard.verify_anchor('c', 0, 1, repeat('zz', 32));
SELECT spendguard.verify_anchor('c', -1, 1, repeat('ab', 32));
SELECT spendguard.verify_anchor('', 0, 1, repeat('ab', 32));
SELECT spendguard.verify_anchor(NULL, 0, 1, repeat('ab', 32));
SELECT spendguard.verify_anchor('c', 0, NULL, repeat('ab', 32));
SELECT spendguard.verify_anchor('c', 0, 1, NULL);
\set VERBOSITY default

-- The root changes with every link, and only with a link.
CREATE TEMP TABLE roots AS SELECT root FROM spendguard.chain_root();
SELECT (SELECT root FROM roots) = (SELECT root FROM spendguard.chain_root()) AS same_without_a_write;
SELECT authorized FROM spendguard.budget_authorize_hold('c', 1, 5);
SELECT (SELECT root FROM roots) = (SELECT root FROM spendguard.chain_root()) AS same_after_a_write;
-- another tenant has its own chains and root
SET spendguard.tenant = 'regress-chain-other';
SELECT count(*) AS heads FROM spendguard.chain_heads();
SELECT budgets FROM spendguard.chain_root();
SELECT spendguard.verify_anchor('c', 0, 1, repeat('ab', 32)) AS not_this_tenants;
SET spendguard.tenant = 'regress-chain';

-- Retirement appends a checkpoint link: the chain verifies across the cut,
-- an anchor behind it says 'retired'.
CREATE TEMP TABLE last_event AS SELECT hash FROM spendguard.budget_event
WHERE tenant_id = 'regress-chain' AND capability_id = 'c' AND grant_index = 0 AND chain_n = 5;
SELECT capability_id, grant_index, retired_events, kept_events
FROM spendguard.budget_retire_events(now(), 'c', 0);
SELECT through_seq > 0 AS cut, cut_chain_n, chain_n,
       cut_hash = (SELECT hash FROM last_event) AS cut_hash_is_last_retired,
       prev_hash = (SELECT hash FROM last_event) AS appended_at_head,
       hash = spendguard.checkpoint_hash(k) AS hashed
FROM spendguard.budget_checkpoints('c', 0) k;
SELECT chain_n FROM spendguard.chain_heads() WHERE capability_id = 'c' AND grant_index = 0;
SELECT spendguard.verify_anchor('c', 0, 3, repeat('ab', 32)) AS behind_cut,
       spendguard.verify_anchor('c', 0, 6, (SELECT encode(hash, 'hex') FROM spendguard.budget_checkpoints('c', 0))) AS checkpoint_link;
SELECT authorized FROM spendguard.budget_authorize_hold('c', 0, 10, hold_id => 'c4', max_total_cost => 100);
SELECT e.chain_n, e.prev_hash = (SELECT hash FROM spendguard.budget_checkpoints('c', 0)) AS after_checkpoint
FROM spendguard.budget_events(capability_id => 'c', grant_index => 0) e;
SELECT count(*) AS problems FROM spendguard.verify();

-- The chain is written by the functions only: the link columns are not
-- the caller's to give, and the log stays append-only.
\set VERBOSITY sqlstate
UPDATE spendguard.budget_event SET hash = hash WHERE tenant_id = 'regress-chain';
\set VERBOSITY default
