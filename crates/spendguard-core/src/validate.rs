//! Argument checks shared by every SQL entry point (SPEC.md §0):
//! NULL for a required argument is 22004, a negative amount, an empty id or
//! one longer than [`MAX_ID_BYTES`], and a TTL that is not positive are
//! 22023. Nothing is clamped.

use crate::error::{Error, Result};

/// A required argument: NULL raises 22004 naming the argument.
pub fn required<T>(name: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| Error::NullValue(name.to_string()))
}

/// A required amount: NULL is 22004, negative is 22023.
pub fn amount(name: &str, v: Option<i64>) -> Result<i64> {
    non_negative(name, required(name, v)?)
}

/// An optional amount or limit: NULL passes, negative is 22023.
pub fn opt_amount(name: &str, v: Option<i64>) -> Result<Option<i64>> {
    v.map(|x| non_negative(name, x)).transpose()
}

pub fn non_negative(name: &str, v: i64) -> Result<i64> {
    if v < 0 {
        Err(Error::InvalidParameter(format!(
            "{name} must be >= 0, got {v}"
        )))
    } else {
        Ok(v)
    }
}

/// The longest id SPEC §0 accepts, in bytes (UTF-8). Longer ones are 22023
/// before anything is read or written, instead of an index-size error
/// (54000) from deep inside PostgreSQL, or worse, acceptance that depends
/// on how well the text compresses.
pub const MAX_ID_BYTES: usize = 1024;

/// A required identifier: NULL is 22004, empty or too long is 22023.
pub fn id(name: &str, v: Option<String>) -> Result<String> {
    let s = required(name, v)?;
    check_id(name, &s)?;
    Ok(s)
}

/// An optional identifier: NULL passes, empty or too long is 22023.
pub fn opt_id(name: &str, v: Option<String>) -> Result<Option<String>> {
    if let Some(s) = &v {
        check_id(name, s)?;
    }
    Ok(v)
}

pub fn check_id(name: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::InvalidParameter(format!("{name} must not be empty")));
    }
    if s.len() > MAX_ID_BYTES {
        return Err(Error::InvalidParameter(format!(
            "{name} is {} bytes long; ids are at most {MAX_ID_BYTES} bytes",
            s.len()
        )));
    }
    Ok(())
}

/// An optional TTL given as its length in microseconds (an interval's
/// months counted as 30 days, as PostgreSQL compares intervals): NULL
/// passes, zero or negative is 22023.
pub fn opt_ttl(name: &str, micros: Option<i128>) -> Result<Option<i128>> {
    match micros {
        Some(m) if m <= 0 => Err(Error::InvalidParameter(format!(
            "{name} must be a positive interval"
        ))),
        v => Ok(v),
    }
}

/// The last microsecond a `timestamptz` can hold (294276-12-31
/// 23:59:59.999999 UTC) and the first (4714-11-24 00:00 UTC BC), as
/// microseconds since 2000-01-01, PostgreSQL's `END_TIMESTAMP - 1` and
/// `MIN_TIMESTAMP`.
pub const MAX_TIME: i64 = 9_223_371_331_200_000_000 - 1;
pub const MIN_TIME: i64 = -211_813_488_000_000_000;

/// The most an interval of (months, days, micros) can move a time: a month
/// is at most 31 days and a day at most 25 hours (a daylight-saving day in
/// the session's time zone), so `time + interval` is never past
/// `time + reach`.
pub fn interval_reach(months: i32, days: i32, micros: i64) -> i128 {
    const HOUR: i128 = 3_600_000_000;
    i128::from(months).abs() * (31 * 24 + 1) * HOUR
        + i128::from(days).abs() * 25 * HOUR
        + i128::from(micros).abs()
}

/// `now() + ttl` must be a time PostgreSQL can hold: 22023 (not 22008 from
/// deep inside) for a TTL that reaches past the last one.
pub fn ttl_fits(name: &str, now: i64, reach: i128) -> Result<()> {
    if i128::from(now) + reach > i128::from(MAX_TIME) {
        return Err(Error::InvalidParameter(format!(
            "{name} is too long: now() + {name} is past the last time PostgreSQL can hold"
        )));
    }
    Ok(())
}

/// `now() - window` must be a time PostgreSQL can hold (22023).
pub fn window_fits(name: &str, now: i64, reach: i128) -> Result<()> {
    if i128::from(now) - reach < i128::from(MIN_TIME) {
        return Err(Error::InvalidParameter(format!(
            "{name} is too long: now() - {name} is before the first time PostgreSQL can hold"
        )));
    }
    Ok(())
}

/// A required grant index: NULL is 22004, negative is 22023.
pub fn grant_index(v: Option<i32>) -> Result<i32> {
    let g = required("grant_index", v)?;
    if g < 0 {
        return Err(Error::InvalidParameter(format!(
            "grant_index must be >= 0, got {g}"
        )));
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_and_windows_stay_within_timestamptz() {
        let now = 848_000_000_000_000_000 / 1000; // some time in 2026-ish
        assert_eq!(
            ttl_fits("ttl", now, interval_reach(0, 0, 3_600_000_000)),
            Ok(())
        );
        let years = |y: i32| interval_reach(12 * y, 0, 0);
        assert!(ttl_fits("ttl", now, years(100_000)).is_ok());
        let e = ttl_fits("ttl", now, years(178_000_000)).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        assert!(e.message().starts_with("ttl is too long"), "{e}");
        assert!(window_fits("time_window", now, years(4000)).is_ok());
        assert!(window_fits("time_window", now, years(10_000)).is_err());
        // the bound is an upper bound: a month counts 31 days and 1 hour
        assert_eq!(interval_reach(-1, 0, 0), (31 * 24 + 1) * 3_600_000_000);
        assert_eq!(
            ttl_fits("ttl", MAX_TIME, 1).unwrap_err().sqlstate(),
            "22023"
        );
        assert_eq!(ttl_fits("ttl", MAX_TIME - 1, 1), Ok(()));
    }

    #[test]
    fn amounts() {
        assert_eq!(amount("a", Some(0)), Ok(0));
        assert_eq!(amount("a", Some(i64::MAX)), Ok(i64::MAX));
        assert_eq!(amount("a", None).unwrap_err().sqlstate(), "22004");
        assert_eq!(amount("a", Some(-1)).unwrap_err().sqlstate(), "22023");
        assert_eq!(amount("a", Some(i64::MIN)).unwrap_err().sqlstate(), "22023");
        assert_eq!(opt_amount("a", None), Ok(None));
        assert_eq!(opt_amount("a", Some(-5)).unwrap_err().sqlstate(), "22023");
    }

    #[test]
    fn ttls() {
        assert_eq!(opt_ttl("ttl", None), Ok(None));
        assert_eq!(opt_ttl("ttl", Some(1)), Ok(Some(1)));
        assert_eq!(opt_ttl("ttl", Some(0)).unwrap_err().sqlstate(), "22023");
        assert_eq!(opt_ttl("ttl", Some(-1)).unwrap_err().sqlstate(), "22023");
    }

    #[test]
    fn ids() {
        assert_eq!(id("x", Some("a".into())), Ok("a".into()));
        assert_eq!(id("x", None).unwrap_err().sqlstate(), "22004");
        assert_eq!(
            id("x", Some(String::new())).unwrap_err().sqlstate(),
            "22023"
        );
        assert_eq!(opt_id("x", None), Ok(None));
        assert_eq!(
            opt_id("x", Some(String::new())).unwrap_err().sqlstate(),
            "22023"
        );
        let max = "x".repeat(MAX_ID_BYTES);
        assert_eq!(id("x", Some(max.clone())), Ok(max.clone()));
        assert_eq!(id("x", Some(max + "y")).unwrap_err().sqlstate(), "22023");
        // bytes, not characters: 512 two-byte characters fit, 513 do not
        assert!(id("x", Some("é".repeat(512))).is_ok());
        assert_eq!(
            opt_id("x", Some("é".repeat(513))).unwrap_err().sqlstate(),
            "22023"
        );
        assert_eq!(grant_index(Some(-1)).unwrap_err().sqlstate(), "22023");
        assert_eq!(grant_index(None).unwrap_err().sqlstate(), "22004");
        assert_eq!(grant_index(Some(0)), Ok(0));
    }
}
