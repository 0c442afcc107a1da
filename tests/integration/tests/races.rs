//! Many connections racing one budget, one hold, one event id: the totals
//! must be exact, never N-times overspent, and a retried event id must take
//! effect once.

use spendguard_it::{assert_verified, connect, race, run, sqlstate, uniq, usage, Op, Outcome};

fn authorized(o: &Outcome) -> bool {
    matches!(
        o,
        Outcome::Decision {
            authorized: true,
            ..
        }
    )
}

#[test]
fn sixteen_connections_never_overspend_max_total_cost() {
    let tenant = uniq("race-total");
    let wins: usize = race(&tenant, 16, |_, c| {
        (0..100)
            .filter(|_| {
                authorized(&run(
                    c,
                    &Op::authorize("b", 1).limits(None, None, Some(1000)),
                ))
            })
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(wins, 1000);
    let mut c = connect(&tenant);
    assert_eq!(usage(&mut c, "b", 0), (1000, 1000, 0));
    let denied: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.budget_events(100000, 'b', 0) WHERE NOT allowed",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(denied, 600);
    assert_verified(&mut c);
}

#[test]
fn sixteen_connections_never_exceed_max_invocations() {
    let tenant = uniq("race-inv");
    let wins: usize = race(&tenant, 16, |_, c| {
        (0..100)
            .filter(|_| {
                authorized(&run(
                    c,
                    &Op::authorize("b", 7).limits(Some(1000), None, None),
                ))
            })
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(wins, 1000);
    let mut c = connect(&tenant);
    assert_eq!(usage(&mut c, "b", 0), (1000, 7000, 0));
    assert_verified(&mut c);
}

#[test]
fn try_increment_races_are_exact() {
    let tenant = uniq("race-incr");
    let wins: usize = race(&tenant, 16, |_, c| {
        (0..50)
            .filter(|_| run(c, &Op::increment("b", Some(300))) == Outcome::Increment(true))
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(wins, 300);
    assert_verified(&mut connect(&tenant));
}

#[test]
fn one_event_id_from_ten_connections_takes_effect_once() {
    let tenant = uniq("race-event");
    for round in 0..5 {
        let ev = format!("ev-{round}");
        let hold = format!("h-{round}");
        let outs = race(&tenant, 10, move |_, c| {
            run(c, &Op::authorize("b", 10).hold(&hold).event(&ev))
        });
        assert!(outs.iter().all(|o| *o == outs[0]), "{outs:?}");
        assert!(authorized(&outs[0]));
    }
    let mut c = connect(&tenant);
    assert_eq!(usage(&mut c, "b", 0), (5, 50, 0));
    let n: i64 = c
        .query_one("SELECT count(*) FROM spendguard.budget_events(1000)", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 5);
    assert_verified(&mut c);
}

#[test]
fn one_hold_captured_from_ten_connections_settles_once() {
    let tenant = uniq("race-capture");
    let mut c = connect(&tenant);
    assert!(authorized(&run(&mut c, &Op::authorize("b", 100).hold("h"))));
    let outs = race(&tenant, 10, |i, c| {
        run(c, &Op::capture("h", None, 10 + i as i64))
    });
    let ok = outs
        .iter()
        .filter(|o| matches!(o, Outcome::Mutation { .. }))
        .count();
    let closed = outs.iter().filter(|o| **o == Outcome::err("SG002")).count();
    assert_eq!((ok, closed), (1, 9), "{outs:?}");
    let (n, exposed, realized) = usage(&mut c, "b", 0);
    assert_eq!((n, exposed), (1, 0));
    assert!((10..20).contains(&realized));
    assert_verified(&mut c);
}

#[test]
fn serializable_callers_get_40001_to_retry_and_stay_exact() {
    let tenant = uniq("race-ser");
    let results = race(&tenant, 8, |_, c| {
        let (mut wins, mut retries) = (0usize, 0usize);
        let mut done = 0;
        while done < 40 {
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::Serializable)
                .start()
                .unwrap();
            let r = tx.query_one(
                "SELECT authorized FROM spendguard.budget_authorize_hold('b', 0, 1, max_total_cost => 100)",
                &[],
            );
            match r.and_then(|row| tx.commit().map(|_| row.get::<_, bool>(0))) {
                Ok(w) => {
                    wins += usize::from(w);
                    done += 1;
                }
                Err(e) => {
                    assert_eq!(sqlstate(&e), "40001", "{e}");
                    retries += 1;
                }
            }
        }
        (wins, retries)
    });
    let wins: usize = results.iter().map(|r| r.0).sum();
    assert_eq!(wins, 100);
    let mut c = connect(&tenant);
    assert_eq!(usage(&mut c, "b", 0), (100, 100, 0));
    assert_verified(&mut c);
}

/// One new hold id or one event id raced by 8 connections, each on a budget
/// of its own: one call takes effect, the 7 others fail with `loser_code`
/// and leave no trace (no invocation, no event).
fn one_id_on_eight_budgets(tag: &str, with_id: fn(Op, &str) -> Op, loser_code: &'static str) {
    let tenant = uniq(tag);
    for round in 0..5 {
        let id = format!("id-{round}");
        let outs = race(&tenant, 8, move |i, c| {
            run(c, &with_id(Op::authorize(&format!("b{i}"), 10), &id))
        });
        let ok = outs.iter().filter(|o| authorized(o)).count();
        let lost = outs
            .iter()
            .filter(|o| **o == Outcome::err(loser_code))
            .count();
        assert_eq!((ok, lost), (1, 7), "{outs:?}");
    }
    let mut c = connect(&tenant);
    let (invocations, events): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT sum(invocation_count)::int8 FROM spendguard.budget_usages(1000)), \
                        (SELECT count(*) FROM spendguard.budget_events(1000))",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((invocations, events), (5, 5));
    assert_verified(&mut c);
}

#[test]
fn one_hold_id_raced_on_different_budgets_opens_once() {
    one_id_on_eight_budgets("race-holdid", Op::hold, "SG003");
}

#[test]
fn one_event_id_raced_for_different_requests_takes_effect_once() {
    one_id_on_eight_budgets("race-evid", Op::event, "SG004");
}
