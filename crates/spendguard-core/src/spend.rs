//! Daily spend and period budgets of SPEC.md §2 as pure functions: UTC
//! days and calendar periods, which limit applies, and the decisions of
//! `spend_check` / `spend_charge` / `spend_reserve`. Dates are days since
//! 2000-01-01 and times microseconds since 2000-01-01 00:00 UTC, as
//! PostgreSQL stores `date` and `timestamptz`.

use crate::error::{Error, Result};

const USECS_PER_DAY: i64 = 86_400_000_000;
/// 2000-01-01 is this many days after 1970-01-01.
const PG_EPOCH_FROM_UNIX: i64 = 10_957;

/// The UTC calendar day of a timestamptz, as days since 2000-01-01.
pub fn utc_day(micros: i64) -> i64 {
    micros.div_euclid(USECS_PER_DAY)
}

/// (year, month, day) of a day number (days since 2000-01-01), proleptic
/// Gregorian (H. Hinnant's `civil_from_days`).
pub fn civil(day: i64) -> (i64, u32, u32) {
    let z = day + PG_EPOCH_FROM_UNIX + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The day number of (year, month, day) (`days_from_civil`).
pub fn from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 - PG_EPOCH_FROM_UNIX
}

/// The first day a spend period may start on: 2000-01-01 (day 0). A
/// period's reservations live on a §1 budget whose `grant_index` is its
/// first day, which must be >= 0; and a decision's `period_start` must be
/// a date PostgreSQL can read back (the week of 4714-11-24 BC is not).
/// 22023 before anything is written.
pub fn check_period_start(start: i64, period: Period) -> Result<()> {
    if start < 0 {
        let (y, m, d) = civil(start);
        return Err(Error::InvalidParameter(format!(
            "at is in a {} that starts on {y:04}-{m:02}-{d:02}: spend periods start on 2000-01-01 or later",
            period.as_str()
        )));
    }
    Ok(())
}

pub use crate::enums::{Period, ReservationStatus};

impl Period {
    /// `[start, end)` of the period that contains `day`, as day numbers.
    pub fn bounds(self, day: i64) -> (i64, i64) {
        match self {
            Period::Day => (day, day + 1),
            Period::Week => {
                // 2000-01-03 (day 2) was a Monday
                let start = day - (day - 2).rem_euclid(7);
                (start, start + 7)
            }
            Period::Month => {
                let (y, m, _) = civil(day);
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                (from_civil(y, m, 1), from_civil(ny, nm, 1))
            }
        }
    }
}

/// The limit that applies to one user in one group: the user's override
/// beats the group budget. The period is the group budget's, `day` when
/// the group has none (an override alone limits the user per UTC day).
pub fn resolve(group: Option<(i64, Period)>, user_override: Option<i64>) -> (Option<i64>, Period) {
    let period = group.map_or(Period::Day, |(_, p)| p);
    (user_override.or(group.map(|(l, _)| l)), period)
}

/// Whether `spent + cost` fits `limit` (no limit: always). A sum beyond
/// bigint is over any limit.
pub fn fits(spent: i64, cost: i64, limit: Option<i64>) -> bool {
    match limit {
        None => true,
        Some(l) => spent.checked_add(cost).is_some_and(|t| t <= l),
    }
}

/// A reservation decided once (SPEC §2): it is allowed iff `spent +
/// reserved + estimate <= limit`, and then its hold opens on the
/// reservation budget (`usage` → `usage_after`: one invocation, `estimate`
/// more exposure) and `reserved` grows by `estimate`. A denial leaves both
/// as they were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reserved {
    pub allowed: bool,
    pub usage_after: crate::budget::Usage,
    pub reserved_after: i64,
}

pub fn reserve(
    usage: crate::budget::Usage,
    spent: i64,
    reserved: i64,
    estimate: i64,
    limit: Option<i64>,
) -> Result<Reserved> {
    use crate::budget::{authorize, Decision, Limits};
    let counted = total(spent, reserved, "spend")?;
    if !fits(counted, estimate, limit) {
        return Ok(Reserved {
            allowed: false,
            usage_after: usage,
            reserved_after: reserved,
        });
    }
    let usage_after = match authorize(usage, &Limits::default(), estimate)? {
        Decision::Authorized(after) => after,
        Decision::Denied(d) => unreachable!("a hold without limits is never denied ({d:?})"),
    };
    Ok(Reserved {
        allowed: true,
        usage_after,
        reserved_after: total(reserved, estimate, "reserved")?,
    })
}

/// What is left of `limit` after `spent`: never below 0 (an overdraft,
/// from spend recorded unconditionally, shows in `spent`).
pub fn remaining(spent: i64, limit: Option<i64>) -> Option<i64> {
    limit.map(|l| l.saturating_sub(spent).max(0))
}

/// `spent + add` for the results, 22003 beyond bigint.
pub fn total(spent: i64, add: i64, what: &str) -> Result<i64> {
    spent
        .checked_add(add)
        .ok_or_else(|| Error::OutOfRange(format!("{what} would overflow bigint")))
}

/// The §1 budget that carries a user's reservations in a group: its
/// `capability_id` (a fixed-size digest of the two ids, so any two ids of
/// 1,024 bytes still fit an index entry); the `grant_index` is the period's
/// first day. Every charge and reservation of the user and group in that
/// period locks this budget's row, which makes them exact under
/// concurrency.
pub fn reservation_budget(user_id: &str, group_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    // length-prefixed: no two (user, group) pairs give the same input
    h.update((user_id.len() as u64).to_be_bytes());
    h.update(user_id.as_bytes());
    h.update(group_id.as_bytes());
    let d = h.finalize();
    let hex: String = d[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("spend:{hex}")
}

/// SG002 unless the reservation is still open (settled or cancelled once).
pub fn check_reservation_open(hold_id: &str, status: ReservationStatus) -> Result<()> {
    match status {
        ReservationStatus::Open => Ok(()),
        closed => Err(Error::HoldNotOpen {
            hold_id: hold_id.to_string(),
            disposition: closed.as_str().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i64, m: u32, d: u32) -> i64 {
        from_civil(y, m, d)
    }

    #[test]
    fn a_reservation_is_decided_once() {
        use crate::budget::Usage;
        let u = Usage {
            invocation_count: 2,
            exposed: 300,
            realized: 0,
        };
        let r = reserve(u, 500, 300, 200, Some(1000)).unwrap();
        assert!(r.allowed);
        assert_eq!(r.reserved_after, 500);
        assert_eq!(
            r.usage_after,
            Usage {
                invocation_count: 3,
                exposed: 500,
                realized: 0
            }
        );
        // one micro over: denied, nothing moves
        let r = reserve(u, 500, 300, 201, Some(1000)).unwrap();
        assert_eq!(
            (r.allowed, r.usage_after, r.reserved_after),
            (false, u, 300)
        );
        // no limit: allowed; a denied estimate past bigint is a denial, not 22003
        assert!(reserve(u, 0, 0, 5, None).unwrap().allowed);
        assert!(!reserve(u, 1, 0, i64::MAX, Some(10)).unwrap().allowed);
        assert_eq!(
            reserve(u, i64::MAX, 1, 0, None).unwrap_err().sqlstate(),
            "22003"
        );
    }

    #[test]
    fn periods_start_in_2000_or_later() {
        assert_eq!(check_period_start(0, Period::Day), Ok(()));
        assert_eq!(
            check_period_start(Period::Month.bounds(14).0, Period::Month),
            Ok(())
        );
        // 2000-01-01 was a Saturday: its week began in 1999
        let (week, _) = Period::Week.bounds(0);
        let e = check_period_start(week, Period::Week).unwrap_err();
        assert_eq!(e.sqlstate(), "22023");
        assert!(
            e.message().contains("week that starts on 1999-12-27"),
            "{e}"
        );
        assert!(check_period_start(-1, Period::Day).is_err());
    }

    #[test]
    fn civil_round_trips_and_matches_known_dates() {
        assert_eq!(day(2000, 1, 1), 0);
        assert_eq!(day(1999, 12, 31), -1);
        assert_eq!(day(2026, 6, 23), 9670);
        for n in -800_000..800_000 {
            let (y, m, d) = civil(n);
            assert_eq!(from_civil(y, m, d), n);
        }
        assert_eq!(civil(day(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn utc_day_floors_negative_times() {
        assert_eq!(utc_day(0), 0);
        assert_eq!(utc_day(USECS_PER_DAY - 1), 0);
        assert_eq!(utc_day(USECS_PER_DAY), 1);
        assert_eq!(utc_day(-1), -1);
    }

    #[test]
    fn periods_are_utc_calendar_periods() {
        // 2026-06-22 is a Monday
        let mon = day(2026, 6, 22);
        for d in 0..7 {
            assert_eq!(Period::Week.bounds(mon + d), (mon, mon + 7));
        }
        assert_eq!(Period::Week.bounds(mon - 1).0, mon - 7);
        assert_eq!(Period::Day.bounds(mon), (mon, mon + 1));
        assert_eq!(
            Period::Month.bounds(day(2026, 2, 28)),
            (day(2026, 2, 1), day(2026, 3, 1))
        );
        assert_eq!(
            Period::Month.bounds(day(2024, 12, 31)),
            (day(2024, 12, 1), day(2025, 1, 1))
        );
        assert_eq!(Period::parse("week"), Ok(Period::Week));
        assert_eq!(Period::parse("year").unwrap_err().sqlstate(), "22023");
        assert_eq!(Period::parse("Day").unwrap_err().sqlstate(), "22023");
    }

    #[test]
    fn the_override_beats_the_group_budget() {
        assert_eq!(resolve(None, None), (None, Period::Day));
        assert_eq!(
            resolve(Some((100, Period::Month)), None),
            (Some(100), Period::Month)
        );
        assert_eq!(
            resolve(Some((100, Period::Month)), Some(5)),
            (Some(5), Period::Month)
        );
        assert_eq!(resolve(None, Some(5)), (Some(5), Period::Day));
    }

    #[test]
    fn fits_at_the_limit_and_not_past_it() {
        assert!(fits(90, 10, Some(100)));
        assert!(!fits(90, 11, Some(100)));
        assert!(fits(i64::MAX, 1, None));
        assert!(!fits(i64::MAX, 1, Some(i64::MAX)));
        assert_eq!(remaining(120, Some(100)), Some(0));
        assert_eq!(remaining(20, Some(100)), Some(80));
        assert_eq!(remaining(20, None), None);
        assert_eq!(total(i64::MAX, 1, "x").unwrap_err().sqlstate(), "22003");
    }

    #[test]
    fn reservation_budgets_do_not_collide() {
        let a = reservation_budget("ab", "c");
        assert_ne!(a, reservation_budget("a", "bc"));
        assert_ne!(a, reservation_budget("c", "ab"));
        assert_eq!(a, reservation_budget("ab", "c"));
        assert_eq!(a.len(), "spend:".len() + 32);
    }

    #[test]
    fn a_reservation_closes_once() {
        assert!(check_reservation_open("r", ReservationStatus::Open).is_ok());
        let e = check_reservation_open("r", ReservationStatus::Settled).unwrap_err();
        assert_eq!(e.sqlstate(), "SG002");
        assert_eq!(e.message(), "hold \"r\" is not open: it is settled");
    }
}
