//! Time and interval arguments, checked one way for every capability:
//! a time must be finite (±infinity has no UTC day and would count in
//! every window forever), a TTL or window must be positive and must not
//! reach past what a `timestamptz` can hold (22023, not a 22008 from deep
//! inside the statement that adds it to `now()`).

use pgrx::datum::{Interval, TimestampWithTimeZone};
use spendguard_core::validate;
use spendguard_core::{Error, Result};

/// `now()` of the calling transaction, in microseconds since 2000-01-01.
pub fn now() -> i64 {
    // SAFETY: a plain read of the transaction's start timestamp.
    unsafe { pgrx::pg_sys::GetCurrentTransactionStartTimestamp() }
}

/// A required, finite time: NULL is 22004, ±infinity 22023.
pub fn finite_time(name: &str, v: Option<TimestampWithTimeZone>) -> Result<TimestampWithTimeZone> {
    let t = validate::required(name, v)?;
    if !t.is_finite() {
        return Err(Error::InvalidParameter(format!(
            "{name} must be a finite time"
        )));
    }
    Ok(t)
}

fn reach(i: &Interval) -> i128 {
    validate::interval_reach(i.months(), i.days(), i.micros())
}

/// A TTL: positive, and `now() + ttl` a time PostgreSQL can hold.
pub fn ttl(name: &str, v: Interval) -> Result<Interval> {
    validate::opt_ttl(name, Some(v.as_micros()))?;
    validate::ttl_fits(name, now(), reach(&v))?;
    Ok(v)
}

/// A trailing window: positive, and `now() - window` a time PostgreSQL can
/// hold.
pub fn window(name: &str, v: Option<Interval>) -> Result<Interval> {
    let w = validate::required(name, v)?;
    validate::opt_ttl(name, Some(w.as_micros()))?;
    validate::window_fits(name, now(), reach(&w))?;
    Ok(w)
}

/// `spendguard.check_enum(arg_name, value, domain)`: the SQL readers'
/// check of an enumerated argument, with the one message of the Rust
/// functions (spendguard_core::enums). NULL passes.
#[pgrx::pg_extern(immutable, parallel_safe)]
fn check_enum(arg_name: Option<&str>, value: Option<&str>, domain: Option<&str>) {
    crate::error::ok_or_raise(check_enum_value(arg_name, value, domain));
}

fn check_enum_value(name: Option<&str>, value: Option<&str>, domain: Option<&str>) -> Result<()> {
    let name = validate::required("arg_name", name)?;
    let domain = validate::required("domain", domain)?;
    match value {
        Some(v) => spendguard_core::enums::check(name, v, domain),
        None => Ok(()),
    }
}
