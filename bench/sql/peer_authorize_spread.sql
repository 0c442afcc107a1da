-- peer: pgledger (github.com/pgr0ss/pgledger, loaded only when
-- BENCH_PEERS_DIR holds a checkout; none of its code is in this repository):
-- one transfer between two of 10,000 accounts = 2 balance UPDATEs + a
-- transfer row + 2 entry rows, one call, its own database
\set a random(1, 10000)
SELECT id FROM pgledger_create_transfer((SELECT id FROM bench_account WHERE n = :a), (SELECT id FROM bench_account WHERE n = :a % 10000 + 1), 1.00);
