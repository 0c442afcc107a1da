//! Rolling-window caps of SPEC.md §3 as pure functions: what a window sum
//! allows. The sums themselves are index range scans in SQL.

use crate::error::{Error, Result};

/// `usage_cap_check`: allowed while `used < budget`; what is left.
pub fn check(used: i64, budget: i64) -> (bool, i64) {
    (used < budget, budget.saturating_sub(used).max(0))
}

/// `usage_cap_charge` / `call_cap_charge`: the charge of `amount` is allowed
/// when it fits, `used + amount <= budget`, so N concurrent charges of
/// `amount` against `budget` allow exactly `budget / amount` of them.
pub fn charge_fits(used: i64, amount: i64, budget: i64) -> bool {
    used.checked_add(amount).is_some_and(|t| t <= budget)
}

/// `input + output` of one usage event, 22003 beyond bigint.
pub fn tokens(input: i64, output: i64) -> Result<i64> {
    input.checked_add(output).ok_or_else(|| {
        Error::OutOfRange("input_tokens + output_tokens would overflow bigint".into())
    })
}

/// The advisory lock key of one cap: a 64-bit digest of the tenant, the
/// kind of cap and its key parts, length-prefixed so no two keys collide
/// by concatenation. Two caps sharing a digest (odds 2^-64) would only be
/// decided one after the other, never wrongly.
pub fn lock_key(tenant: &str, kind: &str, parts: &[&str]) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in [tenant, kind].iter().chain(parts) {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let d = h.finalize();
    i64::from_be_bytes(d[..8].try_into().expect("a SHA-256 digest has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps() {
        assert_eq!(check(99, 100), (true, 1));
        assert_eq!(check(100, 100), (false, 0));
        assert_eq!(check(150, 100), (false, 0));
        assert!(charge_fits(90, 10, 100));
        assert!(!charge_fits(91, 10, 100));
        assert!(!charge_fits(i64::MAX, 1, i64::MAX));
        assert!(charge_fits(0, 0, 0));
        assert_eq!(tokens(i64::MAX, 1).unwrap_err().sqlstate(), "22003");
        assert_ne!(
            lock_key("t", "usage", &["ab", "c"]),
            lock_key("t", "usage", &["a", "bc"])
        );
        assert_ne!(
            lock_key("t", "usage", &["a"]),
            lock_key("t", "calls", &["a"])
        );
        assert_eq!(
            lock_key("t", "usage", &["a"]),
            lock_key("t", "usage", &["a"])
        );
    }
}
