//! SQL entry points of daily spend, period budgets and reservations
//! (SPEC.md §2). Each one only moves arguments into `ops` and the result
//! into a composite; the rules live in spendguard_core::spend.

pub mod ops;
pub mod store;

use crate::error::ok_or_raise;
use crate::result::{row, Row};
use ops::{DailyRow, SpendDecision};
use pgrx::prelude::*;

fn daily_row(fcinfo: pg_sys::FunctionCallInfo, d: DailyRow) -> Row {
    row(
        fcinfo,
        [
            d.tenant_id.into_datum(),
            d.user_id.into_datum(),
            d.group_id.into_datum(),
            store::date(d.day).into_datum(),
            d.spend_micros.into_datum(),
        ],
    )
}

fn decision_row(fcinfo: pg_sys::FunctionCallInfo, d: SpendDecision) -> Row {
    row(
        fcinfo,
        [
            d.allowed.into_datum(),
            d.spent_micros.into_datum(),
            d.limit_micros.into_datum(),
            d.remaining_micros.into_datum(),
            store::date(d.period_start).into_datum(),
        ],
    )
}

#[pg_extern(volatile, parallel_unsafe, requires = ["spend_schema"])]
fn spend_upsert_daily(
    user_id: Option<String>,
    group_id: Option<String>,
    at: Option<TimestampWithTimeZone>,
    cost_micros: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.daily_spend") {
    let d = ok_or_raise(ops::upsert_daily(user_id, group_id, at, cost_micros));
    daily_row(fcinfo, d)
}

#[pg_extern(stable, parallel_restricted)]
fn spend_since(
    user_id: Option<String>,
    group_id: Option<String>,
    period_start: Option<TimestampWithTimeZone>,
) -> i64 {
    ok_or_raise(ops::since(user_id, group_id, period_start))
}

#[pg_extern(stable, parallel_restricted)]
fn spend_group_since(group_id: Option<String>, period_start: Option<TimestampWithTimeZone>) -> i64 {
    ok_or_raise(ops::group_since(group_id, period_start))
}

#[pg_extern(volatile, parallel_unsafe)]
fn spend_set_group_budget(
    group_id: Option<String>,
    limit_micros: Option<i64>,
    period: Option<String>,
) {
    ok_or_raise(ops::set_group_budget(group_id, limit_micros, period))
}

#[pg_extern(volatile, parallel_unsafe)]
fn spend_set_user_override(
    user_id: Option<String>,
    group_id: Option<String>,
    limit_micros: Option<i64>,
) {
    ok_or_raise(ops::set_user_override(user_id, group_id, limit_micros))
}

#[pg_extern(stable, parallel_restricted, requires = ["spend_schema"])]
fn spend_check(
    user_id: Option<String>,
    group_id: Option<String>,
    cost_micros: Option<i64>,
    at: default!(Option<TimestampWithTimeZone>, "now()"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.spend_decision") {
    let d = ok_or_raise(ops::check(user_id, group_id, cost_micros, at));
    decision_row(fcinfo, d)
}

/// One macro for the two charge functions (they differ only in what a
/// denial does).
macro_rules! charge_fn {
    ($name:ident, $enforce:expr) => {
        #[pg_extern(volatile, parallel_unsafe, requires = ["spend_schema"])]
        fn $name(
            user_id: Option<String>,
            group_id: Option<String>,
            cost_micros: Option<i64>,
            at: default!(Option<TimestampWithTimeZone>, "now()"),
            fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.spend_decision") {
            let d = ok_or_raise(ops::charge(ops::ChargeArgs {
                user: user_id,
                group: group_id,
                cost: cost_micros,
                at,
                enforce: $enforce,
            }));
            decision_row(fcinfo, d)
        }
    };
}

charge_fn!(spend_charge, false);
charge_fn!(spend_charge_enforce, true);

#[pg_extern(volatile, parallel_unsafe, requires = ["spend_schema"])]
fn spend_reserve(
    user_id: Option<String>,
    group_id: Option<String>,
    estimate_micros: Option<i64>,
    hold_id: Option<String>,
    at: default!(Option<TimestampWithTimeZone>, "now()"),
    ttl: default!(Option<Interval>, "'15 minutes'"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.spend_reservation_decision") {
    let d = ok_or_raise(ops::reserve(ops::ReserveArgs {
        user: user_id,
        group: group_id,
        estimate: estimate_micros,
        hold_id,
        at,
        ttl,
    }));
    row(
        fcinfo,
        [
            d.allowed.into_datum(),
            d.spent_micros.into_datum(),
            d.reserved_micros.into_datum(),
            d.limit_micros.into_datum(),
            d.remaining_micros.into_datum(),
            store::date(d.period_start).into_datum(),
            d.hold_id.into_datum(),
            d.expires_at.into_datum(),
        ],
    )
}

#[pg_extern(volatile, parallel_unsafe, requires = ["spend_schema"])]
fn spend_settle(
    hold_id: Option<String>,
    cost_micros: Option<i64>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.daily_spend") {
    let d = ok_or_raise(ops::settle(hold_id, cost_micros));
    daily_row(fcinfo, d)
}

#[pg_extern(volatile, parallel_unsafe)]
fn spend_cancel(hold_id: Option<String>) {
    ok_or_raise(ops::cancel(hold_id))
}

#[pg_extern(volatile, parallel_unsafe)]
fn spend_purge(before: Option<Date>) -> i64 {
    ok_or_raise(ops::purge(before))
}
