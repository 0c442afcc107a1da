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
