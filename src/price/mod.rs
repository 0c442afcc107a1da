//! SQL entry points of prices (SPEC.md §8). Each one only moves arguments
//! into `ops`; the arithmetic lives in spendguard_core::price.

pub mod ops;
pub mod store;

use crate::error::ok_or_raise;
use pgrx::prelude::*;

#[pg_extern(volatile, parallel_unsafe, requires = ["price_schema"])]
fn price_set(
    model: Option<String>,
    effective_from: Option<TimestampWithTimeZone>,
    input_micros_per_mtok: Option<i64>,
    output_micros_per_mtok: Option<i64>,
    cached_input_micros_per_mtok: default!(Option<i64>, "NULL"),
) -> i64 {
    ok_or_raise(ops::set(
        model,
        effective_from,
        input_micros_per_mtok,
        output_micros_per_mtok,
        cached_input_micros_per_mtok,
    ))
}

#[pg_extern(stable, parallel_restricted, requires = ["price_schema"])]
fn price_cost(
    model: Option<String>,
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cached_input_tokens: default!(Option<i64>, 0),
    at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> i64 {
    ok_or_raise(ops::cost(ops::CostArgs {
        model,
        input: input_tokens,
        output: output_tokens,
        cached_input: cached_input_tokens,
        at,
    }))
}
