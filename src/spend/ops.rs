//! The operations of SPEC.md §2: validate, lock, decide with the pure rules
//! of spendguard_core::spend, write. Reservations are §1 holds on a budget
//! per user, group and period (spend::reservation_budget), so their
//! exposure, TTL, expiry, sweep, events and verify() are §1's.

use crate::args::{finite_time, now};
use crate::budget::ops::guarantee_level;
use crate::budget::store::{hold_exists, HoldWrite, NewEvent};
use crate::spi::{with_db, Db};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use spendguard_core::budget::{self, Disposition, Usage};
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

/// Locks the reservation budget of a user, group and period (creating it
/// at zero), so that its charges and reservations are decided one at a
/// time; then reads the period's spend and its open, unexpired
/// reservations. An expired reservation stops counting at `expires_at`
/// whether or not a sweep has closed its hold yet; a budget with no
/// exposure at all has none to count.
/// Returns whether `new_hold` is taken, the spend and the reserved sum.
fn lock_period(
    db: &mut Db<'_, '_>,
    user: &str,
    group: &str,
    start: i64,
    end: i64,
    new_hold: Option<&str>,
) -> (Usage, bool, i64, i64) {
    let key = spend::reservation_budget(user, group);
    let (usage, taken) = db.lock_usage(&key, grant_of(start), new_hold);
    let reserved_from = (usage.exposed != 0).then_some((key.as_str(), start, now()));
    let (spent, reserved) = db.spent_and_reserved(user, group, start, end, reserved_from);
    (usage, taken, spent, reserved)
}

/// The reservation budget's grant_index: the period's first day.
fn grant_of(start: i64) -> i32 {
    i32::try_from(start).expect("a period start within PostgreSQL's dates")
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
        let (spent, reserved) =
            db.spent_and_reserved(&user, &group, start, end, Some((&key, start, now())));
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

/// `spend_charge`: under the user's reservation budget lock, checks the
/// period total (spend + open reservations + cost) against the limit and,
/// when it fits, records the cost on the UTC day of `at`. The result shows
/// the totals after the charge (before it, when denied).
pub fn charge(
    user: Option<String>,
    group: Option<String>,
    cost: Option<i64>,
    at: Option<TimestampWithTimeZone>,
    enforce: bool,
) -> Result<SpendDecision> {
    let (user, group) = ids(user, group)?;
    let cost = validate::amount("cost_micros", cost)?;
    let day = spend::utc_day(time_arg("at", at)?);
    let tenant = crate::tenant::current()?;
    let d = with_db(&tenant, |db| {
        let (limit, start, end) = limit_at(db, &user, &group, day)?;
        let (_, _, spent, reserved) = lock_period(db, &user, &group, start, end, None);
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

pub fn reserve(
    user: Option<String>,
    group: Option<String>,
    estimate: Option<i64>,
    hold_id: Option<String>,
    at: Option<TimestampWithTimeZone>,
    ttl: Option<Interval>,
) -> Result<ReserveDecision> {
    let (user, group) = ids(user, group)?;
    let estimate = validate::amount("estimate_micros", estimate)?;
    let hold_id = validate::id("hold_id", hold_id)?;
    let day = spend::utc_day(time_arg("at", at)?);
    let ttl = crate::args::ttl("ttl", validate::required("ttl", ttl)?)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        let (limit, start, end) = limit_at(db, &user, &group, day)?;
        let (usage, taken, spent, reserved) =
            lock_period(db, &user, &group, start, end, Some(&hold_id));
        if taken {
            return Err(hold_exists(&hold_id));
        }
        let key = spend::reservation_budget(&user, &group);
        let counted = spend::total(spent, reserved, "spend")?;
        let allowed = spend::fits(counted, estimate, limit);
        let grant = grant_of(start);
        let after = match budget::authorize(usage, &budget::Limits::default(), estimate)? {
            budget::Decision::Authorized(after) if allowed => after,
            _ => usage,
        };
        db.commit(
            &NewEvent {
                event_id: None,
                fingerprint: None,
                hold_id: Some(&hold_id),
                capability_id: &key,
                grant_index: grant,
                kind: "authorize_exposure",
                allowed,
                denial_reason: (!allowed).then_some("spend_limit"),
                exposure_units: estimate,
                realized_spend_units: 0,
                limits: [None, None, None],
                usage_after: after,
                authority: None,
                guarantee_level: guarantee_level(),
            },
            HoldWrite::Open(Some(ttl)),
        )?;
        let expires_at =
            allowed.then(|| db.new_reservation(&hold_id, &user, &group, day, estimate));
        let reserved = if allowed {
            spend::total(reserved, estimate, "reserved")?
        } else {
            reserved
        };
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
    let not_found = || Error::HoldNotFound {
        hold_id: hold_id.clone(),
    };
    with_db(&tenant, |db| {
        let (usage, hold) = db.lock_hold(&hold_id).ok_or_else(not_found)?;
        let r = db.lock_reservation(&hold_id).ok_or_else(not_found)?;
        spend::check_reservation_open(&hold_id, r.status)?;
        if hold.disposition == Disposition::Open {
            // late is fine: an expired reservation is still settled
            let open = budget::Hold {
                expires_at: None,
                ..hold.clone()
            };
            let out = budget::mutate_hold(budget::Mutation::Release, usage, &open, None, 0, 0)?;
            db.commit(
                &NewEvent {
                    event_id: None,
                    fingerprint: None,
                    hold_id: Some(&hold_id),
                    capability_id: &hold.capability_id,
                    grant_index: hold.grant_index,
                    kind: "release_exposure",
                    allowed: true,
                    denial_reason: None,
                    exposure_units: out.exposure_units,
                    realized_spend_units: 0,
                    limits: [None, None, None],
                    usage_after: out.usage,
                    authority: None,
                    guarantee_level: guarantee_level(),
                },
                HoldWrite::Update(out.hold.as_ref().expect("a hold mutation returns the hold")),
            )?;
        }
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
