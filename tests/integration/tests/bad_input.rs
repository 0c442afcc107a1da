//! Every bad input gets its SQLSTATE and changes nothing (SPEC §0).

use spendguard_it::{connect, run, snapshot, uniq, Kind, Op, Outcome};

fn expect_rejected(c: &mut postgres::Client, op: &Op, code: &str) {
    let before = snapshot(c);
    assert_eq!(run(c, op), Outcome::err(code), "{op:?}");
    assert_eq!(snapshot(c), before, "state changed after {op:?}");
}

fn sql_rejected(c: &mut postgres::Client, sql: &str, code: &str) {
    let before = snapshot(c);
    let e = c.batch_execute(sql).unwrap_err();
    assert_eq!(spendguard_it::sqlstate(&e), code, "{sql}: {e}");
    assert_eq!(snapshot(c), before, "state changed after {sql}");
}

#[test]
fn negative_amounts_and_limits_are_22023() {
    let mut c = connect(&uniq("bad"));
    run(&mut c, &Op::authorize("c", 10).hold("h"));
    for op in [
        Op::authorize("c", -1),
        Op::authorize("c", i64::MIN),
        Op::authorize("c", 1).limits(Some(-1), None, None),
        Op::authorize("c", 1).limits(None, Some(-1), None),
        Op::authorize("c", 1).limits(None, None, Some(-1)),
        Op::authorize("c", 1).hold("h2").auth("a", "l", -1),
        Op::release("h", Some(-1)),
        Op::reverse("h", Some(-1)),
        Op::reconcile("h", Some(-1), 0),
        Op::reconcile("h", None, -1),
        Op::capture("h", None, i64::MIN),
        Op::budget(Kind::Release, "c", -5, None),
        Op::increment("c", Some(-1)),
    ] {
        expect_rejected(&mut c, &op, "22023");
    }
    sql_rejected(
        &mut c,
        "SELECT spendguard.budget_authorize_hold('c', -1, 1)",
        "22023",
    );
}

#[test]
fn empty_ids_and_partial_authority_are_22023() {
    let mut c = connect(&uniq("bad"));
    run(&mut c, &Op::authorize("c", 10).hold("h"));
    for op in [
        Op::authorize("", 1),
        Op::authorize("c", 1).hold(""),
        Op::authorize("c", 1).event(""),
        Op::authorize("c", 1).auth("", "l", 1),
        Op::authorize("c", 1).auth("a", "", 1),
        Op::release("", None),
        Op::release("h", None).event(""),
        Op::increment("", None),
        Op::increment("c", None).event(""),
    ] {
        expect_rejected(&mut c, &op, "22023");
    }
    for sql in [
        "SELECT spendguard.budget_authorize_hold('c', 0, 1, authority_id => 'a')",
        "SELECT spendguard.budget_authorize_hold('c', 0, 1, authority_id => 'a', lease_id => 'l')",
        "SELECT spendguard.budget_release_hold(hold_id => 'h', lease_epoch => 1)",
        "SELECT spendguard.budget_holds(disposition => 'closed')",
    ] {
        sql_rejected(&mut c, sql, "22023");
    }
}

#[test]
fn null_required_arguments_are_22004_not_null_results() {
    let mut c = connect(&uniq("bad"));
    run(&mut c, &Op::authorize("c", 10).hold("h"));
    for sql in [
        "SELECT spendguard.budget_authorize_hold(NULL, 0, 1)",
        "SELECT spendguard.budget_authorize_hold('c', NULL, 1)",
        "SELECT spendguard.budget_authorize_hold('c', 0, NULL)",
        "SELECT spendguard.budget_release_hold('c', 0, NULL)",
        "SELECT spendguard.budget_release_hold(NULL, 0, 1)",
        "SELECT spendguard.budget_release_hold('c', NULL, 1)",
        "SELECT spendguard.budget_reverse_hold('c', 0, NULL)",
        "SELECT spendguard.budget_reconcile_hold('c', 0, 1, NULL)",
        "SELECT spendguard.budget_reconcile_hold(hold_id => 'h')",
        "SELECT spendguard.budget_capture_hold(hold_id => 'h', realized_spend => NULL)",
        "SELECT spendguard.budget_try_increment(NULL, 0, 1)",
        "SELECT spendguard.budget_try_increment('c', NULL, 1)",
        "SELECT spendguard.budget_release_hold()",
    ] {
        sql_rejected(&mut c, sql, "22004");
    }
    // try_increment's NULL limit means "no limit", not "no answer"
    let r: Option<bool> = c
        .query_one("SELECT spendguard.budget_try_increment('c', 0, NULL)", &[])
        .unwrap()
        .get(0);
    assert_eq!(r, Some(true));
}

#[test]
fn totals_near_2_pow_63_are_22003() {
    let mut c = connect(&uniq("bad"));
    assert!(matches!(
        run(&mut c, &Op::authorize("c", i64::MAX - 1)),
        Outcome::Decision {
            authorized: true,
            ..
        }
    ));
    expect_rejected(&mut c, &Op::authorize("c", 2), "22003");
    expect_rejected(&mut c, &Op::authorize("c", i64::MAX), "22003");
    // realized + exposed stay within bigint: capture of everything fits
    run(
        &mut c,
        &Op::budget(Kind::Reconcile, "c", i64::MAX - 1, Some(i64::MAX - 1)),
    );
    expect_rejected(&mut c, &Op::authorize("c", 2), "22003");
    // arguments beyond bigint are refused by PostgreSQL itself
    sql_rejected(
        &mut c,
        "SELECT spendguard.budget_authorize_hold('c', 0, '9223372036854775808'::text::bigint)",
        "22003",
    );
}

#[test]
fn failed_calls_leave_no_event_and_no_hold() {
    let mut c = connect(&uniq("bad"));
    run(&mut c, &Op::authorize("c", 10).hold("h").event("e"));
    for (op, code) in [
        (Op::release("h", Some(11)).event("e2"), "SG003"),
        (Op::authorize("c", 1).hold("h").event("e3"), "SG003"),
        (Op::authorize("c", 2).event("e"), "SG004"),
        (
            Op::release("h", None).auth("a", "l", 1).event("e4"),
            "SG005",
        ),
        (
            Op::budget(Kind::Release, "c", 11, None).event("e5"),
            "SG006",
        ),
        (Op::release("zz", None).event("e6"), "SG001"),
    ] {
        expect_rejected(&mut c, &op, code);
    }
    assert_eq!(
        run(&mut c, &Op::release("h", None).event("e2")).clone(),
        spendguard_it::mutated("release_exposure", 10, 0, 0, 1)
    );
    expect_rejected(&mut c, &Op::release("h", None).event("e7"), "SG002");
}
