//! The budget operations of SPEC.md §1: validate, lock, decide with the
//! pure rules of spendguard-core, write, log. One call = one SPI session
//! under the budget row lock.

use super::store::{hold_exists, HoldWrite, NewEvent, RecordedEvent};
use crate::spi::{with_db, Db};
// expiry is judged at the time of the call (now()), as expires_at was set
use crate::args::now;
use pgrx::datum::Interval;
use spendguard_core::budget::{
    self, Authority, Decision, Denial, Limits, Mutation, Outcome, Usage,
};
use spendguard_core::fingerprint::Fingerprint;
use spendguard_core::{validate, Error, Result};

/// The result of an authorize (`spendguard.hold_decision`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldDecision {
    pub authorized: bool,
    pub denial_reason: Option<String>,
    pub hold_id: Option<String>,
    pub exposure_units: i64,
    pub committed_cost_after: i64,
    pub invocation_count_after: i64,
    pub commit_index: Option<i64>,
    pub event_id: Option<String>,
    pub guarantee_level: String,
    pub budget_term: Option<String>,
}

/// The result of release / reverse / reconcile (`spendguard.hold_mutation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldMutation {
    pub hold_id: Option<String>,
    pub kind: String,
    pub exposure_units: i64,
    pub realized_spend_units: i64,
    pub committed_cost_after: i64,
    pub invocation_count_after: i64,
    pub commit_index: i64,
    pub event_id: Option<String>,
    pub guarantee_level: String,
    pub budget_term: Option<String>,
}

pub struct AuthorizeArgs {
    pub capability_id: Option<String>,
    pub grant_index: Option<i32>,
    pub requested_exposure: Option<i64>,
    pub max_invocations: Option<i64>,
    pub max_cost_per_invocation: Option<i64>,
    pub max_total_cost: Option<i64>,
    pub hold_id: Option<String>,
    pub event_id: Option<String>,
    pub authority_id: Option<String>,
    pub lease_id: Option<String>,
    pub lease_epoch: Option<i64>,
    pub ttl: Option<Interval>,
}

pub struct MutateArgs {
    pub capability_id: Option<String>,
    pub grant_index: Option<i32>,
    /// released / reversed / exposed exposure; NULL = the hold's remaining
    pub amount: Option<i64>,
    /// realized spend (reconcile only)
    pub realized: Option<i64>,
    pub hold_id: Option<String>,
    pub event_id: Option<String>,
    pub authority_id: Option<String>,
    pub lease_id: Option<String>,
    pub lease_epoch: Option<i64>,
}

/// `single_node_atomic`, or `ha_linearizable` when this commit waits for a
/// synchronous standby.
pub fn guarantee_level() -> &'static str {
    let setting = |name: &std::ffi::CStr| -> String {
        // SAFETY: both are core GUCs; GetConfigOption returns a pointer into
        // GUC memory that stays valid until the next GUC change.
        unsafe {
            let p = pgrx::pg_sys::GetConfigOption(name.as_ptr(), true, false);
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    };
    budget::guarantee_level(
        &setting(c"synchronous_standby_names"),
        &setting(c"synchronous_commit"),
    )
}

fn check_replay(rec: &RecordedEvent, fp: &Fingerprint, event_id: &str) -> Result<()> {
    if rec.fingerprint != fp.as_str() {
        return Err(Error::IdempotencyConflict {
            event_id: event_id.to_string(),
        });
    }
    Ok(())
}

/// Looks the event id up; `Some` when it was recorded (a replay).
fn recorded(
    db: &mut Db<'_, '_>,
    event_id: Option<&str>,
    fp: &Option<Fingerprint>,
) -> Result<Option<RecordedEvent>> {
    let (Some(id), Some(fp)) = (event_id, fp) else {
        return Ok(None);
    };
    match db.event(id) {
        Some(rec) => {
            check_replay(&rec, fp, id)?;
            Ok(Some(rec))
        }
        None => Ok(None),
    }
}

fn decision_from(rec: RecordedEvent, event_id: Option<String>) -> HoldDecision {
    HoldDecision {
        authorized: rec.allowed,
        denial_reason: rec.denial_reason,
        hold_id: rec.hold_id,
        exposure_units: rec.exposure_units,
        committed_cost_after: rec.usage_after.committed(),
        invocation_count_after: rec.usage_after.invocation_count,
        commit_index: rec.allowed.then_some(rec.event_seq),
        event_id,
        guarantee_level: rec.guarantee_level,
        budget_term: rec.budget_term,
    }
}

fn mutation_from(rec: RecordedEvent, event_id: Option<String>) -> HoldMutation {
    HoldMutation {
        hold_id: rec.hold_id,
        kind: rec.kind,
        exposure_units: rec.exposure_units,
        realized_spend_units: rec.realized_spend_units,
        committed_cost_after: rec.usage_after.committed(),
        invocation_count_after: rec.usage_after.invocation_count,
        commit_index: rec.event_seq,
        event_id,
        guarantee_level: rec.guarantee_level,
        budget_term: rec.budget_term,
    }
}

pub fn authorize(a: AuthorizeArgs) -> Result<HoldDecision> {
    let cap = validate::id("capability_id", a.capability_id)?;
    let grant = validate::grant_index(a.grant_index)?;
    let requested = validate::amount("requested_exposure", a.requested_exposure)?;
    let limits = Limits {
        max_invocations: validate::opt_amount("max_invocations", a.max_invocations)?,
        max_cost_per_invocation: validate::opt_amount(
            "max_cost_per_invocation",
            a.max_cost_per_invocation,
        )?,
        max_total_cost: validate::opt_amount("max_total_cost", a.max_total_cost)?,
    };
    let hold_id = validate::opt_id("hold_id", a.hold_id)?;
    let event_id = validate::opt_id("event_id", a.event_id)?;
    let authority = Authority::from_args(a.authority_id, a.lease_id, a.lease_epoch)?;
    if let Some(t) = a.ttl {
        crate::args::ttl("ttl", t)?;
    }
    if a.ttl.is_some() && hold_id.is_none() {
        return Err(Error::InvalidParameter(
            "ttl needs a hold_id: only a hold can expire".to_string(),
        ));
    }
    let tenant = crate::tenant::current()?;
    let kind = "authorize_exposure";
    let fp = event_id.as_ref().map(|_| {
        let mut f = Fingerprint::new(kind);
        f.text(Some(&cap))
            .int(Some(grant.into()))
            .int(Some(requested))
            .int(limits.max_invocations)
            .int(limits.max_cost_per_invocation)
            .int(limits.max_total_cost)
            .text(hold_id.as_deref());
        fingerprint_authority(&mut f, &authority);
        // Appended only when given, so a request without a TTL keeps the
        // fingerprint it had before TTLs existed (events recorded by 0.1.0
        // still replay).
        if let Some(t) = a.ttl {
            f.int(Some(t.months().into()))
                .int(Some(t.days().into()))
                .int(Some(t.micros()));
        }
        f
    });

    with_db(&tenant, |db| {
        // A replay needs no lock; the second look-up, under the lock, settles
        // concurrent retries of one event id.
        if let Some(rec) = recorded(db, event_id.as_deref(), &fp)? {
            return Ok(decision_from(rec, event_id.clone()));
        }
        let (usage, hold_taken) = db.lock_usage(&cap, grant, hold_id.as_deref());
        if let Some(rec) = recorded(db, event_id.as_deref(), &fp)? {
            return Ok(decision_from(rec, event_id.clone()));
        }
        if hold_taken {
            return Err(hold_exists(hold_id.as_deref().unwrap_or_default()));
        }
        let mut decision = budget::authorize(usage, &limits, requested)?;
        let mut usage = usage;
        if decision == Decision::Denied(Denial::MaxTotalCost) {
            // Never deny because of holds that have expired (SPEC §1): only
            // on this path, so an authorize that passes pays nothing for it.
            let (after, expired) = expire_budget_holds(db, &cap, grant, usage, now(), i64::MAX)?;
            if expired > 0 {
                usage = after;
                decision = budget::authorize(usage, &limits, requested)?;
            }
        }
        let (after, denial) = match decision {
            Decision::Authorized(after) => (after, None),
            Decision::Denied(reason) => (usage, Some(reason.as_str())),
        };
        let ev = NewEvent::new(kind, &cap, grant, after)
            .idempotent(event_id.as_deref(), fp.as_ref().map(Fingerprint::as_str))
            .hold(hold_id.as_deref())
            .denied(denial)
            .units(requested, 0)
            .limits([
                limits.max_invocations,
                limits.max_cost_per_invocation,
                limits.max_total_cost,
            ])
            .authority(authority.as_ref());
        let seq = db.commit(
            &ev,
            if hold_id.is_some() {
                HoldWrite::Open(a.ttl)
            } else {
                HoldWrite::None
            },
        )?;
        Ok(HoldDecision {
            authorized: denial.is_none(),
            denial_reason: denial.map(str::to_string),
            hold_id: hold_id.clone(),
            exposure_units: requested,
            committed_cost_after: after.committed(),
            invocation_count_after: after.invocation_count,
            commit_index: denial.is_none().then_some(seq),
            event_id: event_id.clone(),
            guarantee_level: ev.guarantee_level.to_string(),
            budget_term: authority.as_ref().map(Authority::term),
        })
    })
}

fn fingerprint_authority(f: &mut Fingerprint, a: &Option<Authority>) {
    f.text(a.as_ref().map(|a| a.authority_id.as_str()))
        .text(a.as_ref().map(|a| a.lease_id.as_str()))
        .int(a.as_ref().map(|a| a.lease_epoch));
}

pub fn mutate(m: Mutation, a: MutateArgs) -> Result<HoldMutation> {
    let amount_name = match m {
        Mutation::Release => "released_exposure",
        Mutation::Reverse => "reversed_exposure",
        Mutation::Reconcile => "exposed_cost",
    };
    let cap = validate::opt_id("capability_id", a.capability_id)?;
    let grant = a
        .grant_index
        .map(|g| validate::grant_index(Some(g)))
        .transpose()?;
    let amount = validate::opt_amount(amount_name, a.amount)?;
    let realized = match m {
        Mutation::Reconcile => validate::amount("realized_spend", a.realized)?,
        _ => 0,
    };
    let hold_id = validate::opt_id("hold_id", a.hold_id)?;
    let event_id = validate::opt_id("event_id", a.event_id)?;
    let authority = Authority::from_args(a.authority_id, a.lease_id, a.lease_epoch)?;
    if hold_id.is_none() {
        // Without a hold the call names the budget and the amount itself.
        validate::required("capability_id", cap.as_ref())?;
        validate::required("grant_index", grant)?;
        validate::required(amount_name, amount)?;
    }
    let tenant = crate::tenant::current()?;
    let kind = m.event_kind();
    let fp = event_id.as_ref().map(|_| {
        let mut f = Fingerprint::new(kind);
        f.text(cap.as_deref())
            .int(grant.map(i64::from))
            .int(amount)
            .int((m == Mutation::Reconcile).then_some(realized))
            .text(hold_id.as_deref());
        fingerprint_authority(&mut f, &authority);
        f
    });

    with_db(&tenant, |db| {
        if let Some(rec) = recorded(db, event_id.as_deref(), &fp)? {
            return Ok(mutation_from(rec, event_id.clone()));
        }
        // With a hold id the budget is the hold's (locked with it); given
        // ones must match. Without, the call names the budget.
        let (usage, hold) = match &hold_id {
            Some(h) => {
                let (usage, hold) = db
                    .lock_hold(h)
                    .ok_or_else(|| Error::HoldNotFound { hold_id: h.clone() })?;
                if cap.as_ref().is_some_and(|c| *c != hold.capability_id)
                    || grant.is_some_and(|g| g != hold.grant_index)
                {
                    return Err(Error::HoldMismatch(format!(
                        "hold \"{h}\" belongs to budget (\"{}\", {}), not to the one given",
                        hold.capability_id, hold.grant_index
                    )));
                }
                (usage, Some(hold))
            }
            None => {
                let cap = cap.as_deref().unwrap_or_default();
                (db.lock_usage(cap, grant.unwrap_or_default(), None).0, None)
            }
        };
        if let Some(rec) = recorded(db, event_id.as_deref(), &fp)? {
            return Ok(mutation_from(rec, event_id.clone()));
        }
        let outcome: Outcome = match &hold {
            Some(hold) => {
                budget::check_fence(hold, &authority)?;
                budget::mutate_hold(m, usage, hold, amount, realized, now())?
            }
            None => budget::mutate_budget(m, usage, amount.unwrap_or_default(), realized)?,
        };
        let (cap, grant) = match &hold {
            Some(h) => (h.capability_id.clone(), h.grant_index),
            None => (cap.clone().unwrap_or_default(), grant.unwrap_or_default()),
        };
        let ev = NewEvent::new(kind, &cap, grant, outcome.usage)
            .idempotent(event_id.as_deref(), fp.as_ref().map(Fingerprint::as_str))
            .hold(hold_id.as_deref())
            .units(outcome.exposure_units, outcome.realized_units)
            .authority(authority.as_ref());
        let seq = db.commit(
            &ev,
            outcome
                .hold
                .as_ref()
                .map_or(HoldWrite::None, HoldWrite::Update),
        )?;
        Ok(HoldMutation {
            hold_id: hold_id.clone(),
            kind: kind.to_string(),
            exposure_units: outcome.exposure_units,
            realized_spend_units: outcome.realized_units,
            committed_cost_after: outcome.usage.committed(),
            invocation_count_after: outcome.usage.invocation_count,
            commit_index: seq,
            event_id: event_id.clone(),
            guarantee_level: ev.guarantee_level.to_string(),
            budget_term: authority.as_ref().map(Authority::term),
        })
    })
}

pub fn try_increment(
    capability_id: Option<String>,
    grant_index: Option<i32>,
    max_invocations: Option<i64>,
    event_id: Option<String>,
) -> Result<bool> {
    let cap = validate::id("capability_id", capability_id)?;
    let grant = validate::grant_index(grant_index)?;
    let max = validate::opt_amount("max_invocations", max_invocations)?;
    let event_id = validate::opt_id("event_id", event_id)?;
    let tenant = crate::tenant::current()?;
    let kind = "increment_invocation";
    let fp = event_id.as_ref().map(|_| {
        let mut f = Fingerprint::new(kind);
        f.text(Some(&cap)).int(Some(grant.into())).int(max);
        f
    });
    with_db(&tenant, |db| {
        if let Some(rec) = recorded(db, event_id.as_deref(), &fp)? {
            return Ok(rec.allowed);
        }
        let (usage, _) = db.lock_usage(&cap, grant, None);
        if let Some(rec) = recorded(db, event_id.as_deref(), &fp)? {
            return Ok(rec.allowed);
        }
        let after = budget::try_increment(usage, max)?;
        db.commit(
            &NewEvent::new(kind, &cap, grant, after.unwrap_or(usage))
                .idempotent(event_id.as_deref(), fp.as_ref().map(Fingerprint::as_str))
                .denied(after.is_none().then_some("max_invocations"))
                .limits([max, None, None]),
            HoldWrite::None,
        )?;
        Ok(after.is_some())
    })
}

/// Expires up to `lim` open holds of one budget that are past their expiry
/// at `now`, oldest first, each with its `expire_exposure` event. The
/// budget's row lock must be held (its counters are `usage`). Returns the
/// usage after and how many holds expired.
pub fn expire_budget_holds(
    db: &mut Db<'_, '_>,
    cap: &str,
    grant: i32,
    mut usage: Usage,
    now: i64,
    lim: i64,
) -> Result<(Usage, i64)> {
    let mut expired = 0;
    for hold in db.lock_expired_holds(cap, grant, now, lim) {
        let Some(out) = budget::expire_hold(usage, &hold, now) else {
            continue;
        };
        db.commit(
            &NewEvent::new("expire_exposure", cap, grant, out.usage)
                .hold(Some(&hold.hold_id))
                .units(out.exposure_units, 0),
            HoldWrite::Update(out.hold.as_ref().expect("expire_hold returns the hold")),
        )?;
        usage = out.usage;
        expired += 1;
    }
    Ok((usage, expired))
}

/// `budget_expire_holds(now, lim)`: expires the current tenant's open holds
/// past their expiry at `now`, at most `lim`, budgets in the order of their
/// oldest such hold and each budget's holds oldest first. A budget whose
/// row another transaction holds is skipped (a sweep never waits behind a
/// busy budget, so it cannot deadlock with it); the next sweep gets it.
/// Concurrent sweeps expire each hold once: a hold only changes under its
/// budget's row lock.
pub fn expire_holds(now: Option<i64>, lim: Option<i32>) -> Result<i64> {
    let now = validate::required("now", now)?;
    let lim = i64::from(validate::required("lim", lim)?);
    validate::non_negative("lim", lim)?;
    let tenant = crate::tenant::current()?;
    if lim == 0 {
        return Ok(0);
    }
    with_db(&tenant, |db| {
        let mut total = 0;
        for (cap, grant) in db.expiry_candidates(now, lim) {
            if total >= lim {
                break;
            }
            let Some(usage) = db.try_lock_usage(&cap, grant) else {
                continue;
            };
            let (_, n) = expire_budget_holds(db, &cap, grant, usage, now, lim - total)?;
            total += n;
        }
        Ok(total)
    })
}
