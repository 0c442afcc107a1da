//! spendguard: exact AI spend budgets, two-phase holds and agent action
//! tokens inside PostgreSQL. This crate only wires SQL to the rules in
//! `spendguard-core`; DDL, RLS and grants are in `sql/`.

use pgrx::prelude::*;

mod args;
mod budget;
mod error;
mod jsonb;
mod key;
mod proposal;
mod result;
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
pgrx::extension_sql_file!(
    "../sql/monitoring.sql",
    name = "monitoring",
    requires = ["spend_schema", "proposal_schema"]
);
pgrx::extension_sql_file!(
    "../sql/verify.sql",
    name = "verify",
    requires = [budget::current_tenant]
);
pgrx::extension_sql_file!("../sql/retire.sql", name = "retire", requires = ["verify"]);
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
