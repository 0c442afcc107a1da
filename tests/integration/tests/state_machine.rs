//! SPEC §1 as a table: each line one call with its exact expected outcome,
//! run in order in a fresh tenant. Covers every hold transition, every
//! denial reason and every SG00x code (SG030 in tenants.rs).

use spendguard_it::{connect, hold, mutated, run, uniq, usage, Kind, Op, Outcome};

const REL: &str = "release_exposure";
const REV: &str = "reverse_exposure";
const REC: &str = "reconcile_spend";

fn ok(committed: i64, count: i64) -> Outcome {
    Outcome::authorized(committed, count)
}
fn deny(reason: &str, committed: i64, count: i64) -> Outcome {
    Outcome::denied(reason, committed, count)
}
fn err(code: &str) -> Outcome {
    Outcome::err(code)
}
fn some(v: i64) -> Option<i64> {
    Some(v)
}

#[test]
fn hold_lifecycle_table() {
    let mut c = connect(&uniq("sm"));
    let table: Vec<(Op, Outcome)> = vec![
        // authorize: limits are checked count, per-call, total; exactly at a limit passes
        (
            Op::authorize("c", 30)
                .limits(None, None, some(100))
                .hold("h1"),
            ok(30, 1),
        ),
        (
            Op::authorize("c", 50)
                .limits(None, None, some(100))
                .hold("h2"),
            ok(80, 2),
        ),
        (
            Op::authorize("c", 30)
                .limits(None, None, some(100))
                .hold("hx"),
            deny("max_total_cost", 80, 2),
        ),
        (
            Op::authorize("c", 20).limits(None, None, some(100)),
            ok(100, 3),
        ),
        (
            Op::authorize("c", 1).limits(some(3), None, None),
            deny("max_invocations", 100, 3),
        ),
        (
            Op::authorize("c", 11).limits(None, some(10), None),
            deny("max_cost_per_invocation", 100, 3),
        ),
        (
            Op::authorize("c", 0).limits(some(4), some(0), some(100)),
            ok(100, 4),
        ),
        // a denied authorize opens no hold: hx does not exist
        (Op::release("hx", None), err("SG001")),
        // a hold id opens once
        (Op::authorize("c", 0).hold("h1"), err("SG003")),
        // release: partial, too much, then capture the rest
        (Op::release("h1", some(10)), mutated(REL, 10, 0, 90, 4)),
        (Op::release("h1", some(25)), err("SG003")),
        (Op::reverse("h1", some(19)), err("SG003")),
        (Op::reconcile("h1", some(19), 1), err("SG003")),
        (Op::reconcile("h1", some(20), 21), err("SG006")),
        (Op::capture("h1", None, 15), mutated(REC, 20, 15, 85, 4)),
        (Op::release("h1", None), err("SG002")),
        (Op::capture("h1", None, 0), err("SG002")),
        // reverse: exposure back and one invocation less
        (Op::reverse("h2", None), mutated(REV, 50, 0, 35, 3)),
        (Op::reverse("h2", None), err("SG002")),
        (Op::release("h2", some(0)), err("SG002")),
        (Op::release("nope", None), err("SG001")),
        // the budget given with a hold id must be the hold's
        (Op::authorize("c", 5).hold("h3"), ok(40, 4)),
        (Op::release("h3", some(1)).on("other"), err("SG003")),
        (
            Op::release("h3", some(1)).on("c"),
            mutated(REL, 1, 0, 39, 4),
        ),
        (Op::release("h3", None), mutated(REL, 4, 0, 35, 4)),
        (Op::release("h3", some(0)), err("SG002")),
        // a zero hold released by 0 closes
        (Op::authorize("c", 0).hold("h0"), ok(35, 5)),
        (Op::release("h0", some(0)), mutated(REL, 0, 0, 35, 5)),
        (Op::release("h0", some(0)), err("SG002")),
        // budget-level mutations (no hold): every shortfall is SG006
        (Op::budget(Kind::Release, "c", 21, None), err("SG006")),
        (
            Op::budget(Kind::Release, "c", 5, None),
            mutated(REL, 5, 0, 30, 5),
        ),
        (Op::budget(Kind::Reconcile, "c", 5, Some(6)), err("SG006")),
        (
            Op::budget(Kind::Reconcile, "c", 5, Some(5)),
            mutated(REC, 5, 5, 30, 5),
        ),
        (
            Op::budget(Kind::Reverse, "c", 10, None),
            mutated(REV, 10, 0, 20, 4),
        ),
        (Op::budget(Kind::Reverse, "empty", 0, None), err("SG006")),
        (Op::budget(Kind::Release, "empty", 1, None), err("SG006")),
        // fencing
        (
            Op::authorize("f", 10)
                .hold("hf")
                .auth("node-a", "lease-1", 2),
            ok(10, 1),
        ),
        (
            Op::release("hf", some(1)).auth("node-a", "lease-1", 1),
            err("SG005"),
        ),
        (
            Op::release("hf", some(1)).auth("node-a", "lease-1", 3),
            err("SG005"),
        ),
        (
            Op::release("hf", some(1)).auth("node-a", "lease-2", 2),
            err("SG005"),
        ),
        (
            Op::release("hf", some(1)).auth("node-b", "lease-1", 2),
            err("SG005"),
        ),
        (Op::release("hf", some(1)), err("SG005")),
        (
            Op::release("hf", some(1)).auth("node-a", "lease-1", 2),
            mutated(REL, 1, 0, 9, 1),
        ),
        (Op::authorize("f", 1).hold("hg"), ok(10, 2)),
        (
            Op::release("hg", None).auth("node-a", "lease-1", 2),
            err("SG005"),
        ),
        (Op::release("hg", None), mutated(REL, 1, 0, 9, 2)),
        // idempotency: replay returns the record, another request is SG004
        (
            Op::authorize("i", 10)
                .limits(None, None, some(10))
                .event("e1"),
            ok(10, 1),
        ),
        (
            Op::authorize("i", 10)
                .limits(None, None, some(10))
                .event("e1"),
            ok(10, 1),
        ),
        (
            Op::authorize("i", 11)
                .limits(None, None, some(10))
                .event("e1"),
            err("SG004"),
        ),
        (
            Op::authorize("j", 10)
                .limits(None, None, some(10))
                .event("e1"),
            err("SG004"),
        ),
        (
            Op::budget(Kind::Release, "i", 10, None).event("e1"),
            err("SG004"),
        ),
        (
            Op::authorize("i", 5)
                .limits(None, None, some(10))
                .event("e2"),
            deny("max_total_cost", 10, 1),
        ),
        (
            Op::budget(Kind::Reverse, "i", 10, None).event("e3"),
            mutated(REV, 10, 0, 0, 0),
        ),
        (
            Op::budget(Kind::Reverse, "i", 10, None).event("e3"),
            mutated(REV, 10, 0, 0, 0),
        ),
        // a replayed denial is denied again although budget is free now
        (
            Op::authorize("i", 5)
                .limits(None, None, some(10))
                .event("e2"),
            deny("max_total_cost", 10, 1),
        ),
        (Op::authorize("i", 5).limits(None, None, some(10)), ok(5, 1)),
        // a failed call records nothing: its event id stays free
        (Op::release("nope", None).event("e4"), err("SG001")),
        (
            Op::increment("i", None).event("e4"),
            Outcome::Increment(true),
        ),
        (
            Op::increment("i", None).event("e4"),
            Outcome::Increment(true),
        ),
        // try_increment
        (Op::increment("k", Some(2)), Outcome::Increment(true)),
        (Op::increment("k", Some(2)), Outcome::Increment(true)),
        (Op::increment("k", Some(2)), Outcome::Increment(false)),
        (Op::increment("k", None), Outcome::Increment(true)),
        (Op::increment("k", Some(0)), Outcome::Increment(false)),
        // bigint edges
        (Op::authorize("m", i64::MAX), ok(i64::MAX, 1)),
        (Op::authorize("m", 1), err("22003")),
        (
            Op::authorize("m", 1).limits(None, None, some(i64::MAX)),
            deny("max_total_cost", i64::MAX, 1),
        ),
        (Op::authorize("m", 0), ok(i64::MAX, 2)),
    ];
    for (i, (op, want)) in table.iter().enumerate() {
        let got = run(&mut c, op);
        assert_eq!(&got, want, "line {i}: {op:?}");
    }
    // the holds ended where the table left them
    assert_eq!(hold(&mut c, "h1"), Some(("reconciled".into(), 30, 0, 15)));
    assert_eq!(hold(&mut c, "h2"), Some(("reversed".into(), 50, 0, 0)));
    assert_eq!(hold(&mut c, "h3"), Some(("released".into(), 5, 0, 0)));
    assert_eq!(hold(&mut c, "hf"), Some(("open".into(), 10, 9, 0)));
    assert_eq!(hold(&mut c, "hx"), None);
    assert_eq!(usage(&mut c, "c", 0), (4, 0, 20));
    assert_eq!(usage(&mut c, "k", 0), (3, 0, 0));
    spendguard_it::assert_verified(&mut c);
}

#[test]
fn commit_index_is_increasing_along_a_budget() {
    let mut c = connect(&uniq("seq"));
    let mut last = 0i64;
    for i in 0..20 {
        let idx: Option<i64> = c
            .query_one(
                "SELECT commit_index FROM spendguard.budget_authorize_hold('s', 0, 1, hold_id => $1)",
                &[&format!("h{i}")],
            )
            .unwrap()
            .get(0);
        let seq: i64 = c
            .query_one("SELECT seq FROM spendguard.budget_usage('s', 0)", &[])
            .unwrap()
            .get(0);
        let idx = idx.expect("an authorized call has a commit index");
        assert!(idx > last, "commit index {idx} after {last}");
        assert_eq!(idx, seq, "the budget's seq is its last commit index");
        last = idx;
        let m: i64 = c
            .query_one(
                "SELECT commit_index FROM spendguard.budget_release_hold(hold_id => $1)",
                &[&format!("h{i}")],
            )
            .unwrap()
            .get(0);
        assert!(m > last);
        last = m;
    }
    // the log lists the same indexes in commit order, denials included
    let seqs: Vec<i64> = c
        .query(
            "SELECT event_seq FROM spendguard.budget_events(1000, 's', 0)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(seqs.len(), 40);
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(*seqs.last().unwrap(), last);
    // a denial gets no commit index
    let idx: Option<i64> = c
        .query_one(
            "SELECT commit_index FROM spendguard.budget_authorize_hold('s', 0, 1, max_invocations => 0)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(idx, None);
}

#[test]
fn event_log_is_append_only() {
    let mut c = connect(&uniq("ao"));
    run(&mut c, &Op::authorize("a", 1));
    for sql in [
        "UPDATE spendguard.budget_event SET allowed = NOT allowed",
        "DELETE FROM spendguard.budget_event",
        "TRUNCATE spendguard.budget_event",
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        assert_eq!(spendguard_it::sqlstate(&e), "42501", "{sql}");
    }
    let n: i64 = c
        .query_one("SELECT count(*) FROM spendguard.budget_events()", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[test]
fn budget_term_and_guarantee_level() {
    let mut c = connect(&uniq("term"));
    let r = c
        .query_one(
            "SELECT budget_term, guarantee_level FROM spendguard.budget_authorize_hold('t', 0, 1, \
             hold_id => 'h', authority_id => 'node-a', lease_id => 'l', lease_epoch => 7)",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some("node-a:7"));
    assert_eq!(r.get::<_, String>(1), "single_node_atomic");
    let r = c
        .query_one(
            "SELECT budget_term FROM spendguard.budget_release_hold(hold_id => 'h', \
             authority_id => 'node-a', lease_id => 'l', lease_epoch => 7)",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, Option<String>>(0).as_deref(), Some("node-a:7"));
    // synchronous_commit alone (no standby named) stays single-node
    c.batch_execute("SET synchronous_commit = remote_apply")
        .unwrap();
    let lvl: String = c
        .query_one("SELECT spendguard.guarantee_level()", &[])
        .unwrap()
        .get(0);
    assert_eq!(lvl, "single_node_atomic");
}
