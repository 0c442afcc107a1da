//! Scoped budgets of SPEC.md §6 as pure functions: the canonical list of
//! scopes a call names, the periods of a budget, the keys of the §1 budgets
//! and holds that carry a scope's spend and reservations, and the one
//! all-or-nothing decision over every budget of every listed scope.
//!
//! Days are days since 2000-01-01, as in [`crate::spend`].

pub use crate::enums::ScopePeriod;
use crate::error::{Error, Result};
use crate::spend::fits;
use crate::validate;

/// At most this many scopes per call (SPEC §6).
pub const MAX_SCOPES: usize = 32;
/// `slices` of a budget: 1..=MAX_SLICES; above 1 splits its room into
/// escrow slices ([`crate::escrow`]).
pub const MAX_SLICES: i32 = 64;
/// The last day a `total` budget's period covers: the §1 budgets that keep
/// a scope's spend are keyed by day, an `integer`.
pub const TOTAL_END: i64 = i32::MAX as i64;

/// The scopes of a call, canonical: each checked as an id (SPEC §0), sorted
/// by bytes (the lock order) and each once. NULL or a NULL element is
/// 22004; an empty list or more than [`MAX_SCOPES`] elements is 22023.
pub fn scopes(list: Option<Vec<Option<String>>>) -> Result<Vec<String>> {
    let list = validate::required("scopes", list)?;
    if list.is_empty() {
        return Err(Error::InvalidParameter(
            "scopes must name at least one scope".into(),
        ));
    }
    if list.len() > MAX_SCOPES {
        return Err(Error::InvalidParameter(format!(
            "scopes names {} scopes; a call names at most {MAX_SCOPES}",
            list.len()
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for (i, s) in list.into_iter().enumerate() {
        // SQL arrays count from 1
        out.push(validate::id(&format!("scopes[{}]", i + 1), s)?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// `slices` of `scope_set_budget`: 1..=64, anything else 22023.
pub fn slices(v: Option<i32>) -> Result<i32> {
    match validate::required("slices", v)? {
        n @ 1..=MAX_SLICES => Ok(n),
        n => Err(Error::InvalidParameter(format!(
            "slices must be between 1 and {MAX_SLICES}, got {n}"
        ))),
    }
}

/// `alert_percents` of `scope_set_budget`: each 1..=1000 (SPEC §7), kept
/// sorted and once. NULL or a NULL element is 22004.
pub fn alert_percents(v: Option<Vec<Option<i32>>>) -> Result<Vec<i32>> {
    let v = validate::required("alert_percents", v)?;
    // 1..=1000 holds at most 1,000 distinct thresholds: a longer list is a
    // mistake, refused before it is walked
    if v.len() > 1000 {
        return Err(Error::InvalidParameter(format!(
            "alert_percents has {} elements; a budget arms at most 1000 thresholds",
            v.len()
        )));
    }
    let mut out = Vec::new();
    for (i, p) in v.into_iter().enumerate() {
        let p = validate::required(&format!("alert_percents[{}]", i + 1), p)?;
        if !(1..=1000).contains(&p) {
            return Err(Error::InvalidParameter(format!(
                "alert_percents[{}] must be between 1 and 1000, got {p}",
                i + 1
            )));
        }
        out.push(p);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

impl ScopePeriod {
    /// `[start, end)` of the period that contains `day`, as day numbers;
    /// `total` is every day from 2000-01-01 on.
    pub fn bounds(self, day: i64) -> (i64, i64) {
        use crate::enums::Period;
        match self {
            ScopePeriod::Day => Period::Day.bounds(day),
            ScopePeriod::Week => Period::Week.bounds(day),
            ScopePeriod::Month => Period::Month.bounds(day),
            ScopePeriod::Total => (0, TOTAL_END),
        }
    }

    /// Its place in the order of a scope's budgets: day < week < month <
    /// total.
    pub fn rank(self) -> usize {
        self as usize
    }
}

/// The first day a scope's spend can be kept on: 2000-01-01 (day 0), the
/// first `grant_index` of the §1 budgets that keep it. 22023 before
/// anything is read or written.
pub fn check_day(day: i64) -> Result<()> {
    if !(0..TOTAL_END).contains(&day) {
        let (y, m, d) = crate::spend::civil(day);
        return Err(Error::InvalidParameter(format!(
            "at is on {y:04}-{m:02}-{d:02}: scoped spend is kept from 2000-01-01 on"
        )));
    }
    Ok(())
}

fn hex16(d: [u8; 32]) -> String {
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The `capability_id` of the §1 budgets that keep a scope's spend (one per
/// UTC day, the day being the `grant_index`): realized spend is the
/// scope's spend, open holds its reservations. A digest, so any scope of
/// 1,024 bytes still fits the budget's key.
pub fn budget_id(scope: &str) -> String {
    format!("scope:{}", hex16(crate::key::id_key(&[scope])))
}

/// The `capability_id` of slice `slice`'s family of a sliced scope
/// ([`crate::escrow`]): slice 0 is the scope's own family ([`budget_id`]),
/// so a scope's spend from before it was sliced stays in slice 0.
pub fn slice_budget_id(scope: &str, slice: i32) -> String {
    match slice {
        0 => budget_id(scope),
        k => format!("{}/{k}", budget_id(scope)),
    }
}

/// The capability ids of a scope's first `n` slice families, in slice
/// order ([`slice_budget_id`] of 0..n, the digest computed once).
pub fn family_ids(scope: &str, n: i32) -> Vec<String> {
    let id = budget_id(scope);
    (0..n.max(1))
        .map(|k| {
            if k == 0 {
                id.clone()
            } else {
                format!("{id}/{k}")
            }
        })
        .collect()
}

/// The §1 hold id a reservation holds one scope's room with (a reservation
/// holds one per scope it names).
pub fn hold_key(hold_id: &str, scope: &str) -> String {
    format!(
        "scope-hold:{}",
        hex16(crate::key::id_key(&[hold_id, scope]))
    )
}

/// One budget of one listed scope in the period that contains the call's
/// `at`, as read under its lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub scope: String,
    pub period: ScopePeriod,
    pub limit: i64,
    pub period_start: i64,
    pub spent: i64,
    pub reserved: i64,
    /// The thresholds armed on it (SPEC §7), sorted.
    pub alert_percents: Vec<i32>,
}

impl Budget {
    /// Room left: `limit - spent - reserved`, never below 0.
    pub fn remaining(&self) -> i64 {
        let used = i128::from(self.spent) + i128::from(self.reserved);
        (i128::from(self.limit) - used).clamp(0, i128::from(i64::MAX)) as i64
    }
}

/// What an allowed call does to every budget of its scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `scope_reserve`: the estimate is held (reserved) in every budget.
    Reserve,
    /// `scope_charge`: the cost is spent in every budget.
    Charge,
    /// `scope_record`: spent, never refused.
    Record,
}

/// A decision over a call's budgets: the budgets after it (an allowed
/// reservation counts as reserved, an allowed charge or record as spent;
/// a denial changes nothing), which of them block, and the first that does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub budgets: Vec<Budget>,
    pub blocks: Vec<bool>,
    /// Index into `budgets` of the first blocking budget.
    pub blocked: Option<usize>,
}

impl Decision {
    /// The least room left over all budgets (NULL without budgets).
    pub fn remaining(&self) -> Option<i64> {
        self.budgets.iter().map(Budget::remaining).min()
    }
}

/// `s` as a JSON string (RFC 8259: quote, backslash and control
/// characters escaped).
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The `headroom` of a decision: a JSON array with one object per budget,
/// in decision order: `scope`, `period`, `period_start` (`YYYY-MM-DD`),
/// `limit_micros`, `spent_micros`, `reserved_micros`, `remaining_micros`
/// and `blocks` (whether this budget refused the call).
pub fn headroom_json(d: &Decision) -> String {
    let mut out = String::from("[");
    for (i, b) in d.budgets.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let (y, m, day) = crate::spend::civil(b.period_start);
        out.push_str("{\"scope\": ");
        json_str(&mut out, &b.scope);
        out.push_str(&format!(
            ", \"period\": \"{}\", \"period_start\": \"{y:04}-{m:02}-{day:02}\", \
             \"limit_micros\": {}, \"spent_micros\": {}, \"reserved_micros\": {}, \
             \"remaining_micros\": {}, \"blocks\": {}}}",
            b.period.as_str(),
            b.limit,
            b.spent,
            b.reserved,
            b.remaining(),
            d.blocks.get(i).copied().unwrap_or(false)
        ));
    }
    out.push(']');
    out
}

/// Sorts budgets in the decision order: scope bytes, then day < week <
/// month < total (the order locks are taken in, and the one that names the
/// first blocking budget).
pub fn sort(budgets: &mut [Budget]) {
    budgets.sort_by(|a, b| {
        (a.scope.as_bytes(), a.period.rank()).cmp(&(b.scope.as_bytes(), b.period.rank()))
    });
}

/// The all-or-nothing rule: allowed iff for every budget
/// `spent + reserved + amount <= limit` (a record is always allowed).
/// `budgets` in [`sort`] order. 22003 when an allowed call would take a
/// running total past bigint.
pub fn decide(mut budgets: Vec<Budget>, amount: i64, kind: Kind) -> Result<Decision> {
    let blocks: Vec<bool> = budgets
        .iter()
        .map(|b| {
            kind != Kind::Record
                && !b
                    .spent
                    .checked_add(b.reserved)
                    .is_some_and(|used| fits(used, amount, Some(b.limit)))
        })
        .collect();
    let blocked = blocks.iter().position(|&x| x);
    let allowed = blocked.is_none();
    if allowed {
        for b in &mut budgets {
            let (field, what) = match kind {
                Kind::Reserve => (&mut b.reserved, "reserved"),
                Kind::Charge | Kind::Record => (&mut b.spent, "spent"),
            };
            *field = field.checked_add(amount).ok_or_else(|| {
                Error::OutOfRange(format!(
                    "{what} of scope \"{}\" ({}) would overflow bigint",
                    b.scope,
                    b.period.as_str()
                ))
            })?;
        }
    }
    Ok(Decision {
        allowed,
        budgets,
        blocks,
        blocked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Option<Vec<Option<String>>> {
        Some(v.iter().map(|x| Some(x.to_string())).collect())
    }

    fn b(scope: &str, period: ScopePeriod, limit: i64, spent: i64, reserved: i64) -> Budget {
        Budget {
            scope: scope.into(),
            period,
            limit,
            period_start: 0,
            spent,
            reserved,
            alert_percents: Vec::new(),
        }
    }

    #[test]
    fn scopes_are_canonical() {
        assert_eq!(
            scopes(s(&["user:u1", "org:acme", "key:k1", "org:acme"])).unwrap(),
            ["key:k1", "org:acme", "user:u1"]
        );
        // bytes, not a collation: upper case sorts first
        assert_eq!(scopes(s(&["b", "B", "a"])).unwrap(), ["B", "a", "b"]);
        assert_eq!(scopes(None).unwrap_err().sqlstate(), "22004");
        assert_eq!(scopes(Some(vec![])).unwrap_err().sqlstate(), "22023");
        let e = scopes(Some(vec![Some("a".into()), None])).unwrap_err();
        assert_eq!(
            (e.sqlstate(), e.message().as_str()),
            ("22004", "argument \"scopes[2]\" must not be NULL")
        );
        let many: Vec<String> = (0..33).map(|i| format!("s{i}")).collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(scopes(s(&refs)).unwrap_err().sqlstate(), "22023");
        assert_eq!(scopes(s(&refs[..32])).unwrap().len(), 32);
        // 33 elements are refused even when they name fewer scopes
        let same = vec!["x"; 33];
        assert_eq!(scopes(s(&same)).unwrap_err().sqlstate(), "22023");
        assert_eq!(scopes(s(&[""])).unwrap_err().sqlstate(), "22023");
        let long = "x".repeat(1025);
        assert_eq!(scopes(s(&[&long])).unwrap_err().sqlstate(), "22023");
    }

    #[test]
    fn slices_and_percents() {
        assert_eq!(slices(Some(1)), Ok(1));
        assert_eq!(slices(Some(2)), Ok(2));
        assert_eq!(slices(Some(64)), Ok(64));
        for bad in [0, -1, 65, i32::MAX] {
            assert_eq!(slices(Some(bad)).unwrap_err().sqlstate(), "22023");
        }
        assert_eq!(slices(None).unwrap_err().sqlstate(), "22004");
        assert_eq!(
            alert_percents(Some(vec![Some(100), Some(50), Some(100)])),
            Ok(vec![50, 100])
        );
        assert_eq!(alert_percents(Some(vec![])), Ok(vec![]));
        let all: Vec<Option<i32>> = (1..=1000).map(Some).collect();
        assert_eq!(alert_percents(Some(all.clone())).unwrap().len(), 1000);
        let mut more = all;
        more.push(Some(5));
        assert_eq!(alert_percents(Some(more)).unwrap_err().sqlstate(), "22023");
        for bad in [0, 1001, -5] {
            assert_eq!(
                alert_percents(Some(vec![Some(bad)]))
                    .unwrap_err()
                    .sqlstate(),
                "22023"
            );
        }
        assert_eq!(
            alert_percents(Some(vec![None])).unwrap_err().sqlstate(),
            "22004"
        );
    }

    #[test]
    fn periods() {
        use crate::spend::from_civil;
        let d = from_civil(2026, 11, 30); // a Monday
        assert_eq!(ScopePeriod::Day.bounds(d), (d, d + 1));
        assert_eq!(ScopePeriod::Week.bounds(d), (d, d + 7));
        assert_eq!(ScopePeriod::Week.bounds(d + 6), (d, d + 7));
        assert_eq!(
            ScopePeriod::Month.bounds(d),
            (from_civil(2026, 11, 1), from_civil(2026, 12, 1))
        );
        assert_eq!(ScopePeriod::Total.bounds(d), (0, TOTAL_END));
        assert!(ScopePeriod::Day.rank() < ScopePeriod::Week.rank());
        assert!(ScopePeriod::Month.rank() < ScopePeriod::Total.rank());
        assert_eq!(check_day(-1).unwrap_err().sqlstate(), "22023");
        assert_eq!(check_day(0), Ok(()));
    }

    #[test]
    fn keys_are_fixed_size_and_distinct() {
        assert_eq!(budget_id("org:acme").len(), "scope:".len() + 32);
        assert_ne!(budget_id("org:a"), budget_id("org:b"));
        assert_eq!(slice_budget_id("org:a", 0), budget_id("org:a"));
        assert_eq!(slice_budget_id("org:a", 63), budget_id("org:a") + "/63");
        let ids = family_ids("org:a", 3);
        assert_eq!(
            ids,
            (0..3)
                .map(|k| slice_budget_id("org:a", k))
                .collect::<Vec<_>>()
        );
        assert_eq!(family_ids("org:a", 0), vec![budget_id("org:a")]);
        assert_ne!(hold_key("h", "org:a"), hold_key("h", "org:b"));
        assert_ne!(hold_key("ho", "rg:a"), hold_key("h", "org:a"));
        assert_eq!(hold_key(&"h".repeat(1024), &"s".repeat(1024)).len(), 43);
    }

    #[test]
    fn all_or_nothing_and_the_first_blocker() {
        use ScopePeriod::*;
        let mut v = vec![
            b("user:u", Day, 100, 0, 0),
            b("org:acme", Month, 1000, 900, 50),
            b("org:acme", Day, 100, 60, 0),
            b("key:k", Total, 10, 0, 0),
        ];
        sort(&mut v);
        let order: Vec<_> = v.iter().map(|b| (b.scope.as_str(), b.period)).collect();
        assert_eq!(
            order,
            [
                ("key:k", Total),
                ("org:acme", Day),
                ("org:acme", Month),
                ("user:u", Day)
            ]
        );
        // 60 is over key:k (10), the org's day (40 left) and month (50
        // left): key:k, first in scope order, is named
        let d = decide(v.clone(), 60, Kind::Reserve).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.blocked, Some(0));
        assert_eq!(d.blocks, [true, true, true, false]);
        assert_eq!(d.budgets, v, "a denial changes nothing");
        assert_eq!(d.remaining(), Some(10));
        // 10 fits everything: held everywhere
        let d = decide(v.clone(), 10, Kind::Reserve).unwrap();
        assert!(d.allowed);
        assert_eq!(d.blocked, None);
        assert!(d
            .budgets
            .iter()
            .zip(&v)
            .all(|(a, b)| a.reserved == b.reserved + 10));
        assert_eq!(d.remaining(), Some(0)); // key:k is full
        let d = decide(v.clone(), 5, Kind::Charge).unwrap();
        assert!(d
            .budgets
            .iter()
            .zip(&v)
            .all(|(a, b)| a.spent == b.spent + 5));
        assert_eq!(d.remaining(), Some(5));
        // records are never refused, and show the overdraft
        let d = decide(v.clone(), 500, Kind::Record).unwrap();
        assert!(d.allowed && d.blocks.iter().all(|x| !x));
        assert_eq!(d.remaining(), Some(0));
        // limit 0: nothing may be spent (a zero estimate still fits)
        let z = vec![b("a", Day, 0, 0, 0)];
        assert!(decide(z.clone(), 0, Kind::Reserve).unwrap().allowed);
        assert!(!decide(z, 1, Kind::Reserve).unwrap().allowed);
        assert_eq!(decide(vec![], 5, Kind::Charge).unwrap().remaining(), None);
    }

    #[test]
    fn headroom_is_json() {
        let mut v = vec![b("org:\"a\"\\\n", ScopePeriod::Month, 10, 4, 3)];
        v[0].period_start = crate::spend::from_civil(2026, 11, 1);
        let d = decide(v, 5, Kind::Reserve).unwrap();
        assert_eq!(
            headroom_json(&d),
            "[{\"scope\": \"org:\\\"a\\\"\\\\\\u000a\", \"period\": \"month\", \
             \"period_start\": \"2026-11-01\", \"limit_micros\": 10, \"spent_micros\": 4, \
             \"reserved_micros\": 3, \"remaining_micros\": 3, \"blocks\": true}]"
        );
        assert_eq!(
            headroom_json(&decide(vec![], 1, Kind::Charge).unwrap()),
            "[]"
        );
    }

    #[test]
    fn overflow_is_out_of_range_or_over_the_limit() {
        let v = vec![b("a", ScopePeriod::Day, i64::MAX, i64::MAX - 1, 0)];
        assert!(!decide(v.clone(), 2, Kind::Charge).unwrap().allowed);
        assert_eq!(decide(v, 2, Kind::Record).unwrap_err().sqlstate(), "22003");
    }
}
