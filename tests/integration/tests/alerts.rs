//! Alerts (SPEC §7) under concurrency: ten connections charging one
//! budget across 80 % write exactly one 80 % alert; consumers claiming at
//! the same time never hold one alert together and, between them, claim
//! every alert; the NOTIFY wake-up arrives on commit and never for a
//! rolled-back crossing.

use postgres::fallible_iterator::FallibleIterator;
use spendguard_it::{app_role, assert_verified, connect, race, sqlstate, uniq};
use std::collections::BTreeSet;
use std::time::Duration;

#[test]
fn ten_connections_across_80_percent_write_one_alert() {
    for round in 0..5 {
        let tenant = uniq("alert-race");
        let mut c = connect(&tenant);
        let scope = format!("org:r{round}");
        c.execute(
            "SELECT spendguard.scope_set_budget($1, 'day', 1000, alert_percents => '{50,80,100}')",
            &[&scope],
        )
        .unwrap();
        c.execute("SELECT spendguard.scope_charge(ARRAY[$1], 700)", &[&scope])
            .unwrap();
        let s = scope.clone();
        // each connection charges 15 four times: of the 40 charges, 20 fit
        // (700 -> 1000), crossing 80 % once and reaching 100 % once; the
        // others are denied, and the first denial writes one blocked alert
        let allowed: Vec<usize> = race(&tenant, 10, move |_, c| {
            (0..4)
                .filter(|_| {
                    c.query_one(
                        "SELECT allowed FROM spendguard.scope_charge(ARRAY[$1], 15)",
                        &[&s],
                    )
                    .unwrap()
                    .get::<_, bool>(0)
                })
                .count()
        });
        assert_eq!(allowed.iter().sum::<usize>(), 20);
        let rows: Vec<(String, Option<i32>, i64)> = c
            .query(
                "SELECT kind, percent, spent_micros FROM spendguard.alerts(scope => $1) ORDER BY id",
                &[&scope],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        // 50 % fired by the first charge (700), then exactly one 80 % (the
        // charge that took spend from 790 to 805), one 100 % and one blocked
        assert_eq!(
            rows,
            [
                ("threshold".to_string(), Some(50), 700),
                ("threshold".to_string(), Some(80), 805),
                ("threshold".to_string(), Some(100), 1000),
                ("blocked".to_string(), None, 1000),
            ],
            "round {round}"
        );
        assert_verified(&mut c);
    }
}

#[test]
fn consumers_claiming_at_once_never_share_an_alert() {
    let tenant = uniq("alert-claim");
    let mut c = connect(&tenant);
    for i in 0..200 {
        let scope = format!("key:{i}");
        c.execute(
            "SELECT spendguard.scope_set_budget($1, 'total', 10, alert_percents => '{100}')",
            &[&scope],
        )
        .unwrap();
        c.execute("SELECT spendguard.scope_charge(ARRAY[$1], 10)", &[&scope])
            .unwrap();
    }
    let claimed: Vec<Vec<i64>> = race(&tenant, 6, |i, c| {
        let mut mine = Vec::new();
        loop {
            let ids: Vec<i64> = c
                .query(
                    "SELECT id FROM spendguard.alert_claim($1, 7, '1 hour')",
                    &[&format!("consumer-{i}")],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            if ids.is_empty() {
                break;
            }
            mine.extend(ids);
        }
        mine
    });
    let mut all = BTreeSet::new();
    for ids in &claimed {
        for id in ids {
            assert!(all.insert(*id), "alert {id} was claimed twice");
        }
    }
    assert_eq!(all.len(), 200, "every alert claimed once");
    // acked by one consumer, none is claimable again; before the acks, the
    // leases held them
    let acked: i64 = c
        .query_one(
            "SELECT spendguard.alert_ack(ARRAY(SELECT id FROM spendguard.alerts()))",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(acked, 200);
    let again: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.alert_claim('late', 1000, '1 second')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(again, 0);
    assert_verified(&mut c);
    // claiming and acking across tenants is for a delivery role an admin
    // grants it to: not for PUBLIC (an application role)
    app_role(&mut c, "sg_alert_app");
    for sql in [
        "SELECT * FROM spendguard.alert_claim_all('x')",
        "SELECT spendguard.alert_ack_all('{1}')",
    ] {
        c.batch_execute("SET ROLE sg_alert_app").unwrap();
        let e = c.batch_execute(sql).unwrap_err();
        c.batch_execute("RESET ROLE").unwrap();
        assert_eq!(sqlstate(&e), "42501", "{sql}");
    }
    // while the tenant's own claim is open to it
    c.batch_execute("SET ROLE sg_alert_app").unwrap();
    c.batch_execute("SELECT * FROM spendguard.alert_claim('app', 1)")
        .unwrap();
    c.batch_execute("RESET ROLE").unwrap();
}

#[test]
fn the_wake_up_comes_on_commit_only() {
    let tenant = uniq("alert-notify");
    let mut listener = connect(&tenant);
    listener.batch_execute("LISTEN spendguard_alerts").unwrap();
    let mut c = connect(&tenant);
    c.execute(
        "SELECT spendguard.scope_set_budget('org:n', 'day', 100, alert_percents => '{50}')",
        &[],
    )
    .unwrap();
    // rolled back: no alert, no wake-up
    c.batch_execute("BEGIN; SELECT spendguard.scope_charge(ARRAY['org:n'], 60); ROLLBACK;")
        .unwrap();
    // the channel is shared by every tenant (tests run in parallel): only
    // this tenant's wake-ups count
    let mine = |listener: &mut postgres::Client, wait: Duration| -> usize {
        let mut n = listener.notifications();
        let mut it = n.timeout_iter(wait);
        let mut count = 0;
        while let Some(m) = it.next().unwrap() {
            assert_eq!(m.channel(), "spendguard_alerts");
            count += usize::from(m.payload() == tenant);
        }
        count
    };
    assert_eq!(
        mine(&mut listener, Duration::from_millis(500)),
        0,
        "a rolled-back crossing woke a listener"
    );
    // committed: one wake-up with the tenant
    c.execute("SELECT spendguard.scope_charge(ARRAY['org:n'], 60)", &[])
        .unwrap();
    assert_eq!(mine(&mut listener, Duration::from_secs(1)), 1);
    // a call that writes no new alert sends none
    c.execute("SELECT spendguard.scope_charge(ARRAY['org:n'], 1)", &[])
        .unwrap();
    assert_eq!(mine(&mut listener, Duration::from_millis(500)), 0);
}
