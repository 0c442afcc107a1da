//! Retiring history (issue 11, sql/retire.sql): budget_retire_events folds
//! old events into per-budget checkpoints and deletes them, only where no
//! hold spans the cut; verify() stays exact, the state does not change, and
//! what is not retired keeps the append-only rule.

use postgres::Client;
use proptest::prelude::*;
use spendguard_it::model::Model;
use spendguard_it::strategies::{op, CAPS};
use spendguard_it::{
    assert_verified, connect, hold, race, run, snapshot, sqlstate, uniq, usage, verify, Op, Outcome,
};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// (capability_id, grant_index, retired_events, kept_events, through_seq)
type Retired = (String, i32, i64, i64, i64);

fn retire(c: &mut Client, cap: Option<&str>) -> Result<Vec<Retired>, postgres::Error> {
    c.query(
        "SELECT capability_id, grant_index, retired_events, kept_events, through_seq \
         FROM spendguard.budget_retire_events(now(), $1)",
        &[&cap],
    )
    .map(|rows| {
        rows.iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect()
    })
}

fn events(c: &mut Client) -> i64 {
    c.query_one(
        "SELECT count(*) FROM spendguard.budget_event WHERE tenant_id = spendguard.current_tenant()",
        &[],
    )
    .unwrap()
    .get(0)
}

/// event_seq of the tenant's events, oldest first, with kind and hold.
fn log(c: &mut Client, cap: &str) -> Vec<(i64, String, Option<String>)> {
    c.query(
        "SELECT event_seq, kind::text, hold_id FROM spendguard.budget_events(1000, $1, 0)",
        &[&cap],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

fn ok(c: &mut Client, op: &Op) -> Outcome {
    let out = run(c, op);
    assert!(!matches!(out, Outcome::Error(_)), "{op:?}: {out:?}");
    out
}

fn authorized(out: &Outcome) -> bool {
    matches!(
        out,
        Outcome::Decision {
            authorized: true,
            ..
        }
    )
}

/// The table of retirement: what each cut keeps, step by step, with exact
/// counts and cuts.
#[test]
fn retirement_cuts_only_where_no_hold_spans() {
    let mut c = connect(&uniq("retire-table"));
    ok(&mut c, &Op::authorize("a", 10).event("e1")); // 1
    ok(&mut c, &Op::authorize("a", 20).hold("h1")); // 2
    ok(&mut c, &Op::capture("h1", None, 15)); // 3
    ok(&mut c, &Op::authorize("a", 30).hold("h2")); // 4: stays open
    ok(&mut c, &Op::authorize("a", 5)); // 5
    ok(
        &mut c,
        &Op::authorize("a", 1000).limits(None, None, Some(100)),
    ); // 6: a denial
    let seqs: Vec<i64> = log(&mut c, "a").iter().map(|e| e.0).collect();
    assert_eq!(seqs.len(), 6);
    let before = usage(&mut c, "a", 0);

    // h2 is open: the cut is just before its authorization
    assert_eq!(
        retire(&mut c, None).unwrap(),
        vec![("a".to_string(), 0, 3, 3, seqs[2])]
    );
    assert_eq!(usage(&mut c, "a", 0), before);
    assert_eq!(
        log(&mut c, "a").iter().map(|e| e.0).collect::<Vec<_>>(),
        seqs[3..]
    );
    assert_verified(&mut c);
    // h1's row stays, closed; the checkpoint counts it
    assert_eq!(hold(&mut c, "h1"), Some(("reconciled".into(), 20, 0, 15)));
    let k: (i64, i64, i64, i64, i64, i64, i64) = {
        let r = c
            .query_one(
                "SELECT through_seq, events, invocation_count, total_cost_exposed, \
                 total_cost_realized, last_allowed_seq, retired_holds \
                 FROM spendguard.budget_checkpoints('a', 0)",
                &[],
            )
            .unwrap();
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
        )
    };
    assert_eq!(k, (seqs[2], 3, 2, 10, 15, seqs[2], 1));

    // nothing more can go while h2 is open
    assert_eq!(
        retire(&mut c, None).unwrap(),
        vec![("a".to_string(), 0, 0, 3, seqs[2])]
    );
    // h2 closes: everything goes, the denial too
    ok(&mut c, &Op::release("h2", None)); // 7
    let rows = retire(&mut c, None).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].2, rows[0].3), (4, 0));
    assert_eq!(events(&mut c), 0);
    assert_eq!(usage(&mut c, "a", 0), before_minus_release(before, 30));
    assert_verified(&mut c);
    // the budget goes on from its checkpoint
    ok(&mut c, &Op::authorize("a", 7).hold("h3"));
    ok(&mut c, &Op::capture("h3", None, 7));
    assert_verified(&mut c);
    // and a retry with a retired event_id is a new request: its key is gone
    let count = usage(&mut c, "a", 0).0;
    assert!(authorized(&ok(&mut c, &Op::authorize("a", 10).event("e1"))));
    assert_eq!(usage(&mut c, "a", 0).0, count + 1);
    assert_verified(&mut c);
    // nothing recorded before now() left to retire: no row
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.budget_retire_events('2000-01-01')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

fn before_minus_release(u: (i64, i64, i64), released: i64) -> (i64, i64, i64) {
    (u.0, u.1 - released, u.2)
}

/// A hold whose events straddle others: the cut moves back past every hold
/// that spans it (h1 spans h2's start, h2 is open).
#[test]
fn nested_spans_move_the_cut_back_to_a_free_point() {
    let mut c = connect(&uniq("retire-nested"));
    ok(&mut c, &Op::authorize("a", 1)); // 1
    ok(&mut c, &Op::authorize("a", 2).hold("h1")); // 2
    ok(&mut c, &Op::authorize("a", 3).hold("h2")); // 3
    ok(&mut c, &Op::release("h1", None)); // 4: h1 closes after h2 opened
    ok(&mut c, &Op::authorize("a", 4)); // 5
    let seqs: Vec<i64> = log(&mut c, "a").iter().map(|e| e.0).collect();
    // h2 (open) blocks 3.., so cut 3-1 = 2; but h1 spans [2, 4): cut 1
    assert_eq!(
        retire(&mut c, None).unwrap(),
        vec![("a".to_string(), 0, 1, 4, seqs[0])]
    );
    assert_verified(&mut c);
    ok(&mut c, &Op::reverse("h2", None)); // 6
    assert_eq!(retire(&mut c, None).unwrap()[0].2, 5);
    assert_eq!(events(&mut c), 0);
    assert_verified(&mut c);
    let retired_holds: i64 = c
        .query_one(
            "SELECT retired_holds FROM spendguard.budget_checkpoints('a', 0) \
             ORDER BY through_seq DESC LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(retired_holds, 2);
}

/// Events recorded at or after `before` stay, and so does everything after
/// the first of them (the retired part is a prefix of the history).
#[test]
fn only_a_prefix_recorded_before_the_time_goes() {
    let mut c = connect(&uniq("retire-time"));
    ok(&mut c, &Op::authorize("a", 1));
    ok(&mut c, &Op::authorize("a", 2));
    let mid: std::time::SystemTime = c.query_one("SELECT now()", &[]).unwrap().get(0);
    std::thread::sleep(Duration::from_millis(20));
    ok(&mut c, &Op::authorize("a", 3));
    let rows: Vec<(i64, i64)> = c
        .query(
            "SELECT retired_events, kept_events FROM spendguard.budget_retire_events($1::timestamptz + interval '10 ms')",
            &[&mid],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![(2, 0)]);
    assert_eq!(events(&mut c), 1);
    assert_verified(&mut c);
}

/// Bad input and the wrong isolation level: the right SQLSTATE and nothing
/// changed.
#[test]
fn bad_input_changes_nothing() {
    let mut c = connect(&uniq("retire-bad"));
    ok(&mut c, &Op::authorize("a", 1));
    assert_eq!(retire(&mut c, None).unwrap()[0].2, 1); // a checkpoint to attack
    ok(&mut c, &Op::authorize("a", 1));
    let before = snapshot(&mut c);
    let long = "x".repeat(1025);
    for (sql, code) in [
        ("SELECT * FROM spendguard.budget_retire_events(NULL)", "22004"),
        (
            "SELECT * FROM spendguard.budget_retire_events(now() + interval '1 day')",
            "22023",
        ),
        ("SELECT * FROM spendguard.budget_retire_events(now(), '')", "22023"),
        ("SELECT * FROM spendguard.budget_checkpoints('')", "22023"),
        (
            &format!("SELECT * FROM spendguard.budget_checkpoints('{long}')"),
            "22023",
        ),
        (
            &format!("SELECT * FROM spendguard.budget_retire_events(now(), '{long}')"),
            "22023",
        ),
        (
            "UPDATE spendguard.budget_checkpoint SET events = 0 \
             WHERE tenant_id = spendguard.current_tenant()",
            "42501",
        ),
        (
            "DELETE FROM spendguard.budget_checkpoint WHERE tenant_id = spendguard.current_tenant()",
            "42501",
        ),
        ("TRUNCATE spendguard.budget_checkpoint", "42501"),
        ("TRUNCATE spendguard.budget_event", "42501"),
        (
            "UPDATE spendguard.budget_event SET allowed = false \
             WHERE tenant_id = spendguard.current_tenant()",
            "42501",
        ),
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}");
    }
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    let e = tx
        .batch_execute("SELECT * FROM spendguard.budget_retire_events(now())")
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25000");
    drop(tx);
    assert_eq!(snapshot(&mut c), before);
    // the owner cannot delete an event no checkpoint covers
    let e = c
        .batch_execute(
            "DELETE FROM spendguard.budget_event WHERE tenant_id = spendguard.current_tenant()",
        )
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    assert_eq!(snapshot(&mut c), before);
}

/// History that does not verify is evidence: it is not retired (SG006),
/// and nothing changes.
#[test]
fn a_budget_that_does_not_verify_is_not_retired() {
    let tenant = uniq("retire-damaged");
    let mut c = connect(&tenant);
    ok(&mut c, &Op::authorize("a", 10));
    ok(&mut c, &Op::authorize("a", 10));
    c.batch_execute(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica; \
         UPDATE spendguard.budget_usage SET total_cost_exposed = 5 WHERE tenant_id = '{tenant}'; COMMIT"
    ))
    .unwrap();
    let before = snapshot(&mut c);
    let e = retire(&mut c, None).unwrap_err();
    assert_eq!(sqlstate(&e), "SG006");
    assert_eq!(snapshot(&mut c), before);
}

/// Damage to a checkpoint or to a retired hold shows in verify() by name.
#[test]
fn verify_checks_checkpoints_and_retired_holds() {
    let tenant = uniq("retire-verify");
    let mut c = connect(&tenant);
    ok(&mut c, &Op::authorize("a", 10).hold("h1"));
    ok(&mut c, &Op::capture("h1", None, 4));
    ok(&mut c, &Op::authorize("b", 10).hold("h2"));
    ok(&mut c, &Op::release("h2", None));
    ok(&mut c, &Op::authorize("c", 10).hold("h3"));
    ok(&mut c, &Op::reverse("h3", None));
    assert_eq!(retire(&mut c, None).unwrap().len(), 3);
    assert_eq!(events(&mut c), 0);
    assert_verified(&mut c);
    c.batch_execute(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica; \
         UPDATE spendguard.budget_checkpoint SET invocation_count = 3 \
           WHERE tenant_id = '{tenant}' AND capability_id = 'a'; \
         UPDATE spendguard.budget_hold SET disposition = 'open', remaining_exposure = 1 \
           WHERE tenant_id = '{tenant}' AND hold_id = 'h2'; \
         DELETE FROM spendguard.budget_hold WHERE tenant_id = '{tenant}' AND hold_id = 'h3'; \
         COMMIT"
    ))
    .unwrap();
    let rows = verify(&mut c);
    let has = |object: &str, check: &str| rows.iter().any(|r| r.0 == object && r.1 == check);
    assert!(
        has("budget ('a', 0)", "usage.invocation_count"),
        "{rows:#?}"
    );
    assert!(has("hold 'h2'", "hold.retired"), "{rows:#?}");
    assert!(
        has("budget ('c', 0)", "checkpoint.retired_holds"),
        "{rows:#?}"
    );
    // a checkpoint is a link of its budget's hash chain (SPEC §9)
    assert!(
        rows.iter()
            .any(|r| r.1 == "chain" && r.0.ends_with("of budget ('a', 0)")),
        "{rows:#?}"
    );
    assert_eq!(rows.len(), 5, "{rows:#?}"); // h2 also breaks b's exposure split
}

/// Retiring is not for callers: PUBLIC cannot run it, a role it is granted
/// to can.
#[test]
fn only_roles_granted_it_may_retire() {
    let mut admin = connect("default");
    let role = "sg_retire_test_app";
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$; \
             GRANT USAGE ON SCHEMA spendguard TO {role}"
        ))
        .unwrap();
    let tenant = uniq("retire-acl");
    let mut c = connect(&tenant);
    ok(&mut c, &Op::authorize("a", 1));
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(&format!("SET LOCAL ROLE {role}")).unwrap();
    let e = tx
        .batch_execute("SELECT * FROM spendguard.budget_retire_events(now())")
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    drop(tx);
    admin
        .batch_execute(&format!(
            "GRANT EXECUTE ON FUNCTION spendguard.budget_retire_events(timestamptz, text, integer) TO {role}"
        ))
        .unwrap();
    let mut tx = c.transaction().unwrap();
    tx.batch_execute(&format!("SET LOCAL ROLE {role}")).unwrap();
    let n: i64 = tx
        .query_one(
            "SELECT sum(retired_events)::int8 FROM spendguard.budget_retire_events(now())",
            &[],
        )
        .unwrap()
        .get(0);
    tx.commit().unwrap();
    assert_eq!(n, 1);
    admin
        .batch_execute(&format!(
            "REVOKE EXECUTE ON FUNCTION spendguard.budget_retire_events(timestamptz, text, integer) FROM {role}"
        ))
        .unwrap();
    assert_verified(&mut c);
}

/// One tenant's retirement leaves another's history alone.
#[test]
fn tenants_retire_their_own_history_only() {
    let (ta, tb) = (uniq("retire-ta"), uniq("retire-tb"));
    let mut a = connect(&ta);
    let mut b = connect(&tb);
    for c in [&mut a, &mut b] {
        ok(c, &Op::authorize("shared", 5).hold("h"));
        ok(c, &Op::capture("h", None, 5));
    }
    assert_eq!(retire(&mut a, Some("shared")).unwrap()[0].2, 2);
    assert_eq!(events(&mut a), 0);
    assert_eq!(events(&mut b), 2);
    assert_verified(&mut a);
    assert_verified(&mut b);
}

/// Reservations are holds on their own budgets: retiring them keeps the
/// user's spend figures.
#[test]
fn reservations_retire_like_holds() {
    let mut c = connect(&uniq("retire-spend"));
    c.batch_execute(
        "SELECT spendguard.spend_set_group_budget('g', 1000, 'day'); \
         SELECT spendguard.spend_reserve('u', 'g', 300, 'r1'); \
         SELECT spendguard.spend_settle('r1', 250); \
         SELECT spendguard.spend_reserve('u', 'g', 100, 'r2')",
    )
    .unwrap();
    let check = |c: &mut Client| -> (bool, i64) {
        let r = c
            .query_one(
                "SELECT allowed, spent_micros FROM spendguard.spend_check('u', 'g', 600)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let before = check(&mut c);
    assert_eq!(before, (true, 350));
    let retired: i64 = retire(&mut c, None).unwrap().iter().map(|r| r.2).sum();
    assert_eq!(retired, 2); // r1's two events; r2 is open
    assert_eq!(check(&mut c), before);
    c.batch_execute("SELECT spendguard.spend_settle('r2', 100)")
        .unwrap();
    let retired: i64 = retire(&mut c, None).unwrap().iter().map(|r| r.2).sum();
    assert_eq!(retired, 2);
    assert_eq!(check(&mut c), before);
    assert_verified(&mut c);
}

/// Writers on one budget race retirements of it: every call that took
/// effect is either still in the log or in a checkpoint, and verify()
/// stays clean throughout.
#[test]
fn retirement_races_writers_on_the_same_budget() {
    let tenant = uniq("retire-race");
    let writes = race(&tenant, 5, |i, c| {
        let deadline = Instant::now() + Duration::from_millis(2500);
        let mut events = 0i64;
        let mut n = 0;
        while Instant::now() < deadline {
            if i == 0 {
                let r: i64 = c
                    .query_one(
                        "SELECT coalesce(sum(retired_events), 0)::int8 \
                         FROM spendguard.budget_retire_events(now(), 'hot')",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                events -= r; // counted as retired
                continue;
            }
            let h = format!("w{i}-{n}");
            n += 1;
            if authorized(&run(
                c,
                &Op::authorize("hot", 3)
                    .hold(&h)
                    .limits(None, None, Some(60)),
            )) {
                events += 1;
                let last = if n % 3 == 0 {
                    Op::reverse(&h, None)
                } else {
                    Op::capture(&h, None, 2)
                };
                assert!(!matches!(run(c, &last), Outcome::Error(_)));
            }
            events += 1; // the authorize's event (or the denial's)
        }
        events
    });
    let mut c = connect(&tenant);
    let written: i64 = writes[1..].iter().sum();
    let retired = -writes[0];
    let retired_total: i64 = c
        .query_one(
            "SELECT coalesce(max(events), 0) FROM spendguard.budget_checkpoints('hot', 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(retired, retired_total);
    assert!(retired > 0, "nothing was retired");
    assert_eq!(events(&mut c) + retired, written);
    assert_verified(&mut c);
}

/// examples/retire_history.sql retires the named tenants one budget per
/// transaction and keeps (and reports) a budget that does not verify.
#[test]
fn the_retire_recipe_serves_every_tenant_named() {
    let recipe = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/retire_history.sql"
    ))
    .unwrap();
    let (ta, tb) = (uniq("recipe-a"), uniq("recipe-b"));
    for t in [&ta, &tb] {
        let mut c = connect(t);
        for cap in ["x", "y"] {
            ok(&mut c, &Op::authorize(cap, 5).hold(&format!("h-{cap}")));
            ok(&mut c, &Op::capture(&format!("h-{cap}"), None, 5));
        }
    }
    let mut admin = connect("default");
    admin.batch_execute(&recipe).unwrap();
    admin
        .batch_execute(&format!(
            "BEGIN; SET LOCAL session_replication_role = replica; \
             UPDATE spendguard.budget_usage SET invocation_count = 9 \
             WHERE tenant_id = '{tb}' AND capability_id = 'y'; COMMIT"
        ))
        .unwrap();
    let res = admin
        .simple_query(&format!(
            "CALL spendguard_ops.retire_history(now(), ARRAY['{ta}', '{tb}'])"
        ))
        .unwrap();
    let row = res
        .iter()
        .find_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .unwrap();
    let retired: i64 = row.get(0).unwrap().parse().unwrap();
    let broken: i32 = row.get(1).unwrap().parse().unwrap();
    assert_eq!((retired, broken), (6, 1));
    let mut a = connect(&ta);
    assert_eq!(events(&mut a), 0);
    assert_verified(&mut a);
    let mut b = connect(&tb);
    assert_eq!(events(&mut b), 2); // y's history kept as evidence
}

#[derive(Clone, Debug)]
enum Step {
    Call(Box<Op>),
    Retire,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![10 => op().prop_map(|o| Step::Call(Box::new(o))), 2 => Just(Step::Retire)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    /// The model-vs-database test with retirements at random points: a
    /// retirement changes no counter and no hold, verify() stays clean, the
    /// log shrinks by exactly what was retired, and the calls after it still
    /// agree with the model (which forgets the event ids the log lost).
    #[test]
    fn retiring_at_any_point_keeps_the_model_and_verify(steps in prop::collection::vec(step(), 1..40)) {
        let mut c = connect(&uniq("retire-model"));
        let mut m = Model::default();
        for (i, s) in steps.iter().chain(std::iter::once(&Step::Retire)).enumerate() {
            match s {
                Step::Call(op) => {
                    let want = m.apply(op);
                    let got = run(&mut c, op);
                    prop_assert_eq!(&got, &want, "step {}: {:?}", i, op);
                }
                Step::Retire => {
                    let n_before = events(&mut c);
                    let retired: i64 = retire(&mut c, None).unwrap().iter().map(|r| r.2).sum();
                    prop_assert_eq!(events(&mut c), n_before - retired, "step {}", i);
                    let broken = verify(&mut c);
                    prop_assert!(broken.is_empty(), "step {}: verify() found: {:?}", i, broken);
                    let kept: HashSet<String> = c
                        .query(
                            "SELECT event_id FROM spendguard.budget_event \
                             WHERE tenant_id = spendguard.current_tenant() AND event_id IS NOT NULL",
                            &[],
                        )
                        .unwrap()
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                    m.forget_events_except(&kept);
                }
            }
            for cap in CAPS {
                let b = m.budget(cap, 0);
                prop_assert_eq!(usage(&mut c, cap, 0), (b.count, b.exposed, b.realized), "step {} totals of {}", i, cap);
            }
        }
        for (id, h) in &m.holds {
            prop_assert_eq!(
                hold(&mut c, id),
                Some((h.disposition.to_string(), h.authorized, h.remaining, h.realized)),
                "hold {}", id
            );
        }
        let broken = verify(&mut c);
        prop_assert!(broken.is_empty(), "verify() found: {:?}", broken);
    }
}
