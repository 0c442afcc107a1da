//! SQL entry points of rolling-window token and call caps (SPEC.md §3).

pub mod ops;
pub mod store;

use crate::error::ok_or_raise;
use crate::result::{row, Row};
use ops::Cap;
use pgrx::prelude::*;

fn cap_row(fcinfo: pg_sys::FunctionCallInfo, c: Cap) -> Row {
    row(
        fcinfo,
        [
            c.allowed.into_datum(),
            c.used.into_datum(),
            c.remaining.into_datum(),
        ],
    )
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn usage_record(
    integration_id: Option<String>,
    principal_kind: Option<String>,
    principal_id: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    model: default!(Option<String>, "NULL"),
    conversation_id: default!(Option<String>, "NULL"),
    at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> pgrx::datum::Uuid {
    ok_or_raise(ops::record(ops::RecordArgs {
        integration_id,
        principal_kind,
        principal_id,
        input_tokens,
        output_tokens,
        model,
        conversation_id,
        at,
    }))
}

/// The check and its enforcing twin differ only in what a denial does.
macro_rules! check_fn {
    ($name:ident, $enforce:expr) => {
        #[pg_extern(stable, parallel_restricted, requires = ["usage_schema"])]
        fn $name(
            integration_id: Option<String>,
            principal_kind: Option<String>,
            principal_id: Option<String>,
            token_budget: Option<i64>,
            time_window: Option<Interval>,
            fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.usage_cap") {
            let c = ok_or_raise(ops::check(ops::CheckArgs {
                integration_id,
                principal_kind,
                principal_id,
                token_budget,
                time_window,
                enforce: $enforce,
            }));
            cap_row(fcinfo, c)
        }
    };
}

check_fn!(usage_cap_check, false);
check_fn!(usage_cap_enforce, true);

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, requires = ["usage_schema"])]
fn usage_cap_charge(
    integration_id: Option<String>,
    principal_kind: Option<String>,
    principal_id: Option<String>,
    tokens: Option<i64>,
    token_budget: Option<i64>,
    time_window: Option<Interval>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.usage_cap") {
    let c = ok_or_raise(ops::charge(ops::ChargeArgs {
        integration_id,
        principal_kind,
        principal_id,
        tokens,
        token_budget,
        time_window,
    }));
    cap_row(fcinfo, c)
}

#[pg_extern(volatile, parallel_unsafe, requires = ["usage_schema"])]
fn call_cap_charge(
    principal_kind: Option<String>,
    principal_id: Option<String>,
    tool_name: Option<String>,
    max_calls: Option<i64>,
    time_window: Option<Interval>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.usage_cap") {
    let c = ok_or_raise(ops::call_charge(ops::CallChargeArgs {
        principal_kind,
        principal_id,
        tool_name,
        max_calls,
        time_window,
    }));
    cap_row(fcinfo, c)
}

#[pg_extern(volatile, parallel_unsafe)]
fn usage_purge(before: Option<TimestampWithTimeZone>) -> i64 {
    ok_or_raise(ops::purge(before))
}
