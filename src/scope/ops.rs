//! The operations of SPEC.md §6: validate, lock every budget of every
//! listed scope in the canonical order, decide all or nothing with
//! spendguard_core::scope, write. A scope's spend and reservations live on
//! §1 budgets and holds (one budget per scope and UTC day), opened, settled
//! and closed through the holds API (crate::budget::holds) only.

use super::slices::{self, Locked};
use super::store::{BudgetRow, DecisionRow, NewReservation};
use crate::args::{finite_time, now};
use crate::budget::holds;
use crate::spi::{with_db, Db};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use spendguard_core::alert::{self, NewAlert};
use spendguard_core::budget::{self, Decision as HoldDecision, Limits};
use spendguard_core::enums::AlertKind;
use spendguard_core::escrow::Change;
use spendguard_core::fingerprint::Fingerprint;
use spendguard_core::price::{self, Tokens};
use spendguard_core::scope::{self, Budget, Decision, Kind, ScopePeriod};
use spendguard_core::spend::{utc_day, ReservationStatus};
use spendguard_core::{validate, Error, Result};

/// The §1 budget that keeps a scope's spend on a day.
fn day_budget(cap: &str, day: i64) -> holds::Budget<'_> {
    holds::Budget {
        capability_id: cap,
        grant_index: i32::try_from(day).expect("a day checked by scope::check_day"),
    }
}

/// A call's `at`: finite, on or after 2000-01-01, as (value, its UTC day,
/// and whether it was given rather than left to its default). A default
/// `at` is `now()`, the transaction's start, to the microsecond: an `at`
/// equal to it is taken as the default, and is not part of the request's
/// fingerprint (a retry that omits it again is the same request).
fn at_arg(v: Option<TimestampWithTimeZone>) -> Result<(TimestampWithTimeZone, i64, bool)> {
    let at = finite_time("at", v)?;
    let micros = i64::from(at);
    let day = utc_day(micros);
    scope::check_day(day)?;
    Ok((at, day, micros != now()))
}

/// The spend and reservations of configured budgets in the periods that
/// contain `day` (over every slice family of their scopes), in one
/// statement, in decision order (the readers: nothing locked).
fn totals(db: &mut Db<'_, '_>, rows: Vec<BudgetRow>, day: i64) -> Vec<Budget> {
    slices::load(db, rows, day).0
}

/// Locks every budget of `scopes` (their rows, or their slices) for a call
/// that does `change` to what it writes, and reads them: see
/// [`slices::lock`].
fn lock(
    db: &mut Db<'_, '_>,
    scopes: &[String],
    day: i64,
    change: Change,
    given: &dyn Fn(&str) -> Option<i32>,
) -> Locked {
    // before the first row lock gives the transaction its id
    let clean = crate::spi::wrote_nothing();
    let (unsliced, sliced) = db.lock_scope_budgets(scopes);
    slices::lock(db, unsliced, sliced, day, change, given, clean)
}

fn row_of(
    d: &Decision,
    hold_id: Option<&str>,
    expires_at: Option<TimestampWithTimeZone>,
) -> DecisionRow {
    let blocked = d.blocked.map(|i| &d.budgets[i]);
    DecisionRow {
        allowed: d.allowed,
        blocked_scope: blocked.map(|b| b.scope.clone()),
        blocked_period: blocked.map(|b| b.period),
        remaining_micros: d.remaining(),
        hold_id: hold_id.map(str::to_string),
        expires_at,
        headroom: scope::headroom_json(d),
    }
}

/// An event id's recorded result, when this request was made before with
/// it (SG004 when another request was). Takes a transaction lock on the
/// event id first, so concurrent retries of one event id run one at a
/// time and exactly one of them takes effect.
fn replay(
    db: &mut Db<'_, '_>,
    idem: &Option<(String, Fingerprint)>,
) -> Result<Option<DecisionRow>> {
    let Some((event_id, fp)) = idem else {
        return Ok(None);
    };
    let k = spendguard_core::key::id_key(&["scope_request", db.tenant, event_id]);
    crate::spi::advisory_xact_lock(i64::from_be_bytes(k[..8].try_into().expect("8 bytes")));
    match db.scope_request(event_id) {
        Some((recorded, row)) if recorded == fp.as_str() => Ok(Some(row)),
        Some(_) => Err(Error::IdempotencyConflict {
            event_id: event_id.clone(),
        }),
        None => Ok(None),
    }
}

fn remember(db: &mut Db<'_, '_>, idem: &Option<(String, Fingerprint)>, row: &DecisionRow) {
    if let Some((event_id, fp)) = idem {
        db.new_scope_request(event_id, fp.as_str(), row);
    }
}

fn idempotency(
    event_id: Option<String>,
    f: impl FnOnce() -> Fingerprint,
) -> Result<Option<(String, Fingerprint)>> {
    Ok(validate::opt_id("event_id", event_id)?.map(|e| (e, f())))
}

fn fingerprint(kind: &str, scopes: &[String], amount: i64, at: Option<i64>) -> Fingerprint {
    let mut f = Fingerprint::new(kind);
    f.int(Some(scopes.len() as i64));
    for s in scopes {
        f.text(Some(s));
    }
    f.int(Some(amount)).int(at);
    f
}

pub fn set_budget(
    scope_arg: Option<String>,
    period: Option<String>,
    limit: Option<i64>,
    alert_percents: Option<Vec<Option<i32>>>,
    slices: Option<i32>,
) -> Result<()> {
    let s = validate::id("scope", scope_arg)?;
    let period = ScopePeriod::parse(&validate::required("period", period)?)?;
    let limit = validate::opt_amount("limit_micros", limit)?;
    let percents = scope::alert_percents(alert_percents)?;
    let slices = scope::slices(slices)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        // one change of a scope's budgets at a time (its first budget has
        // no row to lock yet)
        let k = spendguard_core::key::id_key(&["scope_set_budget", db.tenant, &s]);
        crate::spi::advisory_xact_lock(i64::from_be_bytes(k[..8].try_into().expect("8 bytes")));
        let budgets = db.lock_scope(&s);
        let old = budgets.iter().find(|b| b.0 == period).map(|b| b.1);
        let sliceable = crate::spi::sliceable();
        if slices > 1 && !sliceable {
            return Err(Error::NotSupported(format!(
                "slices => {slices}: this database's spendguard schema has no escrow slices yet; \
                 run ALTER EXTENSION spendguard UPDATE first"
            )));
        }
        // slices are kept once a scope has them (its spend is in their
        // families); its slice rows are locked before its budgets change
        let before = if sliceable {
            let n = db.lock_slices(&s).len();
            i32::try_from(n).expect("at most 64 slices")
        } else {
            0
        };
        let active = budgets
            .iter()
            .filter(|b| b.0 != period)
            .map(|b| b.2)
            .chain(limit.map(|_| slices))
            .max()
            .unwrap_or(1);
        let sliced = before > 0 || active > 1;
        db.set_scope_budget(&s, period, limit.map(|l| (l, percents, slices, sliced)));
        let families = before.max(active);
        if sliced {
            if families > before {
                db.new_slices(&s, before, families, active);
            }
            db.reset_slices(&s, families, active);
            if before == 0 {
                db.mark_scope_sliced(&s);
            }
        }
        // a changed limit re-arms every threshold (the alerts' key has the
        // limit); those that fired in the current period and that spend is
        // now below get a `resolved` alert
        if let (Some(old), Some(new)) = (old, limit) {
            if old != new {
                let day = utc_day(now());
                let row = BudgetRow {
                    scope: s.clone(),
                    period,
                    limit: new,
                    alert_percents: Vec::new(),
                    families: if sliced { families } else { 1 },
                };
                let b = totals(db, vec![row], day).pop().expect("one budget read");
                let fired =
                    crate::alert::fired_under_other_limits(db, &s, period, b.period_start, new);
                let resolved: Vec<NewAlert> = alert::resolved(&fired, new, b.spent)
                    .into_iter()
                    .map(|p| NewAlert {
                        scope: s.clone(),
                        period,
                        period_start: b.period_start,
                        kind: AlertKind::Resolved,
                        percent: Some(p),
                        limit: new,
                        spent: b.spent,
                    })
                    .collect();
                crate::alert::write(db, &resolved);
            }
        }
        Ok(())
    })
}

/// The arguments of `scope_reserve`, named as in SQL.
pub struct ReserveArgs {
    pub scopes: Option<Vec<Option<String>>>,
    pub estimate: Option<i64>,
    pub hold_id: Option<String>,
    pub at: Option<TimestampWithTimeZone>,
    pub ttl: Option<Interval>,
    pub event_id: Option<String>,
}

/// What a reservation holds: micros, or the most a model call can cost
/// (its token maxima priced at `at` with nothing cached, SPEC §8).
enum Estimate {
    Micros(i64),
    Tokens {
        model: String,
        max_input: i64,
        max_output: i64,
    },
}

pub fn reserve(a: ReserveArgs) -> Result<DecisionRow> {
    let estimate = Estimate::Micros(validate::amount("estimate_micros", a.estimate)?);
    reserve_any(a, estimate)
}

/// The arguments of `scope_reserve_tokens` that `scope_reserve` has not.
pub struct TokenEstimate {
    pub model: Option<String>,
    pub max_input: Option<i64>,
    pub max_output: Option<i64>,
}

pub fn reserve_tokens(a: ReserveArgs, t: TokenEstimate) -> Result<DecisionRow> {
    let estimate = Estimate::Tokens {
        model: validate::id("model", t.model)?,
        max_input: validate::amount("max_input_tokens", t.max_input)?,
        max_output: validate::amount("max_output_tokens", t.max_output)?,
    };
    reserve_any(a, estimate)
}

fn reserve_any(a: ReserveArgs, estimate: Estimate) -> Result<DecisionRow> {
    let scopes = scope::scopes(a.scopes)?;
    let hold_id = validate::id("hold_id", a.hold_id)?;
    let (at, day, explicit) = at_arg(a.at)?;
    let ttl = crate::args::ttl("ttl", validate::required("ttl", a.ttl)?)?;
    let idem = idempotency(a.event_id, || {
        let at = explicit.then(|| i64::from(at));
        let mut f = match &estimate {
            Estimate::Micros(e) => fingerprint("scope_reserve", &scopes, *e, at),
            Estimate::Tokens {
                model,
                max_input,
                max_output,
            } => {
                let mut f = fingerprint("scope_reserve_tokens", &scopes, *max_input, at);
                f.int(Some(*max_output)).text(Some(model));
                f
            }
        };
        f.text(Some(&hold_id))
            .int(Some(ttl.months().into()))
            .int(Some(ttl.days().into()))
            .int(Some(ttl.micros()));
        f
    })?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        if let Some(row) = replay(db, &idem)? {
            return Ok(row);
        }
        // a taken hold id is SG003 before any budget is read (SPEC §1)
        if db.scope_reservation(&hold_id).is_some() {
            return Err(Error::HoldMismatch(format!(
                "reservation \"{hold_id}\" already exists: a hold id can be reserved only once"
            )));
        }
        let (estimate, priced) = match &estimate {
            Estimate::Micros(e) => (*e, None),
            Estimate::Tokens {
                model,
                max_input,
                max_output,
            } => {
                let (price_id, rates) = crate::price::ops::in_force(db, model, at)?;
                let most = Tokens {
                    input: *max_input,
                    output: *max_output,
                    cached_input: 0,
                };
                (price::cost(rates, most)?, Some((model.as_str(), price_id)))
            }
        };
        let change = Change {
            used: estimate.into(),
            spent: 0,
        };
        let locked = lock(db, &scopes, day, change, &|_| None);
        let d = scope::decide(locked.budgets.clone(), estimate, Kind::Reserve)?;
        let mut expires_at = None;
        if d.allowed {
            for (s, cap) in locked.by_budget(&scopes) {
                let key = scope::hold_key(&hold_id, s);
                let b = day_budget(&cap, day);
                let usage = holds::lock(db, b, Some(&key))?;
                let after = match budget::authorize(usage, &Limits::default(), estimate)? {
                    HoldDecision::Authorized(after) => after,
                    HoldDecision::Denied(d) => unreachable!("a hold without limits ({d:?})"),
                };
                let hold = holds::NewHold {
                    hold_id: &key,
                    exposure: estimate,
                    ttl,
                };
                expires_at = holds::open(db, b, &hold, Ok(after))?;
            }
            let exp = expires_at.expect("an allowed reservation opened its holds");
            db.new_scope_reservation(NewReservation {
                hold_id: &hold_id,
                scopes: &scopes,
                at,
                estimate,
                expires_at: exp,
                priced,
                slices: locked.targets(&scopes),
            });
        } else {
            deny(db, &d, &locked, day, Some(&hold_id), estimate)?;
            crate::alert::write(db, &alert::for_denial(&d));
        }
        slices::split(db, &locked, d.allowed.then_some(change));
        let row = row_of(&d, Some(&hold_id), expires_at);
        remember(db, &idem, &row);
        Ok(row)
    })
}

/// Logs a denial on the first blocking budget's scope (its §1 budget of
/// the day): one `authorize_exposure` event with `allowed = false`.
fn deny(
    db: &mut Db<'_, '_>,
    d: &Decision,
    locked: &Locked,
    day: i64,
    hold_id: Option<&str>,
    amount: i64,
) -> Result<()> {
    let blocked = &d.budgets[d.blocked.expect("a denial names its budget")];
    let cap = locked.cap(&blocked.scope);
    let key = hold_id.map(|h| scope::hold_key(h, &blocked.scope));
    let b = day_budget(&cap, day);
    let usage = holds::lock(db, b, None)?;
    let reason = match blocked.period {
        ScopePeriod::Day => "scope_day",
        ScopePeriod::Week => "scope_week",
        ScopePeriod::Month => "scope_month",
        ScopePeriod::Total => "scope_total",
    };
    holds::deny(db, b, usage, key.as_deref(), amount, reason)
}

/// The arguments of `scope_charge` / `scope_record`, named as in SQL.
pub struct ChargeArgs {
    pub scopes: Option<Vec<Option<String>>>,
    pub cost: Option<i64>,
    pub at: Option<TimestampWithTimeZone>,
    pub event_id: Option<String>,
    /// `scope_record`: never refused.
    pub record: bool,
}

/// `scope_charge` (all or nothing, like a reservation settled at once) and
/// `scope_record` (never refused).
pub fn charge(a: ChargeArgs) -> Result<DecisionRow> {
    let scopes = scope::scopes(a.scopes)?;
    let cost = validate::amount("cost_micros", a.cost)?;
    let (at, day, explicit) = at_arg(a.at)?;
    let (kind, name) = if a.record {
        (Kind::Record, "scope_record")
    } else {
        (Kind::Charge, "scope_charge")
    };
    let idem = idempotency(a.event_id, || {
        fingerprint(name, &scopes, cost, explicit.then(|| i64::from(at)))
    })?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        if let Some(row) = replay(db, &idem)? {
            return Ok(row);
        }
        let change = Change {
            used: cost.into(),
            spent: cost.into(),
        };
        let locked = lock(db, &scopes, day, change, &|_| None);
        let d = scope::decide(locked.budgets.clone(), cost, kind)?;
        if d.allowed {
            for (_, cap) in locked.by_budget(&scopes) {
                let b = day_budget(&cap, day);
                let usage = holds::lock(db, b, None)?;
                holds::record(db, b, usage, cost)?;
            }
            crate::alert::write(db, &alert::for_spend(&d.budgets, cost));
        } else {
            deny(db, &d, &locked, day, None, cost)?;
            crate::alert::write(db, &alert::for_denial(&d));
        }
        slices::split(db, &locked, d.allowed.then_some(change));
        let row = row_of(&d, None, None);
        remember(db, &idem, &row);
        Ok(row)
    })
}

/// Closes a reservation (settle with its cost, or cancel), once: every
/// scope's hold is settled (the cost realized on the scope's budget of the
/// reservation's day, even above the estimate, even after expiry) or
/// released, and the reservation closed. Returns the decision row of the
/// state after (settle).
/// How a reservation is closed: settled with micros, settled with tokens
/// priced by the reservation's price row, or cancelled.
#[derive(Clone, Copy)]
enum Cost {
    Micros(i64),
    Tokens(Tokens),
    Cancel,
}

fn close(hold_id: String, cost: Cost, idem: Option<(String, Fingerprint)>) -> Result<DecisionRow> {
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        if let Some(row) = replay(db, &idem)? {
            return Ok(row);
        }
        let r = db
            .scope_reservation(&hold_id)
            .ok_or_else(|| Error::HoldNotFound {
                hold_id: hold_id.clone(),
            })?;
        let closed = |status: ReservationStatus| Error::HoldNotOpen {
            hold_id: hold_id.clone(),
            disposition: status.as_str().to_string(),
        };
        if r.status != ReservationStatus::Open {
            return Err(closed(r.status));
        }
        // a token settle is priced by the row that priced the reservation,
        // whatever prices were set since
        let micros = match cost {
            Cost::Micros(c) => Some(c),
            Cost::Cancel => None,
            Cost::Tokens(t) => {
                let Some(price_id) = r.price_id else {
                    return Err(Error::HoldMismatch(format!(
                        "reservation \"{hold_id}\" was not priced by tokens: settle it with scope_settle"
                    )));
                };
                Some(price::cost(crate::price::ops::by_id(db, price_id)?, t)?)
            }
        };
        let tokens = match cost {
            Cost::Tokens(t) => Some(t),
            _ => None,
        };
        let day = utc_day(i64::from(r.at));
        // what the reservation holds now: its estimate while it is open
        // and unexpired (an expired hold stops counting at expires_at)
        let counted = if i64::from(r.expires_at) > now() {
            r.estimate
        } else {
            0
        };
        let change = Change {
            used: i128::from(micros.unwrap_or(0)) - i128::from(counted),
            spent: micros.unwrap_or(0).into(),
        };
        // lock order: the scopes' budgets (or their slices: the one its
        // hold is on), then each scope's §1 budget row and hold (by
        // capability id), then the reservation
        let slice_of = |s: &str| r.scopes.iter().position(|x| x == s).map(|i| r.slices[i]);
        let locked = lock(db, &r.scopes, day, change, &slice_of);
        let mut held = Vec::with_capacity(r.scopes.len());
        for (s, _) in locked.by_budget(&r.scopes) {
            held.push(holds::lock_hold(db, &scope::hold_key(&hold_id, s))?);
        }
        let status = db
            .lock_scope_reservation(&hold_id)
            .ok_or_else(|| Error::HoldNotFound {
                hold_id: hold_id.clone(),
            })?;
        // closed by a concurrent call while this one waited for the locks
        if status != ReservationStatus::Open {
            return Err(closed(status));
        }
        for h in held {
            match micros {
                Some(c) => holds::settle(db, h, c)?,
                None => holds::close(db, h)?,
            }
        }
        let status = if micros.is_some() {
            ReservationStatus::Settled
        } else {
            ReservationStatus::Cancelled
        };
        db.close_scope_reservation(&hold_id, status, micros, tokens);
        slices::split(db, &locked, Some(change));
        // the budgets after: the cost spent, the estimate no longer held
        let mut budgets = locked.budgets.clone();
        for b in &mut budgets {
            b.spent = b.spent.checked_add(micros.unwrap_or(0)).ok_or_else(|| {
                Error::OutOfRange(format!(
                    "spent of scope \"{}\" ({}) would overflow bigint",
                    b.scope,
                    b.period.as_str()
                ))
            })?;
            b.reserved = (b.reserved - counted).max(0);
        }
        let d = Decision {
            allowed: true,
            budgets,
            blocks: Vec::new(),
            blocked: None,
        };
        if let Some(c) = micros {
            crate::alert::write(db, &alert::for_spend(&d.budgets, c));
        }
        let row = row_of(&d, Some(&hold_id), Some(r.expires_at));
        remember(db, &idem, &row);
        Ok(row)
    })
}

pub fn settle(
    hold_id: Option<String>,
    cost: Option<i64>,
    event_id: Option<String>,
) -> Result<DecisionRow> {
    let hold_id = validate::id("hold_id", hold_id)?;
    let cost = validate::amount("cost_micros", cost)?;
    let idem = idempotency(event_id, || {
        let mut f = Fingerprint::new("scope_settle");
        f.text(Some(&hold_id)).int(Some(cost));
        f
    })?;
    close(hold_id, Cost::Micros(cost), idem)
}

/// The arguments of `scope_settle_tokens`, named as in SQL.
pub struct SettleTokensArgs {
    pub hold_id: Option<String>,
    pub input: Option<i64>,
    pub output: Option<i64>,
    pub cached_input: Option<i64>,
    pub event_id: Option<String>,
}

pub fn settle_tokens(a: SettleTokensArgs) -> Result<DecisionRow> {
    let hold_id = validate::id("hold_id", a.hold_id)?;
    let t = Tokens::new(a.input, a.output, a.cached_input)?;
    let idem = idempotency(a.event_id, || {
        let mut f = Fingerprint::new("scope_settle_tokens");
        f.text(Some(&hold_id))
            .int(Some(t.input))
            .int(Some(t.output))
            .int(Some(t.cached_input));
        f
    })?;
    close(hold_id, Cost::Tokens(t), idem)
}

pub fn cancel(hold_id: Option<String>) -> Result<()> {
    let hold_id = validate::id("hold_id", hold_id)?;
    close(hold_id, Cost::Cancel, None).map(|_| ())
}

/// One row of `scope_usage`.
pub struct UsageRow {
    pub scope: String,
    pub period: ScopePeriod,
    pub period_start: i64,
    pub limit: i64,
    pub spent: i64,
    pub reserved: i64,
    pub remaining: i64,
}

pub fn usage(
    scope_arg: Option<String>,
    at: Option<TimestampWithTimeZone>,
) -> Result<Vec<UsageRow>> {
    let s = validate::opt_id("scope", scope_arg)?;
    let (_, day, _) = at_arg(at)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        let rows = match &s {
            Some(s) => db.scope_budgets(std::slice::from_ref(s)),
            None => db.all_scope_budgets(),
        };
        Ok(totals(db, rows, day)
            .into_iter()
            .map(|b| UsageRow {
                remaining: b.remaining(),
                scope: b.scope,
                period: b.period,
                period_start: b.period_start,
                limit: b.limit,
                spent: b.spent,
                reserved: b.reserved,
            })
            .collect())
    })
}

/// `scope_spend`: the spend of a scope in each period (of kind `period`)
/// from the one that contains `since` to the one that contains `until`, one
/// row per period in which the scope was named; (period start, spend).
pub fn spend(
    scope_arg: Option<String>,
    period: Option<String>,
    since: Option<TimestampWithTimeZone>,
    until: Option<TimestampWithTimeZone>,
) -> Result<Vec<(i64, i64)>> {
    let s = validate::id("scope", scope_arg)?;
    let period = ScopePeriod::parse(&validate::required("period", period)?)?;
    let since = utc_day(i64::from(finite_time("since", since)?));
    let until = utc_day(i64::from(finite_time("until", until)?));
    if since < 0 {
        scope::check_day(since).map_err(|_| {
            Error::InvalidParameter(
                "since must be on or after 2000-01-01: scoped spend is kept from then on".into(),
            )
        })?;
    }
    if until < since {
        return Ok(Vec::new());
    }
    let (from, _) = period.bounds(since);
    let (_, to) = period.bounds(until);
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        // the scope's spend per day, over its slice families
        let mut days: Vec<(i64, i64)> = Vec::new();
        for f in 0..db.scope_families(&s) {
            days.extend(holds::family_realized(
                db,
                &scope::slice_budget_id(&s, f),
                from,
                to,
            ));
        }
        days.sort_by_key(|d| d.0);
        let mut out: Vec<(i64, i64)> = Vec::new();
        for (d, realized) in days {
            let start = period.bounds(d).0;
            match out.last_mut() {
                Some((p, sum)) if *p == start => {
                    *sum = sum.checked_add(realized).ok_or_else(|| {
                        Error::OutOfRange(format!("spend of scope \"{s}\" would overflow bigint"))
                    })?;
                }
                _ => out.push((start, realized)),
            }
        }
        Ok(out)
    })
}
