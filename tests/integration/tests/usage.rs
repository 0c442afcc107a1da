//! Rolling-window token and call caps (SPEC §3): pods sharing one cap,
//! integrations and tools independent, the window sliding, exact races,
//! bad input with nothing changed.

use postgres::Client;
use spendguard_it::{connect, race, snapshot, sqlstate, uniq};

/// (allowed, used, remaining)
type Cap = (bool, i64, i64);

fn cap(c: &mut Client, sql: &str) -> Cap {
    let r = c
        .query_one(&format!("SELECT allowed, used, remaining FROM {sql}"), &[])
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn record(c: &mut Client, integration: &str, tokens: i64, ago: &str) {
    c.execute(
        "SELECT spendguard.usage_record($1, 'user', 'p', $2, $3, 'gpt', 'conv-1', now() - $4::text::interval)",
        &[&integration, &(tokens / 2), &(tokens - tokens / 2), &ago],
    )
    .unwrap();
}

#[test]
fn two_pods_share_one_cap_and_other_integrations_are_not_blocked() {
    let tenant = uniq("pods");
    let (mut pod_a, mut pod_b) = (connect(&tenant), connect(&tenant));
    let check = "spendguard.usage_cap_check('i1', 'user', 'p', 100, '1 hour')";
    for i in 0..4 {
        let pod = if i % 2 == 0 { &mut pod_a } else { &mut pod_b };
        record(pod, "i1", 30, "0 seconds");
        let used = 30 * (i + 1);
        let want = (used < 100, used, (100 - used).max(0));
        assert_eq!(cap(&mut pod_a, check), want);
        assert_eq!(cap(&mut pod_b, check), want);
    }
    let e = pod_b
        .batch_execute("SELECT spendguard.usage_cap_enforce('i1', 'user', 'p', 100, '1 hour')")
        .unwrap_err();
    assert_eq!(sqlstate(&e), "SG020");
    // another integration, another principal: not blocked
    assert_eq!(
        cap(
            &mut pod_a,
            "spendguard.usage_cap_check('i2', 'user', 'p', 100, '1 hour')"
        ),
        (true, 0, 100)
    );
    assert_eq!(
        cap(
            &mut pod_a,
            "spendguard.usage_cap_check('i1', 'user', 'q', 100, '1 hour')"
        ),
        (true, 0, 100)
    );
    assert_eq!(
        cap(
            &mut pod_a,
            "spendguard.usage_cap_check('i1', 'application', 'p', 100, '1 hour')"
        ),
        (true, 0, 100)
    );
    // the window slides: use older than the window drops out
    record(&mut pod_a, "i3", 70, "2 hours");
    record(&mut pod_a, "i3", 20, "30 minutes");
    assert_eq!(
        cap(
            &mut pod_a,
            "spendguard.usage_cap_check('i3', 'user', 'p', 100, '1 hour')"
        ),
        (true, 20, 80)
    );
    assert_eq!(
        cap(
            &mut pod_a,
            "spendguard.usage_cap_check('i3', 'user', 'p', 100, '3 hours')"
        ),
        (true, 90, 10)
    );
    assert_eq!(
        cap(
            &mut pod_a,
            "spendguard.usage_cap_check('i3', 'user', 'p', 90, '3 hours')"
        ),
        (false, 90, 0)
    );
    // charges: at the cap exactly, then not past it
    let charge = "spendguard.usage_cap_charge('i3', 'user', 'p', 80, 100, '1 hour')";
    assert_eq!(cap(&mut pod_b, charge), (true, 100, 0));
    assert_eq!(cap(&mut pod_a, charge), (false, 100, 0));
    // call caps: per principal and tool
    let call = |c: &mut Client, tool: &str| {
        cap(
            c,
            &format!("spendguard.call_cap_charge('user', 'p', '{tool}', 2, '1 hour')"),
        )
    };
    assert_eq!(call(&mut pod_a, "search"), (true, 1, 1));
    assert_eq!(call(&mut pod_b, "search"), (true, 2, 0));
    assert_eq!(call(&mut pod_a, "search"), (false, 2, 0));
    assert_eq!(call(&mut pod_b, "email"), (true, 1, 1));
    // purge: events recorded before a time are gone, and counted
    let purged: i64 = pod_a
        .query_one(
            "SELECT spendguard.usage_purge(now() - interval '1 hour')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(purged, 1, "the event of two hours ago");
    assert_eq!(
        cap(
            &mut pod_a,
            "spendguard.usage_cap_check('i3', 'user', 'p', 1000, '3 hours')"
        ),
        (true, 100, 900)
    );
}

#[test]
fn ten_connections_charge_token_and_call_caps_exactly() {
    let tenant = uniq("cap-race");
    let tokens: usize = race(&tenant, 10, |_, c| {
        (0..30)
            .filter(|_| {
                cap(
                    c,
                    "spendguard.usage_cap_charge('i', 'user', 'p', 7, 1000, '1 hour')",
                )
                .0
            })
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(tokens, 1000 / 7);
    let calls: usize = race(&tenant, 10, |_, c| {
        (0..10)
            .filter(|_| {
                cap(
                    c,
                    "spendguard.call_cap_charge('application', 'bot', 'deploy', 37, '1 day')",
                )
                .0
            })
            .count()
    })
    .into_iter()
    .sum();
    assert_eq!(calls, 37);
    let mut c = connect(&tenant);
    assert_eq!(
        cap(
            &mut c,
            "spendguard.usage_cap_check('i', 'user', 'p', 1000, '1 hour')"
        ),
        (true, 994, 6)
    );
    spendguard_it::assert_verified(&mut c);
}

#[test]
fn bad_usage_input_is_refused_and_changes_nothing() {
    let mut c = connect(&uniq("usage-bad"));
    record(&mut c, "i", 10, "0 seconds");
    let long = "x".repeat(1025);
    let cases: Vec<(String, &str)> = vec![
        ("SELECT spendguard.usage_record('i', 'user', 'p', -1, 0)".into(), "22023"),
        ("SELECT spendguard.usage_record('i', 'user', 'p', 0, -1)".into(), "22023"),
        ("SELECT spendguard.usage_record('i', 'user', 'p', NULL, 0)".into(), "22004"),
        ("SELECT spendguard.usage_record('i', 'agent', 'p', 1, 1)".into(), "22023"),
        ("SELECT spendguard.usage_record('i', NULL, 'p', 1, 1)".into(), "22004"),
        ("SELECT spendguard.usage_record('', 'user', 'p', 1, 1)".into(), "22023"),
        ("SELECT spendguard.usage_record('i', 'user', 'p', 1, 1, at => NULL)".into(), "22004"),
        (
            "SELECT spendguard.usage_record('i', 'user', 'p', 9223372036854775807, 1)".into(),
            "22003",
        ),
        (format!("SELECT spendguard.usage_record('{long}', 'user', 'p', 1, 1)"), "22023"),
        (format!("SELECT spendguard.usage_record('i', 'user', '{long}', 1, 1)"), "22023"),
        (format!("SELECT spendguard.usage_record('i', 'user', 'p', 1, 1, '{long}')"), "22023"),
        (format!("SELECT spendguard.usage_record('i', 'user', 'p', 1, 1, conversation_id => '{long}')"), "22023"),
        ("SELECT spendguard.usage_cap_check('i', 'user', 'p', -1, '1 hour')".into(), "22023"),
        ("SELECT spendguard.usage_cap_check('i', 'user', 'p', 10, '0')".into(), "22023"),
        ("SELECT spendguard.usage_cap_check('i', 'user', 'p', 10, '-1 hour')".into(), "22023"),
        ("SELECT spendguard.usage_cap_check('i', 'user', 'p', 10, NULL)".into(), "22004"),
        ("SELECT spendguard.usage_cap_enforce('i', 'user', 'p', NULL, '1 hour')".into(), "22004"),
        ("SELECT spendguard.usage_cap_enforce('i', 'user', 'p', 5, '1 hour')".into(), "SG020"),
        ("SELECT spendguard.usage_cap_charge('i', 'user', 'p', -1, 10, '1 hour')".into(), "22023"),
        ("SELECT spendguard.usage_cap_charge('i', 'bot', 'p', 1, 10, '1 hour')".into(), "22023"),
        ("SELECT spendguard.usage_cap_charge('i', 'user', 'p', 1, 10, '0')".into(), "22023"),
        ("SELECT spendguard.call_cap_charge('user', 'p', NULL, 1, '1 hour')".into(), "22004"),
        ("SELECT spendguard.call_cap_charge('user', 'p', 't', -1, '1 hour')".into(), "22023"),
        (format!("SELECT spendguard.call_cap_charge('user', 'p', '{long}', 1, '1 hour')"), "22023"),
        ("SELECT spendguard.usage_purge(NULL)".into(), "22004"),
        ("SELECT spendguard.usage_purge('infinity')".into(), "22023"),
    ];
    for (sql, code) in cases {
        let before = snapshot(&mut c);
        let e = c.batch_execute(&sql).unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}: {e}");
        assert_eq!(snapshot(&mut c), before, "state changed after {sql}");
    }
}
