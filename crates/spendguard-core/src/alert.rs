//! Alerts of SPEC.md §7 as pure functions: which thresholds a change of
//! spend crosses, which budgets a denial blocks, and which fired
//! thresholds a limit change resolves. Exact integer arithmetic (128 bits):
//! a threshold `p` of a limit `L` is reached when `spent × 100 >= p × L`.

use crate::enums::AlertKind;
use crate::scope::{Budget, Decision, ScopePeriod};

/// An alert to write (once: the table's unique key drops a second one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewAlert {
    pub scope: String,
    pub period: ScopePeriod,
    pub period_start: i64,
    pub kind: AlertKind,
    pub percent: Option<i32>,
    pub limit: i64,
    pub spent: i64,
}

fn reached(spent: i64, percent: i32, limit: i64) -> bool {
    i128::from(spent) * 100 >= i128::from(percent) * i128::from(limit)
}

/// The thresholds that spend moving from `before` to `after` crosses: from
/// below the line to at or above it.
pub fn crossed(percents: &[i32], limit: i64, before: i64, after: i64) -> Vec<i32> {
    percents
        .iter()
        .copied()
        .filter(|&p| !reached(before, p, limit) && reached(after, p, limit))
        .collect()
}

/// `threshold` alerts of a call that added `amount` to the spend of every
/// budget in `after` (the budgets as they are after it).
pub fn for_spend(after: &[Budget], amount: i64) -> Vec<NewAlert> {
    let mut out = Vec::new();
    for b in after {
        let before = b.spent.saturating_sub(amount);
        for p in crossed(&b.alert_percents, b.limit, before, b.spent) {
            out.push(NewAlert {
                scope: b.scope.clone(),
                period: b.period,
                period_start: b.period_start,
                kind: AlertKind::Threshold,
                percent: Some(p),
                limit: b.limit,
                spent: b.spent,
            });
        }
    }
    out
}

/// `blocked` alerts of a denial: one for every budget that refused it (the
/// unique key keeps only a period's first).
pub fn for_denial(d: &Decision) -> Vec<NewAlert> {
    d.budgets
        .iter()
        .zip(&d.blocks)
        .filter(|(_, blocks)| **blocks)
        .map(|(b, _)| NewAlert {
            scope: b.scope.clone(),
            period: b.period,
            period_start: b.period_start,
            kind: AlertKind::Blocked,
            percent: None,
            limit: b.limit,
            spent: b.spent,
        })
        .collect()
}

/// The thresholds among `fired` (fired in the current period under another
/// limit) that `spent` is below under `new_limit`: each gets a `resolved`
/// alert when a limit changes.
pub fn resolved(fired: &[i32], new_limit: i64, spent: i64) -> Vec<i32> {
    fired
        .iter()
        .copied()
        .filter(|&p| !reached(spent, p, new_limit))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(limit: i64, spent: i64, percents: &[i32]) -> Budget {
        Budget {
            scope: "org:o".into(),
            period: ScopePeriod::Day,
            limit,
            period_start: 0,
            spent,
            reserved: 0,
            alert_percents: percents.to_vec(),
        }
    }

    #[test]
    fn crossing_lines() {
        let p = [50, 80, 100];
        assert_eq!(crossed(&p, 1000, 0, 499), Vec::<i32>::new());
        assert_eq!(crossed(&p, 1000, 0, 500), [50]);
        assert_eq!(crossed(&p, 1000, 500, 799), Vec::<i32>::new());
        assert_eq!(crossed(&p, 1000, 500, 800), [80]);
        // one spend from 40 % to 120 %: all three
        assert_eq!(crossed(&p, 1000, 400, 1200), [50, 80, 100]);
        // already above: nothing
        assert_eq!(crossed(&p, 1000, 1200, 1300), Vec::<i32>::new());
        // exact, no rounding: 1/3 of a micro matters
        assert_eq!(crossed(&[50], 3, 1, 2), [50]);
        assert_eq!(crossed(&[50], 3, 0, 1), Vec::<i32>::new());
        // above 100 %: overspend warnings
        assert_eq!(crossed(&[150], 100, 100, 150), [150]);
        // limit 0: nothing is below the line, nothing crosses
        assert_eq!(crossed(&p, 0, 0, 10), Vec::<i32>::new());
        // no overflow at the ends
        assert_eq!(crossed(&[1000], i64::MAX, 0, i64::MAX), Vec::<i32>::new());
        assert_eq!(crossed(&[1], i64::MAX, 0, i64::MAX), [1]);
    }

    #[test]
    fn alerts_of_a_spend_and_a_denial() {
        let after = vec![b(1000, 850, &[50, 80]), b(1000, 850, &[])];
        let a = for_spend(&after, 400);
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].percent, a[1].percent), (Some(50), Some(80)));
        assert!(a
            .iter()
            .all(|x| x.kind == AlertKind::Threshold && x.spent == 850));
        let d = Decision {
            allowed: false,
            budgets: vec![b(100, 90, &[]), b(100, 10, &[])],
            blocks: vec![true, false],
            blocked: Some(0),
        };
        let a = for_denial(&d);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].kind, a[0].percent, a[0].spent),
            (AlertKind::Blocked, None, 90)
        );
    }

    #[test]
    fn a_higher_limit_resolves_what_spend_is_now_below() {
        // 50 and 80 fired at a limit of 1000 with 850 spent; the limit
        // becomes 2000: 850 is below 50 % (1000) and 80 % (1600)
        assert_eq!(resolved(&[50, 80], 2000, 850), [50, 80]);
        // a limit of 1500: below 80 % (1200), not below 50 % (750)
        assert_eq!(resolved(&[50, 80], 1500, 850), [80]);
        assert_eq!(resolved(&[50, 80], 900, 850), Vec::<i32>::new());
    }
}
