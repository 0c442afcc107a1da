//! The operations of SPEC.md §2: validate, lock, decide with the pure rules
//! of spendguard_core::spend, write. Reservations are §1 holds on a budget
//! per user, group and period (spend::reservation_budget), so their
//! exposure, TTL, expiry, sweep, events and verify() are §1's.

use crate::args::finite_time;
use crate::budget::holds;
use crate::spi::{with_db, Db};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use spendguard_core::budget::Usage;
use spendguard_core::spend::{self, Period, ReservationStatus};
use spendguard_core::{validate, Error, Result};

/// `spendguard.daily_spend`: one user's spend in a group on a UTC day.
pub struct DailyRow {
    pub tenant_id: String,
    pub user_id: String,
    pub group_id: String,
    pub day: i64,
    pub spend_micros: i64,
}

/// `spendguard.spend_decision`.
pub struct SpendDecision {
    pub allowed: bool,
    pub spent_micros: i64,
    pub limit_micros: Option<i64>,
    pub remaining_micros: Option<i64>,
    pub period_start: i64,
}

/// `spendguard.spend_reservation_decision`.
pub struct ReserveDecision {
    pub allowed: bool,
    pub spent_micros: i64,
    pub reserved_micros: i64,
    pub limit_micros: Option<i64>,
    pub remaining_micros: Option<i64>,
    pub period_start: i64,
    pub hold_id: String,
    pub expires_at: Option<TimestampWithTimeZone>,
}

/// A finite time argument as microseconds (crate::args::finite_time).
fn time_arg(name: &str, v: Option<TimestampWithTimeZone>) -> Result<i64> {
    Ok(i64::from(finite_time(name, v)?))
}

fn ids(user: Option<String>, group: Option<String>) -> Result<(String, String)> {
    Ok((
        validate::id("user_id", user)?,
        validate::id("group_id", group)?,
    ))
}

pub fn upsert_daily(
    user: Option<String>,
    group: Option<String>,
    at: Option<TimestampWithTimeZone>,
    cost: Option<i64>,
) -> Result<DailyRow> {
    let (user, group) = ids(user, group)?;
    let at = time_arg("at", at)?;
    let cost = validate::amount("cost_micros", cost)?;
    let tenant = crate::tenant::current()?;
    let day = spend::utc_day(at);
    with_db(&tenant, |db| {
        let total = db.upsert_daily(&user, &group, day, cost);
        Ok(DailyRow {
            tenant_id: tenant.clone(),
            user_id: user,
            group_id: group,
            day,
            spend_micros: total,
        })
    })
}

pub fn since(
    user: Option<String>,
    group: Option<String>,
    start: Option<TimestampWithTimeZone>,
) -> Result<i64> {
    let (user, group) = ids(user, group)?;
    let from = spend::utc_day(time_arg("period_start", start)?);
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        Ok(db.spent(&user, &group, from, i64::from(i32::MAX)))
    })
}

pub fn group_since(group: Option<String>, start: Option<TimestampWithTimeZone>) -> Result<i64> {
    let group = validate::id("group_id", group)?;
    let from = spend::utc_day(time_arg("period_start", start)?);
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| Ok(db.group_spent(&group, from)))
}

pub fn set_group_budget(
    group: Option<String>,
    limit: Option<i64>,
    period: Option<String>,
) -> Result<()> {
    let group = validate::id("group_id", group)?;
    let limit = validate::opt_amount("limit_micros", limit)?;
    let budget = match limit {
        Some(l) => Some((l, Period::parse(&validate::required("period", period)?)?)),
        None => {
            if let Some(p) = period {
                Period::parse(&p)?;
            }
            None
        }
    };
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        db.set_budget(&group, budget);
        Ok(())
    })
}

pub fn set_user_override(
    user: Option<String>,
    group: Option<String>,
    limit: Option<i64>,
) -> Result<()> {
    let (user, group) = ids(user, group)?;
    let limit = validate::opt_amount("limit_micros", limit)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        db.set_override(&user, &group, limit);
        Ok(())
    })
}

/// The limit and period bounds of a user in a group at day `day`.
fn limit_at(
    db: &mut Db<'_, '_>,
    user: &str,
    group: &str,
    day: i64,
) -> Result<(Option<i64>, i64, i64)> {
    let (group_budget, user_override) = db.limits(user, group);
    let (limit, period) = spend::resolve(group_budget, user_override);
    let (start, end) = period.bounds(day);
    spend::check_period_start(start, period)?;
    Ok((limit, start, end))
}

/// The §1 budget that carries a user's reservations in a group and period
/// (spendguard_core::spend::reservation_budget; its grant_index is the
/// period's first day). Its holds are opened and closed through the holds
/// API (crate::budget::holds), never by spend's own SQL.
fn period_budget(key: &str, start: i64) -> holds::Budget<'_> {
    holds::Budget {
        capability_id: key,
        grant_index: i32::try_from(start).expect("a period start within PostgreSQL's dates"),
    }
}

/// Locks the reservation budget of a user, group and period (creating it
/// at zero), so that its charges and reservations are decided one at a
/// time (SG003 when `new_hold` is taken); then reads the period's spend and
/// its open, unexpired reservations.
/// Returns the budget's usage, the spend and the reserved sum.
fn lock_period(
    db: &mut Db<'_, '_>,
    user: &str,
    group: &str,
    start: i64,
    end: i64,
    new_hold: Option<&str>,
) -> Result<(Usage, i64, i64)> {
    let key = spend::reservation_budget(user, group);
    let b = period_budget(&key, start);
    let usage = holds::lock(db, b, new_hold)?;
    let reserved = holds::open_exposure(db, b, Some(usage));
    Ok((usage, db.spent(user, group, start, end), reserved))
}

pub fn check(
    user: Option<String>,
    group: Option<String>,
    cost: Option<i64>,
    at: Option<TimestampWithTimeZone>,
) -> Result<SpendDecision> {
    let (user, group) = ids(user, group)?;
    let cost = validate::amount("cost_micros", cost)?;
    let day = spend::utc_day(time_arg("at", at)?);
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        let (limit, start, end) = limit_at(db, &user, &group, day)?;
        let key = spend::reservation_budget(&user, &group);
        // reads only, without the budget's lock
        let reserved = holds::open_exposure(db, period_budget(&key, start), None);
        let spent = db.spent(&user, &group, start, end);
        let counted = spend::total(spent, reserved, "spend")?;
        Ok(SpendDecision {
            allowed: spend::fits(counted, cost, limit),
            spent_micros: counted,
            limit_micros: limit,
            remaining_micros: spend::remaining(counted, limit),
            period_start: start,
        })
    })
}

/// The arguments of `spend_charge` / `spend_charge_enforce`, named as in
/// SQL, and whether a denial raises.
pub struct ChargeArgs {
    pub user: Option<String>,
    pub group: Option<String>,
    pub cost: Option<i64>,
    pub at: Option<TimestampWithTimeZone>,
    pub enforce: bool,
}

/// `spend_charge`: under the user's reservation budget lock, checks the
/// period total (spend + open reservations + cost) against the limit and,
/// when it fits, records the cost on the UTC day of `at`. The result shows
/// the totals after the charge (before it, when denied).
pub fn charge(a: ChargeArgs) -> Result<SpendDecision> {
    let ChargeArgs {
        user,
        group,
        cost,
        at,
        enforce,
    } = a;
    let (user, group) = ids(user, group)?;
    let cost = validate::amount("cost_micros", cost)?;
    let day = spend::utc_day(time_arg("at", at)?);
    let tenant = crate::tenant::current()?;
    let d = with_db(&tenant, |db| {
        let (limit, start, end) = limit_at(db, &user, &group, day)?;
        let (_, spent, reserved) = lock_period(db, &user, &group, start, end, None)?;
        let counted = spend::total(spent, reserved, "spend")?;
        let allowed = spend::fits(counted, cost, limit);
        let counted = if allowed {
            db.upsert_daily(&user, &group, day, cost);
            spend::total(counted, cost, "spend")?
        } else {
            counted
        };
        Ok(SpendDecision {
            allowed,
            spent_micros: counted,
            limit_micros: limit,
            remaining_micros: spend::remaining(counted, limit),
            period_start: start,
        })
    })?;
    if enforce && !d.allowed {
        return Err(Error::CapExceeded(format!(
            "spend cap of user \"{}\" in group \"{}\" exceeded: {} spent of {} from {}, {} more asked",
            user,
            group,
            d.spent_micros,
            d.limit_micros.unwrap_or_default(),
            iso_date(d.period_start),
            cost
        )));
    }
    Ok(d)
}

/// `YYYY-MM-DD` of a day number, for messages.
pub fn iso_date(day: i64) -> String {
    let (y, m, d) = spend::civil(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The arguments of `spend_reserve`, named as in SQL.
pub struct ReserveArgs {
    pub user: Option<String>,
    pub group: Option<String>,
    pub estimate: Option<i64>,
    pub hold_id: Option<String>,
    pub at: Option<TimestampWithTimeZone>,
    pub ttl: Option<Interval>,
}

pub fn reserve(a: ReserveArgs) -> Result<ReserveDecision> {
    let ReserveArgs {
        user,
        group,
        estimate,
        hold_id,
        at,
        ttl,
    } = a;
    let (user, group) = ids(user, group)?;
    let estimate = validate::amount("estimate_micros", estimate)?;
    let hold_id = validate::id("hold_id", hold_id)?;
    let day = spend::utc_day(time_arg("at", at)?);
    let ttl = crate::args::ttl("ttl", validate::required("ttl", ttl)?)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        let (limit, start, end) = limit_at(db, &user, &group, day)?;
        let (usage, spent, reserved) = lock_period(db, &user, &group, start, end, Some(&hold_id))?;
        let r = spend::reserve(usage, spent, reserved, estimate, limit)?;
        let key = spend::reservation_budget(&user, &group);
        let hold = holds::NewHold {
            hold_id: &hold_id,
            exposure: estimate,
            ttl,
        };
        let decided = if r.allowed {
            Ok(r.usage_after)
        } else {
            Err((usage, "spend_limit"))
        };
        let expires_at = holds::open(db, period_budget(&key, start), &hold, decided)?;
        if r.allowed {
            db.new_reservation(&hold_id, &user, &group, day, estimate);
        }
        let (allowed, reserved) = (r.allowed, r.reserved_after);
        Ok(ReserveDecision {
            allowed,
            spent_micros: spent,
            reserved_micros: reserved,
            limit_micros: limit,
            remaining_micros: spend::remaining(spend::total(spent, reserved, "spend")?, limit),
            period_start: start,
            hold_id: hold_id.clone(),
            expires_at,
        })
    })
}

/// Closes a reservation (settle with its cost, or cancel): its hold gives
/// its remaining exposure back (unless it expired or was released
/// already), the cost lands on the UTC day of the reservation's `at`, and
/// the reservation is closed, once.
fn close(hold_id: Option<String>, cost: Option<i64>, settle: bool) -> Result<Option<DailyRow>> {
    let hold_id = validate::id("hold_id", hold_id)?;
    let cost = if settle {
        Some(validate::amount("cost_micros", cost)?)
    } else {
        None
    };
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        // lock order: budget row, hold, reservation
        let hold = holds::lock_hold(db, &hold_id)?;
        let r = db
            .lock_reservation(&hold_id)
            .ok_or_else(|| Error::HoldNotFound {
                hold_id: hold_id.clone(),
            })?;
        spend::check_reservation_open(&hold_id, r.status)?;
        // late is fine: an expired reservation is still settled
        holds::close(db, hold)?;
        let Some(c) = cost else {
            db.close_reservation(&hold_id, ReservationStatus::Cancelled, None);
            return Ok(None);
        };
        let total = db.settle_reservation(&hold_id, &r.user_id, &r.group_id, r.day, c);
        Ok(Some(DailyRow {
            tenant_id: tenant.clone(),
            user_id: r.user_id.clone(),
            group_id: r.group_id.clone(),
            day: r.day,
            spend_micros: total,
        }))
    })
}

pub fn settle(hold_id: Option<String>, cost: Option<i64>) -> Result<DailyRow> {
    Ok(close(hold_id, cost, true)?.expect("a settle records its cost"))
}

pub fn cancel(hold_id: Option<String>) -> Result<()> {
    close(hold_id, None, false).map(|_| ())
}

pub fn purge(before: Option<pgrx::datum::Date>) -> Result<i64> {
    let before = validate::required("before", before)?;
    if !before.is_finite() {
        return Err(Error::InvalidParameter(
            "before must be a finite date".into(),
        ));
    }
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        Ok(db.purge_spend(i64::from(before.to_pg_epoch_days())))
    })
}
