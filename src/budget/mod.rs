//! SQL entry points of budgets and two-phase holds (SPEC.md §1). Each one
//! only moves arguments into `ops` and the result into a composite; the
//! rules live in spendguard-core, the SQL in `store`.

pub mod ops;
pub mod store;

use crate::error::ok_or_raise;
use ops::{AuthorizeArgs, HoldDecision, HoldMutation, MutateArgs};
use pgrx::prelude::*;
use spendguard_core::budget::Mutation;

type Row = PgHeapTuple<'static, AllocatedByRust>;

fn composite(type_name: &str) -> Row {
    PgHeapTuple::new_composite_type(type_name)
        .unwrap_or_else(|e| panic!("spendguard: type {type_name} is missing: {e}"))
}

fn set<T: IntoDatum>(t: &mut Row, col: &str, v: T) {
    t.set_by_name(col, v)
        .unwrap_or_else(|e| panic!("spendguard: column {col}: {e}"));
}

fn decision_row(d: HoldDecision) -> Row {
    let mut t = composite("spendguard.hold_decision");
    set(&mut t, "authorized", d.authorized);
    set(&mut t, "denial_reason", d.denial_reason);
    set(&mut t, "hold_id", d.hold_id);
    set(&mut t, "exposure_units", d.exposure_units);
    set(&mut t, "committed_cost_after", d.committed_cost_after);
    set(&mut t, "invocation_count_after", d.invocation_count_after);
    set(&mut t, "commit_index", d.commit_index);
    set(&mut t, "event_id", d.event_id);
    set(&mut t, "guarantee_level", d.guarantee_level);
    set(&mut t, "budget_term", d.budget_term);
    t
}

fn mutation_row(m: HoldMutation) -> Row {
    let mut t = composite("spendguard.hold_mutation");
    set(&mut t, "hold_id", m.hold_id);
    set(&mut t, "kind", m.kind);
    set(&mut t, "exposure_units", m.exposure_units);
    set(&mut t, "realized_spend_units", m.realized_spend_units);
    set(&mut t, "committed_cost_after", m.committed_cost_after);
    set(&mut t, "invocation_count_after", m.invocation_count_after);
    set(&mut t, "commit_index", m.commit_index);
    set(&mut t, "event_id", m.event_id);
    set(&mut t, "guarantee_level", m.guarantee_level);
    set(&mut t, "budget_term", m.budget_term);
    t
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn budget_authorize_hold(
    capability_id: Option<String>,
    grant_index: Option<i32>,
    requested_exposure: Option<i64>,
    max_invocations: default!(Option<i64>, "NULL"),
    max_cost_per_invocation: default!(Option<i64>, "NULL"),
    max_total_cost: default!(Option<i64>, "NULL"),
    hold_id: default!(Option<String>, "NULL"),
    event_id: default!(Option<String>, "NULL"),
    authority_id: default!(Option<String>, "NULL"),
    lease_id: default!(Option<String>, "NULL"),
    lease_epoch: default!(Option<i64>, "NULL"),
) -> pgrx::composite_type!('static, "spendguard.hold_decision") {
    decision_row(ok_or_raise(ops::authorize(AuthorizeArgs {
        capability_id,
        grant_index,
        requested_exposure,
        max_invocations,
        max_cost_per_invocation,
        max_total_cost,
        hold_id,
        event_id,
        authority_id,
        lease_id,
        lease_epoch,
    })))
}

/// One macro per mutation keeps the four SQL signatures (whose parameter
/// names differ) from being written out four times.
macro_rules! mutation_fn {
    ($name:ident, $kind:expr, $amount:ident) => {
        #[allow(clippy::too_many_arguments)]
        #[pg_extern(volatile, parallel_unsafe)]
        fn $name(
            capability_id: default!(Option<String>, "NULL"),
            grant_index: default!(Option<i32>, "NULL"),
            $amount: default!(Option<i64>, "NULL"),
            hold_id: default!(Option<String>, "NULL"),
            event_id: default!(Option<String>, "NULL"),
            authority_id: default!(Option<String>, "NULL"),
            lease_id: default!(Option<String>, "NULL"),
            lease_epoch: default!(Option<i64>, "NULL"),
) -> pgrx::composite_type!('static, "spendguard.hold_mutation") {
            mutation_row(ok_or_raise(ops::mutate(
                $kind,
                MutateArgs {
                    capability_id,
                    grant_index,
                    amount: $amount,
                    realized: None,
                    hold_id,
                    event_id,
                    authority_id,
                    lease_id,
                    lease_epoch,
                },
            )))
        }
    };
}

mutation_fn!(budget_release_hold, Mutation::Release, released_exposure);
mutation_fn!(budget_reverse_hold, Mutation::Reverse, reversed_exposure);

macro_rules! reconcile_fn {
    ($name:ident) => {
        #[allow(clippy::too_many_arguments)]
        #[pg_extern(volatile, parallel_unsafe)]
        fn $name(
            capability_id: default!(Option<String>, "NULL"),
            grant_index: default!(Option<i32>, "NULL"),
            exposed_cost: default!(Option<i64>, "NULL"),
            realized_spend: default!(Option<i64>, "NULL"),
            hold_id: default!(Option<String>, "NULL"),
            event_id: default!(Option<String>, "NULL"),
            authority_id: default!(Option<String>, "NULL"),
            lease_id: default!(Option<String>, "NULL"),
            lease_epoch: default!(Option<i64>, "NULL"),
) -> pgrx::composite_type!('static, "spendguard.hold_mutation") {
            mutation_row(ok_or_raise(ops::mutate(
                Mutation::Reconcile,
                MutateArgs {
                    capability_id,
                    grant_index,
                    amount: exposed_cost,
                    realized: realized_spend,
                    hold_id,
                    event_id,
                    authority_id,
                    lease_id,
                    lease_epoch,
                },
            )))
        }
    };
}

reconcile_fn!(budget_reconcile_hold);
reconcile_fn!(budget_capture_hold);

#[pg_extern(volatile, parallel_unsafe)]
fn budget_try_increment(
    capability_id: Option<String>,
    grant_index: Option<i32>,
    max_invocations: Option<i64>,
    event_id: default!(Option<String>, "NULL"),
) -> bool {
    ok_or_raise(ops::try_increment(
        capability_id,
        grant_index,
        max_invocations,
        event_id,
    ))
}

/// The tenant of the current call (used by RLS policies and the readers).
#[pg_extern(stable, parallel_safe)]
fn current_tenant() -> String {
    ok_or_raise(crate::tenant::current())
}

/// The guarantee a commit made now carries.
#[pg_extern(stable, parallel_safe)]
fn guarantee_level() -> &'static str {
    ops::guarantee_level()
}
