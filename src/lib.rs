//! spendguard: exact AI spend budgets, two-phase holds and agent action
//! tokens inside PostgreSQL. This crate only wires SQL to the rules in
//! `spendguard-core`; DDL, RLS and grants are in `sql/`.
//!
//! Every capability is built the same way: `<capability>/mod.rs` has the
//! `#[pg_extern]`s, which only move their arguments into `ops` and the
//! result into a row; `ops.rs` validates and decides with the core crate;
//! `store.rs` is an `impl` on the one store layer (`spi::Db`). An op with
//! more than four arguments takes them as one `…Args` struct named as in
//! SQL, fewer are passed as they are. Holds that other capabilities open go
//! through `budget::holds`; time and interval arguments through `args`.

use pgrx::prelude::*;

mod alert;
mod args;
mod budget;
mod chain;
mod error;
mod jsonb;
mod key;
mod price;
mod proposal;
mod result;
mod scope;
mod spend;
mod spi;
mod tenant;
mod usage;

::pgrx::pg_module_magic!(name, version);

pgrx::extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);
pgrx::extension_sql_file!(
    "../sql/spend.sql",
    name = "spend_schema",
    requires = [key::id_key2]
);
pgrx::extension_sql_file!(
    "../sql/usage.sql",
    name = "usage_schema",
    requires = [key::id_key3]
);
pgrx::extension_sql_file!("../sql/proposal.sql", name = "proposal_schema");
pgrx::extension_sql_file!("../sql/scope.sql", name = "scope_schema");
pgrx::extension_sql_file!("../sql/price.sql", name = "price_schema");
pgrx::extension_sql_file!("../sql/tenant_auth.sql", name = "tenant_auth");
pgrx::extension_sql_file!(
    "../sql/alert.sql",
    name = "alert_schema",
    requires = [budget::current_tenant, "scope_schema"]
);
pgrx::extension_sql_file!(
    "../sql/monitoring.sql",
    name = "monitoring",
    requires = ["spend_schema", "proposal_schema"]
);
pgrx::extension_sql_file!(
    "../sql/verify.sql",
    name = "verify",
    requires = [budget::current_tenant, key::id_key2, "scope_schema"]
);
pgrx::extension_sql_file!("../sql/retire.sql", name = "retire", requires = ["verify"]);
pgrx::extension_sql_file!(
    "../sql/chain.sql",
    name = "chain_schema",
    requires = [
        chain::event_link,
        chain::checkpoint_link,
        budget::current_tenant,
        "retire"
    ]
);
pgrx::extension_sql_file!(
    "../sql/maintenance.sql",
    name = "maintenance",
    requires = ["retire", budget::budget_expire_holds]
);
pgrx::extension_sql_file!(
    "../sql/citus.sql",
    name = "citus_schema",
    requires = ["retire"]
);
pgrx::extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    tenant::register_gucs();
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
