//! The operations of SPEC.md §8, and the price API other capabilities
//! (scoped budgets' token reservations) use: [`in_force`] and [`by_id`].

use crate::args::finite_time;
use crate::spi::{with_db, Db};
use pgrx::datum::TimestampWithTimeZone;
use spendguard_core::price::{self, Rates, Tokens};
use spendguard_core::{validate, Error, Result};

/// The price of `model` in force at `at`: (its row id, its rates); SG040
/// when there is none. Prices fail closed: an unpriced model is never free.
pub fn in_force(
    db: &mut Db<'_, '_>,
    model: &str,
    at: TimestampWithTimeZone,
) -> Result<(i64, Rates)> {
    db.price_in_force(model, at)
        .ok_or_else(|| price::no_price(model, &iso(at)))
}

/// A price row by id (the row that priced a reservation). A reservation's
/// price row always exists: rows are never deleted.
pub fn by_id(db: &mut Db<'_, '_>, id: i64) -> Result<Rates> {
    db.price_by_id(id)
        .map(|(_, r)| r)
        .ok_or_else(|| Error::NoPrice(format!("price row {id} does not exist")))
}

/// `at` as PostgreSQL prints a timestamptz, for messages.
fn iso(at: TimestampWithTimeZone) -> String {
    at.to_string()
}

pub fn set(
    model: Option<String>,
    effective_from: Option<TimestampWithTimeZone>,
    input: Option<i64>,
    output: Option<i64>,
    cached_input: Option<i64>,
) -> Result<i64> {
    let model = validate::id("model", model)?;
    let from = finite_time("effective_from", effective_from)?;
    let rates = Rates {
        input: validate::amount("input_micros_per_mtok", input)?,
        output: validate::amount("output_micros_per_mtok", output)?,
        cached_input: validate::opt_amount("cached_input_micros_per_mtok", cached_input)?,
    };
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        db.new_price(&model, from, rates).ok_or_else(|| {
            Error::InvalidParameter(format!(
                "model \"{model}\" has a price from {} already: prices are never changed, set one with a later effective_from",
                iso(from)
            ))
        })
    })
}

/// The arguments of `price_cost`, named as in SQL.
pub struct CostArgs {
    pub model: Option<String>,
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub cached_input: Option<i64>,
    pub at: Option<TimestampWithTimeZone>,
}

pub fn cost(a: CostArgs) -> Result<i64> {
    let model = validate::id("model", a.model)?;
    let tokens = Tokens::new(a.input, a.output, a.cached_input)?;
    let at = finite_time("at", a.at)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        let (_, rates) = in_force(db, &model, at)?;
        price::cost(rates, tokens)
    })
}
