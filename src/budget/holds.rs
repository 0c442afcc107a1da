//! The one API for holds that other capabilities open: SPEC §1's holds
//! carrying another capability's exposure (§2's reservations today, §6's
//! scoped budgets next). They lock, read, open and close holds only
//! through these functions, never with SQL of their own on budget_usage or
//! budget_hold, so every such hold has its events, its expiry, the sweep
//! and `verify()` exactly as a hold opened by `budget_authorize_hold`.
//!
//! A hold opened here always has a TTL: a caller that dies leaves nothing
//! behind once it passes.

use super::store::{hold_exists, HoldWrite, NewEvent};
use crate::args::now;
use crate::spi::Db;
use pgrx::datum::{Interval, TimestampWithTimeZone};
use spendguard_core::budget::{self, Disposition, Hold, Mutation, Usage};
use spendguard_core::{Error, Result};

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
