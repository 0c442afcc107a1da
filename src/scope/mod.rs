//! SQL entry points of scoped budgets (SPEC.md §6). Each one only moves
//! arguments into `ops` and the result into a composite or rows; the rules
//! live in spendguard_core::scope.

pub mod ops;
pub mod slices;
pub mod store;

use crate::error::ok_or_raise;
use crate::jsonb::JsonbText;
use crate::result::{row, Row};
use pgrx::prelude::*;
use store::DecisionRow;

fn decision_row(fcinfo: pg_sys::FunctionCallInfo, d: DecisionRow) -> Row {
    row(
        fcinfo,
        [
            d.allowed.into_datum(),
            d.blocked_scope.into_datum(),
            d.blocked_period.map(|p| p.as_str()).into_datum(),
            d.remaining_micros.into_datum(),
            d.hold_id.into_datum(),
            d.expires_at.into_datum(),
            JsonbText(d.headroom).into_datum(),
        ],
    )
}

#[pg_extern(volatile, parallel_unsafe, requires = ["scope_schema"])]
fn scope_set_budget(
    scope: Option<String>,
    period: Option<String>,
    limit_micros: Option<i64>,
    alert_percents: default!(Option<Vec<Option<i32>>>, "'{}'"),
    slices: default!(Option<i32>, 1),
) {
    ok_or_raise(ops::set_budget(
        scope,
        period,
        limit_micros,
        alert_percents,
        slices,
    ))
}

#[pg_extern(volatile, parallel_unsafe, requires = ["scope_schema"])]
fn scope_reserve(
    scopes: Option<Vec<Option<String>>>,
    estimate_micros: Option<i64>,
    hold_id: Option<String>,
    at: default!(Option<TimestampWithTimeZone>, "now()"),
    ttl: default!(Option<Interval>, "'15 minutes'"),
    event_id: default!(Option<String>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.scope_decision") {
    let d = ok_or_raise(ops::reserve(ops::ReserveArgs {
        scopes,
        estimate: estimate_micros,
        hold_id,
        at,
        ttl,
        event_id,
    }));
    decision_row(fcinfo, d)
}

#[pg_extern(volatile, parallel_unsafe, requires = ["scope_schema"])]
fn scope_settle(
    hold_id: Option<String>,
    cost_micros: Option<i64>,
    event_id: default!(Option<String>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.scope_decision") {
    let d = ok_or_raise(ops::settle(hold_id, cost_micros, event_id));
    decision_row(fcinfo, d)
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, requires = ["scope_schema", "price_schema"])]
fn scope_reserve_tokens(
    scopes: Option<Vec<Option<String>>>,
    model: Option<String>,
    max_input_tokens: Option<i64>,
    max_output_tokens: Option<i64>,
    hold_id: Option<String>,
    at: default!(Option<TimestampWithTimeZone>, "now()"),
    ttl: default!(Option<Interval>, "'15 minutes'"),
    event_id: default!(Option<String>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.scope_decision") {
    let d = ok_or_raise(ops::reserve_tokens(
        ops::ReserveArgs {
            scopes,
            estimate: None,
            hold_id,
            at,
            ttl,
            event_id,
        },
        ops::TokenEstimate {
            model,
            max_input: max_input_tokens,
            max_output: max_output_tokens,
        },
    ));
    decision_row(fcinfo, d)
}

#[pg_extern(volatile, parallel_unsafe, requires = ["scope_schema", "price_schema"])]
fn scope_settle_tokens(
    hold_id: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cached_input_tokens: default!(Option<i64>, 0),
    event_id: default!(Option<String>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.scope_decision") {
    let d = ok_or_raise(ops::settle_tokens(ops::SettleTokensArgs {
        hold_id,
        input: input_tokens,
        output: output_tokens,
        cached_input: cached_input_tokens,
        event_id,
    }));
    decision_row(fcinfo, d)
}

#[pg_extern(volatile, parallel_unsafe, requires = ["scope_schema"])]
fn scope_cancel(hold_id: Option<String>) {
    ok_or_raise(ops::cancel(hold_id))
}

/// One macro for the two functions that spend at once (they differ only
/// in whether a budget may refuse).
macro_rules! charge_fn {
    ($name:ident, $record:expr) => {
        #[pg_extern(volatile, parallel_unsafe, requires = ["scope_schema"])]
        fn $name(
            scopes: Option<Vec<Option<String>>>,
            cost_micros: Option<i64>,
            at: default!(Option<TimestampWithTimeZone>, "now()"),
            event_id: default!(Option<String>, "NULL"),
            fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.scope_decision") {
            let d = ok_or_raise(ops::charge(ops::ChargeArgs {
                scopes,
                cost: cost_micros,
                at,
                event_id,
                record: $record,
            }));
            decision_row(fcinfo, d)
        }
    };
}

charge_fn!(scope_charge, false);
charge_fn!(scope_record, true);

#[pg_extern(stable, parallel_restricted)]
fn scope_usage(
    scope: default!(Option<String>, "NULL"),
    at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<
    'static,
    (
        name!(scope, String),
        name!(period, String),
        name!(period_start, Date),
        name!(limit_micros, i64),
        name!(spent_micros, i64),
        name!(reserved_micros, i64),
        name!(remaining_micros, i64),
    ),
> {
    let rows = ok_or_raise(ops::usage(scope, at));
    TableIterator::new(rows.into_iter().map(|r| {
        (
            r.scope,
            r.period.as_str().to_string(),
            crate::spend::store::date(r.period_start),
            r.limit,
            r.spent,
            r.reserved,
            r.remaining,
        )
    }))
}

#[pg_extern(stable, parallel_restricted)]
fn scope_spend(
    scope: Option<String>,
    period: Option<String>,
    since: Option<TimestampWithTimeZone>,
    until: default!(Option<TimestampWithTimeZone>, "now()"),
) -> TableIterator<'static, (name!(period_start, Date), name!(spent_micros, i64))> {
    let rows = ok_or_raise(ops::spend(scope, period, since, until));
    TableIterator::new(
        rows.into_iter()
            .map(|(start, spent)| (crate::spend::store::date(start), spent)),
    )
}
