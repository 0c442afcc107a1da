-- peer: pg-authz's meter (github.com/varunchopra/pg-authz, loaded only when
-- BENCH_PEERS_DIR holds a checkout; none of its code is in this repository):
-- reserve, then commit the reservation with its actual amount (two
-- transactions), over 10,000 users with an allocated balance
\set k random(1, 10000)
SELECT reservation_id AS r FROM meter.reserve('u' || :k, 'llm_call', 5, 'tokens') \gset
SELECT success FROM meter.commit(:r, 4);
