//! A reference model of SPEC.md §1, written from the SPEC text alone and in
//! a different shape from the extension (plain maps, i128 arithmetic), so a
//! shared mistake is unlikely. The property test runs random operation
//! sequences through this model and the database and demands the same
//! outcome for every call and the same totals after it.
//!
//! Time: the model knows two TTLs. [`SHORT_TTL`] (one microsecond) has
//! passed by the next call, so such a hold is expired for every later call
//! (SG002, and the lazy expiry of a denied authorize takes it). [`LONG_TTL`]
//! (one hour) never passes while a test runs; only a sweep with a `now` an
//! hour or more ahead expires it. Any other TTL text must be invalid.

use crate::{Auth, Kind, Op, Outcome};
use std::collections::{BTreeMap, HashMap};

const MAX: i128 = i64::MAX as i128;
pub const SHORT_TTL: &str = "1 microsecond";
pub const LONG_TTL: &str = "1 hour";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    pub count: i64,
    pub exposed: i64,
    pub realized: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MHold {
    pub cap: String,
    pub grant: i32,
    pub authorized: i64,
    pub remaining: i64,
    pub realized: i64,
    pub disposition: &'static str,
    pub auth: Option<Auth>,
    /// the TTL text given (SHORT_TTL or LONG_TTL), None = never expires
    pub ttl: Option<&'static str>,
    /// creation order, which orders expiries within one TTL
    pub created: u64,
}

impl MHold {
    /// Open in the table but past its expiry for a call made now.
    fn expired_now(&self) -> bool {
        self.disposition == "open" && self.ttl == Some(SHORT_TTL)
    }
    /// Past its expiry at a sweep `hours` ahead of now.
    fn due_at(&self, hours: i64) -> bool {
        self.disposition == "open"
            && match self.ttl {
                Some(SHORT_TTL) => hours >= 0,
                Some(_) => hours >= 1,
                None => false,
            }
    }
    /// The order in which a budget's holds expire: by expires_at.
    fn expiry_key(&self) -> (bool, u64) {
        (self.ttl == Some(LONG_TTL), self.created)
    }
}

#[derive(Default)]
pub struct Model {
    pub budgets: BTreeMap<(String, i32), Budget>,
    pub holds: BTreeMap<String, MHold>,
    events: HashMap<String, (Op, Outcome)>,
    created: u64,
}

fn e(code: &str) -> Outcome {
    Outcome::Error(code.into())
}

/// SPEC §0: NULL required → 22004, negative / empty → 22023.
fn bad_amount(v: Option<i64>, required: bool) -> Option<Outcome> {
    match v {
        None if required => Some(e("22004")),
        Some(x) if x < 0 => Some(e("22023")),
        _ => None,
    }
}

fn bad_id(v: &Option<String>, required: bool) -> Option<Outcome> {
    match v {
        None if required => Some(e("22004")),
        Some(s) if s.is_empty() => Some(e("22023")),
        _ => None,
    }
}

fn bad_grant(v: Option<i32>, required: bool) -> Option<Outcome> {
    match v {
        None if required => Some(e("22004")),
        Some(g) if g < 0 => Some(e("22023")),
        _ => None,
    }
}

fn bad_auth(a: &Option<Auth>) -> Option<Outcome> {
    match a {
        Some(a) if a.id.is_empty() || a.lease.is_empty() || a.epoch < 0 => Some(e("22023")),
        _ => None,
    }
}

fn bad_ttl(ttl: &Option<String>, hold: &Option<String>) -> Option<Outcome> {
    match ttl.as_deref() {
        None => None,
        Some(SHORT_TTL | LONG_TTL) if hold.is_some() => None,
        Some(SHORT_TTL | LONG_TTL) => Some(e("22023")),
        Some(_) => Some(e("22023")),
    }
}

fn event_of(op: &Op) -> Option<&String> {
    match op {
        Op::Authorize { event, .. } | Op::Mutate { event, .. } | Op::Increment { event, .. } => {
            event.as_ref()
        }
        Op::Expire { .. } => None,
    }
}

impl Model {
    pub fn budget(&self, cap: &str, grant: i32) -> Budget {
        self.budgets
            .get(&(cap.to_string(), grant))
            .cloned()
            .unwrap_or_default()
    }

    /// History retirement (budget_retire_events) deletes events and with
    /// them their idempotency keys: the model forgets every event id the
    /// database no longer has (a retry with one is a new request).
    pub fn forget_events_except(&mut self, kept: &std::collections::HashSet<String>) {
        self.events.retain(|id, _| kept.contains(id));
    }

    /// Applies one call; a failed call changes nothing.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        if let Some(bad) = self.validate(op) {
            return bad;
        }
        if let Some(id) = event_of(op) {
            if let Some((first, out)) = self.events.get(id) {
                return if first == op { out.clone() } else { e("SG004") };
            }
        }
        let out = match op {
            Op::Authorize { .. } => self.authorize(op),
            Op::Mutate { .. } => self.mutate(op),
            Op::Increment { .. } => self.increment(op),
            Op::Expire { hours_ahead, lim } => self.sweep(*hours_ahead, lim.unwrap()),
        };
        if !matches!(out, Outcome::Error(_)) {
            if let Some(id) = event_of(op) {
                self.events.insert(id.clone(), (op.clone(), out.clone()));
            }
        }
        out
    }

    fn validate(&self, op: &Op) -> Option<Outcome> {
        match op {
            Op::Authorize {
                cap,
                grant,
                amount,
                max_inv,
                max_cpi,
                max_total,
                hold,
                event,
                auth,
                ttl,
            } => bad_id(cap, true)
                .or_else(|| bad_grant(*grant, true))
                .or_else(|| bad_amount(*amount, true))
                .or_else(|| bad_amount(*max_inv, false))
                .or_else(|| bad_amount(*max_cpi, false))
                .or_else(|| bad_amount(*max_total, false))
                .or_else(|| bad_id(hold, false))
                .or_else(|| bad_id(event, false))
                .or_else(|| bad_auth(auth))
                .or_else(|| bad_ttl(ttl, hold)),
            Op::Mutate {
                kind,
                cap,
                grant,
                amount,
                realized,
                hold,
                event,
                auth,
            } => {
                let reconcile = matches!(kind, Kind::Reconcile | Kind::Capture);
                bad_id(cap, false)
                    .or_else(|| bad_grant(*grant, false))
                    .or_else(|| bad_amount(*amount, false))
                    .or_else(|| {
                        if reconcile {
                            bad_amount(*realized, true)
                        } else {
                            None
                        }
                    })
                    .or_else(|| bad_id(hold, false))
                    .or_else(|| bad_id(event, false))
                    .or_else(|| bad_auth(auth))
                    .or_else(|| {
                        if hold.is_none() && (cap.is_none() || grant.is_none() || amount.is_none())
                        {
                            Some(e("22004"))
                        } else {
                            None
                        }
                    })
            }
            Op::Increment {
                cap,
                grant,
                max,
                event,
            } => bad_id(cap, true)
                .or_else(|| bad_grant(*grant, true))
                .or_else(|| bad_amount(*max, false))
                .or_else(|| bad_id(event, false)),
            Op::Expire { lim, .. } => match lim {
                None => Some(e("22004")),
                Some(l) if *l < 0 => Some(e("22023")),
                _ => None,
            },
        }
    }

    /// Expires the budget's holds that are due at `hours` ahead, oldest
    /// expiry first, at most `lim`; a hold whose exposure the budget no
    /// longer carries (taken by budget-level mutations) is left open.
    fn expire_budget(&mut self, key: &(String, i32), hours: i64, lim: i64) -> i64 {
        let mut due: Vec<(bool, u64, String)> = self
            .holds
            .iter()
            .filter(|(_, h)| h.cap == key.0 && h.grant == key.1 && h.due_at(hours))
            .map(|(id, h)| {
                let (long, created) = h.expiry_key();
                (long, created, id.clone())
            })
            .collect();
        due.sort();
        let mut n = 0;
        for (_, _, id) in due.into_iter().take(lim as usize) {
            let mut b = self.budget(&key.0, key.1);
            let h = self.holds.get_mut(&id).unwrap();
            if h.remaining > b.exposed {
                continue;
            }
            b.exposed -= h.remaining;
            h.remaining = 0;
            h.disposition = "expired";
            self.budgets.insert(key.clone(), b);
            n += 1;
        }
        n
    }

    /// `budget_expire_holds(now() + hours, lim)`: no budget is locked by
    /// anyone else in a sequential run, so every due hold is reached, up to
    /// `lim` of them, the oldest expiries first.
    fn sweep(&mut self, hours: i64, lim: i32) -> Outcome {
        let mut due: Vec<((bool, u64), (String, i32))> = self
            .holds
            .values()
            .filter(|h| h.due_at(hours))
            .map(|h| (h.expiry_key(), (h.cap.clone(), h.grant)))
            .collect();
        due.sort();
        due.truncate(lim.max(0) as usize);
        let mut budgets: Vec<(String, i32)> = Vec::new();
        for (_, b) in due {
            if !budgets.contains(&b) {
                budgets.push(b);
            }
        }
        let mut total = 0;
        for b in budgets {
            total += self.expire_budget(&b, hours, i64::from(lim) - total);
        }
        Outcome::Expired(total)
    }

    fn authorize(&mut self, op: &Op) -> Outcome {
        let Op::Authorize {
            cap,
            grant,
            amount,
            max_inv,
            max_cpi,
            max_total,
            hold,
            auth,
            ttl,
            ..
        } = op
        else {
            unreachable!()
        };
        let key = (cap.clone().unwrap(), grant.unwrap());
        let req = amount.unwrap();
        if let Some(h) = hold {
            if self.holds.contains_key(h) {
                return e("SG003");
            }
        }
        let mut b = self.budget(&key.0, key.1);
        let deny = |r: &str, b: &Budget| {
            Outcome::denied(r, (b.exposed as i128 + b.realized as i128) as i64, b.count)
        };
        if max_inv.is_some_and(|m| b.count >= m) {
            return deny("max_invocations", &b);
        }
        if max_cpi.is_some_and(|m| req > m) {
            return deny("max_cost_per_invocation", &b);
        }
        let over = |b: &Budget| {
            max_total
                .is_some_and(|m| b.exposed as i128 + b.realized as i128 + req as i128 > m as i128)
        };
        if over(&b) {
            // SPEC §1: never deny because of holds that have expired
            self.expire_budget(&key, 0, i64::MAX);
            b = self.budget(&key.0, key.1);
            if over(&b) {
                return deny("max_total_cost", &b);
            }
        }
        let committed = b.exposed as i128 + b.realized as i128;
        let after = committed + req as i128;
        if after > MAX || b.count == i64::MAX {
            return e("22003");
        }
        let nb = Budget {
            count: b.count + 1,
            exposed: b.exposed + req,
            realized: b.realized,
        };
        self.budgets.insert(key.clone(), nb);
        if let Some(h) = hold {
            self.holds.insert(
                h.clone(),
                MHold {
                    cap: key.0,
                    grant: key.1,
                    authorized: req,
                    remaining: req,
                    realized: 0,
                    disposition: "open",
                    auth: auth.clone(),
                    ttl: ttl
                        .as_deref()
                        .map(|t| if t == SHORT_TTL { SHORT_TTL } else { LONG_TTL }),
                    created: self.created,
                },
            );
            self.created += 1;
        }
        Outcome::authorized(after as i64, b.count + 1)
    }

    fn mutate(&mut self, op: &Op) -> Outcome {
        let Op::Mutate {
            kind,
            cap,
            grant,
            amount,
            realized,
            hold,
            auth,
            ..
        } = op
        else {
            unreachable!()
        };
        let realized = realized.unwrap_or(0);
        let (key, held) = match hold {
            Some(h) => {
                let Some(mh) = self.holds.get(h) else {
                    return e("SG001");
                };
                if cap.as_ref().is_some_and(|c| *c != mh.cap)
                    || grant.is_some_and(|g| g != mh.grant)
                {
                    return e("SG003");
                }
                if mh.auth != *auth {
                    return e("SG005");
                }
                if mh.disposition != "open" || mh.expired_now() {
                    return e("SG002");
                }
                ((mh.cap.clone(), mh.grant), Some(mh.clone()))
            }
            None => ((cap.clone().unwrap(), grant.unwrap()), None),
        };
        let b = self.budget(&key.0, key.1);
        let amt = match &held {
            Some(mh) => {
                let amt = amount.unwrap_or(mh.remaining);
                let fits = match kind {
                    Kind::Release => amt <= mh.remaining,
                    _ => amt == mh.remaining,
                };
                if !fits {
                    return e("SG003");
                }
                amt
            }
            None => amount.unwrap(),
        };
        let reconcile = matches!(kind, Kind::Reconcile | Kind::Capture);
        if reconcile && realized > amt {
            return e("SG006");
        }
        if amt > b.exposed {
            return e("SG006");
        }
        if *kind == Kind::Reverse && b.count == 0 {
            return e("SG006");
        }
        let nb = Budget {
            count: b.count - i64::from(*kind == Kind::Reverse),
            exposed: b.exposed - amt,
            realized: b.realized + if reconcile { realized } else { 0 },
        };
        if let (Some(h), Some(mut mh)) = (hold, held) {
            mh.remaining -= amt;
            if reconcile {
                mh.realized += realized;
            }
            mh.disposition = match kind {
                Kind::Release if mh.remaining > 0 => "open",
                Kind::Release => "released",
                Kind::Reverse => "reversed",
                _ => "reconciled",
            };
            if mh.disposition != "open" {
                mh.remaining = 0;
            }
            self.holds.insert(h.clone(), mh);
        }
        self.budgets.insert(key, nb.clone());
        Outcome::Mutation {
            kind: match kind {
                Kind::Release => "release_exposure",
                Kind::Reverse => "reverse_exposure",
                _ => "reconcile_spend",
            }
            .into(),
            exposure: amt,
            realized: if reconcile { realized } else { 0 },
            committed_after: nb.exposed + nb.realized,
            count_after: nb.count,
        }
    }

    fn increment(&mut self, op: &Op) -> Outcome {
        let Op::Increment {
            cap, grant, max, ..
        } = op
        else {
            unreachable!()
        };
        let key = (cap.clone().unwrap(), grant.unwrap());
        let b = self.budget(&key.0, key.1);
        if max.is_some_and(|m| b.count >= m) {
            return Outcome::Increment(false);
        }
        if b.count == i64::MAX {
            return e("22003");
        }
        self.budgets.insert(
            key,
            Budget {
                count: b.count + 1,
                ..b
            },
        );
        Outcome::Increment(true)
    }
}
