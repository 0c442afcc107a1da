//! Budget rules of SPEC.md §1 as pure functions: given the locked usage row
//! (and hold), decide and compute the new state. No I/O here; the pgrx layer
//! reads rows under lock, calls these, and writes what they return.

use crate::error::{Error, Result};

/// The counters of one budget `(capability_id, grant_index)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub invocation_count: i64,
    pub exposed: i64,
    pub realized: i64,
}

impl Usage {
    /// exposed + realized. The rules below keep this sum within bigint,
    /// so it never overflows for a stored row.
    pub fn committed(&self) -> i64 {
        self.exposed.saturating_add(self.realized)
    }
}

/// The limits a caller's grant carries; `None` means no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_invocations: Option<i64>,
    pub max_cost_per_invocation: Option<i64>,
    pub max_total_cost: Option<i64>,
}

/// Why an authorization was denied (`hold_decision.denial_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    MaxInvocations,
    MaxCostPerInvocation,
    MaxTotalCost,
}

impl Denial {
    pub fn as_str(self) -> &'static str {
        match self {
            Denial::MaxInvocations => "max_invocations",
            Denial::MaxCostPerInvocation => "max_cost_per_invocation",
            Denial::MaxTotalCost => "max_total_cost",
        }
    }
}

/// The decision of an authorize: the usage after it, or why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Authorized(Usage),
    Denied(Denial),
}

fn overflow(what: &str) -> Error {
    Error::OutOfRange(format!("{what} would overflow bigint"))
}

/// Authorize `requested` units against `u` under `l` (SPEC §1): checks
/// max_invocations, then max_cost_per_invocation, then max_total_cost.
/// A total that cannot be represented is denied when a total limit exists
/// (it is certainly above it) and is 22003 when there is none.
pub fn authorize(u: Usage, l: &Limits, requested: i64) -> Result<Decision> {
    if let Some(max) = l.max_invocations {
        if u.invocation_count >= max {
            return Ok(Decision::Denied(Denial::MaxInvocations));
        }
    }
    if let Some(max) = l.max_cost_per_invocation {
        if requested > max {
            return Ok(Decision::Denied(Denial::MaxCostPerInvocation));
        }
    }
    let committed_after = u.committed().checked_add(requested);
    if let Some(max) = l.max_total_cost {
        match committed_after {
            Some(c) if c <= max => {}
            _ => return Ok(Decision::Denied(Denial::MaxTotalCost)),
        }
    }
    committed_after.ok_or_else(|| overflow("committed cost"))?;
    Ok(Decision::Authorized(Usage {
        invocation_count: u
            .invocation_count
            .checked_add(1)
            .ok_or_else(|| overflow("invocation count"))?,
        exposed: u.exposed + requested,
        realized: u.realized,
    }))
}

/// `budget_try_increment`: one invocation against the count limit.
/// Returns the new usage, or `None` when the limit is reached.
pub fn try_increment(u: Usage, max_invocations: Option<i64>) -> Result<Option<Usage>> {
    if matches!(max_invocations, Some(max) if u.invocation_count >= max) {
        return Ok(None);
    }
    Ok(Some(Usage {
        invocation_count: u
            .invocation_count
            .checked_add(1)
            .ok_or_else(|| overflow("invocation count"))?,
        ..u
    }))
}

pub use crate::enums::Disposition;

/// The fencing metadata of a hold or a call: all three or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    pub authority_id: String,
    pub lease_id: String,
    pub lease_epoch: i64,
}

impl Authority {
    /// Validates the three optional arguments: all NULL is "no authority";
    /// some but not all given is 22023; empty ids and negative epochs are 22023.
    pub fn from_args(
        authority_id: Option<String>,
        lease_id: Option<String>,
        lease_epoch: Option<i64>,
    ) -> Result<Option<Authority>> {
        match (authority_id, lease_id, lease_epoch) {
            (None, None, None) => Ok(None),
            (Some(a), Some(l), Some(e)) => {
                let a = crate::validate::id("authority_id", Some(a))?;
                let l = crate::validate::id("lease_id", Some(l))?;
                let e = crate::validate::non_negative("lease_epoch", e)?;
                Ok(Some(Authority {
                    authority_id: a,
                    lease_id: l,
                    lease_epoch: e,
                }))
            }
            _ => Err(Error::InvalidParameter(
                "authority_id, lease_id and lease_epoch must be given together or not at all"
                    .to_string(),
            )),
        }
    }

    /// `budget_term`: `authority_id || ':' || lease_epoch`.
    pub fn term(&self) -> String {
        format!("{}:{}", self.authority_id, self.lease_epoch)
    }
}

/// The stored state of one hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub hold_id: String,
    pub capability_id: String,
    pub grant_index: i32,
    pub authorized: i64,
    pub remaining: i64,
    pub realized: i64,
    pub disposition: Disposition,
    pub authority: Option<Authority>,
    /// When the hold stops being open, in PostgreSQL's timestamptz units
    /// (microseconds since 2000-01-01 UTC); `None` never.
    pub expires_at: Option<i64>,
}

impl Hold {
    /// Whether the hold is past its `expires_at` at `now` (SPEC §1 "Hold
    /// expiry": from `expires_at` on it is no longer open, swept or not).
    pub fn is_expired_at(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// SG002 unless the hold is open and not past its expiry at `now`.
    pub fn check_open(&self, now: i64) -> Result<()> {
        let disposition = if self.disposition == Disposition::Open && self.is_expired_at(now) {
            Disposition::Expired
        } else {
            self.disposition
        };
        if disposition != Disposition::Open {
            return Err(Error::HoldNotOpen {
                hold_id: self.hold_id.clone(),
                disposition: disposition.as_str().to_string(),
            });
        }
        Ok(())
    }
}

/// Checks a call's authority against the hold's (SG005).
pub fn check_fence(hold: &Hold, call: &Option<Authority>) -> Result<()> {
    match (&hold.authority, call) {
        (None, None) => Ok(()),
        (Some(h), Some(c)) if h == c => Ok(()),
        (Some(h), Some(c)) if h.authority_id == c.authority_id && h.lease_id == c.lease_id => {
            Err(Error::Fencing(format!(
                "hold \"{}\" is fenced at lease epoch {}, call carries epoch {}",
                hold.hold_id, h.lease_epoch, c.lease_epoch
            )))
        }
        (Some(h), Some(_)) => Err(Error::Fencing(format!(
            "hold \"{}\" belongs to authority \"{}\" lease \"{}\", call carries a different one",
            hold.hold_id, h.authority_id, h.lease_id
        ))),
        (Some(_), None) => Err(Error::Fencing(format!(
            "hold \"{}\" was created with authority metadata; the call carries none",
            hold.hold_id
        ))),
        (None, Some(_)) => Err(Error::Fencing(format!(
            "hold \"{}\" was created without authority metadata; the call carries some",
            hold.hold_id
        ))),
    }
}

/// `guarantee_level` of a commit (SPEC §1): `ha_linearizable` when it waits
/// for a synchronous standby, i.e. `synchronous_standby_names` is non-empty
/// and `synchronous_commit` is `on`, `remote_write` or `remote_apply`.
pub fn guarantee_level(synchronous_standby_names: &str, synchronous_commit: &str) -> &'static str {
    let waits = matches!(synchronous_commit, "on" | "remote_write" | "remote_apply");
    if waits && !synchronous_standby_names.trim().is_empty() {
        "ha_linearizable"
    } else {
        "single_node_atomic"
    }
}

/// The three ways to settle exposure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    Release,
    Reverse,
    Reconcile,
}

impl Mutation {
    /// The event `kind` recorded for it.
    pub fn event_kind(self) -> &'static str {
        match self {
            Mutation::Release => "release_exposure",
            Mutation::Reverse => "reverse_exposure",
            Mutation::Reconcile => "reconcile_spend",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Mutation::Release => "release",
            Mutation::Reverse => "reverse",
            Mutation::Reconcile => "reconcile",
        }
    }
}

/// What a mutation does: the usage after, the hold after (hold calls only)
/// and the units moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub usage: Usage,
    pub hold: Option<Hold>,
    pub exposure_units: i64,
    pub realized_units: i64,
}

/// Applies `m` to the budget totals alone (no hold). `amount` is the
/// exposure given back; `realized` is the spend (reconcile only, required
/// there). Every shortfall is SG006: the budget cannot give back what it
/// does not hold.
pub fn mutate_budget(m: Mutation, u: Usage, amount: i64, realized: i64) -> Result<Outcome> {
    let label = || format!("budget {}", m.verb());
    settle(m, u, amount, realized, &label)
}

fn settle(
    m: Mutation,
    u: Usage,
    amount: i64,
    realized: i64,
    label: &dyn Fn() -> String,
) -> Result<Outcome> {
    if m == Mutation::Reconcile && realized > amount {
        return Err(Error::BudgetInvariant(format!(
            "{}: realized spend {realized} exceeds exposed cost {amount}",
            label()
        )));
    }
    if amount > u.exposed {
        return Err(Error::BudgetInvariant(format!(
            "{}: {amount} exceeds the budget's exposed cost {}",
            label(),
            u.exposed
        )));
    }
    let mut after = Usage {
        exposed: u.exposed - amount,
        ..u
    };
    match m {
        Mutation::Release => {}
        Mutation::Reverse => {
            if u.invocation_count == 0 {
                return Err(Error::BudgetInvariant(format!(
                    "{}: the budget has zero invocations",
                    label()
                )));
            }
            after.invocation_count -= 1;
        }
        Mutation::Reconcile => {
            after.realized = u
                .realized
                .checked_add(realized)
                .ok_or_else(|| overflow("realized cost"))?;
        }
    }
    Ok(Outcome {
        usage: after,
        hold: None,
        exposure_units: amount,
        realized_units: if m == Mutation::Reconcile {
            realized
        } else {
            0
        },
    })
}

/// Applies `m` to an open hold and its budget at time `now`. `amount` NULL
/// means the hold's remaining exposure. Order of checks: open and not past
/// `expires_at` (SG002), the amount fits the hold (SG003), then the budget
/// invariants (SG006).
pub fn mutate_hold(
    m: Mutation,
    u: Usage,
    hold: &Hold,
    amount: Option<i64>,
    realized: i64,
    now: i64,
) -> Result<Outcome> {
    hold.check_open(now)?;
    let amount = amount.unwrap_or(hold.remaining);
    let fits = match m {
        Mutation::Release => amount <= hold.remaining,
        Mutation::Reverse | Mutation::Reconcile => amount == hold.remaining,
    };
    if !fits {
        let rule = if m == Mutation::Release {
            "at most"
        } else {
            "exactly"
        };
        return Err(Error::HoldMismatch(format!(
            "{} of {amount} does not fit hold \"{}\": the amount must be {rule} its remaining exposure {}",
            m.verb(),
            hold.hold_id,
            hold.remaining
        )));
    }
    let label = || format!("{} of hold \"{}\"", m.verb(), hold.hold_id);
    let mut out = settle(m, u, amount, realized, &label)?;
    let remaining = hold.remaining - amount;
    let disposition = match m {
        Mutation::Release if remaining > 0 => Disposition::Open,
        Mutation::Release => Disposition::Released,
        Mutation::Reverse => Disposition::Reversed,
        Mutation::Reconcile => Disposition::Reconciled,
    };
    out.hold = Some(Hold {
        remaining,
        realized: hold.realized + out.realized_units,
        disposition,
        ..hold.clone()
    });
    Ok(out)
}

/// Settles an open hold with the real cost of what it held for (SPEC §2
/// and §6 settles, through the holds API only): the hold's whole remaining
/// exposure leaves the budget and `cost` becomes realized spend, the hold
/// `reconciled`. Unlike [`mutate_hold`]'s reconcile, `cost` may exceed the
/// exposure: spend that happened is never refused. SG002 when the hold is
/// closed or past `expires_at`; 22003 when realized spend would overflow.
pub fn settle_hold(u: Usage, hold: &Hold, cost: i64, now: i64) -> Result<Outcome> {
    hold.check_open(now)?;
    if hold.remaining > u.exposed {
        return Err(Error::BudgetInvariant(format!(
            "settle of hold \"{}\": {} exceeds the budget's exposed cost {}",
            hold.hold_id, hold.remaining, u.exposed
        )));
    }
    let realized = u
        .realized
        .checked_add(cost)
        .ok_or_else(|| overflow("realized cost"))?;
    Ok(Outcome {
        usage: committed_fits(Usage {
            exposed: u.exposed - hold.remaining,
            realized,
            ..u
        })?,
        hold: Some(Hold {
            remaining: 0,
            realized: hold
                .realized
                .checked_add(cost)
                .ok_or_else(|| overflow("realized cost"))?,
            disposition: Disposition::Reconciled,
            ..hold.clone()
        }),
        exposure_units: hold.remaining,
        realized_units: cost,
    })
}

/// Spend recorded on a budget without a hold (SPEC §6's charges, records
/// and late settles): realized spend grows by `cost`, nothing else moves.
pub fn record_spend(u: Usage, cost: i64) -> Result<Usage> {
    committed_fits(Usage {
        realized: u
            .realized
            .checked_add(cost)
            .ok_or_else(|| overflow("realized cost"))?,
        ..u
    })
}

/// 22003 unless the committed cost (exposed + realized) of `u` is a bigint
/// (the table's CHECK budget_usage_committed_fits, said before it fires).
fn committed_fits(u: Usage) -> Result<Usage> {
    u.exposed
        .checked_add(u.realized)
        .map(|_| u)
        .ok_or_else(|| overflow("committed cost"))
}

/// Expires an open hold past its `expires_at` (the sweep and the lazy
/// expiry of SPEC §1): its remaining exposure goes back to the budget, the
/// invocation count stays (the call may have run), the hold becomes
/// `expired`. `None` when there is nothing to expire: the hold is closed,
/// not yet due at `now`, or its exposure was already taken from the budget
/// by budget-level mutations (then giving it back would drive the budget's
/// exposure negative; the hold stays open, as a release of it would fail
/// with SG006 too).
pub fn expire_hold(u: Usage, hold: &Hold, now: i64) -> Option<Outcome> {
    if hold.disposition != Disposition::Open
        || !hold.is_expired_at(now)
        || hold.remaining > u.exposed
    {
        return None;
    }
    Some(Outcome {
        usage: Usage {
            exposed: u.exposed - hold.remaining,
            ..u
        },
        hold: Some(Hold {
            remaining: 0,
            disposition: Disposition::Expired,
            ..hold.clone()
        }),
        exposure_units: hold.remaining,
        realized_units: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(n: i64, e: i64, r: i64) -> Usage {
        Usage {
            invocation_count: n,
            exposed: e,
            realized: r,
        }
    }

    fn hold(remaining: i64) -> Hold {
        Hold {
            hold_id: "h".into(),
            capability_id: "c".into(),
            grant_index: 0,
            authorized: 10,
            remaining,
            realized: 0,
            disposition: Disposition::Open,
            authority: None,
            expires_at: None,
        }
    }

    #[test]
    fn authorize_checks_limits_in_order() {
        let l = Limits {
            max_invocations: Some(1),
            max_cost_per_invocation: Some(5),
            max_total_cost: Some(10),
        };
        assert_eq!(
            authorize(usage(0, 0, 0), &l, 5),
            Ok(Decision::Authorized(usage(1, 5, 0)))
        );
        assert_eq!(
            authorize(usage(1, 0, 0), &l, 99),
            Ok(Decision::Denied(Denial::MaxInvocations))
        );
        assert_eq!(
            authorize(usage(0, 0, 0), &l, 6),
            Ok(Decision::Denied(Denial::MaxCostPerInvocation))
        );
        assert_eq!(
            authorize(usage(0, 3, 3), &l, 5),
            Ok(Decision::Denied(Denial::MaxTotalCost))
        );
        // exactly at the limit is allowed
        assert_eq!(
            authorize(usage(0, 2, 3), &l, 5),
            Ok(Decision::Authorized(usage(1, 7, 3)))
        );
    }

    #[test]
    fn authorize_near_bigint_max() {
        let none = Limits::default();
        let near = usage(0, i64::MAX - 1, 0);
        assert_eq!(
            authorize(near, &none, 1),
            Ok(Decision::Authorized(usage(1, i64::MAX, 0)))
        );
        assert_eq!(authorize(near, &none, 2).unwrap_err().sqlstate(), "22003");
        let capped = Limits {
            max_total_cost: Some(i64::MAX),
            ..Limits::default()
        };
        assert_eq!(
            authorize(near, &capped, 2),
            Ok(Decision::Denied(Denial::MaxTotalCost))
        );
        assert_eq!(
            authorize(usage(i64::MAX, 0, 0), &none, 0)
                .unwrap_err()
                .sqlstate(),
            "22003"
        );
    }

    #[test]
    fn hold_release_partial_then_full() {
        let u = usage(1, 10, 0);
        let out = mutate_hold(Mutation::Release, u, &hold(10), Some(4), 0, 0).unwrap();
        assert_eq!(out.usage, usage(1, 6, 0));
        let h = out.hold.unwrap();
        assert_eq!((h.remaining, h.disposition), (6, Disposition::Open));
        let out = mutate_hold(Mutation::Release, out.usage, &h, None, 0, 0).unwrap();
        assert_eq!(out.usage, usage(1, 0, 0));
        assert_eq!(out.hold.unwrap().disposition, Disposition::Released);
        let err = mutate_hold(Mutation::Release, u, &hold(10), Some(11), 0, 0).unwrap_err();
        assert_eq!(err.sqlstate(), "SG003");
    }

    #[test]
    fn hold_reverse_and_reconcile() {
        let u = usage(1, 10, 0);
        let out = mutate_hold(Mutation::Reverse, u, &hold(10), None, 0, 0).unwrap();
        assert_eq!(out.usage, usage(0, 0, 0));
        assert_eq!(
            mutate_hold(Mutation::Reverse, u, &hold(10), Some(9), 0, 0)
                .unwrap_err()
                .sqlstate(),
            "SG003"
        );
        let out = mutate_hold(Mutation::Reconcile, u, &hold(10), Some(10), 7, 0).unwrap();
        assert_eq!(out.usage, usage(1, 0, 7));
        assert_eq!(out.hold.as_ref().unwrap().realized, 7);
        assert_eq!(
            mutate_hold(Mutation::Reconcile, u, &hold(10), None, 11, 0)
                .unwrap_err()
                .sqlstate(),
            "SG006"
        );
        let mut closed = hold(0);
        closed.disposition = Disposition::Reconciled;
        assert_eq!(
            mutate_hold(Mutation::Release, u, &closed, None, 0, 0)
                .unwrap_err()
                .sqlstate(),
            "SG002"
        );
    }

    #[test]
    fn expiry_closes_the_hold_from_expires_at_on() {
        let u = usage(1, 10, 0);
        let mut h = hold(10);
        h.expires_at = Some(100);
        // before expires_at the hold is open, from it on it is not
        assert!(mutate_hold(Mutation::Release, u, &h, Some(1), 0, 99).is_ok());
        for m in [Mutation::Release, Mutation::Reverse, Mutation::Reconcile] {
            let e = mutate_hold(m, u, &h, None, 0, 100).unwrap_err();
            assert_eq!(e.sqlstate(), "SG002");
            assert_eq!(e.message(), "hold \"h\" is not open: it is expired");
        }
        assert_eq!(expire_hold(u, &h, 99), None);
        let out = expire_hold(u, &h, 100).unwrap();
        assert_eq!(out.usage, usage(1, 0, 0), "exposure back, count stays");
        assert_eq!(out.exposure_units, 10);
        let after = out.hold.unwrap();
        assert_eq!(
            (after.remaining, after.disposition),
            (0, Disposition::Expired)
        );
        // once expired, nothing more to expire and still SG002
        assert_eq!(expire_hold(out.usage, &after, 1000), None);
        assert_eq!(
            mutate_hold(Mutation::Release, out.usage, &after, None, 0, 0)
                .unwrap_err()
                .sqlstate(),
            "SG002"
        );
        // a hold without expires_at never expires
        assert_eq!(expire_hold(u, &hold(10), i64::MAX), None);
        // exposure already taken by a budget-level release: left open
        assert_eq!(expire_hold(usage(1, 9, 0), &h, 100), None);
    }

    #[test]
    fn budget_level_invariants() {
        let u = usage(0, 5, 0);
        assert_eq!(
            mutate_budget(Mutation::Release, u, 6, 0)
                .unwrap_err()
                .sqlstate(),
            "SG006"
        );
        assert_eq!(
            mutate_budget(Mutation::Reverse, u, 5, 0)
                .unwrap_err()
                .sqlstate(),
            "SG006"
        );
        assert_eq!(
            mutate_budget(Mutation::Reconcile, usage(1, 5, 0), 5, 3)
                .unwrap()
                .usage,
            usage(1, 0, 3)
        );
    }

    #[test]
    fn fencing() {
        let a = Authority::from_args(Some("a".into()), Some("l".into()), Some(3))
            .unwrap()
            .unwrap();
        let mut h = hold(1);
        assert!(check_fence(&h, &None).is_ok());
        assert_eq!(
            check_fence(&h, &Some(a.clone())).unwrap_err().sqlstate(),
            "SG005"
        );
        h.authority = Some(a.clone());
        assert!(check_fence(&h, &Some(a.clone())).is_ok());
        assert_eq!(check_fence(&h, &None).unwrap_err().sqlstate(), "SG005");
        for epoch in [2, 4] {
            let other = Authority {
                lease_epoch: epoch,
                ..a.clone()
            };
            assert_eq!(
                check_fence(&h, &Some(other)).unwrap_err().sqlstate(),
                "SG005"
            );
        }
        assert_eq!(a.term(), "a:3");
        assert_eq!(
            Authority::from_args(Some("a".into()), None, Some(1))
                .unwrap_err()
                .sqlstate(),
            "22023"
        );
        assert_eq!(
            Authority::from_args(Some("a".into()), Some("l".into()), Some(-1))
                .unwrap_err()
                .sqlstate(),
            "22023"
        );
    }

    #[test]
    fn guarantee_levels() {
        assert_eq!(guarantee_level("", "on"), "single_node_atomic");
        assert_eq!(guarantee_level("  ", "remote_apply"), "single_node_atomic");
        assert_eq!(guarantee_level("replica1", "on"), "ha_linearizable");
        assert_eq!(
            guarantee_level("FIRST 1 (a, b)", "remote_write"),
            "ha_linearizable"
        );
        assert_eq!(
            guarantee_level("replica1", "remote_apply"),
            "ha_linearizable"
        );
        assert_eq!(guarantee_level("replica1", "local"), "single_node_atomic");
        assert_eq!(guarantee_level("replica1", "off"), "single_node_atomic");
    }

    #[test]
    fn try_increment_limit() {
        assert_eq!(try_increment(usage(1, 0, 0), Some(1)), Ok(None));
        assert_eq!(
            try_increment(usage(0, 2, 0), Some(1)),
            Ok(Some(usage(1, 2, 0)))
        );
        assert_eq!(
            try_increment(usage(5, 0, 0), None),
            Ok(Some(usage(6, 0, 0)))
        );
    }

    #[test]
    fn a_settle_may_cost_more_than_its_hold() {
        let out = settle_hold(usage(3, 10, 5), &hold(10), 25, 0).unwrap();
        assert_eq!(out.usage, usage(3, 0, 30));
        let h = out.hold.unwrap();
        assert_eq!((h.remaining, h.realized), (0, 25));
        assert_eq!(h.disposition, Disposition::Reconciled);
        assert_eq!((out.exposure_units, out.realized_units), (10, 25));
        // below the estimate, and nothing
        assert_eq!(
            settle_hold(usage(1, 10, 0), &hold(10), 0, 0).unwrap().usage,
            usage(1, 0, 0)
        );
        let mut closed = hold(0);
        closed.disposition = Disposition::Released;
        assert_eq!(
            settle_hold(usage(1, 0, 0), &closed, 1, 0)
                .unwrap_err()
                .sqlstate(),
            "SG002"
        );
        let mut late = hold(10);
        late.expires_at = Some(100);
        assert_eq!(
            settle_hold(usage(1, 10, 0), &late, 1, 100)
                .unwrap_err()
                .sqlstate(),
            "SG002"
        );
        assert_eq!(
            settle_hold(usage(1, 10, i64::MAX), &hold(10), 1, 0)
                .unwrap_err()
                .sqlstate(),
            "22003"
        );
        assert_eq!(record_spend(usage(1, 2, 3), 4), Ok(usage(1, 2, 7)));
        assert_eq!(
            record_spend(usage(0, 0, i64::MAX), 1)
                .unwrap_err()
                .sqlstate(),
            "22003"
        );
    }
}
