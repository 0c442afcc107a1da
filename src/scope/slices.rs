//! Escrow slices of scoped budgets (SPEC.md §6 `slices`; the rules are
//! spendguard_core::escrow): the locks a scoped call decides under, and
//! the split a decision on a whole budget writes.
//!
//! Lock order, for every scoped call: the unsliced scopes' budget rows
//! (one statement, canonical order); then, scope by scope in bytes order,
//! one slice of each sliced scope, or all of its slices; then the §1
//! budget rows (by capability id); then the reservation. A call takes one
//! free slice without waiting for a busy one (SKIP LOCKED) inside a
//! subtransaction; when the change does not fit that slice's share, the
//! subtransaction is rolled back (the slice is released) before the call
//! waits for every slice of the scope, in slice order. So a call never
//! waits for a slice while it holds another slice of the same scope, nor
//! any lock that comes later in the order: two calls cannot deadlock.

use super::store::{BudgetRow, SliceRow};
use crate::budget::holds;
use crate::spi::{pid, Db, SubXact};
use spendguard_core::escrow::{self, Change, Recent, Use};
use spendguard_core::scope::{self, Budget, ScopePeriod};
use std::cell::RefCell;
use std::time::Instant;

/// (tenant, slice family, period start, period end)
type FamilyKey = (String, String, i64, i64);

thread_local! {
    /// The slice families' totals this backend read last (escrow::Recent):
    /// a decision on one slice takes the other slices' from here for its
    /// headroom; never a decision's own slice, nor a whole decision's.
    static RECENT: RefCell<Recent<FamilyKey>> = RefCell::new(Recent::default());
}

/// What [`load`] may take from, and give to, [`RECENT`]: the scopes decided
/// on one slice, with that slice (their other slices may come from it),
/// and whether what it reads may be remembered (the transaction had
/// written nothing before the call, so it reads committed work only).
struct Memo<'a> {
    one_slice: &'a [(&'a str, i32)],
    remember: bool,
}

/// A sliced scope as a call decides on it.
pub struct Sliced {
    pub scope: String,
    /// every slice locked (a decision on the whole budget, exact), or one
    pub whole: bool,
    /// the slice family this call writes to
    pub target: i32,
    /// its slice families, and how many of them decisions take
    families: i32,
    active: i32,
    /// the budgets of the scope: read once every slice was locked (whole),
    /// or as the taken slice's split has them (one)
    budgets: Vec<BudgetRow>,
    /// the taken slice (one)
    row: Option<SliceRow>,
    sub: Option<SubXact>,
}

/// What a call decides under: every budget of its scopes, in decision
/// order, with its totals (exact for unsliced scopes and sliced ones
/// decided whole; for a scope decided on one slice, the other slices as
/// last committed), each budget's use per slice family, and the sliced
/// scopes.
pub struct Locked {
    pub budgets: Vec<Budget>,
    uses: Vec<Vec<Use>>,
    pub sliced: Vec<Sliced>,
}

const PERIODS: [ScopePeriod; 4] = [
    ScopePeriod::Day,
    ScopePeriod::Week,
    ScopePeriod::Month,
    ScopePeriod::Total,
];

impl Locked {
    /// The slice a scope's writes go to (0: the scope's own family).
    pub fn target(&self, scope: &str) -> i32 {
        self.sliced
            .iter()
            .find(|s| s.scope == scope)
            .map_or(0, |s| s.target)
    }

    /// The capability id of the §1 budgets a scope's writes go to.
    pub fn cap(&self, scope: &str) -> String {
        scope::slice_budget_id(scope, self.target(scope))
    }

    /// `scopes` with the capability id their writes go to, in the order
    /// those §1 budgets' rows are locked: by capability id (the order
    /// budget_retire_events locks budgets in, so the two never wait on
    /// each other in a cycle).
    pub fn by_budget<'s>(&self, scopes: &'s [String]) -> Vec<(&'s str, String)> {
        let mut v: Vec<(&str, String)> = scopes.iter().map(|s| (s.as_str(), self.cap(s))).collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    }

    /// The slice of each of `scopes` (a reservation keeps them), None when
    /// none is sliced.
    pub fn targets(&self, scopes: &[String]) -> Option<Vec<i32>> {
        (!self.sliced.is_empty()).then(|| scopes.iter().map(|s| self.target(s)).collect())
    }
}

/// The budgets a slice's split was made for, when it was made for the
/// periods that contain `day`; None otherwise (no split, or another
/// period's).
fn split_budgets(scope: &str, row: &SliceRow, day: i64) -> Option<Vec<BudgetRow>> {
    if row.limits.len() != 4 || row.starts.len() != 4 {
        return None;
    }
    let mut out = Vec::new();
    for (r, p) in PERIODS.iter().enumerate() {
        if let Some(limit) = row.limits[r] {
            let start = p.bounds(day).0;
            if row.starts[r].map(i64::from) != Some(start) {
                return None;
            }
            out.push(BudgetRow {
                scope: scope.to_string(),
                period: *p,
                limit,
                // no threshold can be crossed on one slice (its line)
                alert_percents: Vec::new(),
                families: row.families,
            });
        }
    }
    Some(out)
}

/// Every budget of `rows` with its totals in the periods that contain
/// `day`, in decision order, and its use per slice family: one statement,
/// exact.
pub(super) fn load(
    db: &mut Db<'_, '_>,
    rows: Vec<BudgetRow>,
    day: i64,
) -> (Vec<Budget>, Vec<Vec<Use>>) {
    let memo = Memo {
        one_slice: &[],
        remember: false,
    };
    load_with(db, rows, day, &memo)
}

/// [`load`], with the other slices of scopes decided on one slice taken
/// from [`RECENT`] where it read them less than escrow::RECENT_FOR ago.
fn load_with(
    db: &mut Db<'_, '_>,
    mut rows: Vec<BudgetRow>,
    day: i64,
    memo: &Memo<'_>,
) -> (Vec<Budget>, Vec<Vec<Use>>) {
    rows.sort_by(|a, b| {
        (a.scope.as_bytes(), a.period.rank()).cmp(&(b.scope.as_bytes(), b.period.rank()))
    });
    let caps: Vec<Vec<String>> = rows
        .iter()
        .map(|r| scope::family_ids(&r.scope, r.families))
        .collect();
    let now = Instant::now();
    let key = |cap: &str, s: i64, e: i64| (db.tenant.to_string(), cap.to_string(), s, e);
    // per family: remembered, or read now (None)
    let mut known: Vec<Vec<Option<Use>>> = Vec::with_capacity(rows.len());
    let mut ranges: Vec<(&str, i64, i64)> = Vec::new();
    RECENT.with(|recent| {
        let recent = recent.borrow();
        for (r, c) in rows.iter().zip(&caps) {
            let (s, e) = r.period.bounds(day);
            let own = memo
                .one_slice
                .iter()
                .find(|(scope, _)| *scope == r.scope)
                .map(|(_, k)| *k);
            known.push(
                c.iter()
                    .enumerate()
                    .map(|(f, cap)| {
                        let seen = own
                            .filter(|k| usize::try_from(*k).ok() != Some(f))
                            .and_then(|_| recent.get(&key(cap, s, e), now));
                        if seen.is_none() {
                            ranges.push((cap.as_str(), s, e));
                        }
                        seen
                    })
                    .collect(),
            );
        }
    });
    let mut sums = holds::family_totals(db, &ranges).into_iter();
    let mut budgets = Vec::with_capacity(rows.len());
    let mut uses = Vec::with_capacity(rows.len());
    for ((r, c), k) in rows.into_iter().zip(&caps).zip(known) {
        let (s, e) = r.period.bounds(day);
        let u: Vec<Use> = k
            .into_iter()
            .zip(c)
            .map(|(seen, cap)| {
                seen.unwrap_or_else(|| {
                    let (spent, reserved) = sums.next().expect("one total per range");
                    let u = Use { spent, reserved };
                    if memo.remember && c.len() > 1 {
                        RECENT.with(|m| m.borrow_mut().put(key(cap, s, e), u, now));
                    }
                    u
                })
            })
            .collect();
        let sum = |f: fn(&Use) -> i64| {
            u.iter()
                .try_fold(0i64, |a, x| a.checked_add(f(x)))
                .unwrap_or(i64::MAX)
        };
        budgets.push(Budget {
            period_start: r.period.bounds(day).0,
            spent: sum(|x| x.spent),
            reserved: sum(|x| x.reserved),
            scope: r.scope,
            period: r.period,
            limit: r.limit,
            alert_percents: r.alert_percents,
        });
        uses.push(u);
    }
    (budgets, uses)
}

/// Whether `change` on the taken slice fits its share of every budget of
/// the scope (and the budget's own rule on the totals read), so the call
/// may go on with that slice alone.
fn fits_one(s: &Sliced, budgets: &[Budget], uses: &[Vec<Use>], change: Change) -> bool {
    let row = s
        .row
        .as_ref()
        .expect("a scope decided on one slice has its row");
    let k = usize::try_from(s.target).expect("a slice number");
    budgets
        .iter()
        .zip(uses)
        .filter(|(b, _)| b.scope == s.scope)
        .all(|(b, u)| {
            let r = b.period.rank();
            let share = escrow::Share {
                quota: row.quotas.get(r).copied().flatten(),
                line: row.lines.get(r).copied().flatten(),
            };
            let used = i128::from(b.spent) + i128::from(b.reserved);
            escrow::fits(share, u.get(k).copied().unwrap_or_default(), change)
                && (change.used <= 0 || used + change.used <= i128::from(b.limit))
        })
}

/// Locks what a call on `scopes` decides under (see the module's order)
/// and reads every budget. `unsliced` and `sliced` are what
/// [`Db::lock_scope_budgets`] returned (those rows locked already);
/// `change` is what the call does to the slice it writes; `given` names the
/// slice a scope's write must go to (a reservation's hold), None for a free
/// one; `clean`: the transaction had written nothing before this call, so
/// the totals it reads may be remembered for later calls' headroom.
pub fn lock(
    db: &mut Db<'_, '_>,
    unsliced: Vec<BudgetRow>,
    sliced: Vec<String>,
    day: i64,
    change: Change,
    given: &dyn Fn(&str) -> Option<i32>,
    clean: bool,
) -> Locked {
    let mut whole = vec![false; sliced.len()];
    let mut taken: Vec<Sliced> = Vec::with_capacity(sliced.len());
    loop {
        while taken.len() < sliced.len() {
            let i = taken.len();
            let scope = &sliced[i];
            if whole[i] {
                let rows = db.lock_slices(scope);
                let families = i32::try_from(rows.len()).expect("at most 64 slices").max(1);
                let active = rows.first().map_or(1, |r| r.slices.min(families));
                let target = given(scope).unwrap_or_else(|| escrow::preferred(pid(), active));
                let mut budgets = db.scope_budgets(std::slice::from_ref(scope));
                for b in &mut budgets {
                    b.families = families;
                }
                taken.push(Sliced {
                    scope: scope.clone(),
                    whole: true,
                    target,
                    families,
                    active,
                    budgets,
                    row: None,
                    sub: None,
                });
                continue;
            }
            let sub = SubXact::begin();
            let row = match given(scope) {
                Some(k) => db.lock_slice(scope, k),
                None => db
                    .take_slice(scope, pid(), false)
                    .or_else(|| db.take_slice(scope, pid(), true)),
            };
            let budgets = row.as_ref().and_then(|r| split_budgets(scope, r, day));
            match (row, budgets) {
                (Some(row), Some(budgets)) => taken.push(Sliced {
                    scope: scope.clone(),
                    whole: false,
                    target: row.slice,
                    families: row.families,
                    active: row.slices,
                    budgets,
                    row: Some(row),
                    sub: Some(sub),
                }),
                // no split for this period: decide on the whole budget
                _ => {
                    sub.rollback();
                    whole[i] = true;
                }
            }
        }
        let mut rows = unsliced.clone();
        for s in &taken {
            rows.extend(s.budgets.iter().cloned());
        }
        let one_slice: Vec<(&str, i32)> = taken
            .iter()
            .filter(|s| !s.whole)
            .map(|s| (s.scope.as_str(), s.target))
            .collect();
        let memo = Memo {
            one_slice: &one_slice,
            remember: clean,
        };
        let (budgets, uses) = load_with(db, rows, day, &memo);
        let short = taken
            .iter()
            .position(|s| !s.whole && !fits_one(s, &budgets, &uses, change));
        match short {
            Some(i) => {
                // release the slice (and all taken after it) before waiting
                // for every slice of its scope
                while taken.len() > i {
                    if let Some(sub) = taken.pop().and_then(|s| s.sub) {
                        sub.rollback();
                    }
                }
                whole[i] = true;
            }
            None => {
                for s in taken.iter_mut().rev() {
                    if let Some(sub) = s.sub.take() {
                        sub.release();
                    }
                }
                // the families this call writes are read again next time
                RECENT.with(|m| {
                    let mut m = m.borrow_mut();
                    for s in &taken {
                        let cap = scope::slice_budget_id(&s.scope, s.target);
                        for b in budgets.iter().filter(|b| b.scope == s.scope) {
                            let (from, to) = b.period.bounds(day);
                            m.forget(&(db.tenant.to_string(), cap.clone(), from, to));
                        }
                    }
                });
                return Locked {
                    budgets,
                    uses,
                    sliced: taken,
                };
            }
        }
    }
}

/// Writes a new split for every sliced scope the call decided on whole,
/// from each slice's use after the call (`change` on its target slice,
/// None when it wrote nothing).
pub fn split(db: &mut Db<'_, '_>, l: &Locked, change: Option<Change>) {
    for s in l.sliced.iter().filter(|s| s.whole) {
        let n = usize::try_from(s.families).expect("a count");
        let mut limits: Vec<Option<i64>> = vec![None; 4];
        let mut starts: Vec<Option<i32>> = vec![None; 4];
        let mut quotas: Vec<Option<i64>> = vec![None; 4 * n];
        let mut lines: Vec<Option<i64>> = vec![None; 4 * n];
        for (b, u) in l
            .budgets
            .iter()
            .zip(&l.uses)
            .filter(|(b, _)| b.scope == s.scope)
        {
            let mut u = u.clone();
            if let (Some(c), Some(t)) = (change, u.get_mut(s.target as usize)) {
                // an i64 as the writes just made it
                t.spent = (i128::from(t.spent) + c.spent).clamp(0, i64::MAX.into()) as i64;
                let reserved = i128::from(t.reserved) + (c.used - c.spent);
                t.reserved = reserved.clamp(0, i64::MAX.into()) as i64;
            }
            let r = b.period.rank();
            limits[r] = Some(b.limit);
            starts[r] = Some(i32::try_from(b.period_start).expect("a day checked to fit"));
            let active = usize::try_from(s.active).expect("a count");
            for (j, sh) in escrow::rebalance(b.limit, &b.alert_percents, &u, active)
                .into_iter()
                .enumerate()
            {
                quotas[j * 4 + r] = sh.quota;
                lines[j * 4 + r] = sh.line;
            }
        }
        // a split's arrays are non-NULL even for a scope left without a
        // budget: its (empty) split is valid
        db.split_slices(&s.scope, limits, starts, quotas, lines);
    }
}
