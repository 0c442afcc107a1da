//! Maintenance that never stalls a decision (issue 21 part 5):
//! `budget_expire_holds_all` and `budget_retire_events_all` do the work of
//! `budget_expire_holds` and `budget_retire_events` in small transactions,
//! so a decision on a budget they touch waits for one batch or one budget,
//! not for the whole call. Checked here: they do all the work (every due
//! hold expired once, every retirable event retired), `verify()` is clean,
//! decisions on the swept budgets complete while the procedure is still
//! running, bad input and a call inside a transaction block change nothing.
//! The waits are printed (measured, not asserted: docs/performance.md).

use postgres::Client;
use spendguard_it::{connect, sqlstate, uniq};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BUDGETS: i32 = 200;
const HOLDS: i32 = 10;

/// `BUDGETS` budgets with `HOLDS` holds each, due in an hour.
fn setup(c: &mut Client) {
    c.batch_execute(&format!(
        "SELECT spendguard.budget_authorize_hold('b' || (i % {BUDGETS}), 0, 1, \
           hold_id => 'h' || i, ttl => '1 hour') \
         FROM generate_series(0, {} - 1) i",
        BUDGETS * HOLDS
    ))
    .unwrap();
}

/// Authorizes on budget b7 until `stop`, recording each call's latency and
/// when it ended.
fn decider(tenant: String, stop: Arc<AtomicBool>, out: Arc<Mutex<Vec<(Instant, Duration)>>>) {
    let mut c = connect(&tenant);
    while !stop.load(Ordering::Relaxed) {
        let t = Instant::now();
        c.query_one(
            "SELECT authorized FROM spendguard.budget_authorize_hold('b7', 0, 1)",
            &[],
        )
        .unwrap();
        out.lock().unwrap().push((Instant::now(), t.elapsed()));
    }
}

/// Runs `sql` while the decider calls; returns (its result, how long it
/// took, the longest decision, decisions that ended while it ran).
fn under_decisions(tenant: &str, sql: &str) -> (i64, Duration, Duration, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Vec::new()));
    let d = {
        let (t, s, o) = (tenant.to_string(), stop.clone(), out.clone());
        std::thread::spawn(move || decider(t, s, o))
    };
    std::thread::sleep(Duration::from_millis(100));
    let mut c = connect(tenant);
    let started = Instant::now();
    let n: i64 = c.query_one(sql, &[]).unwrap().get(0);
    let ended = Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    d.join().unwrap();
    let calls = out.lock().unwrap();
    let during: Vec<_> = calls
        .iter()
        .filter(|(end, _)| *end > started && *end < ended)
        .collect();
    let longest = calls.iter().map(|x| x.1).max().unwrap_or_default();
    (n, ended - started, longest, during.len())
}

fn verify(c: &mut Client) -> Vec<String> {
    c.query("SELECT format('%s', v) FROM spendguard.verify() v", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn the_sweep_commits_per_batch() {
    // (n: what the CALL expired while a decision looped on budget b7)
    let tenant = uniq("maint-sweep");
    let mut c = connect(&tenant);
    setup(&mut c);
    let (n, took, longest, during) = under_decisions(
        &tenant,
        "CALL spendguard.budget_expire_holds_all(NULL, now() + interval '2 hours', 100)",
    );
    // a batch skips the decider's budget while it is busy (SKIP LOCKED):
    // only its holds may be left, for the next sweep
    assert!(n >= i64::from((BUDGETS - 1) * HOLDS), "expired {n}");
    let rest: i64 = c
        .query_one(
            "CALL spendguard.budget_expire_holds_all(NULL, now() + interval '2 hours', 100)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        n + rest,
        i64::from(BUDGETS * HOLDS),
        "every due hold expired once"
    );
    let open: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.budget_holds(lim => 100000, disposition => 'open') \
             WHERE hold_id LIKE 'h%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(open, 0);
    assert!(verify(&mut c).is_empty(), "{:?}", verify(&mut c));
    assert!(
        during > 0,
        "no decision on a swept budget ended while the sweep ran ({took:?})"
    );
    // the same sweep as one call, for comparison (not asserted)
    let tenant2 = uniq("maint-sweep-one");
    let mut c2 = connect(&tenant2);
    setup(&mut c2);
    let (n2, took2, longest2, during2) = under_decisions(
        &tenant2,
        "SELECT spendguard.budget_expire_holds(now() + interval '2 hours', 100000)",
    );
    assert!(n2 >= i64::from((BUDGETS - 1) * HOLDS), "expired {n2}");
    println!(
        "sweep of {n} holds of {BUDGETS} budgets: CALL budget_expire_holds_all took {:.3} s \
         ({:.0} holds/s), longest concurrent decision {:.1} ms, {during} decisions during it; \
         one budget_expire_holds call: {:.3} s, longest decision {:.1} ms, {during2} during it",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        longest.as_secs_f64() * 1e3,
        took2.as_secs_f64(),
        longest2.as_secs_f64() * 1e3
    );
}

#[test]
fn retiring_everything_commits_per_budget() {
    let tenant = uniq("maint-retire");
    let mut c = connect(&tenant);
    setup(&mut c);
    c.batch_execute(
        "SELECT spendguard.budget_release_hold(hold_id => 'h' || i) FROM generate_series(0, 1999) i",
    )
    .unwrap();
    let events: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.budget_event WHERE tenant_id = spendguard.current_tenant()",
            &[],
        )
        .unwrap()
        .get(0);
    // the cut: after every event above, before any of the decider's
    std::thread::sleep(Duration::from_millis(20));
    let cut: String = c
        .query_one("SELECT clock_timestamp()::text", &[])
        .unwrap()
        .get(0);
    std::thread::sleep(Duration::from_millis(20));
    let (n, took, longest, during) = under_decisions(
        &tenant,
        &format!("CALL spendguard.budget_retire_events_all('{cut}')"),
    );
    assert_eq!(n, events, "every event recorded before the cut retired");
    let left: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.retire_candidates($1::text::timestamptz)",
            &[&cut],
        )
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "budgets still holding retirable history");
    assert!(verify(&mut c).is_empty(), "{:?}", verify(&mut c));
    assert!(
        during > 0,
        "no decision on a retired budget ended while retirement ran ({took:?})"
    );
    println!(
        "retiring {n} events of {BUDGETS} budgets: CALL budget_retire_events_all took {:.3} s \
         ({:.0} events/s, {:.2} ms a budget), longest concurrent decision {:.1} ms, \
         {during} decisions during it",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / f64::from(BUDGETS),
        longest.as_secs_f64() * 1e3
    );
}

#[test]
fn bad_input_and_a_transaction_block_change_nothing() {
    let tenant = uniq("maint-bad");
    let mut c = connect(&tenant);
    c.batch_execute(
        "SELECT spendguard.budget_authorize_hold('b', 0, 1, hold_id => 'x', ttl => '1 hour')",
    )
    .unwrap();
    for batch in ["0", "-1", "10001", "NULL"] {
        let e = c
            .batch_execute(&format!(
                "CALL spendguard.budget_expire_holds_all(NULL, now() + interval '2 hours', {batch})"
            ))
            .expect_err(batch);
        assert_eq!(sqlstate(&e), "22023", "batch {batch}: {e:?}");
    }
    let e = c
        .batch_execute("CALL spendguard.budget_retire_events_all(NULL)")
        .expect_err("NULL before");
    assert_eq!(sqlstate(&e), "22004", "{e:?}");
    // the pin's tenant (sql/citus.sql; nothing to pin without Citus) is
    // bounded like every id
    for (arg, code) in [
        ("NULL", "22004"),
        ("''", "22023"),
        ("repeat('t', 1025)", "22023"),
    ] {
        let e = c
            .batch_execute(&format!("SELECT spendguard.citus_pin_tenant({arg})"))
            .expect_err(arg);
        assert_eq!(sqlstate(&e), code, "citus_pin_tenant({arg}): {e:?}");
    }
    c.batch_execute("SELECT spendguard.citus_pin_tenant(repeat('t', 1024))")
        .unwrap();
    // inside a transaction block the procedures' COMMIT is refused, and the
    // transaction's work with it
    let mut t = c.transaction().unwrap();
    let e = t
        .batch_execute("CALL spendguard.budget_expire_holds_all(NULL, now() + interval '2 hours')")
        .expect_err("in a transaction block");
    assert_eq!(sqlstate(&e), "2D000", "{e:?}");
    drop(t);
    let disposition: String = c
        .query_one(
            "SELECT disposition FROM spendguard.budget_holds(hold_id => 'x')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(disposition, "open");
    assert!(verify(&mut c).is_empty());
}
