//! Hold expiry (SPEC §1 "Hold expiry"): TTL validation, SG002 from
//! `expires_at` on before any sweep, the sweep, lazy expiry on the deny
//! path, concurrent sweeps, sweeps racing calls on the same budgets; and
//! `verify()` catching damage done behind the functions' back.

use spendguard_it::model::{LONG_TTL, SHORT_TTL};
use spendguard_it::{
    assert_verified, connect, hold, mutated, race, run, sqlstate, uniq, usage, verify, Op, Outcome,
};
use std::time::{Duration, Instant};

const REL: &str = "release_exposure";

fn ok(committed: i64, count: i64) -> Outcome {
    Outcome::authorized(committed, count)
}
fn err(code: &str) -> Outcome {
    Outcome::err(code)
}

#[test]
fn expiry_table() {
    let mut c = connect(&uniq("expiry"));
    let table: Vec<(Op, Outcome)> = vec![
        // TTL validation: positive, and only with a hold to expire
        (Op::authorize("c", 1).hold("h0").ttl("0"), err("22023")),
        (
            Op::authorize("c", 1).hold("h0").ttl("-1 second"),
            err("22023"),
        ),
        (
            Op::authorize("c", 1).hold("h0").ttl("1 month -30 days"),
            err("22023"),
        ),
        (Op::authorize("c", 1).ttl(LONG_TTL), err("22023")),
        // a hold past expires_at is not open for any of the three, unswept
        (Op::authorize("c", 10).hold("s1").ttl(SHORT_TTL), ok(10, 1)),
        (Op::release("s1", Some(1)), err("SG002")),
        (Op::reverse("s1", None), err("SG002")),
        (Op::reconcile("s1", None, 5), err("SG002")),
        (Op::capture("s1", None, 5), err("SG002")),
        // a hold without a TTL never expires; one with an hour left is open
        (Op::authorize("c", 20).hold("forever"), ok(30, 2)),
        (Op::authorize("c", 30).hold("l1").ttl(LONG_TTL), ok(60, 3)),
        (Op::release("l1", Some(5)), mutated(REL, 5, 0, 55, 3)),
        // the sweep at now(): only s1 is due; its exposure back, count stays
        (Op::expire(0), Outcome::Expired(1)),
        (Op::expire(0), Outcome::Expired(0)),
        (Op::release("s1", None), err("SG002")),
        // an hour ahead l1 is due too, forever never
        (Op::expire(2), Outcome::Expired(1)),
        (Op::expire(1000), Outcome::Expired(0)),
        (Op::release("l1", None), err("SG002")),
        (Op::release("forever", Some(1)), mutated(REL, 1, 0, 19, 3)),
        // a TTL is part of the request an event id replays
        (
            Op::authorize("c", 7).hold("r1").ttl(SHORT_TTL).event("e1"),
            ok(26, 4),
        ),
        (
            Op::authorize("c", 7).hold("r1").ttl(SHORT_TTL).event("e1"),
            ok(26, 4),
        ),
        (
            Op::authorize("c", 7).hold("r1").ttl(LONG_TTL).event("e1"),
            err("SG004"),
        ),
        (Op::authorize("c", 7).hold("r1").event("e1"), err("SG004")),
        // the sweep's limit
        (Op::authorize("c", 1).hold("x1").ttl(SHORT_TTL), ok(27, 5)),
        (Op::authorize("c", 1).hold("x2").ttl(SHORT_TTL), ok(28, 6)),
        (
            Op::Expire {
                hours_ahead: 0,
                lim: Some(2),
            },
            Outcome::Expired(2),
        ),
        (Op::expire(0), Outcome::Expired(1)),
    ];
    for (i, (op, want)) in table.iter().enumerate() {
        assert_eq!(&run(&mut c, op), want, "line {i}: {op:?}");
    }
    assert_eq!(hold(&mut c, "s1"), Some(("expired".into(), 10, 0, 0)));
    assert_eq!(hold(&mut c, "l1"), Some(("expired".into(), 30, 0, 0)));
    assert_eq!(hold(&mut c, "forever"), Some(("open".into(), 20, 19, 0)));
    assert_eq!(hold(&mut c, "r1"), Some(("expired".into(), 7, 0, 0)));
    assert_eq!(usage(&mut c, "c", 0), (6, 19, 0));
    let kinds: Vec<(String, String, i64)> = c
        .query(
            "SELECT kind::text, hold_id, exposure_units FROM spendguard.budget_events(100, 'c', 0) \
             WHERE kind = 'expire_exposure'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        kinds,
        [
            ("expire_exposure".into(), "s1".into(), 10),
            ("expire_exposure".into(), "l1".into(), 25),
            ("expire_exposure".into(), "r1".into(), 7),
            ("expire_exposure".into(), "x1".into(), 1),
            ("expire_exposure".into(), "x2".into(), 1),
        ]
    );
    assert_verified(&mut c);
}

#[test]
fn a_budget_full_of_expired_holds_authorizes_without_a_sweep() {
    let mut c = connect(&uniq("ghosts"));
    for i in 0..50 {
        let op = Op::authorize("b", 20)
            .limits(None, None, Some(1000))
            .hold(&format!("ghost-{i}"))
            .ttl(SHORT_TTL);
        assert_eq!(run(&mut c, &op), ok(20 * (i + 1), i + 1));
    }
    // full: 1000 of 1000, all of it in holds whose caller is gone
    let op = Op::authorize("b", 300)
        .limits(None, None, Some(1000))
        .hold("live");
    assert_eq!(run(&mut c, &op), ok(300, 51));
    assert_eq!(usage(&mut c, "b", 0), (51, 300, 0));
    let expired: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.budget_holds(1000, disposition => 'expired')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(expired, 50);
    // the expiries came first in the log, then the authorization
    let last: String = c
        .query_one("SELECT kind::text FROM spendguard.budget_events(1) e", &[])
        .unwrap()
        .get(0);
    assert_eq!(last, "authorize_exposure");
    // a denial that no expiry can help still denies, and says so
    let op = Op::authorize("b", 701).limits(None, None, Some(1000));
    assert_eq!(run(&mut c, &op), Outcome::denied("max_total_cost", 300, 51));
    assert_verified(&mut c);
}

#[test]
fn six_sweeps_at_once_expire_sixty_holds_once_each() {
    let tenant = uniq("sweep-race");
    let mut c = connect(&tenant);
    for i in 0..60 {
        let op = Op::authorize(&format!("b{}", i % 6), 10)
            .hold(&format!("h{i}"))
            .ttl(LONG_TTL);
        assert!(matches!(
            run(&mut c, &op),
            Outcome::Decision {
                authorized: true,
                ..
            }
        ));
    }
    let counts = race(&tenant, 6, |_, c| run(c, &Op::expire(2)));
    let total: i64 = counts
        .iter()
        .map(|o| match o {
            Outcome::Expired(n) => *n,
            other => panic!("sweep failed: {other:?}"),
        })
        .sum();
    assert_eq!(total, 60, "{counts:?}");
    let per_hold: Vec<i64> = c
        .query(
            "SELECT count(e.*) FROM spendguard.budget_holds(1000) h \
             LEFT JOIN spendguard.budget_events(100000) e \
               ON e.hold_id = h.hold_id AND e.kind = 'expire_exposure' \
             GROUP BY h.hold_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(per_hold, vec![1; 60]);
    for b in 0..6 {
        assert_eq!(usage(&mut c, &format!("b{b}"), 0), (10, 0, 0));
    }
    assert_verified(&mut c);
}

#[test]
fn sweeps_racing_calls_on_the_same_budgets_never_deadlock() {
    let tenant = uniq("sweep-calls");
    const CAP: i64 = 500;
    let deadline = Instant::now() + Duration::from_secs(3);
    let outs = race(&tenant, 6, move |i, c| {
        let mut n = 0u64;
        let mut errors: Vec<String> = Vec::new();
        let mut calls = 0usize;
        while Instant::now() < deadline {
            n += 1;
            calls += 1;
            if i < 2 {
                // two sweepers: due now, or an hour ahead (takes the live holds too)
                let hours = if n.is_multiple_of(3) { 2 } else { 0 };
                match run(c, &Op::expire(hours)) {
                    Outcome::Expired(_) => {}
                    Outcome::Error(code) => errors.push(code),
                    other => panic!("{other:?}"),
                }
                continue;
            }
            let b = format!("b{}", n % 3);
            let h = format!("w{i}-{n}");
            let ttl = [Some(SHORT_TTL), Some(LONG_TTL), None][(n % 3) as usize];
            let mut op = Op::authorize(&b, 7).limits(None, None, Some(CAP)).hold(&h);
            if let Some(t) = ttl {
                op = op.ttl(t);
            }
            match run(c, &op) {
                Outcome::Decision {
                    authorized: true, ..
                } => {}
                Outcome::Decision { .. } => continue,
                Outcome::Error(code) => {
                    errors.push(code);
                    continue;
                }
                other => panic!("{other:?}"),
            }
            let settle = match n % 4 {
                0 => Op::capture(&h, None, 3),
                1 => Op::release(&h, Some(2)),
                2 => Op::reverse(&h, None),
                _ => Op::release(&h, None),
            };
            if let Outcome::Error(code) = run(c, &settle) {
                errors.push(code);
            }
        }
        (calls, errors)
    });
    let mut calls = 0;
    for (n, errors) in &outs {
        calls += n;
        // the only error SPEC names here: the hold expired under the caller
        assert!(errors.iter().all(|e| e == "SG002"), "{errors:?}");
    }
    assert!(calls > 100, "only {calls} calls in 3 s");
    let mut c = connect(&tenant);
    for b in 0..3 {
        let (_, exposed, realized) = usage(&mut c, &format!("b{b}"), 0);
        assert!(exposed + realized <= CAP, "budget b{b} above its cap");
    }
    assert_verified(&mut c);
}

/// Damage done as the owner with triggers off (`session_replication_role
/// = replica` skips the append-only trigger and foreign keys): a counter
/// changed, a hold changed, an event deleted. Each shows up as a row that
/// names the object.
#[test]
fn verify_catches_damage_done_behind_the_functions_back() {
    let tenant = uniq("damage");
    let mut c = connect(&tenant);
    for op in [
        Op::authorize("b1", 100).hold("h1"),
        Op::authorize("b2", 50).hold("h2"),
        Op::authorize("b3", 30).hold("h3"),
        Op::release("h3", Some(10)),
        Op::authorize("b3", 5),
    ] {
        assert!(!matches!(run(&mut c, &op), Outcome::Error(_)), "{op:?}");
    }
    assert_verified(&mut c);
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .unwrap();
    tx.execute(
        "UPDATE spendguard.budget_usage SET total_cost_exposed = total_cost_exposed + 7 \
         WHERE tenant_id = $1 AND capability_id = 'b1'",
        &[&tenant],
    )
    .unwrap();
    tx.execute(
        "UPDATE spendguard.budget_hold SET remaining_exposure = 40 \
         WHERE tenant_id = $1 AND hold_id = 'h2'",
        &[&tenant],
    )
    .unwrap();
    tx.execute(
        "DELETE FROM spendguard.budget_event \
         WHERE tenant_id = $1 AND hold_id = 'h3' AND kind = 'release_exposure'",
        &[&tenant],
    )
    .unwrap();
    tx.commit().unwrap();
    let rows = verify(&mut c);
    let has = |object: &str, check: &str| rows.iter().any(|r| r.0 == object && r.1 == check);
    assert!(
        has("budget ('b1', 0)", "usage.total_cost_exposed"),
        "{rows:#?}"
    );
    assert!(has("hold 'h2'", "hold.remaining_exposure"), "{rows:#?}");
    assert!(has("hold 'h3'", "hold.remaining_exposure"), "{rows:#?}");
    assert!(
        has("budget ('b3', 0)", "usage.total_cost_exposed"),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.1 == "event.chain" && r.0.ends_with("of budget ('b3', 0)")),
        "{rows:#?}"
    );
    // b2's counters were not touched, but its hold was: the split says so
    assert!(has("budget ('b2', 0)", "usage.exposure_split"), "{rows:#?}");
    // every row names one of the damaged objects
    for r in &rows {
        assert!(
            ["'b1'", "'b2'", "'b3'", "'h2'", "'h3'"]
                .iter()
                .any(|o| r.0.contains(o)),
            "{r:?}"
        );
    }
    // verify of one untouched budget of the same tenant is clean
    let b: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.verify('nothing-here', 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(b, 0);
    let one: i64 = c
        .query_one("SELECT count(*) FROM spendguard.verify('b1', 0)", &[])
        .unwrap()
        .get(0);
    assert_eq!(one, 2, "b1: the counter and the split");
}

#[test]
fn the_sweep_and_verify_stay_in_their_tenant() {
    let (ta, tb) = (uniq("ta"), uniq("tb"));
    let mut a = connect(&ta);
    let mut b = connect(&tb);
    assert!(matches!(
        run(&mut a, &Op::authorize("c", 10).hold("h").ttl(SHORT_TTL)),
        Outcome::Decision {
            authorized: true,
            ..
        }
    ));
    assert_eq!(run(&mut b, &Op::expire(2)), Outcome::Expired(0));
    assert_eq!(hold(&mut a, "h"), Some(("open".into(), 10, 10, 0)));
    assert!(verify(&mut b).is_empty());
    assert_eq!(run(&mut a, &Op::expire(0)), Outcome::Expired(1));
    assert_verified(&mut a);
    let e = b
        .batch_execute("RESET spendguard.tenant; SET spendguard.require_tenant = on; SELECT * FROM spendguard.verify()")
        .unwrap_err();
    assert_eq!(sqlstate(&e), "SG030");
}

/// examples/sweep_all_tenants.sql, the function the pg_cron recipe of
/// docs/operations.md schedules, sweeps every tenant with holds due and
/// leaves the others alone; and so does its procedure, which commits per
/// batch.
#[test]
fn the_pg_cron_recipe_sweeps_every_tenant() {
    recipe_sweeps_every_tenant("SELECT spendguard_ops.expire_holds_all_tenants()");
    recipe_sweeps_every_tenant("CALL spendguard_ops.expire_holds_all_tenants_batched(NULL, 2)");
}

fn recipe_sweeps_every_tenant(sweep: &str) {
    let recipe = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/sweep_all_tenants.sql"
    ))
    .unwrap();
    let (ta, tb, tc) = (uniq("cron-a"), uniq("cron-b"), uniq("cron-c"));
    for (t, ttl) in [(&ta, SHORT_TTL), (&tb, SHORT_TTL), (&tc, LONG_TTL)] {
        let mut c = connect(t);
        for i in 0..3 {
            let op = Op::authorize("c", 5).hold(&format!("h{i}")).ttl(ttl);
            assert!(matches!(
                run(&mut c, &op),
                Outcome::Decision {
                    authorized: true,
                    ..
                }
            ));
        }
    }
    let mut admin = connect("default");
    admin.batch_execute(&recipe).unwrap();
    let n: i64 = admin.query_one(sweep, &[]).unwrap().get(0);
    // other tests' tenants may have due holds too: at least ours
    assert!(n >= 6, "{sweep}: {n}");
    for (t, disposition) in [(&ta, "expired"), (&tb, "expired"), (&tc, "open")] {
        let mut c = connect(t);
        for i in 0..3 {
            assert_eq!(
                hold(&mut c, &format!("h{i}")).unwrap().0,
                disposition,
                "{t}"
            );
        }
        assert_verified(&mut c);
    }
}

/// The references between tables are not foreign keys (pg_restore -j loads
/// tables in parallel, sql/bootstrap.sql): rows that lost what they refer
/// to, written behind the functions' back, are verify() rows instead. A
/// reservation without its hold is `reservation.hold`; a hold whose budget
/// row is gone is `usage.exists`; a checkpoint whose budget row is gone too.
#[test]
fn verify_reports_rows_whose_budget_or_hold_is_missing() {
    let tenant = uniq("orphans");
    let mut c = connect(&tenant);
    c.batch_execute(
        "SELECT spendguard.spend_set_group_budget('g', 1000, 'day'); \
         SELECT spendguard.spend_reserve('u', 'g', 100, 'r1'); \
         SELECT spendguard.budget_authorize_hold('b1', 0, 10, hold_id => 'h1'); \
         SELECT spendguard.budget_authorize_hold('b2', 0, 5, hold_id => 'h2'); \
         SELECT spendguard.budget_capture_hold(hold_id => 'h2', realized_spend => 5)",
    )
    .unwrap();
    c.execute(
        "SELECT spendguard.budget_retire_events(now(), 'b2', 0)",
        &[],
    )
    .unwrap();
    assert_verified(&mut c);
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .unwrap();
    // a reservation whose hold is gone: the hold and its events both go,
    // so nothing but the reservation says a hold is missing
    tx.execute(
        "INSERT INTO spendguard.spend_reservation (tenant_id, hold_id, user_id, group_id, day, \
         estimate_micros) VALUES ($1, 'r-lost', 'u', 'g', '2026-11-30', 5)",
        &[&tenant],
    )
    .unwrap();
    for table in [
        "budget_hold WHERE hold_id = 'h1'",
        "budget_usage WHERE capability_id IN ('b1', 'b2')",
    ] {
        tx.execute(
            &format!("DELETE FROM spendguard.{table} AND tenant_id = $1"),
            &[&tenant],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let rows = verify(&mut c);
    let has = |object: &str, check: &str| rows.iter().any(|r| r.0 == object && r.1 == check);
    assert!(has("reservation 'r-lost'", "reservation.hold"), "{rows:#?}");
    assert!(has("budget ('b1', 0)", "usage.exists"), "{rows:#?}");
    assert!(has("hold 'h1'", "hold.exists"), "{rows:#?}");
    // b2's events were retired: its checkpoint still names the budget
    assert!(has("budget ('b2', 0)", "usage.exists"), "{rows:#?}");
    assert!(!rows.iter().any(|r| r.0.contains("'r1'")), "{rows:#?}");
}
