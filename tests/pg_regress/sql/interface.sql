-- The SQL interface of spendguard (SPEC.md §0, §1, §5): names, argument
-- lists, result types and the function properties the SPEC requires.
\x on
SELECT p.proname,
       pg_get_function_arguments(p.oid) AS arguments,
       pg_get_function_result(p.oid) AS result,
       p.provolatile AS vol, p.proisstrict AS strict, p.prosecdef AS secdef,
       p.proconfig AS config
FROM pg_proc p
WHERE p.pronamespace = 'spendguard'::regnamespace
ORDER BY p.proname, pg_get_function_arguments(p.oid);
\x off

-- every function and table says what it is
SELECT p.proname FROM pg_proc p
WHERE p.pronamespace = 'spendguard'::regnamespace
  AND obj_description(p.oid, 'pg_proc') IS NULL
ORDER BY 1;
SELECT c.relname FROM pg_class c
WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind IN ('r', 'S')
  AND obj_description(c.oid, 'pg_class') IS NULL
ORDER BY 1;

-- the result types
SELECT t.typname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
WHERE t.typnamespace = 'spendguard'::regnamespace AND t.typname IN ('hold_decision', 'hold_mutation')
ORDER BY 1, 2;

-- row level security on every table, and no privileges for PUBLIC
SELECT relname, relrowsecurity, relacl
FROM pg_class WHERE relnamespace = 'spendguard'::regnamespace AND relkind = 'r'
ORDER BY 1;
SELECT nspacl IS NULL OR NOT nspacl::text LIKE '%=U%' AS no_public_usage
FROM pg_namespace WHERE nspname = 'spendguard';
SELECT extrelocatable FROM pg_extension WHERE extname = 'spendguard';

-- the constraints that guard the counters (SPEC §1: each CHECK (>= 0))
SELECT conrelid::regclass AS "table", conname, pg_get_constraintdef(oid)
FROM pg_constraint
WHERE connamespace = 'spendguard'::regnamespace AND contype IN ('c', 'p', 'u', 'f')
ORDER BY conrelid::regclass::text, conname;

-- SPEC §10: every primary key and unique index starts with tenant_id (a
-- table distributed by tenant_id keeps each tenant's rows on one node),
-- and every table has one (daily_spend and spend_user_override have a
-- unique index over an expression, so no primary key). Both lists must be
-- empty.
SELECT i.indexrelid::regclass AS key_without_tenant_first
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = 'spendguard'::regnamespace AND (i.indisunique OR i.indisprimary)
  AND i.indkey[0] <> (SELECT a.attnum FROM pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
ORDER BY 1;
SELECT c.relname AS table_without_a_key
FROM pg_class c
WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind = 'r'
  AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique)
ORDER BY 1;

-- SPEC §10: no reader in LANGUAGE sql (one generic plan; Citus cannot plan
-- it for a distributed table). The two left read no table.
SELECT p.proname AS sql_language_function
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = 'spendguard'::regnamespace AND l.lanname = 'sql'
ORDER BY 1;
