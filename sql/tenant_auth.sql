-- spendguard tenants bound to roles (SPEC.md §5): with spendguard.tenant_auth
-- = role, a call acts for a tenant only when the current role is a member
-- of a role granted it here (src/tenant.rs checks). The functions are not
-- executable by PUBLIC (finalize.sql); they name their tenant and are not
-- themselves checked.

CREATE TABLE spendguard.tenant_role (
  tenant_id  text        NOT NULL CHECK (tenant_id <> '' AND octet_length(tenant_id) <= 1024),
  -- a role, dumped and restored by its name
  role       regrole     NOT NULL,
  granted_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, role)
);
COMMENT ON TABLE spendguard.tenant_role IS
  'Roles granted a tenant: with spendguard.tenant_auth = role, only their members act for it';
SELECT pg_catalog.pg_extension_config_dump('spendguard.tenant_role', '');

CREATE FUNCTION spendguard.tenant_grant(role regrole, tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'role and tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('tenant', $2);
  INSERT INTO spendguard.tenant_role (tenant_id, role) VALUES ($2, $1) ON CONFLICT DO NOTHING;
END
$$;

CREATE FUNCTION spendguard.tenant_revoke(role regrole, tenant text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF $1 IS NULL OR $2 IS NULL THEN
    RAISE EXCEPTION 'role and tenant must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  PERFORM spendguard.check_id('tenant', $2);
  DELETE FROM spendguard.tenant_role r WHERE r.tenant_id = $2 AND r.role = $1;
END
$$;
