//! Escrow slices of scoped budgets (SPEC.md §6 `slices`), as pure
//! functions: how a budget's room and the distance to its next alert line
//! are split among its slices, and whether a change on one slice stays
//! within its share.
//!
//! A sliced scope keeps its spend and reservations in one family of §1
//! budgets per slice. Each slice `j` of each of the scope's budgets has a
//! quota `q_j` and a line `l_j`, written together for every slice (under
//! every slice's lock) by a decision on the whole budget:
//!
//! * **Room.** `Σ q_j <= limit` and `used_j <= q_j` (used = spent +
//!   reserved). A call that holds only slice `k`'s lock may add to
//!   `used_k` while it stays `<= q_k`; then the budget's total stays `<=
//!   limit`, whatever the other slices do under their own locks. Used only
//!   falls otherwise (releases, expiry, settles below their estimate).
//! * **Alert lines.** With `v` the spend at which the next threshold fires,
//!   `Σ l_j <= v` and `spent_j <= l_j`. A call on slice `k` alone may add to
//!   `spent_k` while it stays `< l_k`; then the total spend stays below `v`,
//!   so no threshold can be crossed without every slice locked, where the
//!   crossing is seen exactly (SPEC §7: exactly once).
//!
//! Anything else decides on the whole budget: every slice locked, the exact
//! totals, the same rule as an unsliced budget, and a new split.

use crate::scope::MAX_SLICES;

/// One slice's part of a budget in a period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Use {
    pub spent: i64,
    pub reserved: i64,
}

impl Use {
    pub fn used(self) -> i128 {
        i128::from(self.spent) + i128::from(self.reserved)
    }
}

/// What a call does to the slice it writes: `used` may fall (a settle below
/// its estimate), `spent` only grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub used: i128,
    pub spent: i128,
}

/// A slice's share of one budget, as its row keeps it: `quota` is NULL
/// while the budget's total is above its limit (no slice has room), `line`
/// NULL when no threshold is left to fire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Share {
    pub quota: Option<i64>,
    pub line: Option<i64>,
}

/// Whether `change` on a slice whose part is `before` stays within its
/// `share`, so that the call may be made under that slice's lock alone.
pub fn fits(share: Share, before: Use, change: Change) -> bool {
    let room = change.used <= 0
        || share
            .quota
            .is_some_and(|q| before.used() + change.used <= i128::from(q));
    let line = change.spent == 0
        || share
            .line
            .is_none_or(|l| i128::from(before.spent) + change.spent < i128::from(l));
    room && line
}

/// The spend at which the next of `percents` fires above `spent` (SPEC
/// §7: when `spent × 100` reaches `percent × limit`); None when none is
/// left below bigint's end.
pub fn next_line(percents: &[i32], limit: i64, spent: i64) -> Option<i64> {
    percents
        .iter()
        .filter(|p| i128::from(spent) * 100 < i128::from(**p) * i128::from(limit))
        .map(|p| {
            let need = i128::from(*p) * i128::from(limit);
            // the least s with s × 100 >= need
            (need + 99).div_euclid(100)
        })
        .min()
        .and_then(|v| i64::try_from(v).ok())
}

/// `total` split over the first `active` of `n` slices: as even as can be,
/// the remainder to the first ones; the others get 0.
fn split(total: i128, active: usize, n: usize) -> Vec<i128> {
    let a = active.clamp(1, n.max(1)) as i128;
    (0..n)
        .map(|j| {
            let j = j as i128;
            if j >= a {
                0
            } else {
                total / a + i128::from(j < total % a)
            }
        })
        .collect()
}

/// The new split of a budget among its slices, from each slice's part
/// (`uses`, one per slice family, after the call) and the number of slices
/// decisions take (`active`, the first ones; the others only hold what they
/// have): the room left (`limit - Σ used`) and the distance to the next
/// line are split evenly among the active slices, on top of what each
/// holds. Quotas are None when the total is above the limit.
pub fn rebalance(limit: i64, percents: &[i32], uses: &[Use], active: usize) -> Vec<Share> {
    let n = uses.len();
    let used: i128 = uses.iter().map(|u| u.used()).sum();
    let spent: i128 = uses.iter().map(|u| i128::from(u.spent)).sum();
    let room = i128::from(limit) - used;
    let quotas: Option<Vec<i128>> = (room >= 0).then(|| {
        split(room, active, n)
            .into_iter()
            .zip(uses)
            .map(|(r, u)| u.used() + r)
            .collect()
    });
    let spent_i64 = i64::try_from(spent).ok();
    let line = spent_i64.and_then(|s| next_line(percents, limit, s));
    let lines: Option<Vec<i128>> = line.map(|v| {
        split(i128::from(v) - spent, active, n)
            .into_iter()
            .zip(uses)
            .map(|(d, u)| i128::from(u.spent) + d)
            .collect()
    });
    (0..n)
        .map(|j| Share {
            quota: quotas
                .as_ref()
                .map(|q| i64::try_from(q[j]).expect("a quota is at most the limit, a bigint")),
            // each line is at most the next line, a bigint
            line: lines.as_ref().and_then(|l| i64::try_from(l[j]).ok()),
        })
        .collect()
}

/// The slice a backend tries first: spread by process id, so that each
/// backend tends to keep to its own slice.
pub fn preferred(pid: i32, active: i32) -> i32 {
    pid.rem_euclid(active.clamp(1, MAX_SLICES))
}

/// How long a decision on one slice may take the other slices' totals as
/// this backend read them before (SPEC.md §6 deviation, docs/reference.md
/// "Escrow slices"): they only describe the budget in `headroom` and
/// `remaining_micros`; the decision itself is on the taken slice's exact
/// part and its quota.
pub const RECENT_FOR: std::time::Duration = std::time::Duration::from_millis(100);

/// Entries kept at most: past it the whole memo is dropped (a backend's
/// memory stays bounded whatever the number of scopes and periods).
pub const RECENT_MAX: usize = 4096;

/// The slice families' totals a backend read last, by key (tenant, family,
/// period range), each with when it was read: a memo of at most
/// [`RECENT_MAX`] entries, each good for [`RECENT_FOR`].
#[derive(Debug)]
pub struct Recent<K> {
    seen: std::collections::HashMap<K, (std::time::Instant, Use)>,
}

impl<K> Default for Recent<K> {
    fn default() -> Self {
        Recent {
            seen: std::collections::HashMap::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq> Recent<K> {
    /// The totals read under `key` less than [`RECENT_FOR`] before `now`.
    pub fn get(&self, key: &K, now: std::time::Instant) -> Option<Use> {
        self.seen
            .get(key)
            .filter(|(at, _)| now.saturating_duration_since(*at) < RECENT_FOR)
            .map(|(_, u)| *u)
    }

    /// Remembers totals read at `at`.
    pub fn put(&mut self, key: K, u: Use, at: std::time::Instant) {
        if self.seen.len() >= RECENT_MAX && !self.seen.contains_key(&key) {
            self.seen.clear();
        }
        self.seen.insert(key, (at, u));
    }

    /// Forgets `key` (a family this backend is about to write).
    pub fn forget(&mut self, key: &K) {
        self.seen.remove(key);
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(spent: i64, reserved: i64) -> Use {
        Use { spent, reserved }
    }

    #[test]
    fn room_is_split_and_adds_up_to_the_limit() {
        let s = rebalance(100, &[], &[u(10, 5), u(0, 0), u(0, 20)], 3);
        let q: Vec<i64> = s.iter().map(|x| x.quota.unwrap()).collect();
        // 65 left: 22, 22, 21 on top of 15, 0, 20
        assert_eq!(q, [37, 22, 41]);
        assert_eq!(q.iter().sum::<i64>(), 100);
        assert!(s.iter().all(|x| x.line.is_none()));
        // slices past `active` only hold what they have
        let s = rebalance(100, &[], &[u(10, 0), u(0, 0), u(30, 0)], 2);
        let q: Vec<i64> = s.iter().map(|x| x.quota.unwrap()).collect();
        assert_eq!(q, [40, 30, 30]);
        // above the limit: no slice has room
        let s = rebalance(100, &[], &[u(90, 0), u(0, 20)], 2);
        assert!(s.iter().all(|x| x.quota.is_none()));
        // exactly at it: every slice full
        let s = rebalance(100, &[], &[u(80, 0), u(0, 20)], 2);
        assert_eq!(s[0].quota, Some(80));
        assert_eq!(s[1].quota, Some(20));
    }

    #[test]
    fn lines_stop_short_of_the_next_threshold() {
        // limit 1000, thresholds 50 % and 80 %: spent 300 -> next line 500
        assert_eq!(next_line(&[50, 80], 1000, 300), Some(500));
        assert_eq!(next_line(&[50, 80], 1000, 500), Some(800));
        assert_eq!(next_line(&[50, 80], 1000, 800), None);
        // rounding up: 33 % of 10 fires at 3.3 -> 4
        assert_eq!(next_line(&[33], 10, 0), Some(4));
        assert_eq!(next_line(&[1000], i64::MAX, 0), None);
        let s = rebalance(1000, &[50, 80], &[u(100, 0), u(200, 0)], 2);
        assert_eq!(s[0].line, Some(200));
        assert_eq!(s[1].line, Some(300));
        // staying below each line keeps the total below 500
        assert!(fits(
            s[0],
            u(100, 0),
            Change {
                used: 99,
                spent: 99
            }
        ));
        assert!(!fits(
            s[0],
            u(100, 0),
            Change {
                used: 100,
                spent: 100
            }
        ));
    }

    #[test]
    fn a_change_fits_its_share_or_not() {
        let sh = Share {
            quota: Some(50),
            line: None,
        };
        assert!(fits(sh, u(10, 10), Change { used: 30, spent: 0 }));
        assert!(!fits(sh, u(10, 10), Change { used: 31, spent: 0 }));
        // falling use always fits, even without a quota
        let none = Share {
            quota: None,
            line: None,
        };
        assert!(fits(none, u(10, 10), Change { used: -5, spent: 5 }));
        assert!(!fits(none, u(0, 0), Change { used: 1, spent: 0 }));
    }

    /// Escrow's claim on random states: a sequence of changes each made
    /// under one slice's lock (fits) never takes the total above the limit
    /// nor the spend across the line.
    #[test]
    fn changes_that_fit_keep_the_total() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        let mut rnd = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..2000 {
            let n = 1 + rnd(6) as usize;
            let limit = rnd(500) as i64;
            let mut uses: Vec<Use> = (0..n)
                .map(|_| u(rnd(100) as i64, rnd(100) as i64))
                .collect();
            let shares = rebalance(limit, &[50, 90], &uses, 1 + rnd(n as u64) as usize);
            let total = |v: &[Use]| v.iter().map(|x| x.used()).sum::<i128>();
            let spent = |v: &[Use]| v.iter().map(|x| i128::from(x.spent)).sum::<i128>();
            let over = total(&uses) > i128::from(limit);
            let line = next_line(&[50, 90], limit, spent(&uses) as i64);
            for _ in 0..50 {
                let k = rnd(n as u64) as usize;
                let add = rnd(40) as i64;
                let c = if rnd(2) == 0 {
                    Change {
                        used: add.into(),
                        spent: 0,
                    }
                } else {
                    Change {
                        used: add.into(),
                        spent: add.into(),
                    }
                };
                if fits(shares[k], uses[k], c) {
                    uses[k].spent += c.spent as i64;
                    uses[k].reserved += (c.used - c.spent) as i64;
                }
            }
            if !over {
                assert!(total(&uses) <= i128::from(limit));
            }
            if let Some(v) = line {
                assert!(spent(&uses) < i128::from(v));
            }
        }
    }

    #[test]
    fn preferred_slices_spread() {
        assert_eq!(preferred(17, 8), 1);
        assert_eq!(preferred(17, 1), 0);
        assert_eq!(preferred(-3, 4), 1);
    }

    #[test]
    fn recent_totals_are_good_for_a_while_and_bounded() {
        use std::time::{Duration, Instant};
        let t0 = Instant::now();
        let u = Use {
            spent: 5,
            reserved: 7,
        };
        let mut r: Recent<(String, i32)> = Recent::default();
        assert!(r.is_empty());
        assert_eq!(r.get(&("a".into(), 1), t0), None);
        r.put(("a".into(), 1), u, t0);
        assert_eq!(r.get(&("a".into(), 1), t0), Some(u));
        assert_eq!(
            r.get(&("a".into(), 1), t0 + RECENT_FOR - Duration::from_nanos(1)),
            Some(u)
        );
        // stale at RECENT_FOR, and never from the future's point of view
        assert_eq!(r.get(&("a".into(), 1), t0 + RECENT_FOR), None);
        assert_eq!(r.get(&("a".into(), 2), t0), None);
        // a newer read replaces the older
        let v = Use {
            spent: 6,
            reserved: 0,
        };
        r.put(("a".into(), 1), v, t0 + RECENT_FOR);
        assert_eq!(r.get(&("a".into(), 1), t0 + RECENT_FOR), Some(v));
        r.forget(&("a".into(), 1));
        assert_eq!(r.get(&("a".into(), 1), t0 + RECENT_FOR), None);
        // bounded: the entry past RECENT_MAX drops the memo first
        for i in 0..RECENT_MAX {
            r.put(("b".into(), i as i32), u, t0);
        }
        assert_eq!(r.len(), RECENT_MAX);
        r.put(("b".into(), 0), v, t0);
        assert_eq!(r.len(), RECENT_MAX, "a key it has is replaced in place");
        r.put(("c".into(), 0), v, t0);
        assert_eq!(r.len(), 1);
        assert_eq!(r.get(&("c".into(), 0), t0), Some(v));
    }
}
