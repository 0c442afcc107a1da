-- spendguard usage: rolling-window token and call caps (SPEC.md §3).
-- The event tables are the record: every recorded use is one row.

CREATE TABLE spendguard.usage_event (
  id              uuid        NOT NULL DEFAULT gen_random_uuid(),
  tenant_id       text        NOT NULL,
  integration_id  text        NOT NULL,
  principal_kind  spendguard.principal_kind NOT NULL,
  principal_id    text        NOT NULL,
  input_tokens    bigint      NOT NULL CHECK (input_tokens >= 0),
  output_tokens   bigint      NOT NULL CHECK (output_tokens >= 0),
  model           text,
  conversation_id text,
  at              timestamptz NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  -- what the window index holds instead of the three ids (with ids of
  -- 1,024 incompressible bytes an entry holding them passes PostgreSQL's
  -- limit): SHA-256 of the length-prefixed ids (spendguard_core::key)
  window_key      bytea       NOT NULL
                  GENERATED ALWAYS AS (spendguard.id_key(integration_id, principal_kind, principal_id)) STORED,
  -- every key starts with the tenant (SPEC §10: a table distributed by
  -- tenant_id keeps a tenant's rows on one node)
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE spendguard.usage_event IS
  'Tokens used per integration and principal: the record the rolling-window token caps sum over';
SELECT pg_catalog.pg_extension_config_dump('spendguard.usage_event', '');
-- A window sum is a range scan of this index, answered from the index
-- alone where the visibility map allows (the token counts are included).
CREATE INDEX usage_event_window
  ON spendguard.usage_event (tenant_id, window_key, at)
  INCLUDE (input_tokens, output_tokens);
CREATE INDEX usage_event_at ON spendguard.usage_event (tenant_id, at);

CREATE TABLE spendguard.call_event (
  id             uuid        NOT NULL DEFAULT gen_random_uuid(),
  tenant_id      text        NOT NULL,
  principal_kind spendguard.principal_kind NOT NULL,
  principal_id   text        NOT NULL,
  tool_name      text        NOT NULL,
  at             timestamptz NOT NULL DEFAULT now(),
  -- as usage_event.window_key, of the principal and the tool
  window_key     bytea       NOT NULL
                 GENERATED ALWAYS AS (spendguard.id_key(principal_kind, principal_id, tool_name)) STORED,
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE spendguard.call_event IS
  'Tool calls per principal and tool: the record the rolling-window call caps count over';
SELECT pg_catalog.pg_extension_config_dump('spendguard.call_event', '');
CREATE INDEX call_event_window ON spendguard.call_event (tenant_id, window_key, at);
CREATE INDEX call_event_at ON spendguard.call_event (tenant_id, at);

CREATE TYPE spendguard.usage_cap AS (
  allowed   boolean,
  used      bigint,
  remaining bigint
);
COMMENT ON TYPE spendguard.usage_cap IS
  'Result of spendguard.usage_cap_check, usage_cap_enforce, usage_cap_charge and call_cap_charge';
