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

/// SPEC §0: ids are at most 1,024 bytes. Random text (incompressible: it
/// used to fail with 54000 from the index code) and a 100 KB run of one
/// letter (it compresses, and used to be accepted) are both 22023 for every
/// id argument of §1, with nothing changed; 1,024 bytes are accepted.
#[test]
fn ids_longer_than_1024_bytes_are_22023_everywhere() {
    let tenant = uniq("idlen");
    let mut c = connect(&tenant);
    run(&mut c, &Op::authorize("c", 10).hold("h"));
    // 1,025 bytes of pseudo-random hex, and 100 KB of one letter
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let random: String = (0..1025)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from_digit((x % 16) as u32, 16).unwrap()
        })
        .collect();
    let repeated = "a".repeat(100_000);
    for long in [random.as_str(), repeated.as_str()] {
        let ops = [
            Op::authorize(long, 1),
            Op::authorize("c", 1).hold(long),
            Op::authorize("c", 1).event(long),
            Op::authorize("c", 1).hold("h2").auth(long, "l", 1),
            Op::authorize("c", 1).hold("h2").auth("a", long, 1),
            Op::release(long, None),
            Op::release("h", None).event(long),
            Op::release("h", Some(1)).on(long),
            Op::reverse(long, None),
            Op::capture("h", None, 1).event(long),
            Op::reconcile(long, None, 1),
            Op::budget(spendguard_it::Kind::Release, long, 1, None),
            Op::increment(long, None),
            Op::increment("c", None).event(long),
        ];
        for op in ops {
            expect_rejected(&mut c, &op, "22023");
        }
        for sql in [
            "SELECT * FROM spendguard.budget_usage($1, 0)",
            "SELECT * FROM spendguard.budget_usages(10, $1)",
            "SELECT * FROM spendguard.budget_holds(capability_id => $1)",
            "SELECT * FROM spendguard.budget_holds(hold_id => $1)",
            "SELECT * FROM spendguard.budget_events(10, $1)",
            "SELECT * FROM spendguard.verify($1)",
            "SELECT set_config('spendguard.tenant', $1, true), spendguard.budget_authorize_hold('c', 0, 1)",
            "SELECT set_config('spendguard.tenant', $1, true), spendguard.current_tenant()",
        ] {
            let before = snapshot(&mut c);
            let e = c.query(sql, &[&long]).unwrap_err();
            assert_eq!(spendguard_it::sqlstate(&e), "22023", "{sql}: {e}");
            assert_eq!(snapshot(&mut c), before, "state changed after {sql}");
        }
    }
    // exactly 1,024 bytes is an id like any other
    let max = "m".repeat(1024);
    assert!(matches!(
        run(&mut c, &Op::authorize(&max, 1).hold(&max).event(&max)),
        Outcome::Decision {
            authorized: true,
            ..
        }
    ));
    assert_eq!(
        run(&mut c, &Op::release(&max, None).event(&"e".repeat(1024))),
        spendguard_it::mutated("release_exposure", 1, 0, 0, 1)
    );
    spendguard_it::assert_verified(&mut c);
}
