-- Backups (docs/operations.md "Backup and restore"): pg_dump keeps the rows
-- of an extension's tables only when the extension registers them with
-- pg_extension_config_dump. Every table and sequence of spendguard holds
-- user data and must be registered; a new one that is not shows up in the
-- first query (register it beside its CREATE, in the install SQL and in the
-- upgrade script; tests/backup/run.sh then dumps and restores its rows).
SELECT c.oid::regclass AS not_registered, c.relkind
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class c ON c.oid = d.objid
JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid AND e.extname = 'spendguard'
WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'e'
  AND c.relkind IN ('r', 'p', 'S')
  AND c.oid <> ALL (e.extconfig)
ORDER BY c.oid::regclass::text;

-- What is registered, and the filter of each: proposal_secret leaves out the
-- sentinel row that CREATE EXTENSION inserts (a restore makes it anew).
SELECT u.rel::regclass AS registered, c.relkind, u.cond AS filter
FROM pg_catalog.pg_extension e,
     unnest(e.extconfig, e.extcondition) AS u(rel, cond)
JOIN pg_catalog.pg_class c ON c.oid = u.rel
WHERE e.extname = 'spendguard'
ORDER BY u.rel::regclass::text;

-- The one row that filter leaves out.
SELECT count(*) AS sentinels FROM spendguard.proposal_secret WHERE NOT (tenant_id <> '');
