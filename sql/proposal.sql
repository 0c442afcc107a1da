-- spendguard proposals: propose / apply tokens and the tool-call audit log
-- (SPEC.md §4). RLS and function comments are in finalize.sql.

-- The audit log and the token store in one: every directly executed or
-- failed tool call, and every proposal with how it ended. No nonce material
-- lives here (see proposal_secret).
CREATE TABLE spendguard.tool_call (
  id               uuid        NOT NULL DEFAULT gen_random_uuid(),
  tenant_id        text        NOT NULL,
  principal_kind   spendguard.principal_kind NOT NULL,
  principal_id     text        NOT NULL,
  transport        spendguard.transport NOT NULL,
  conversation_id  text,
  tool_name        text        NOT NULL,
  effect           spendguard.tool_effect NOT NULL,
  args_hash        text        NOT NULL CHECK (args_hash ~ '^[0-9a-f]{64}$'),
  status           spendguard.tool_call_status NOT NULL,
  result_snapshot  jsonb,
  error            text,
  proposed_payload jsonb,
  proposed_at      timestamptz,
  expires_at       timestamptz,
  applied_at       timestamptz,
  applied_by_kind  spendguard.principal_kind,
  applied_by_id    text,
  rejected_at      timestamptz,
  rejected_by_kind spendguard.principal_kind,
  rejected_by_id   text,
  -- the audit order: clock time, so calls within one transaction keep theirs
  created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- a proposal's content digest (tenant, principal, tool, args_hash): the
  -- key of its dedup look-up and lock; NULL for direct records
  content_key      bigint,
  -- every key starts with the tenant (SPEC §10)
  PRIMARY KEY (tenant_id, id),
  -- a proposal has its times; a direct record has none
  CHECK ((status IN ('executed', 'failed')) = (proposed_at IS NULL)),
  CHECK ((proposed_at IS NULL) = (expires_at IS NULL)),
  CHECK ((status = 'applied') = (applied_at IS NOT NULL)),
  CHECK ((applied_at IS NULL) = (applied_by_kind IS NULL) AND (applied_by_kind IS NULL) = (applied_by_id IS NULL)),
  CHECK ((status = 'rejected') = (rejected_at IS NOT NULL)),
  CHECK ((rejected_at IS NULL) = (rejected_by_kind IS NULL) AND (rejected_by_kind IS NULL) = (rejected_by_id IS NULL))
);
COMMENT ON TABLE spendguard.tool_call IS
  'Agent tool calls: executed and failed ones, and proposals with who applied or rejected them; no nonce material';
SELECT pg_catalog.pg_extension_config_dump('spendguard.tool_call', '');
-- the audit readers: newest first, by principal
CREATE INDEX tool_call_recent ON spendguard.tool_call (tenant_id, created_at);
CREATE INDEX tool_call_principal
  ON spendguard.tool_call (tenant_id, principal_kind, principal_id, created_at);
-- proposals in flight: the content dedup look-up goes by content_key, an
-- index no other query can use, so no generic plan can prefer another
-- index and filter the principal's history or the tenant's in-flight set
-- on every create (both happened with text-column indexes); the sweep of
-- stale ones goes by tenant and expiry
CREATE INDEX tool_call_in_flight ON spendguard.tool_call (content_key, expires_at)
  WHERE status = 'proposed';
CREATE INDEX tool_call_stale ON spendguard.tool_call (tenant_id, expires_at)
  WHERE status = 'proposed';

-- The SHA-256 of each proposal's nonce, apart from the audit row so that
-- no reader of tool_call ever returns it. The nonce itself is never stored.
-- No foreign key to tool_call: the row of tenant '' below has no proposal.
CREATE TABLE spendguard.proposal_secret (
  tenant_id  text  NOT NULL,
  id         uuid  NOT NULL,
  nonce_hash bytea NOT NULL CHECK (octet_length(nonce_hash) = 32),
  PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE spendguard.proposal_secret IS
  'SHA-256 of each proposal token''s nonce (the nonce itself is never stored)';
-- The sentinel a token with an unknown id is checked against, so that an
-- unknown id costs the same index probe, row fetch and comparison as a
-- wrong nonce. Tenant '' is no tenant: spendguard.tenant is never empty.
INSERT INTO spendguard.proposal_secret (tenant_id, id, nonce_hash)
VALUES ('', '00000000-0000-0000-0000-000000000000', decode(repeat('5a', 32), 'hex'));
-- Dumped without that row: CREATE EXTENSION makes it again in the restored
-- database, and a second copy would collide with it.
SELECT pg_catalog.pg_extension_config_dump('spendguard.proposal_secret', 'WHERE tenant_id <> ''''');

CREATE TYPE spendguard.proposal_created AS (
  id           uuid,
  token        text,
  expires_at   timestamptz,
  args_hash    text,
  duplicate_of uuid
);
COMMENT ON TYPE spendguard.proposal_created IS 'Result of spendguard.proposal_create';
