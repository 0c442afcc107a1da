//! #[pg_test] tests of internals that need a backend: the custom SQLSTATE
//! path, the GUCs and the plan cache. Behaviour is covered by pg_regress and
//! the multi-connection suite in tests/integration.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn tenant_defaults_and_follows_the_setting() {
        assert_eq!(crate::tenant::current(), Ok("default".to_string()));
        Spi::run("SET spendguard.tenant = 'acme'").unwrap();
        assert_eq!(crate::tenant::current(), Ok("acme".to_string()));
        // empty is an error, never the shared 'default' (SPEC §0)
        Spi::run("SET spendguard.tenant = ''").unwrap();
        assert_eq!(crate::tenant::current().unwrap_err().sqlstate(), "22023");
        Spi::run("RESET spendguard.tenant").unwrap();
        assert_eq!(crate::tenant::current(), Ok("default".to_string()));
        Spi::run("SET spendguard.require_tenant = on").unwrap();
        assert_eq!(crate::tenant::current().unwrap_err().sqlstate(), "SG030");
    }

    /// Every enumeration once (spendguard_core::enums): each Rust type's
    /// labels are its SQL domain's values, in order, and every domain of
    /// the schema is one of them.
    #[pg_test]
    fn every_enumeration_is_its_sql_domain() {
        for (domain, labels) in spendguard_core::enums::ALL {
            let def = Spi::get_one::<String>(&format!(
                "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
                 WHERE c.contypid = 'spendguard.{domain}'::regtype"
            ))
            .unwrap()
            .unwrap();
            // CHECK ((VALUE = ANY (ARRAY['user'::text, 'application'::text])))
            let got: Vec<&str> = def.split('\'').skip(1).step_by(2).collect();
            assert_eq!(got, *labels, "{domain}: {def}");
        }
        let domains = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_type \
             WHERE typnamespace = 'spendguard'::regnamespace AND typtype = 'd'",
        )
        .unwrap()
        .unwrap();
        assert_eq!(domains as usize, spendguard_core::enums::ALL.len());
    }

    #[pg_test]
    fn custom_sqlstate_reaches_sql() {
        // A PL/pgSQL handler sees the raised SQLSTATE exactly as a client would.
        let code = Spi::get_one::<String>(
            "DO $$ BEGIN
               PERFORM spendguard.budget_release_hold(hold_id => 'nope');
             EXCEPTION WHEN OTHERS THEN
               PERFORM set_config('sg.code', SQLSTATE, false);
             END $$; SELECT current_setting('sg.code')",
        );
        assert_eq!(code, Ok(Some("SG001".to_string())));
    }

    #[pg_test]
    fn cached_plans_survive_many_calls() {
        for i in 0..50 {
            let ok = Spi::get_one::<bool>(&format!(
                "SELECT (spendguard.budget_authorize_hold('c', 0, 1, max_total_cost => 40)).authorized -- {i}"
            ))
            .unwrap()
            .unwrap();
            assert_eq!(ok, i < 40);
        }
        let n = Spi::get_one::<i64>("SELECT invocation_count FROM spendguard.budget_usage('c', 0)");
        assert_eq!(n, Ok(Some(40)));
    }

    #[pg_test]
    fn guarantee_level_is_single_node_without_standbys() {
        assert_eq!(crate::budget::ops::guarantee_level(), "single_node_atomic");
    }

    /// The window sum the caps run (the statement constant itself, not a
    /// copy) stays an index range scan with a million rows in the table.
    #[pg_test]
    fn the_window_sum_is_an_index_range_scan_with_a_million_rows() {
        Spi::run(
            "INSERT INTO spendguard.usage_event (tenant_id, integration_id, principal_kind, \
             principal_id, input_tokens, output_tokens, at) \
             SELECT 't', 'i', 'user', 'p' || (g % 1000), 1, 1, now() - (g % 86400) * interval '1 second' \
             FROM generate_series(1, 1000000) g",
        )
        .unwrap();
        Spi::run("ANALYZE spendguard.usage_event").unwrap();
        Spi::run("SET plan_cache_mode = force_generic_plan").unwrap();
        Spi::run(&format!(
            "PREPARE w(text, text, text, text, interval) AS {}",
            crate::usage::store::WINDOW_TOKENS.current.sql
        ))
        .unwrap();
        let plan: Vec<String> = Spi::connect(|c| {
            c.select(
                "EXPLAIN (COSTS OFF) EXECUTE w('t', 'i', 'user', 'p7', '1 hour')",
                None,
                &[],
            )
            .unwrap()
            .map(|r| r.get::<String>(1).unwrap().unwrap())
            .collect()
        });
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Only Scan using usage_event_window"),
            "{plan}"
        );
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}
