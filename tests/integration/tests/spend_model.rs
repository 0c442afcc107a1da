//! SPEC §2 as a reference model, checked against the database on random
//! sequences of upserts, budget changes, checks, charges, reservations,
//! settles and cancels. The model is written from the SPEC text with the
//! calendar facts of its five days written out by hand (not computed by the
//! extension's date code), so a shared mistake is unlikely.

use postgres::Client;
use proptest::prelude::*;
use spendguard_it::{connect, sqlstate, uniq, verify};
use std::collections::BTreeMap;

/// (timestamp, day number counted from 2026-06-01, its week's Monday)
const DAYS: [(&str, i64, i64); 5] = [
    ("2026-06-22 12:00:00Z", 21, 21),   // a Monday
    ("2026-06-23 23:30:00-05", 23, 21), // 04:30 UTC on Wednesday 06-24
    ("2026-06-28 23:59:59Z", 27, 21),   // the week's last second
    ("2026-06-29 00:00:00Z", 28, 28),   // the next Monday
    ("2026-07-01 06:00:00Z", 30, 28),   // July
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum P {
    Day,
    Week,
    Month,
}

impl P {
    fn name(self) -> &'static str {
        match self {
            P::Day => "day",
            P::Week => "week",
            P::Month => "month",
        }
    }
    /// [start, end) of the period of DAYS[i]
    fn bounds(self, i: usize) -> (i64, i64) {
        let (_, d, monday) = DAYS[i];
        match self {
            P::Day => (d, d + 1),
            P::Week => (monday, monday + 7),
            P::Month if d < 30 => (0, 30),
            P::Month => (30, 61),
        }
    }
}

fn date(n: i64) -> String {
    if n < 30 {
        format!("2026-06-{:02}", n + 1)
    } else {
        format!("2026-07-{:02}", n - 29)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Upsert {
        user: usize,
        day: usize,
        cost: i64,
    },
    SetBudget {
        limit: Option<i64>,
        period: P,
    },
    SetOverride {
        user: usize,
        limit: Option<i64>,
    },
    Check {
        user: usize,
        day: usize,
        cost: i64,
    },
    Charge {
        user: usize,
        day: usize,
        cost: i64,
    },
    Reserve {
        user: usize,
        day: usize,
        estimate: i64,
        id: usize,
        short: bool,
    },
    Settle {
        id: usize,
        cost: i64,
    },
    Cancel {
        id: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Row(String, i64),
    Decision(bool, i64, Option<i64>, Option<i64>, String),
    Reservation(bool, i64, i64, Option<i64>, Option<i64>, String),
    Done,
    Err(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Open,
    Closed,
}

#[derive(Clone, Debug)]
struct Res {
    user: usize,
    day: i64,
    key_start: i64,
    estimate: i64,
    short: bool,
    status: Status,
}

#[derive(Default)]
struct Model {
    daily: BTreeMap<(usize, i64), i64>,
    budget: Option<(i64, P)>,
    overrides: [Option<i64>; 2],
    res: BTreeMap<usize, Res>,
}

impl Model {
    fn limit(&self, user: usize) -> (Option<i64>, P) {
        let period = self.budget.map_or(P::Day, |(_, p)| p);
        (self.overrides[user].or(self.budget.map(|(l, _)| l)), period)
    }
    fn spent(&self, user: usize, (s, e): (i64, i64)) -> i64 {
        (s..e)
            .map(|d| self.daily.get(&(user, d)).copied().unwrap_or(0))
            .sum()
    }
    /// open reservations of the user in the period that have not expired
    fn reserved(&self, user: usize, start: i64) -> i64 {
        self.res
            .values()
            .filter(|r| {
                r.user == user && r.key_start == start && r.status == Status::Open && !r.short
            })
            .map(|r| r.estimate)
            .sum()
    }
    fn decision(
        &self,
        user: usize,
        day: usize,
        cost: i64,
    ) -> (bool, i64, Option<i64>, Option<i64>, (i64, i64)) {
        let (limit, period) = self.limit(user);
        let b = period.bounds(day);
        let counted = self.spent(user, b) + self.reserved(user, b.0);
        let allowed = limit.is_none_or(|l| counted + cost <= l);
        (
            allowed,
            counted,
            limit,
            limit.map(|l| (l - counted).max(0)),
            b,
        )
    }

    fn apply(&mut self, op: &Op) -> Out {
        let bad = || Out::Err("22023".into());
        match *op {
            Op::Upsert { user, day, cost } => {
                if cost < 0 {
                    return bad();
                }
                let d = DAYS[day].1;
                let e = self.daily.entry((user, d)).or_default();
                *e += cost;
                Out::Row(date(d), *e)
            }
            Op::SetBudget { limit, period } => {
                if limit.is_some_and(|l| l < 0) {
                    return bad();
                }
                self.budget = limit.map(|l| (l, period));
                Out::Done
            }
            Op::SetOverride { user, limit } => {
                if limit.is_some_and(|l| l < 0) {
                    return bad();
                }
                self.overrides[user] = limit;
                Out::Done
            }
            Op::Check { user, day, cost } | Op::Charge { user, day, cost } => {
                if cost < 0 {
                    return bad();
                }
                let (allowed, counted, limit, remaining, b) = self.decision(user, day, cost);
                if allowed && matches!(op, Op::Charge { .. }) {
                    *self.daily.entry((user, DAYS[day].1)).or_default() += cost;
                    let counted = counted + cost;
                    return Out::Decision(
                        true,
                        counted,
                        limit,
                        limit.map(|l| (l - counted).max(0)),
                        date(b.0),
                    );
                }
                Out::Decision(allowed, counted, limit, remaining, date(b.0))
            }
            Op::Reserve {
                user,
                day,
                estimate,
                id,
                short,
            } => {
                if estimate < 0 {
                    return bad();
                }
                if self.res.contains_key(&id) {
                    return Out::Err("SG003".into());
                }
                let (limit, period) = self.limit(user);
                let b = period.bounds(day);
                let spent = self.spent(user, b);
                let reserved = self.reserved(user, b.0);
                let allowed = limit.is_none_or(|l| spent + reserved + estimate <= l);
                let reserved = if allowed {
                    reserved + estimate
                } else {
                    reserved
                };
                if allowed {
                    self.res.insert(
                        id,
                        Res {
                            user,
                            day: DAYS[day].1,
                            key_start: b.0,
                            estimate,
                            short,
                            status: Status::Open,
                        },
                    );
                }
                let remaining = limit.map(|l| (l - spent - reserved).max(0));
                Out::Reservation(allowed, spent, reserved, limit, remaining, date(b.0))
            }
            Op::Settle { id, cost } => {
                if cost < 0 {
                    return bad();
                }
                let Some(r) = self.res.get_mut(&id) else {
                    return Out::Err("SG001".into());
                };
                if r.status != Status::Open {
                    return Out::Err("SG002".into());
                }
                r.status = Status::Closed;
                let (user, day) = (r.user, r.day);
                let e = self.daily.entry((user, day)).or_default();
                *e += cost;
                Out::Row(date(day), *e)
            }
            Op::Cancel { id } => {
                let Some(r) = self.res.get_mut(&id) else {
                    return Out::Err("SG001".into());
                };
                if r.status != Status::Open {
                    return Out::Err("SG002".into());
                }
                r.status = Status::Closed;
                Out::Done
            }
        }
    }
}

fn run(c: &mut Client, op: &Op) -> Out {
    let user = |u: usize| format!("u{u}");
    let r = match op {
        Op::Upsert { user: u, day, cost } => c
            .query_one(
                "SELECT day::text, spend_micros FROM spendguard.spend_upsert_daily($1, 'g', $2::text::timestamptz, $3)",
                &[&user(*u), &DAYS[*day].0, cost],
            )
            .map(|r| Out::Row(r.get(0), r.get(1))),
        Op::SetBudget { limit, period } => c
            .execute(
                "SELECT spendguard.spend_set_group_budget('g', $1, $2)",
                &[limit, &period.name()],
            )
            .map(|_| Out::Done),
        Op::SetOverride { user: u, limit } => c
            .execute(
                "SELECT spendguard.spend_set_user_override($1, 'g', $2)",
                &[&user(*u), limit],
            )
            .map(|_| Out::Done),
        Op::Check { user: u, day, cost } | Op::Charge { user: u, day, cost } => {
            let f = if matches!(op, Op::Check { .. }) { "spend_check" } else { "spend_charge" };
            c.query_one(
                &format!(
                    "SELECT allowed, spent_micros, limit_micros, remaining_micros, period_start::text \
                     FROM spendguard.{f}($1, 'g', $2, $3::text::timestamptz)"
                ),
                &[&user(*u), cost, &DAYS[*day].0],
            )
            .map(|r| Out::Decision(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        }
        Op::Reserve { user: u, day, estimate, id, short } => {
            let ttl = if *short { "1 microsecond" } else { "1 hour" };
            c.query_one(
                "SELECT allowed, spent_micros, reserved_micros, limit_micros, remaining_micros, \
                 period_start::text FROM spendguard.spend_reserve($1, 'g', $2, $3, \
                 $4::text::timestamptz, $5::text::interval)",
                &[&user(*u), estimate, &format!("r{id}"), &DAYS[*day].0, &ttl],
            )
            .map(|r| Out::Reservation(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        }
        Op::Settle { id, cost } => c
            .query_one(
                "SELECT day::text, spend_micros FROM spendguard.spend_settle($1, $2)",
                &[&format!("r{id}"), cost],
            )
            .map(|r| Out::Row(r.get(0), r.get(1))),
        Op::Cancel { id } => c
            .execute("SELECT spendguard.spend_cancel($1)", &[&format!("r{id}")])
            .map(|_| Out::Done),
    };
    r.unwrap_or_else(|e| Out::Err(sqlstate(&e)))
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0usize..2;
    let day = 0usize..DAYS.len();
    let cost = prop_oneof![8 => 0i64..400, 1 => Just(-1i64)];
    let limit = prop_oneof![
        Just(None),
        Just(Some(0i64)),
        Just(Some(300)),
        Just(Some(1000)),
        Just(Some(-5))
    ];
    let period = prop_oneof![Just(P::Day), Just(P::Week), Just(P::Month)];
    prop_oneof![
        3 => (user.clone(), day.clone(), cost.clone()).prop_map(|(user, day, cost)| Op::Upsert { user, day, cost }),
        1 => (limit.clone(), period).prop_map(|(limit, period)| Op::SetBudget { limit, period }),
        1 => (user.clone(), limit).prop_map(|(user, limit)| Op::SetOverride { user, limit }),
        2 => (user.clone(), day.clone(), cost.clone()).prop_map(|(user, day, cost)| Op::Check { user, day, cost }),
        4 => (user.clone(), day.clone(), cost.clone()).prop_map(|(user, day, cost)| Op::Charge { user, day, cost }),
        4 => (user, day, cost.clone(), 0usize..8, prop::bool::weighted(0.25))
            .prop_map(|(user, day, estimate, id, short)| Op::Reserve { user, day, estimate, id, short }),
        3 => (0usize..8, cost).prop_map(|(id, cost)| Op::Settle { id, cost }),
        1 => (0usize..8).prop_map(|id| Op::Cancel { id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, max_shrink_iters: 300, ..ProptestConfig::default() })]

    #[test]
    fn database_agrees_with_the_spend_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut c = connect(&uniq("spend-model"));
        let mut m = Model::default();
        for (i, op) in ops.iter().enumerate() {
            let want = m.apply(op);
            let got = run(&mut c, op);
            prop_assert_eq!(&got, &want, "step {}: {:?}", i, op);
        }
        for u in 0..2 {
            let got: i64 = c
                .query_one("SELECT spendguard.spend_since($1, 'g', '2026-06-01')", &[&format!("u{u}")])
                .unwrap()
                .get(0);
            let want: i64 = m.daily.iter().filter(|((uu, _), _)| *uu == u).map(|(_, v)| v).sum();
            prop_assert_eq!(got, want, "total of u{}", u);
        }
        let broken = verify(&mut c);
        prop_assert!(broken.is_empty(), "verify() found: {:?}", broken);
    }
}
