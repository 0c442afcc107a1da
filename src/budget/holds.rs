//! The one API for holds that other capabilities open: SPEC §1's holds
//! carrying another capability's exposure (§2's reservations today, §6's
//! scoped budgets next). They lock, read, open and close holds only
//! through these functions, never with SQL of their own on budget_usage or
//! budget_hold, so every such hold has its events, its expiry, the sweep
//! and `verify()` exactly as a hold opened by `budget_authorize_hold`.
//!
//! A capability may also keep an account's spend in a *family* of budgets,
//! one per UTC day (the day is the `grant_index`; SPEC §6's scopes): spend
//! is realized on them ([`record`], [`settle`]) and read back summed over
//! periods ([`family_totals`], [`family_realized`]), so `verify()` checks
//! it like any budget's.
//!
//! A hold opened here always has a TTL: a caller that dies leaves nothing
//! behind once it passes.

use super::store::{hold_exists, HoldWrite, NewEvent};
use crate::args::now;
use crate::spi::Db;
use pgrx::datum::{Interval, TimestampWithTimeZone};
use spendguard_core::budget::{self, Disposition, Hold, Mutation, Usage};
use spendguard_core::{Error, Result};
use std::convert::TryFrom;

/// A budget that holds are opened on.
#[derive(Clone, Copy, Debug)]
pub struct Budget<'k> {
    pub capability_id: &'k str,
    pub grant_index: i32,
}

/// A hold to open: its id, the exposure it carries, how long it lives.
pub struct NewHold<'k> {
    pub hold_id: &'k str,
    pub exposure: i64,
    pub ttl: Interval,
}

/// Locks the budget (created at zero on first use) for a decision on it:
/// every decision on a budget is made under this lock. SG003 when
/// `new_hold` is taken already.
pub fn lock(db: &mut Db<'_, '_>, b: Budget<'_>, new_hold: Option<&str>) -> Result<Usage> {
    let (usage, taken) = db.lock_usage(b.capability_id, b.grant_index, new_hold);
    match new_hold {
        Some(id) if taken => Err(hold_exists(id)),
        _ => Ok(usage),
    }
}

/// The remaining exposure of the budget's open holds that have not expired
/// at `now()`: an expired hold stops counting at `expires_at`, swept or
/// not. `locked` is the budget as [`lock`] returned it, when the caller
/// holds its lock: no statement then when it has no exposure at all.
pub fn open_exposure(db: &mut Db<'_, '_>, b: Budget<'_>, locked: Option<Usage>) -> i64 {
    if locked.is_some_and(|u| u.exposed == 0) {
        return 0;
    }
    db.open_exposure(b.capability_id, b.grant_index, now())
}

/// Records the caller's decision on a new hold under the budget's lock:
/// `Ok(usage_after)` opens it (an `authorize_exposure` event, the budget at
/// `usage_after`, the hold expiring at `now() + ttl`, which is returned);
/// `Err(reason)` records a denial with that reason and opens nothing.
pub fn open(
    db: &mut Db<'_, '_>,
    b: Budget<'_>,
    h: &NewHold<'_>,
    decided: std::result::Result<Usage, (Usage, &'static str)>,
) -> Result<Option<TimestampWithTimeZone>> {
    let (after, denial) = match decided {
        Ok(after) => (after, None),
        Err((usage, reason)) => (usage, Some(reason)),
    };
    db.commit(
        &NewEvent::new("authorize_exposure", b.capability_id, b.grant_index, after)
            .hold(Some(h.hold_id))
            .denied(denial)
            .units(h.exposure, 0),
        HoldWrite::Open(Some(h.ttl)),
    )?;
    Ok(denial.is_none().then(|| expires_at(h.ttl)))
}

/// `now() + ttl`, by PostgreSQL's own arithmetic (months and days in the
/// session's time zone), as the hold row has it.
fn expires_at(ttl: Interval) -> TimestampWithTimeZone {
    use pgrx::datum::IntoDatum;
    let start = TimestampWithTimeZone::try_from(now()).expect("now() is a timestamptz");
    // SAFETY: a core function of (timestamptz, interval); crate::args::ttl
    // checked that the sum is within range.
    unsafe {
        pgrx::direct_function_call::<TimestampWithTimeZone>(
            pgrx::pg_sys::timestamptz_pl_interval,
            &[start.into_datum(), ttl.into_datum()],
        )
    }
    .expect("now() + ttl is a timestamptz")
}

/// A hold and its budget, locked (the budget first).
pub struct Locked {
    usage: Usage,
    pub hold: Hold,
}

/// Locks a hold and its budget; SG001 when there is no such hold.
pub fn lock_hold(db: &mut Db<'_, '_>, hold_id: &str) -> Result<Locked> {
    let (usage, hold) = db.lock_hold(hold_id).ok_or_else(|| Error::HoldNotFound {
        hold_id: hold_id.to_string(),
    })?;
    Ok(Locked { usage, hold })
}

/// Closes a hold whose work is done (a settled or cancelled reservation):
/// its remaining exposure comes back to the budget. Before its expiry it is
/// released; past it, it expires as the sweep would have made it (so how
/// it ends does not depend on whether a sweep ran first). A hold closed
/// already is left as it is.
pub fn close(db: &mut Db<'_, '_>, h: Locked) -> Result<()> {
    let Locked { usage, hold } = h;
    if hold.disposition != Disposition::Open {
        return Ok(());
    }
    let now = now();
    let (kind, out) = if hold.is_expired_at(now) {
        match budget::expire_hold(usage, &hold, now) {
            Some(out) => ("expire_exposure", out),
            // its exposure was given back by budget-level calls already
            None => return Ok(()),
        }
    } else {
        (
            "release_exposure",
            budget::mutate_hold(Mutation::Release, usage, &hold, None, 0, now)?,
        )
    };
    db.commit(
        &NewEvent::new(kind, &hold.capability_id, hold.grant_index, out.usage)
            .hold(Some(&hold.hold_id))
            .units(out.exposure_units, 0),
        HoldWrite::Update(out.hold.as_ref().expect("a hold's mutation returns it")),
    )?;
    Ok(())
}

/// A day number as a `grant_index` (callers check days are within
/// 2000-01-01 ..= the last `integer` day first).
fn grant(day: i64) -> i32 {
    i32::try_from(day).expect("a day checked to fit a grant_index")
}

/// The spend (realized) and the open, unexpired reservations (holds'
/// remaining exposure at `now()`) of families of budgets, each summed over
/// the days `[start, end)`: one (spent, reserved) per (capability_id,
/// start, end), in order, all in one statement (one snapshot).
pub fn family_totals(db: &mut Db<'_, '_>, ranges: &[(&str, i64, i64)]) -> Vec<(i64, i64)> {
    let r: Vec<(&str, i32, i32)> = ranges
        .iter()
        .map(|(c, s, e)| (*c, grant(*s), grant(*e)))
        .collect();
    db.family_totals(&r, now())
}

/// The spend of each budget of a family with a day in `[from, to)`: (day,
/// realized), by day; days without a budget row are absent.
pub fn family_realized(
    db: &mut Db<'_, '_>,
    capability_id: &str,
    from: i64,
    to: i64,
) -> Vec<(i64, i64)> {
    db.family_realized(capability_id, grant(from), grant(to))
        .into_iter()
        .map(|(d, r)| (i64::from(d), r))
        .collect()
}

/// Records spend that happened on a budget the caller [`lock`]ed (at
/// `locked`), without a hold: realized spend grows by `cost`, one
/// `reconcile_spend` event with no exposure. Never refused (22003 only
/// when the total would overflow). Returns the budget after.
pub fn record(db: &mut Db<'_, '_>, b: Budget<'_>, locked: Usage, cost: i64) -> Result<Usage> {
    let after = budget::record_spend(locked, cost)?;
    db.commit(
        &NewEvent::new("reconcile_spend", b.capability_id, b.grant_index, after).units(0, cost),
        HoldWrite::None,
    )?;
    Ok(after)
}

/// Records a denial on a budget the caller [`lock`]ed (at `locked`): an
/// `authorize_exposure` event with `allowed = false`, the amount asked and
/// `reason`; nothing else changes.
pub fn deny(
    db: &mut Db<'_, '_>,
    b: Budget<'_>,
    locked: Usage,
    hold_id: Option<&str>,
    amount: i64,
    reason: &'static str,
) -> Result<()> {
    db.commit(
        &NewEvent::new("authorize_exposure", b.capability_id, b.grant_index, locked)
            .hold(hold_id)
            .denied(Some(reason))
            .units(amount, 0),
        HoldWrite::None,
    )?;
    Ok(())
}

/// Settles a hold with the real cost of its work (a settled reservation):
/// open and before its expiry, its remaining exposure leaves the budget and
/// `cost` is realized on it, the hold `reconciled`, in one event, even when
/// `cost` exceeds what it held. Past its expiry it expires (as the sweep
/// would have made it) and the cost is recorded on its budget; closed
/// already (swept), the cost is recorded on its budget. Spend that happened
/// is never refused.
pub fn settle(db: &mut Db<'_, '_>, h: Locked, cost: i64) -> Result<()> {
    let Locked { usage, hold } = h;
    let b = Budget {
        capability_id: &hold.capability_id,
        grant_index: hold.grant_index,
    };
    let now = now();
    if hold.disposition == Disposition::Open && !hold.is_expired_at(now) {
        let out = budget::settle_hold(usage, &hold, cost, now)?;
        db.commit(
            &NewEvent::new("reconcile_spend", b.capability_id, b.grant_index, out.usage)
                .hold(Some(&hold.hold_id))
                .units(out.exposure_units, out.realized_units),
            HoldWrite::Update(out.hold.as_ref().expect("a hold's settle returns it")),
        )?;
        return Ok(());
    }
    let mut usage = usage;
    if let Some(out) = budget::expire_hold(usage, &hold, now) {
        db.commit(
            &NewEvent::new("expire_exposure", b.capability_id, b.grant_index, out.usage)
                .hold(Some(&hold.hold_id))
                .units(out.exposure_units, 0),
            HoldWrite::Update(out.hold.as_ref().expect("a hold's expiry returns it")),
        )?;
        usage = out.usage;
    }
    record(db, b, usage, cost)?;
    Ok(())
}
