-- spendguard prices: tokens to cost, failing closed (SPEC.md §8). Loaded
-- after bootstrap.sql; RLS and function comments are in finalize.sql.

CREATE SEQUENCE spendguard.price_id AS bigint;
COMMENT ON SEQUENCE spendguard.price_id IS 'Ids of spendguard.price rows';
SELECT pg_catalog.pg_extension_config_dump('spendguard.price_id', '');

-- Prices per million tokens, in micros. A row is never changed: a new row
-- with a later effective_from supersedes it, so every past cost can be
-- recomputed from the row that priced it (scope_reservation.price_id).
CREATE TABLE spendguard.price (
  tenant_id                    text        NOT NULL,
  id                           bigint      NOT NULL DEFAULT nextval('spendguard.price_id'),
  model                        text        NOT NULL CHECK (model <> ''),
  effective_from               timestamptz NOT NULL CHECK (isfinite(effective_from)),
  input_micros_per_mtok        bigint      NOT NULL CHECK (input_micros_per_mtok >= 0),
  output_micros_per_mtok       bigint      NOT NULL CHECK (output_micros_per_mtok >= 0),
  cached_input_micros_per_mtok bigint      CHECK (cached_input_micros_per_mtok >= 0),
  created_at                   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, id),
  -- the price in force at a time: the greatest effective_from <= it (a
  -- backward scan of this index); tenant and model are ids of at most
  -- 1,024 bytes, so an entry fits a btree page
  UNIQUE (tenant_id, model, effective_from)
);
ALTER SEQUENCE spendguard.price_id OWNED BY spendguard.price.id;
COMMENT ON TABLE spendguard.price IS
  'Prices per million tokens by model, in micros, from effective_from on; rows are never changed';
SELECT pg_catalog.pg_extension_config_dump('spendguard.price', '');

CREATE FUNCTION spendguard.refuse_price_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  RAISE EXCEPTION 'spendguard.price rows are never changed (% refused): set a new price with a later effective_from', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
COMMENT ON FUNCTION spendguard.refuse_price_change() IS
  'Trigger function that keeps spendguard.price rows as they were written';
CREATE TRIGGER price_never_changed BEFORE UPDATE OR DELETE ON spendguard.price
  FOR EACH ROW EXECUTE FUNCTION spendguard.refuse_price_change();
CREATE TRIGGER price_no_truncate BEFORE TRUNCATE ON spendguard.price
  FOR EACH STATEMENT EXECUTE FUNCTION spendguard.refuse_price_change();
