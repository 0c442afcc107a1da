-- Prices (SPEC.md §8): tokens to cost, rounded up once, effective-dated,
-- failing closed; token reservations priced by their own price row.
SET spendguard.tenant = 'regress-price';

-- gpt-x: 2.5 dollars per million input tokens, 10 per million output,
-- 1.25 cached; from 2026-06-01, then dearer from 2026-07-01
SELECT spendguard.price_set('gpt-x', '2026-06-01 00:00Z', 2500000, 10000000, 1250000) > 0 AS first;
SELECT spendguard.price_set('gpt-x', '2026-07-01 00:00Z', 5000000, 20000000) > 0 AS second;
SELECT spendguard.price_set('mini', '2026-06-01 00:00Z', 1, 1) > 0 AS one_micro_per_mtok;
SELECT model, effective_from, input_micros_per_mtok, output_micros_per_mtok, cached_input_micros_per_mtok
FROM spendguard.price WHERE tenant_id = 'regress-price' ORDER BY model, effective_from;

-- rounding: up once, on the total
SELECT spendguard.price_cost('gpt-x', 1, 0, 0, '2026-06-15') AS one_token_2_5_up,
       spendguard.price_cost('gpt-x', 2, 0, 0, '2026-06-15') AS two_tokens_exact,
       spendguard.price_cost('gpt-x', 2, 0, 1, '2026-06-15') AS cached_3_75_up,
       spendguard.price_cost('gpt-x', 1000000, 1000000, 0, '2026-06-15') AS a_million_each,
       spendguard.price_cost('gpt-x', 0, 0, 0, '2026-06-15') AS nothing;
SELECT spendguard.price_cost('mini', 1, 0, 0, '2026-06-15') AS one_token,
       spendguard.price_cost('mini', 1000000, 0, 0, '2026-06-15') AS a_million,
       spendguard.price_cost('mini', 1000001, 0, 0, '2026-06-15') AS a_million_and_one;
-- no cached rate: cached tokens at the input rate
SELECT spendguard.price_cost('gpt-x', 1000000, 0, 1000000, '2026-07-15') AS cached_at_input_rate;

-- effective dating: before, at, after effective_from
\set VERBOSITY sqlstate
SELECT spendguard.price_cost('gpt-x', 1000000, 0, 0, '2026-05-31 23:59:59.999999Z');
\set VERBOSITY default
SELECT spendguard.price_cost('gpt-x', 1000000, 0, 0, '2026-06-01 00:00Z') AS at_june,
       spendguard.price_cost('gpt-x', 1000000, 0, 0, '2026-06-30 23:59:59.999999Z') AS last_june,
       spendguard.price_cost('gpt-x', 1000000, 0, 0, '2026-07-01 00:00Z') AS at_july;

-- failing closed: an unknown model, a price only in the future
SELECT spendguard.price_set('future', now() + interval '1 day', 1, 1) > 0 AS future;
\set VERBOSITY sqlstate
SELECT spendguard.price_cost('nobody', 1, 1);
SELECT spendguard.price_cost('future', 1, 1);
SELECT * FROM spendguard.scope_reserve_tokens(ARRAY['org:p'], 'future', 10, 10, 'tf');
\set VERBOSITY default

-- a token reservation: its estimate is the maxima priced with nothing
-- cached; its settle is priced by the reservation's row, not a newer one
SELECT spendguard.scope_set_budget('org:p', 'total', 100000000);
SELECT allowed, remaining_micros
FROM spendguard.scope_reserve_tokens(ARRAY['org:p', 'user:a'], 'gpt-x', 1000000, 500000, 't1',
                                     '2026-06-20 12:00Z');
SELECT estimate_micros, model, price_id = (SELECT id FROM spendguard.price
                                           WHERE tenant_id = 'regress-price'
                                             AND model = 'gpt-x' AND effective_from = '2026-06-01 00:00Z') AS june_row
FROM spendguard.scope_reservation WHERE tenant_id = 'regress-price' AND hold_id = 't1';
SELECT spendguard.price_set('gpt-x', '2026-06-10 00:00Z', 9000000, 9000000) > 0 AS newer_june_price;
SELECT allowed, remaining_micros FROM spendguard.scope_settle_tokens('t1', 800000, 200000, 400000);
SELECT status, cost_micros, input_tokens, output_tokens, cached_input_tokens
FROM spendguard.scope_reservation WHERE tenant_id = 'regress-price' AND hold_id = 't1';
-- (800000 - 400000) x 2.5 + 400000 x 1.25 + 200000 x 10 = 1000000 + 500000 + 2000000
SELECT spent_micros FROM spendguard.scope_usage('org:p');

-- a reservation in micros cannot be settled by tokens; SG001, SG002
SELECT allowed FROM spendguard.scope_reserve(ARRAY['org:p'], 10, 'm1');
\set VERBOSITY sqlstate
SELECT * FROM spendguard.scope_settle_tokens('m1', 1, 1);
SELECT * FROM spendguard.scope_settle_tokens('nope', 1, 1);
SELECT * FROM spendguard.scope_settle_tokens('t1', 1, 1);

-- bad input: its SQLSTATE, nothing written
SELECT spendguard.price_set('gpt-x', '2026-06-01 00:00Z', 1, 1);
SELECT spendguard.price_set('', '2026-06-01 00:00Z', 1, 1);
SELECT spendguard.price_set('m', 'infinity', 1, 1);
SELECT spendguard.price_set('m', '2026-06-01', -1, 1);
SELECT spendguard.price_set('m', '2026-06-01', 1, NULL);
SELECT spendguard.price_set('m', '2026-06-01', 1, 1, -1);
SELECT spendguard.price_cost('gpt-x', 1, 1, 2);
SELECT spendguard.price_cost('gpt-x', -1, 1);
SELECT spendguard.price_cost('gpt-x', 1, NULL);
SELECT spendguard.price_cost('gpt-x', 1, 1, 0, 'infinity');
SELECT spendguard.price_cost('gpt-x', 9223372036854775807, 9223372036854775807, 0, '2026-06-15');
SELECT * FROM spendguard.scope_reserve_tokens(ARRAY['org:p'], 'gpt-x', -1, 1, 'bad');
SELECT * FROM spendguard.scope_reserve_tokens(ARRAY['org:p'], NULL, 1, 1, 'bad');
SELECT * FROM spendguard.scope_reserve_tokens(ARRAY['org:p'], 'gpt-x', 9223372036854775807, 9223372036854775807, 'bad', '2026-06-20');
SELECT * FROM spendguard.scope_settle_tokens('m1', 1, 1, 2);
\set VERBOSITY default
SELECT count(*) AS prices FROM spendguard.price WHERE tenant_id = 'regress-price';
SELECT count(*) AS bad_reservations FROM spendguard.scope_reservation
WHERE tenant_id = 'regress-price' AND hold_id = 'bad';

-- rows are never changed in place
\set VERBOSITY sqlstate
UPDATE spendguard.price SET input_micros_per_mtok = 0;
DELETE FROM spendguard.price;
TRUNCATE spendguard.price;
\set VERBOSITY default

-- tenants have their own prices
SET spendguard.tenant = 'regress-price-other';
\set VERBOSITY sqlstate
SELECT spendguard.price_cost('gpt-x', 1, 1, 0, '2026-06-15');
\set VERBOSITY default
SELECT spendguard.price_set('gpt-x', '2026-06-01 00:00Z', 1, 1) > 0 AS own_price;
SELECT spendguard.price_cost('gpt-x', 1000000, 0, 0, '2026-06-15') AS own_cost;
SET spendguard.tenant = 'regress-price';
SELECT * FROM spendguard.verify();
