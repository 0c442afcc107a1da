//! SQL entry points of budgets and two-phase holds (SPEC.md §1). Each one
//! only moves arguments into `ops` and the result into a composite; the
//! rules live in spendguard-core, the SQL in `store`.

pub mod holds;
pub mod ops;
pub mod store;

use crate::error::ok_or_raise;
use crate::result::{row, Row};
use ops::{AuthorizeArgs, HoldDecision, HoldMutation, MutateArgs};
use pgrx::prelude::*;
use spendguard_core::budget::Mutation;

fn decision_row(fcinfo: pg_sys::FunctionCallInfo, d: HoldDecision) -> Row {
    row(
        fcinfo,
        [
            d.authorized.into_datum(),
            d.denial_reason.into_datum(),
            d.hold_id.into_datum(),
            d.exposure_units.into_datum(),
            d.committed_cost_after.into_datum(),
            d.invocation_count_after.into_datum(),
            d.commit_index.into_datum(),
            d.event_id.into_datum(),
            d.guarantee_level.into_datum(),
            d.budget_term.into_datum(),
        ],
    )
}

fn mutation_row(fcinfo: pg_sys::FunctionCallInfo, m: HoldMutation) -> Row {
    row(
        fcinfo,
        [
            m.hold_id.into_datum(),
            m.kind.into_datum(),
            m.exposure_units.into_datum(),
            m.realized_spend_units.into_datum(),
            m.committed_cost_after.into_datum(),
            m.invocation_count_after.into_datum(),
            m.commit_index.into_datum(),
            m.event_id.into_datum(),
            m.guarantee_level.into_datum(),
            m.budget_term.into_datum(),
        ],
    )
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, name = "budget_authorize_hold")]
fn budget_authorize_hold_v2(
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
    ttl: default!(Option<Interval>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.hold_decision") {
    let d = ok_or_raise(ops::authorize(AuthorizeArgs {
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
        ttl,
    }));
    decision_row(fcinfo, d)
}

/// The 0.1.0 signature (no ttl) under its 0.1.0 C symbol
/// (`budget_authorize_hold_wrapper`), which a 0.1.0 install's SQL names
/// until `ALTER EXTENSION spendguard UPDATE` replaces it. Not in the
/// 0.2.0 SQL; keep it exported as long as an upgrade from 0.1.0 is
/// supported.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, sql = false)]
fn budget_authorize_hold(
    capability_id: Option<String>,
    grant_index: Option<i32>,
    requested_exposure: Option<i64>,
    max_invocations: Option<i64>,
    max_cost_per_invocation: Option<i64>,
    max_total_cost: Option<i64>,
    hold_id: Option<String>,
    event_id: Option<String>,
    authority_id: Option<String>,
    lease_id: Option<String>,
    lease_epoch: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.hold_decision") {
    let d = ok_or_raise(ops::authorize(AuthorizeArgs {
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
        ttl: None,
    }));
    decision_row(fcinfo, d)
}

/// Expires the current tenant's open holds past their expiry (SPEC §1
/// "Hold expiry"); returns how many.
#[pg_extern(volatile, parallel_unsafe)]
fn budget_expire_holds(
    now: default!(Option<TimestampWithTimeZone>, "now()"),
    lim: default!(Option<i32>, 10000),
) -> i64 {
    ok_or_raise(ops::expire_holds(now.map(i64::from), lim))
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
            fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.hold_mutation") {
            let m = ok_or_raise(ops::mutate(
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
            ));
            mutation_row(fcinfo, m)
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
            fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.hold_mutation") {
            let m = ok_or_raise(ops::mutate(
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
            ));
            mutation_row(fcinfo, m)
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
