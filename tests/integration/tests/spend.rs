//! Daily spend, period budgets and reservations (SPEC §2): UTC days across
//! time zones, week and month boundaries, overrides, reservations, bad
//! input with nothing changed, and races that must be exact.

// assert_eq!(x, false) reads as one more line of the table here
#![allow(clippy::bool_assert_comparison)]

use postgres::types::ToSql;
use postgres::Client;
use spendguard_it::{assert_verified, connect, race, snapshot, sqlstate, uniq};

fn one(c: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> i64 {
    c.query_one(sql, params).unwrap().get(0)
}

/// (allowed, spent, limit, remaining, period_start) of a spend_decision call.
type Decision = (bool, i64, Option<i64>, Option<i64>, String);

fn decide(c: &mut Client, f: &str, user: &str, group: &str, cost: i64, at: &str) -> Decision {
    let r = c
        .query_one(
            &format!(
                "SELECT allowed, spent_micros, limit_micros, remaining_micros, period_start::text \
                 FROM spendguard.{f}($1, $2, $3, $4::text::timestamptz)"
            ),
            &[&user, &group, &cost, &at],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
}

fn charge(c: &mut Client, user: &str, group: &str, cost: i64, at: &str) -> Decision {
    decide(c, "spend_charge", user, group, cost, at)
}

fn day_of(c: &mut Client, user: &str, at: &str) -> String {
    c.query_one(
        "SELECT day::text FROM spendguard.spend_upsert_daily($1, 'g', $2::text::timestamptz, 100)",
        &[&user, &at],
    )
    .unwrap()
    .get(0)
}

#[test]
fn utc_days_whatever_the_time_zone_of_the_argument() {
    let mut c = connect(&uniq("tz"));
    assert_eq!(day_of(&mut c, "u", "2026-06-22 23:30-05"), "2026-06-23");
    assert_eq!(day_of(&mut c, "u", "2026-06-22 12:00Z"), "2026-06-22");
    assert_eq!(day_of(&mut c, "u", "2026-06-23 00:30+02"), "2026-06-22");
    assert_eq!(day_of(&mut c, "v", "2026-06-23 08:00+09"), "2026-06-22");
    // the session time zone changes nothing either
    c.batch_execute("SET TimeZone = 'America/New_York'")
        .unwrap();
    assert_eq!(day_of(&mut c, "w", "2026-06-22 23:30"), "2026-06-23");
    // same day, same row: it accumulates
    let total: i64 = c
        .query_one(
            "SELECT spend_micros FROM spendguard.spend_upsert_daily('u', 'g', '2026-06-23 10:00Z', 5)",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(total, 105);
    // a period start of 22:00-05 is 03:00 UTC the next day: counts from 06-23
    let since = |c: &mut Client, start: &str| {
        one(
            c,
            "SELECT spendguard.spend_since('u', 'g', $1::text::timestamptz)",
            &[&start],
        )
    };
    assert_eq!(since(&mut c, "2026-06-22 22:00-05"), 105);
    assert_eq!(since(&mut c, "2026-06-22 00:00Z"), 305);
    assert_eq!(since(&mut c, "2026-06-24 00:00Z"), 0);
    assert_eq!(
        one(
            &mut c,
            "SELECT spendguard.spend_group_since('g', '2026-06-22 22:00-05')",
            &[]
        ),
        205,
        "u's 105 and w's 100 on 06-23; v's 100 and u's 100 were on 06-22"
    );
    assert_eq!(
        one(
            &mut c,
            "SELECT spendguard.spend_group_since('nobody', now())",
            &[]
        ),
        0
    );
}

#[test]
fn week_and_month_periods_and_the_last_second_of_a_period() {
    let mut c = connect(&uniq("periods"));
    c.batch_execute(
        "SELECT spendguard.spend_set_group_budget('gw', 100, 'week'); \
         SELECT spendguard.spend_set_group_budget('gm', 100, 'month'); \
         SELECT spendguard.spend_set_group_budget('gd', 100, 'day')",
    )
    .unwrap();
    let ok = |spent, start: &str| (true, spent, Some(100), Some(100 - spent), start.to_string());
    let no = |spent, start: &str| {
        (
            false,
            spent,
            Some(100),
            Some(100 - spent),
            start.to_string(),
        )
    };
    // Sunday 2026-06-28 23:59:59 is the last second of the week from Monday 06-22
    assert_eq!(
        charge(&mut c, "u", "gw", 60, "2026-06-22 00:00:00Z"),
        ok(60, "2026-06-22")
    );
    assert_eq!(
        charge(&mut c, "u", "gw", 40, "2026-06-28 23:59:59Z"),
        ok(100, "2026-06-22")
    );
    assert_eq!(
        charge(&mut c, "u", "gw", 1, "2026-06-28 23:59:59.999999Z"),
        no(100, "2026-06-22")
    );
    // Monday 00:00 starts a new week at 0
    assert_eq!(
        charge(&mut c, "u", "gw", 100, "2026-06-29 00:00:00Z"),
        ok(100, "2026-06-29")
    );
    // months: June's last second, then July at 0
    assert_eq!(
        charge(&mut c, "u", "gm", 90, "2026-06-01 00:00Z"),
        ok(90, "2026-06-01")
    );
    assert_eq!(
        charge(&mut c, "u", "gm", 11, "2026-06-30 23:59:59.999999Z"),
        no(90, "2026-06-01")
    );
    assert_eq!(
        charge(&mut c, "u", "gm", 10, "2026-06-30 23:59:59.999999Z"),
        ok(100, "2026-06-01")
    );
    assert_eq!(
        charge(&mut c, "u", "gm", 11, "2026-07-01 00:00Z"),
        ok(11, "2026-07-01")
    );
    // December into January, and a leap February
    assert_eq!(
        charge(&mut c, "u", "gm", 100, "2026-12-31 23:59:59Z"),
        ok(100, "2026-12-01")
    );
    assert_eq!(
        charge(&mut c, "u", "gm", 1, "2027-01-01 00:00Z"),
        ok(1, "2027-01-01")
    );
    assert_eq!(
        charge(&mut c, "u", "gm", 5, "2028-02-29 12:00Z"),
        ok(5, "2028-02-01")
    );
    // days, in another zone: 23:30-05 on 06-22 is 06-23 UTC
    assert_eq!(
        charge(&mut c, "u", "gd", 100, "2026-06-22 23:30-05"),
        ok(100, "2026-06-23")
    );
    assert_eq!(
        charge(&mut c, "u", "gd", 1, "2026-06-23 18:59:59-05"),
        no(100, "2026-06-23")
    );
    assert_eq!(
        charge(&mut c, "u", "gd", 1, "2026-06-23 19:00:00-05"),
        ok(1, "2026-06-24")
    );
    // check reads the same period and records nothing
    let before = snapshot(&mut c);
    assert_eq!(
        decide(&mut c, "spend_check", "u", "gw", 0, "2026-06-28 12:00Z"),
        ok(100, "2026-06-22")
    );
    assert_eq!(
        decide(&mut c, "spend_check", "u", "gw", 1, "2026-06-28 12:00Z"),
        no(100, "2026-06-22")
    );
    assert_eq!(snapshot(&mut c), before);
    for bad in ["year", "Day", "", "weekly"] {
        let e = c
            .execute(
                "SELECT spendguard.spend_set_group_budget('gx', 1, $1)",
                &[&bad],
            )
            .unwrap_err();
        assert_eq!(sqlstate(&e), "22023", "{bad}");
    }
}

#[test]
fn the_override_beats_the_group_budget_and_either_can_be_removed() {
    let mut c = connect(&uniq("override"));
    let at = "2026-06-22 12:00Z";
    c.batch_execute(
        "SELECT spendguard.spend_set_group_budget('g', 100, 'day'); \
         SELECT spendguard.spend_set_user_override('u', 'g', 10)",
    )
    .unwrap();
    assert_eq!(charge(&mut c, "u", "g", 11, at).0, false);
    assert_eq!(
        charge(&mut c, "v", "g", 11, at),
        (true, 11, Some(100), Some(89), "2026-06-22".into())
    );
    assert_eq!(
        charge(&mut c, "u", "g", 10, at),
        (true, 10, Some(10), Some(0), "2026-06-22".into())
    );
    // the override can be raised above the group budget
    c.batch_execute("SELECT spendguard.spend_set_user_override('u', 'g', 500)")
        .unwrap();
    assert_eq!(
        charge(&mut c, "u", "g", 200, at),
        (true, 210, Some(500), Some(290), "2026-06-22".into())
    );
    // removed: the group budget applies again (210 already spent > 100)
    c.batch_execute("SELECT spendguard.spend_set_user_override('u', 'g', NULL)")
        .unwrap();
    assert_eq!(
        charge(&mut c, "u", "g", 1, at),
        (false, 210, Some(100), Some(0), "2026-06-22".into())
    );
    // group removed: no limit at all
    c.batch_execute("SELECT spendguard.spend_set_group_budget('g', NULL, NULL)")
        .unwrap();
    assert_eq!(
        charge(&mut c, "u", "g", 1000, at),
        (true, 1210, None, None, "2026-06-22".into())
    );
    // an override alone limits per UTC day
    c.batch_execute("SELECT spendguard.spend_set_user_override('w', 'g', 5)")
        .unwrap();
    assert_eq!(charge(&mut c, "w", "g", 5, at).0, true);
    assert_eq!(charge(&mut c, "w", "g", 1, at).0, false);
    assert_eq!(
        charge(&mut c, "w", "g", 5, "2026-06-23 00:00Z"),
        (true, 5, Some(5), Some(0), "2026-06-23".into())
    );
    // enforce raises SG020 and records nothing
    let before = snapshot(&mut c);
    let e = c
        .query_one(
            "SELECT * FROM spendguard.spend_charge_enforce('w', 'g', 1, '2026-06-23 01:00Z')",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&e), "SG020");
    let msg = e.as_db_error().unwrap().message().to_string();
    assert!(msg.contains("user \"w\" in group \"g\""), "{msg}");
    assert_eq!(snapshot(&mut c), before);
    let r = c
        .query_one(
            "SELECT allowed FROM spendguard.spend_charge_enforce('w', 'g', 0, '2026-06-23 01:00Z')",
            &[],
        )
        .unwrap();
    assert!(r.get::<_, bool>(0));
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut c = connect(&uniq("spend-bad"));
    c.batch_execute(
        "SELECT spendguard.spend_upsert_daily('u', 'g', '2026-06-22 12:00Z', 100); \
         SELECT spendguard.spend_set_group_budget('g', 1000, 'day'); \
         SELECT spendguard.spend_reserve('u', 'g', 10, 'r', now()); \
         SELECT spendguard.budget_authorize_hold('c', 0, 1, hold_id => 'plain')",
    )
    .unwrap();
    let long = "x".repeat(1025);
    let cases: Vec<(String, &str)> = vec![
        // a negative delta, even though the row's total would stay >= 0
        ("SELECT spendguard.spend_upsert_daily('u', 'g', '2026-06-22 13:00Z', -1)".into(), "22023"),
        ("SELECT spendguard.spend_upsert_daily(NULL, 'g', now(), 1)".into(), "22004"),
        ("SELECT spendguard.spend_upsert_daily('u', NULL, now(), 1)".into(), "22004"),
        ("SELECT spendguard.spend_upsert_daily('u', 'g', NULL, 1)".into(), "22004"),
        ("SELECT spendguard.spend_upsert_daily('u', 'g', now(), NULL)".into(), "22004"),
        ("SELECT spendguard.spend_upsert_daily('u', 'g', 'infinity', 1)".into(), "22023"),
        ("SELECT spendguard.spend_upsert_daily('', 'g', now(), 1)".into(), "22023"),
        (format!("SELECT spendguard.spend_upsert_daily('{long}', 'g', now(), 1)"), "22023"),
        (format!("SELECT spendguard.spend_upsert_daily('u', '{long}', now(), 1)"), "22023"),
        (
            "SELECT spendguard.spend_upsert_daily('u', 'g', '2026-06-22 13:00Z', 9223372036854775807)".into(),
            "22003",
        ),
        ("SELECT spendguard.spend_since('u', 'g', NULL)".into(), "22004"),
        ("SELECT spendguard.spend_group_since(NULL, now())".into(), "22004"),
        ("SELECT spendguard.spend_set_group_budget('g', -1, 'day')".into(), "22023"),
        ("SELECT spendguard.spend_set_group_budget('g', 5, NULL)".into(), "22004"),
        ("SELECT spendguard.spend_set_group_budget('g', 5, 'fortnight')".into(), "22023"),
        ("SELECT spendguard.spend_set_user_override('u', 'g', -5)".into(), "22023"),
        ("SELECT spendguard.spend_set_user_override(NULL, 'g', 5)".into(), "22004"),
        ("SELECT spendguard.spend_check('u', 'g', -1)".into(), "22023"),
        ("SELECT spendguard.spend_charge('u', 'g', -1)".into(), "22023"),
        ("SELECT spendguard.spend_charge('u', 'g', NULL)".into(), "22004"),
        ("SELECT spendguard.spend_charge_enforce('u', 'g', 1, NULL)".into(), "22004"),
        ("SELECT spendguard.spend_reserve('u', 'g', -1, 'r2')".into(), "22023"),
        ("SELECT spendguard.spend_reserve('u', 'g', 1, NULL)".into(), "22004"),
        ("SELECT spendguard.spend_reserve('u', 'g', 1, 'r2', ttl => '0')".into(), "22023"),
        ("SELECT spendguard.spend_reserve('u', 'g', 1, 'r2', ttl => '-1 minute')".into(), "22023"),
        ("SELECT spendguard.spend_reserve('u', 'g', 1, 'r2', ttl => NULL)".into(), "22004"),
        (format!("SELECT spendguard.spend_reserve('u', 'g', 1, '{long}')"), "22023"),
        // a hold id opens once, reservation or not
        ("SELECT spendguard.spend_reserve('u', 'g', 1, 'r')".into(), "SG003"),
        ("SELECT spendguard.spend_reserve('u', 'g', 1, 'plain')".into(), "SG003"),
        ("SELECT spendguard.spend_settle('r', -1)".into(), "22023"),
        ("SELECT spendguard.spend_settle('r', NULL)".into(), "22004"),
        ("SELECT spendguard.spend_settle(NULL, 1)".into(), "22004"),
        ("SELECT spendguard.spend_settle('nope', 1)".into(), "SG001"),
        // a §1 hold is not a reservation
        ("SELECT spendguard.spend_settle('plain', 1)".into(), "SG001"),
        ("SELECT spendguard.spend_cancel('plain')".into(), "SG001"),
        ("SELECT spendguard.spend_cancel('')".into(), "22023"),
        ("SELECT spendguard.spend_purge(NULL)".into(), "22004"),
        ("SELECT spendguard.spend_purge('infinity')".into(), "22023"),
    ];
    for (sql, code) in cases {
        let before = snapshot(&mut c);
        let e = c.batch_execute(&sql).unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}: {e}");
        assert_eq!(snapshot(&mut c), before, "state changed after {sql}");
    }
    assert_eq!(
        one(
            &mut c,
            "SELECT spendguard.spend_since('u', 'g', '2026-06-22')",
            &[]
        ),
        100
    );
    assert_verified(&mut c);
}

/// (allowed, spent, reserved, limit, remaining, hold_id, expires_at set)
fn reserve(
    c: &mut Client,
    user: &str,
    estimate: i64,
    hold: &str,
    ttl: &str,
) -> (bool, i64, i64, Option<i64>, Option<i64>, bool) {
    let r = c
        .query_one(
            "SELECT allowed, spent_micros, reserved_micros, limit_micros, remaining_micros, \
             expires_at IS NOT NULL FROM spendguard.spend_reserve($1, 'g', $2, $3, \
             '2026-06-22 12:00Z', $4::text::interval)",
            &[&user, &estimate, &hold, &ttl],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5))
}

fn settle(c: &mut Client, hold: &str, cost: i64) -> Result<(String, i64), String> {
    c.query_one(
        "SELECT day::text, spend_micros FROM spendguard.spend_settle($1, $2)",
        &[&hold, &cost],
    )
    .map(|r| (r.get(0), r.get(1)))
    .map_err(|e| sqlstate(&e))
}

#[test]
fn reservations_settle_cancel_expire_and_count() {
    let mut c = connect(&uniq("reserve"));
    let at = "2026-06-22 12:00Z";
    c.batch_execute("SELECT spendguard.spend_set_group_budget('g', 1000, 'day')")
        .unwrap();
    let lim = Some(1000);
    assert_eq!(
        reserve(&mut c, "u", 400, "r1", "15 minutes"),
        (true, 0, 400, lim, Some(600), true)
    );
    // the reservation counts: 700 more does not fit
    assert_eq!(
        reserve(&mut c, "u", 700, "r2", "15 minutes"),
        (false, 0, 400, lim, Some(600), false)
    );
    assert_eq!(decide(&mut c, "spend_check", "u", "g", 600, at).0, true);
    assert_eq!(decide(&mut c, "spend_check", "u", "g", 601, at).0, false);
    assert_eq!(charge(&mut c, "u", "g", 601, at).0, false);
    assert_eq!(
        charge(&mut c, "u", "g", 500, at),
        (true, 900, lim, Some(100), "2026-06-22".into())
    );
    // settle below the estimate: the real cost is recorded, the rest freed
    assert_eq!(settle(&mut c, "r1", 300), Ok(("2026-06-22".into(), 800)));
    assert_eq!(
        decide(&mut c, "spend_check", "u", "g", 200, at),
        (true, 800, lim, Some(200), "2026-06-22".into())
    );
    // settle above the estimate: spend that happened is recorded, even over the limit
    assert_eq!(reserve(&mut c, "u", 100, "r3", "15 minutes").0, true);
    assert_eq!(settle(&mut c, "r3", 450), Ok(("2026-06-22".into(), 1250)));
    assert_eq!(
        decide(&mut c, "spend_check", "u", "g", 0, at),
        (false, 1250, lim, Some(0), "2026-06-22".into())
    );
    // once: settled or cancelled again is SG002, unknown is SG001
    assert_eq!(settle(&mut c, "r3", 1), Err("SG002".into()));
    let e = c
        .batch_execute("SELECT spendguard.spend_cancel('r3')")
        .unwrap_err();
    assert_eq!(sqlstate(&e), "SG002");
    assert_eq!(settle(&mut c, "r9", 1), Err("SG001".into()));
    // cancel frees the estimate without spend
    assert_eq!(reserve(&mut c, "v", 999, "c1", "15 minutes").0, true);
    assert_eq!(reserve(&mut c, "v", 2, "c2", "15 minutes").0, false);
    c.batch_execute("SELECT spendguard.spend_cancel('c1')")
        .unwrap();
    assert_eq!(settle(&mut c, "c1", 5), Err("SG002".into()));
    assert_eq!(
        reserve(&mut c, "v", 1000, "c3", "15 minutes"),
        (true, 0, 1000, lim, Some(0), true)
    );
    assert_eq!(
        one(
            &mut c,
            "SELECT spendguard.spend_since('v', 'g', '2026-06-22')",
            &[]
        ),
        0
    );
    // expiry frees the budget without a sweep
    assert_eq!(reserve(&mut c, "w", 1000, "e1", "1 microsecond").0, true);
    assert_eq!(
        decide(&mut c, "spend_check", "w", "g", 1000, at).0,
        true,
        "an expired reservation no longer counts"
    );
    assert_eq!(
        reserve(&mut c, "w", 1000, "e2", "15 minutes"),
        (true, 0, 1000, lim, Some(0), true)
    );
    // ... and is still settled late: the spend happened
    assert_eq!(settle(&mut c, "e1", 70), Ok(("2026-06-22".into(), 70)));
    assert_eq!(settle(&mut c, "e1", 70), Err("SG002".into()));
    assert_eq!(settle(&mut c, "e2", 10), Ok(("2026-06-22".into(), 80)));
    // the holds carried the estimates; their log folds
    let holds: Vec<(String, String)> = c
        .query(
            "SELECT hold_id, disposition FROM spendguard.budget_holds(100) ORDER BY hold_id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let want: Vec<(String, String)> = [
        ("c1", "released"),
        ("c3", "open"),
        // past its expiry it stopped counting; no sweep ran, and the late
        // settle closed its hold as the sweep would have: expired
        ("e1", "expired"),
        ("e2", "released"),
        ("r1", "released"),
        ("r3", "released"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(holds, want);
    assert_verified(&mut c);
    // purge drops old days and says how many
    assert_eq!(
        one(&mut c, "SELECT spendguard.spend_purge('2026-06-23')", &[]),
        2
    );
    assert_eq!(
        one(&mut c, "SELECT spendguard.spend_purge('2026-06-23')", &[]),
        0
    );
}

#[test]
fn ten_connections_never_charge_past_the_limit() {
    let tenant = uniq("spend-race");
    let mut c = connect(&tenant);
    c.batch_execute("SELECT spendguard.spend_set_group_budget('g', 1000, 'day')")
        .unwrap();
    let wins: usize = race(&tenant, 10, |_, c| {
        (0..30)
            .filter(|_| charge(c, "u", "g", 7, "2026-06-22 12:00Z").0)
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(wins, 1000 / 7);
    assert_eq!(
        one(
            &mut c,
            "SELECT spendguard.spend_since('u', 'g', '2026-06-22')",
            &[]
        ),
        7 * 142
    );
    assert_verified(&mut c);
}

#[test]
fn ten_connections_never_reserve_past_the_limit() {
    let tenant = uniq("reserve-race");
    let mut c = connect(&tenant);
    c.batch_execute("SELECT spendguard.spend_set_group_budget('g', 1000, 'day')")
        .unwrap();
    let wins: usize = race(&tenant, 10, |i, c| {
        (0..30)
            .filter(|n| reserve(c, "u", 7, &format!("r{i}-{n}"), "15 minutes").0)
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(wins, 1000 / 7);
    // charges and reservations share the limit: nothing more fits
    assert_eq!(charge(&mut c, "u", "g", 7, "2026-06-22 12:00Z").0, false);
    assert_eq!(
        decide(&mut c, "spend_check", "u", "g", 6, "2026-06-22 12:00Z").0,
        true,
        "994 reserved, 6 left"
    );
    assert_verified(&mut c);
}
