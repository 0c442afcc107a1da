#!/usr/bin/env bash
# The daily anchor of spendguard's hash chains (docs/integrity.md).
#
#   examples/anchor.sh export DIR [TENANT ...]
#       writes DIR/anchor-<UTC date and time>.csv: the chain heads of every
#       tenant named (default: every tenant with a chain), and
#       DIR/anchor-<…>.root: per tenant, chain_root() over those heads.
#       Copy both to storage the database's administrators cannot rewrite
#       (write-once object storage, a signed message, another system).
#   examples/anchor.sh check FILE.csv
#       asks verify_anchor() for every head in an earlier export: each must
#       still be `ok` (or `retired`, behind a retirement cut since). Exits 1
#       when one says `mismatch`: the log was rewritten after that export.
#
# Run it as a role that may act for every tenant it names (the extension
# owner or a superuser; with spendguard.tenant_auth = role, one granted the
# tenants). Connection: $ANCHOR_CONNINFO, else $SG_CONNINFO, else libpq's
# PG* environment. A daily cron line:
#   5 0 * * * examples/anchor.sh check "$(ls -t /anchors/*.csv | head -1)" && examples/anchor.sh export /anchors
set -euo pipefail

conninfo="${ANCHOR_CONNINFO:-${SG_CONNINFO:-}}"
psql_() { "${PSQL:-psql}" -X -q -v ON_ERROR_STOP=1 "$conninfo" "$@"; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' >&2; exit 2; }

case "${1:-}" in
export)
  dir="${2:?usage: anchor.sh export DIR [TENANT ...]}"
  shift 2
  mkdir -p "$dir"
  stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
  csv="$dir/anchor-$stamp.csv"
  root="$dir/anchor-$stamp.root"
  tenants="$(printf '%s\n' "$@")"
  # One transaction, one snapshot: the heads and the roots agree.
  psql_ -v tenants="$tenants" <<SQL
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE TEMP TABLE anchor_tenant (tenant_id text PRIMARY KEY);
INSERT INTO anchor_tenant
  SELECT t FROM unnest(string_to_array(:'tenants', E'\n')) t WHERE t <> '';
INSERT INTO anchor_tenant
  SELECT DISTINCT u.tenant_id FROM spendguard.budget_usage u
  WHERE u.chain_n > 0 AND NOT EXISTS (SELECT 1 FROM anchor_tenant)
  ON CONFLICT DO NOTHING;
CREATE TEMP TABLE anchor_head (tenant_id text, capability_id text, grant_index integer,
  chain_n bigint, hash text, recorded_at timestamptz);
CREATE TEMP TABLE anchor_root (tenant_id text, budgets bigint, root text);
DO \$\$
DECLARE t text;
BEGIN
  FOR t IN SELECT tenant_id FROM anchor_tenant ORDER BY tenant_id COLLATE "C" LOOP
    PERFORM set_config('spendguard.tenant', t, true);
    INSERT INTO anchor_head SELECT t, h.* FROM spendguard.chain_heads() h;
    INSERT INTO anchor_root SELECT t, r.* FROM spendguard.chain_root() r;
  END LOOP;
END
\$\$;
\copy (SELECT * FROM anchor_head ORDER BY tenant_id COLLATE "C", capability_id COLLATE "C", grant_index) TO '$csv' CSV HEADER
\copy (SELECT * FROM anchor_root ORDER BY tenant_id COLLATE "C") TO '$root' CSV HEADER
COMMIT;
SQL
  echo "anchored $(($(wc -l < "$csv") - 1)) chain heads of $(($(wc -l < "$root") - 1)) tenants: $csv, $root"
  ;;
check)
  csv="${2:?usage: anchor.sh check FILE.csv}"
  [ -r "$csv" ] || { echo "anchor.sh: cannot read $csv" >&2; exit 2; }
  out="$(psql_ -At <<SQL
CREATE TEMP TABLE anchor_head (tenant_id text, capability_id text, grant_index integer,
  chain_n bigint, hash text, recorded_at timestamptz, result text);
\copy anchor_head (tenant_id, capability_id, grant_index, chain_n, hash, recorded_at) FROM '$csv' CSV HEADER
DO \$\$
DECLARE a record;
BEGIN
  FOR a IN SELECT * FROM anchor_head LOOP
    PERFORM set_config('spendguard.tenant', a.tenant_id, true);
    UPDATE anchor_head h
    SET result = spendguard.verify_anchor(a.capability_id, a.grant_index, a.chain_n, a.hash)
    WHERE h.tenant_id = a.tenant_id AND h.capability_id = a.capability_id
      AND h.grant_index = a.grant_index;
  END LOOP;
END
\$\$;
SELECT format('%s %s', result, count(*)) FROM anchor_head GROUP BY result ORDER BY result;
SELECT format('MISMATCH tenant=%s capability_id=%s grant_index=%s chain_n=%s', tenant_id,
              capability_id, grant_index, chain_n)
FROM anchor_head WHERE result = 'mismatch' ORDER BY 1;
SQL
)"
  echo "$out"
  if grep -q '^MISMATCH' <<<"$out"; then
    echo "anchor.sh: the log no longer has links anchored in $csv" >&2
    exit 1
  fi
  ;;
*) usage ;;
esac
