//! Scoped budgets (SPEC §6) against the database: a reference model on
//! random operation sequences (shrunk by proptest to a minimal failing
//! one), the proof that the model's all-or-nothing rule is what catches a
//! partial charge, all or nothing after every denial, sixteen connections
//! racing overlapping scope sets (one of them sweeping and retiring), bad input with nothing changed, and
//! tenants.
//!
//! The model is written from the SPEC text; the calendar facts of its days
//! are written out by hand (not computed by the extension's date code).

use postgres::Client;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use spendguard_it::{
    assert_verified, clock_seed, connect, race, slice_overdrafts, snapshot, sqlstate, uniq, verify,
    Rng,
};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// (timestamp, day counted from 2026-06-01, its week's Monday)
const DAYS: [(&str, i64, i64); 5] = [
    ("2026-06-22 12:00:00Z", 21, 21),        // a Monday
    ("2026-06-28 23:59:59.999999Z", 27, 21), // the week's last microsecond
    ("2026-06-29 00:00:00Z", 28, 28),        // the next Monday
    ("2026-06-30 23:59:59.999999Z", 29, 28), // June's last microsecond
    ("2026-07-01 00:00:00Z", 30, 28),        // July
];

const SCOPES: [&str; 6] = ["key:k1", "key:k2", "org:o", "team:t", "user:u1", "user:u2"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum P {
    Day,
    Week,
    Month,
    Total,
}

impl P {
    fn name(self) -> &'static str {
        match self {
            P::Day => "day",
            P::Week => "week",
            P::Month => "month",
            P::Total => "total",
        }
    }
    /// [start, end) of the period of day `d` (days from 2026-06-01)
    fn bounds(self, d: i64) -> (i64, i64) {
        let monday = DAYS.iter().find(|x| x.1 == d).map(|x| x.2).unwrap();
        match self {
            P::Day => (d, d + 1),
            P::Week => (monday, monday + 7),
            P::Month if d < 30 => (0, 30),
            P::Month => (30, 61),
            P::Total => (i64::MIN, i64::MAX),
        }
    }
    fn start_text(self, d: i64) -> String {
        match self {
            P::Total => "2000-01-01".into(),
            p => date(p.bounds(d).0),
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
    SetBudget {
        scope: usize,
        period: P,
        limit: Option<i64>,
        /// escrow slices: decisions must be exactly the same (the model
        /// does not know them)
        slices: i32,
    },
    Reserve {
        scopes: Vec<usize>,
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
    Charge {
        scopes: Vec<usize>,
        day: usize,
        cost: i64,
        record: bool,
    },
}

/// (allowed, blocked scope, blocked period, remaining, headroom as text)
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Decision(bool, Option<String>, Option<String>, Option<i64>, String),
    Done,
    Err(String),
}

#[derive(Clone, Debug)]
struct Res {
    scopes: Vec<String>,
    day: i64,
    estimate: i64,
    short: bool,
    open: bool,
}

#[derive(Default)]
struct Model {
    budgets: BTreeMap<(String, P), i64>,
    spend: BTreeMap<(String, i64), i64>,
    res: BTreeMap<usize, Res>,
    /// The rule under test: with it off, the model charges the budgets one
    /// at a time and stops at the first that refuses, as gateways do.
    partial: bool,
}

impl Model {
    fn spent(&self, scope: &str, (s, e): (i64, i64)) -> i64 {
        self.spend
            .iter()
            .filter(|((sc, d), _)| sc == scope && *d >= s && *d < e)
            .map(|(_, v)| v)
            .sum()
    }
    fn reserved(&self, scope: &str, (s, e): (i64, i64)) -> i64 {
        self.res
            .values()
            .filter(|r| {
                r.open && !r.short && r.day >= s && r.day < e && r.scopes.iter().any(|x| x == scope)
            })
            .map(|r| r.estimate)
            .sum()
    }
    /// (scope, period, limit, spent, reserved) of every budget of `scopes`
    /// in the periods of day `d`, in lock order.
    fn rows(&self, scopes: &[String], d: i64) -> Vec<(String, P, i64, i64, i64)> {
        let mut out = Vec::new();
        for s in scopes {
            for ((bs, p), l) in &self.budgets {
                if bs == s {
                    let b = p.bounds(d);
                    out.push((s.clone(), *p, *l, self.spent(s, b), self.reserved(s, b)));
                }
            }
        }
        out.sort_by(|a, b| (a.0.as_bytes(), a.1).cmp(&(b.0.as_bytes(), b.1)));
        out
    }
    fn decision(
        rows: &[(String, P, i64, i64, i64)],
        blocks: &[bool],
        allowed: bool,
        d: i64,
    ) -> Out {
        let room = |r: &(String, P, i64, i64, i64)| (r.2 - r.3 - r.4).max(0);
        let text: Vec<String> = rows
            .iter()
            .zip(blocks.iter().chain(std::iter::repeat(&false)))
            .map(|(r, b)| {
                format!(
                    "{}/{}/{}/{}/{}/{}/{}/{}",
                    r.0,
                    r.1.name(),
                    r.1.start_text(d),
                    r.2,
                    r.3,
                    r.4,
                    room(r),
                    b
                )
            })
            .collect();
        let first = blocks.iter().position(|b| *b).map(|i| &rows[i]);
        Out::Decision(
            allowed,
            first.map(|r| r.0.clone()),
            first.map(|r| r.1.name().to_string()),
            rows.iter().map(room).min(),
            text.join(";"),
        )
    }

    fn apply(&mut self, op: &Op) -> Out {
        match op {
            Op::SetBudget {
                scope,
                period,
                limit,
                ..
            } => {
                let key = (SCOPES[*scope].to_string(), *period);
                match limit {
                    Some(l) if *l < 0 => return Out::Err("22023".into()),
                    Some(l) => self.budgets.insert(key, *l),
                    None => self.budgets.remove(&key),
                };
                Out::Done
            }
            Op::Reserve {
                scopes,
                day,
                estimate,
                id,
                short,
            } => {
                if self.res.contains_key(id) {
                    return Out::Err("SG003".into());
                }
                let scopes = canonical(scopes);
                let d = DAYS[*day].1;
                let mut rows = self.rows(&scopes, d);
                let blocks: Vec<bool> = rows.iter().map(|r| r.3 + r.4 + estimate > r.2).collect();
                let allowed = !blocks.contains(&true);
                if allowed {
                    for r in &mut rows {
                        r.4 += estimate;
                    }
                    self.res.insert(
                        *id,
                        Res {
                            scopes,
                            day: d,
                            estimate: *estimate,
                            short: *short,
                            open: true,
                        },
                    );
                }
                Self::decision(&rows, &blocks, allowed, d)
            }
            Op::Settle { id, cost } => {
                let Some(r) = self.res.get_mut(id) else {
                    return Out::Err("SG001".into());
                };
                if !r.open {
                    return Out::Err("SG002".into());
                }
                r.open = false;
                let (scopes, d) = (r.scopes.clone(), r.day);
                for s in &scopes {
                    *self.spend.entry((s.clone(), d)).or_default() += cost;
                }
                let rows = self.rows(&scopes, d);
                Self::decision(&rows, &[], true, d)
            }
            Op::Cancel { id } => {
                let Some(r) = self.res.get_mut(id) else {
                    return Out::Err("SG001".into());
                };
                if !r.open {
                    return Out::Err("SG002".into());
                }
                r.open = false;
                Out::Done
            }
            Op::Charge {
                scopes,
                day,
                cost,
                record,
            } => {
                let scopes = canonical(scopes);
                let d = DAYS[*day].1;
                let mut rows = self.rows(&scopes, d);
                let blocks: Vec<bool> = rows
                    .iter()
                    .map(|r| !record && r.3 + r.4 + cost > r.2)
                    .collect();
                let allowed = !blocks.contains(&true);
                if allowed {
                    for s in &scopes {
                        *self.spend.entry((s.clone(), d)).or_default() += cost;
                    }
                    for r in &mut rows {
                        r.3 += cost;
                    }
                } else if self.partial {
                    // the broken rule: the scopes before the first blocking
                    // budget were charged already
                    let first = &rows[blocks.iter().position(|b| *b).unwrap()].0;
                    for s in scopes.iter().take_while(|s| *s != first) {
                        *self.spend.entry((s.clone(), d)).or_default() += cost;
                    }
                }
                Self::decision(&rows, &blocks, allowed, d)
            }
        }
    }
}

fn canonical(scopes: &[usize]) -> Vec<String> {
    let mut v: Vec<String> = scopes.iter().map(|i| SCOPES[*i].to_string()).collect();
    v.sort();
    v.dedup();
    v
}

const DECISION: &str = "SELECT d.allowed, d.blocked_scope, d.blocked_period, d.remaining_micros, \
    coalesce((SELECT string_agg(format('%s/%s/%s/%s/%s/%s/%s/%s', h->>'scope', h->>'period', \
      h->>'period_start', h->>'limit_micros', h->>'spent_micros', h->>'reserved_micros', \
      h->>'remaining_micros', h->>'blocks'), ';' ORDER BY o) \
      FROM jsonb_array_elements(d.headroom) WITH ORDINALITY x(h, o)), '') FROM ";

fn decision_of(r: postgres::Row) -> Out {
    Out::Decision(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

fn names(scopes: &[usize]) -> Vec<String> {
    scopes.iter().map(|i| SCOPES[*i].to_string()).collect()
}

fn run(c: &mut Client, op: &Op) -> Out {
    let r = match op {
        Op::SetBudget {
            scope,
            period,
            limit,
            slices,
        } => c
            .execute(
                "SELECT spendguard.scope_set_budget($1, $2, $3, slices => $4)",
                &[&SCOPES[*scope], &period.name(), limit, slices],
            )
            .map(|_| Out::Done),
        Op::Reserve {
            scopes,
            day,
            estimate,
            id,
            short,
        } => {
            let ttl = if *short { "1 microsecond" } else { "1 hour" };
            c.query_one(
                &format!(
                    "{DECISION} spendguard.scope_reserve($1, $2, $3, $4::text::timestamptz, \
                     $5::text::interval) d"
                ),
                &[
                    &names(scopes),
                    estimate,
                    &format!("r{id}"),
                    &DAYS[*day].0,
                    &ttl,
                ],
            )
            .map(decision_of)
        }
        Op::Settle { id, cost } => c
            .query_one(
                &format!("{DECISION} spendguard.scope_settle($1, $2) d"),
                &[&format!("r{id}"), cost],
            )
            .map(decision_of),
        Op::Cancel { id } => c
            .execute("SELECT spendguard.scope_cancel($1)", &[&format!("r{id}")])
            .map(|_| Out::Done),
        Op::Charge {
            scopes,
            day,
            cost,
            record,
        } => {
            let f = if *record {
                "scope_record"
            } else {
                "scope_charge"
            };
            c.query_one(
                &format!("{DECISION} spendguard.{f}($1, $2, $3::text::timestamptz) d"),
                &[&names(scopes), cost, &DAYS[*day].0],
            )
            .map(decision_of)
        }
    };
    r.unwrap_or_else(|e| Out::Err(sqlstate(&e)))
}

fn op() -> impl Strategy<Value = Op> {
    let scope = 0usize..SCOPES.len();
    // 1..4 scopes in any order, repeats allowed
    let scopes = prop::collection::vec(0usize..SCOPES.len(), 1..5);
    let day = 0usize..DAYS.len();
    let amount = 0i64..300;
    let limit = prop_oneof![
        Just(None),
        Just(Some(0i64)),
        Just(Some(250)),
        Just(Some(600)),
        Just(Some(-5))
    ];
    let period = prop_oneof![Just(P::Day), Just(P::Week), Just(P::Month), Just(P::Total)];
    prop_oneof![
        2 => (scope, period, limit, prop_oneof![Just(1), Just(1), Just(2), Just(3), Just(8)])
            .prop_map(|(scope, period, limit, slices)| Op::SetBudget { scope, period, limit, slices }),
        4 => (scopes.clone(), day.clone(), amount.clone(), 0usize..8, prop::bool::weighted(0.2))
            .prop_map(|(scopes, day, estimate, id, short)| Op::Reserve { scopes, day, estimate, id, short }),
        3 => (0usize..8, amount.clone()).prop_map(|(id, cost)| Op::Settle { id, cost }),
        1 => (0usize..8).prop_map(|id| Op::Cancel { id }),
        4 => (scopes, day, amount, prop::bool::weighted(0.2))
            .prop_map(|(scopes, day, cost, record)| Op::Charge { scopes, day, cost, record }),
    ]
}

/// Runs `ops` against a fresh tenant and the model; the first difference.
fn check(ops: &[Op], partial: bool) -> Result<(), TestCaseError> {
    let tenant = uniq("scope-model");
    let mut c = connect(&tenant);
    let mut m = Model {
        partial,
        ..Model::default()
    };
    for (i, op) in ops.iter().enumerate() {
        let want = m.apply(op);
        let got = run(&mut c, op);
        prop_assert_eq!(&got, &want, "step {}: {:?}", i, op);
        let over = slice_overdrafts(&mut c, &tenant);
        prop_assert!(over.is_empty(), "step {}: {:?}: {:?}", i, op, over);
    }
    // every scope's spend per day, as the model kept it
    for s in SCOPES {
        let got: Vec<(String, i64)> = c
            .query(
                "SELECT period_start::text, spent_micros FROM spendguard.scope_spend($1, 'day', \
                 '2026-06-01', '2026-07-31') WHERE spent_micros <> 0",
                &[&s],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let want: Vec<(String, i64)> = m
            .spend
            .iter()
            .filter(|((sc, _), v)| sc == s && **v != 0)
            .map(|((_, d), v)| (date(*d), *v))
            .collect();
        prop_assert_eq!(got, want, "spend of {}", s);
    }
    let broken = verify(&mut c);
    prop_assert!(broken.is_empty(), "verify() found: {:?}", broken);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 300, ..ProptestConfig::default() })]

    #[test]
    fn database_agrees_with_the_scope_model(ops in prop::collection::vec(op(), 1..40)) {
        check(&ops, false)?;
    }
}

/// The model test can fail: with the model's all-or-nothing rule replaced
/// by a gateway's partial charge, it finds a difference and shrinks it to
/// a minimal sequence (printed).
#[test]
fn the_model_test_fails_without_all_or_nothing() {
    let mut runner = TestRunner::new(Config {
        cases: 64,
        max_shrink_iters: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let r = runner.run(&prop::collection::vec(op(), 1..40), |ops| check(&ops, true));
    match r {
        Err(proptest::test_runner::TestError::Fail(why, ops)) => {
            println!(
                "minimal sequence that a partial charge breaks ({} ops): {ops:?}\n{why}",
                ops.len()
            );
            assert!(
                ops.iter()
                    .any(|o| matches!(o, Op::Charge { record: false, .. })),
                "a partial charge needs a charge: {ops:?}"
            );
        }
        other => panic!("the model with a partial charge was not caught: {other:?}"),
    }
}

/// Every budget of the tenant (scope_usage at `at`) and every scope's total
/// spend: what a denial must leave as it was.
fn state(c: &mut Client, scopes: &[&str], at: &str) -> Vec<String> {
    let mut out: Vec<String> = c
        .query(
            "SELECT format('%s', u) FROM spendguard.scope_usage(NULL, $1::text::timestamptz) u",
            &[&at],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for s in scopes {
        for r in c
            .query(
                // the sum: a denial logs an event on the blocking scope's
                // budget of the day, which may make that day's (empty) row
                "SELECT format('%s %s', $1::text, coalesce(sum(x.spent_micros), 0)) \
                 FROM spendguard.scope_spend($1, 'total', '2000-01-01') x",
                &[s],
            )
            .unwrap()
        {
            out.push(r.get(0));
        }
    }
    out
}

#[test]
fn a_denial_holds_nothing_anywhere() {
    let seed = clock_seed();
    println!("seed {seed}");
    let mut rng = Rng::new(seed);
    let mut c = connect(&uniq("scope-aon"));
    for (s, p, l) in [
        ("org:o", "day", 1000i64),
        ("org:o", "month", 3000),
        ("team:t", "week", 800),
        ("user:u1", "day", 300),
        ("user:u2", "total", 500),
        ("key:k1", "day", 200),
    ] {
        c.execute(
            "SELECT spendguard.scope_set_budget($1, $2, $3)",
            &[&s, &p, &l],
        )
        .unwrap();
    }
    let at = "2026-06-24 12:00Z";
    let (mut denials, mut allowed) = (0, 0);
    for i in 0..120 {
        let k = 1 + rng.below(4) as usize;
        let scopes: Vec<&str> = (0..k)
            .map(|_| SCOPES[rng.below(SCOPES.len() as u64) as usize])
            .collect();
        let amount = rng.below(250) as i64;
        let before = state(&mut c, &SCOPES, at);
        let ok: bool = if rng.below(2) == 0 {
            c.query_one(
                "SELECT allowed FROM spendguard.scope_reserve($1, $2, $3, $4::text::timestamptz)",
                &[&scopes, &amount, &format!("h{i}"), &at],
            )
        } else {
            c.query_one(
                "SELECT allowed FROM spendguard.scope_charge($1, $2, $3::text::timestamptz)",
                &[&scopes, &amount, &at],
            )
        }
        .unwrap()
        .get(0);
        if ok {
            allowed += 1;
        } else {
            denials += 1;
            assert_eq!(
                state(&mut c, &SCOPES, at),
                before,
                "call {i} on {scopes:?} for {amount} was denied but changed a budget"
            );
        }
    }
    assert!(
        denials > 10 && allowed > 10,
        "{denials} denials, {allowed} allowed"
    );
    assert_verified(&mut c);
}

#[test]
fn sixteen_connections_over_overlapping_scopes() {
    race_over_overlapping_scopes(&[]);
}

/// The same race with escrow slices on three of its scopes (two of them
/// in one call at times: nested slices), every budget with thresholds: the
/// same exactness, no slice over its quota, and every threshold the final
/// spend is at or above alerted exactly once.
#[test]
fn sixteen_connections_over_sliced_scopes() {
    race_over_overlapping_scopes(&[("org:o", 8), ("team:a", 3), ("user:1", 2)]);
}

fn race_over_overlapping_scopes(sliced: &[(&str, i32)]) {
    let tenant = uniq("scope-race");
    let mut c = connect(&tenant);
    let pool: Vec<String> = [
        "org:o", "team:a", "team:b", "user:1", "user:2", "user:3", "key:1", "key:2", "key:3",
        "model:m",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let limits = [
        ("org:o", "day", 100_000i64),
        ("org:o", "month", 120_000),
        ("team:a", "day", 50_000),
        ("team:b", "week", 50_000),
        ("user:1", "day", 25_000),
        ("user:2", "day", 25_000),
        ("user:3", "total", 25_000),
        ("key:1", "day", 15_000),
        ("key:2", "day", 15_000),
    ];
    for (s, p, l) in limits {
        let n = sliced.iter().find(|x| x.0 == s).map_or(1, |x| x.1);
        c.execute(
            "SELECT spendguard.scope_set_budget($1, $2, $3, '{10,30,50,70,90,100}', $4)",
            &[&s, &p, &l, &n],
        )
        .unwrap();
    }
    let seed = clock_seed();
    println!("seed {seed}");
    let pool2 = pool.clone();
    // each connection: (scope, spend it was allowed) of every allowed
    // charge and settle, and the number of denials
    let results = race(&tenant, 16, move |i, c| {
        let mut rng = Rng::new(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut spent: Vec<(String, i64)> = Vec::new();
        let mut open: Vec<(String, Vec<String>, i64)> = Vec::new();
        let mut denied = 0usize;
        let end = Instant::now() + Duration::from_secs(4);
        let mut n = 0;
        while Instant::now() < end {
            n += 1;
            if i == 15 {
                // one connection sweeps and retires history meanwhile: it
                // locks many budget rows in one transaction
                c.query_one(
                    "SELECT spendguard.budget_expire_holds(), \
                     (SELECT count(*) FROM spendguard.budget_retire_events(now()))",
                    &[],
                )
                .unwrap_or_else(|e| panic!("sweep and retire: {e:?}"));
                std::thread::sleep(Duration::from_millis(400));
                continue;
            }
            let k = 3 + rng.below(4) as usize;
            let mut scopes = pool2.clone();
            // a random order of k distinct scopes
            for j in (1..scopes.len()).rev() {
                scopes.swap(j, rng.below(j as u64 + 1) as usize);
            }
            scopes.truncate(k);
            let amount = 1 + rng.below(400) as i64;
            match rng.below(4) {
                0 if !open.is_empty() => {
                    let (id, sc, est) = open.swap_remove(rng.below(open.len() as u64) as usize);
                    // settle at or below the estimate: allowed decisions
                    // alone must keep every budget within its limit
                    let cost = rng.below(est as u64 + 1) as i64;
                    c.execute("SELECT spendguard.scope_settle($1, $2)", &[&id, &cost])
                        .unwrap_or_else(|e| panic!("settle {id}: {e:?}"));
                    spent.extend(sc.into_iter().map(|s| (s, cost)));
                }
                1 if !open.is_empty() => {
                    let (id, _, _) = open.swap_remove(rng.below(open.len() as u64) as usize);
                    c.execute("SELECT spendguard.scope_cancel($1)", &[&id])
                        .unwrap_or_else(|e| panic!("cancel {id}: {e:?}"));
                }
                2 => {
                    let ok: bool = c
                        .query_one(
                            "SELECT allowed FROM spendguard.scope_charge($1, $2)",
                            &[&scopes, &amount],
                        )
                        .unwrap_or_else(|e| panic!("charge {scopes:?}: {e:?}"))
                        .get(0);
                    if ok {
                        spent.extend(scopes.iter().map(|s| (s.clone(), amount)));
                    } else {
                        denied += 1;
                    }
                }
                _ => {
                    let id = format!("c{i}-{n}");
                    let ok: bool = c
                        .query_one(
                            "SELECT allowed FROM spendguard.scope_reserve($1, $2, $3)",
                            &[&scopes, &amount, &id],
                        )
                        .unwrap_or_else(|e| panic!("reserve {scopes:?}: {e:?}"))
                        .get(0);
                    if ok {
                        open.push((id, scopes.clone(), amount));
                    } else {
                        denied += 1;
                    }
                }
            }
        }
        (spent, open.len(), denied, n)
    });
    let calls: usize = results.iter().map(|r| r.3).sum();
    let denied: usize = results.iter().map(|r| r.2).sum();
    println!("{calls} calls, {denied} denied");
    assert!(denied > 0, "the race never reached a limit");
    // no budget above its limit from allowed decisions
    for r in c
        .query(
            "SELECT scope, period, limit_micros, spent_micros, reserved_micros FROM spendguard.scope_usage()",
            &[],
        )
        .unwrap()
    {
        let (s, p, l, sp, re): (String, String, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        assert!(sp + re <= l, "{s} {p}: {sp} spent + {re} reserved > {l}");
        // exactly once: one threshold alert for each line the spend is at
        // or above, none for the others
        let fired: Vec<i32> = c
            .query(
                "SELECT percent FROM spendguard.alerts(scope => $1) \
                 WHERE kind = 'threshold' AND period = $2 ORDER BY percent",
                &[&s, &p],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let want: Vec<i32> = [10, 30, 50, 70, 90, 100]
            .into_iter()
            .filter(|pc| i128::from(sp) * 100 >= i128::from(*pc) * i128::from(l))
            .collect();
        assert_eq!(fired, want, "{s} {p}: alerts at {sp} of {l}");
    }
    let over = slice_overdrafts(&mut c, &tenant);
    assert!(over.is_empty(), "slices over their quota: {over:?}");
    if !sliced.is_empty() {
        let splits: i64 = c
            .query_one(
                "SELECT count(*) FROM spendguard.scope_slice WHERE limits IS NOT NULL",
                &[],
            )
            .unwrap()
            .get(0);
        assert!(splits > 0, "no sliced scope has a split");
    }
    // what the connections were allowed is what the table holds
    let mut want: BTreeMap<String, i64> = BTreeMap::new();
    for (spent, _, _, _) in &results {
        for (s, v) in spent {
            *want.entry(s.clone()).or_default() += v;
        }
    }
    for s in &pool {
        let got: Option<i64> = c
            .query_one(
                "SELECT sum(spent_micros)::bigint FROM spendguard.scope_spend($1, 'total', '2000-01-01')",
                &[s],
            )
            .unwrap()
            .get(0);
        assert_eq!(
            got.unwrap_or(0),
            want.get(s).copied().unwrap_or(0),
            "spend of {s}"
        );
    }
    assert_verified(&mut c);
}

#[test]
fn bad_input_gets_its_sqlstate_and_changes_nothing() {
    let mut c = connect(&uniq("scope-bad"));
    c.execute(
        "SELECT spendguard.scope_set_budget('org:o', 'day', 100)",
        &[],
    )
    .unwrap();
    c.execute(
        "SELECT spendguard.scope_reserve(ARRAY['org:o'], 10, 'taken')",
        &[],
    )
    .unwrap();
    let long = "x".repeat(1025);
    let max = "y".repeat(1024);
    let cases: Vec<(String, &str)> = vec![
        (
            "SELECT spendguard.scope_reserve(NULL, 1, 'h')".into(),
            "22004",
        ),
        (
            "SELECT spendguard.scope_reserve('{}', 1, 'h')".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o', NULL], 1, 'h')".into(),
            "22004",
        ),
        (
            "SELECT spendguard.scope_reserve(array_fill('s'::text, ARRAY[33]), 1, 'h')".into(),
            "22023",
        ),
        (
            format!("SELECT spendguard.scope_reserve(ARRAY['org:o', '{long}'], 1, 'h')"),
            "22023",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], -1, 'h')".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], NULL, 'h')".into(),
            "22004",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], 1, NULL)".into(),
            "22004",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], 1, 'h', 'infinity')".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], 1, 'h', NULL)".into(),
            "22004",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], 1, 'h', ttl => '-1 hour')".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], 1, 'h', event_id => '')".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_reserve(ARRAY['org:o'], 1, 'taken')".into(),
            "SG003",
        ),
        ("SELECT spendguard.scope_settle('nope', 1)".into(), "SG001"),
        (
            "SELECT spendguard.scope_settle('taken', -1)".into(),
            "22023",
        ),
        ("SELECT spendguard.scope_settle(NULL, 1)".into(), "22004"),
        ("SELECT spendguard.scope_cancel(NULL)".into(), "22004"),
        (
            "SELECT spendguard.scope_charge(ARRAY['org:o'], -5)".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_charge(ARRAY['org:o'], 1, '-infinity')".into(),
            "22023",
        ),
        ("SELECT spendguard.scope_record('{}', 1)".into(), "22023"),
        (
            "SELECT spendguard.scope_record(ARRAY['org:o'], 9223372036854775807)".into(),
            "22003",
        ),
        (
            "SELECT spendguard.scope_set_budget('org:o', 'year', 1)".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_set_budget('org:o', 'day', -1)".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_set_budget('org:o', 'day', 1, slices => 0)".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_set_budget('org:o', 'day', 1, slices => 65)".into(),
            "22023",
        ),
        (
            "SELECT spendguard.scope_set_budget('org:o', 'day', 1, slices => NULL)".into(),
            "22004",
        ),
        (
            "SELECT spendguard.scope_set_budget('org:o', 'day', 1, alert_percents => NULL)".into(),
            "22004",
        ),
        (
            "SELECT spendguard.scope_set_budget(NULL, 'day', 1)".into(),
            "22004",
        ),
        (
            format!("SELECT spendguard.scope_set_budget('{long}', 'day', 1)"),
            "22023",
        ),
        (
            "SELECT * FROM spendguard.scope_usage('org:o', 'infinity')".into(),
            "22023",
        ),
        (
            "SELECT * FROM spendguard.scope_spend('org:o', 'fortnight', now())".into(),
            "22023",
        ),
        (
            "SELECT * FROM spendguard.scope_spend('org:o', 'day', NULL)".into(),
            "22004",
        ),
    ];
    let before = snapshot(&mut c);
    for (sql, code) in &cases {
        let e = c.execute(sql.as_str(), &[]).expect_err(sql);
        assert_eq!(&sqlstate(&e), code, "{sql}");
        assert_eq!(snapshot(&mut c), before, "{sql} changed a row");
    }
    // the largest ids work: 1,024-byte scopes, hold and event ids
    let r: bool = c
        .query_one(
            "SELECT allowed FROM spendguard.scope_reserve(ARRAY[$1, $1 || 'z'], 1, $1, event_id => $1)",
            &[&max[..1023].to_string()],
        )
        .unwrap()
        .get(0);
    assert!(r);
    c.execute(
        "SELECT spendguard.scope_set_budget($1, 'total', 5)",
        &[&max],
    )
    .unwrap();
    c.execute(
        "SELECT spendguard.scope_settle($1, 2)",
        &[&max[..1023].to_string()],
    )
    .unwrap();
    assert_verified(&mut c);
}

#[test]
fn tenants_never_see_each_others_scopes() {
    let (a, b) = (uniq("scope-ta"), uniq("scope-tb"));
    let mut ca = connect(&a);
    let mut cb = connect(&b);
    ca.execute(
        "SELECT spendguard.scope_set_budget('org:o', 'day', 100)",
        &[],
    )
    .unwrap();
    ca.execute(
        "SELECT spendguard.scope_reserve(ARRAY['org:o'], 60, 'h1')",
        &[],
    )
    .unwrap();
    ca.execute("SELECT spendguard.scope_charge(ARRAY['org:o'], 30)", &[])
        .unwrap();
    // the same scope in tenant b has no budget and no spend
    let n: i64 = cb
        .query_one("SELECT count(*) FROM spendguard.scope_usage()", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let n: i64 = cb
        .query_one(
            "SELECT count(*) FROM spendguard.scope_spend('org:o', 'total', '2000-01-01')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let e = cb
        .execute("SELECT spendguard.scope_settle('h1', 1)", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&e), "SG001");
    // b's own budget on the same scope is b's alone
    cb.execute(
        "SELECT spendguard.scope_set_budget('org:o', 'day', 50)",
        &[],
    )
    .unwrap();
    let ok: bool = cb
        .query_one(
            "SELECT allowed FROM spendguard.scope_charge(ARRAY['org:o'], 50)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(ok);
    // a's room is as it was: 100 - 60 reserved - 30 spent
    let (spent, reserved): (i64, i64) = {
        let r = ca
            .query_one(
                "SELECT spent_micros, reserved_micros FROM spendguard.scope_usage('org:o')",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((spent, reserved), (30, 60));
    // the same hold id in both tenants
    cb.execute(
        "SELECT spendguard.scope_reserve(ARRAY['org:x'], 1, 'h1')",
        &[],
    )
    .unwrap();
    assert_verified(&mut ca);
    assert_verified(&mut cb);
}

#[test]
fn one_event_id_from_ten_connections_takes_effect_once() {
    let tenant = uniq("scope-idem");
    let mut c = connect(&tenant);
    c.execute(
        "SELECT spendguard.scope_set_budget('org:o', 'day', 1000)",
        &[],
    )
    .unwrap();
    let out = race(&tenant, 10, |_, c| {
        c.query_one(
            "SELECT allowed, headroom::text FROM spendguard.scope_charge(ARRAY['org:o', 'user:u'], 100, event_id => 'e1')",
            &[],
        )
        .map(|r| (r.get::<_, bool>(0), r.get::<_, String>(1)))
        .unwrap()
    });
    assert!(out.iter().all(|o| o == &out[0]), "{out:?}");
    let spent: i64 = c
        .query_one(
            "SELECT spent_micros FROM spendguard.scope_usage('org:o')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(spent, 100);
    assert_verified(&mut c);
}
