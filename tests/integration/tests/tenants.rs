//! Tenant isolation over every reader, the tenant settings, and the
//! privilege defaults of SPEC §5.

use spendguard_it::{connect, conninfo, run, snapshot, sqlstate, uniq, usage, Op, Outcome};

#[test]
fn what_tenant_a_writes_tenant_b_never_sees() {
    let (ta, tb) = (uniq("ta"), uniq("tb"));
    let mut a = connect(&ta);
    let mut b = connect(&tb);
    assert!(matches!(
        run(&mut a, &Op::authorize("shared", 10).hold("h").event("e")),
        Outcome::Decision {
            authorized: true,
            ..
        }
    ));
    let before_b = snapshot(&mut b);
    assert!(before_b.is_empty(), "{before_b:?}");
    assert_eq!(usage(&mut b, "shared", 0), (0, 0, 0));
    for q in [
        "SELECT count(*) FROM spendguard.budget_usage('shared', 0)",
        "SELECT count(*) FROM spendguard.budget_usages()",
        "SELECT count(*) FROM spendguard.budget_usages(100, 'shared')",
        "SELECT count(*) FROM spendguard.budget_holds()",
        "SELECT count(*) FROM spendguard.budget_holds(hold_id => 'h')",
        "SELECT count(*) FROM spendguard.budget_events()",
        "SELECT count(*) FROM spendguard.budget_events(100, 'shared', 0)",
    ] {
        let n: i64 = b.query_one(q, &[]).unwrap().get(0);
        assert_eq!(n, 0, "tenant B sees tenant A through {q}");
        let n: i64 = a.query_one(q, &[]).unwrap().get(0);
        assert!(n > 0, "tenant A does not see its own rows through {q}");
    }
    // B cannot touch A's hold or replay A's event id: both are unknown to B
    assert_eq!(run(&mut b, &Op::release("h", None)), Outcome::err("SG001"));
    assert!(matches!(
        run(&mut b, &Op::authorize("shared", 99).event("e")),
        Outcome::Decision {
            authorized: true,
            ..
        }
    ));
    // B's budget of the same name is its own
    assert_eq!(usage(&mut b, "shared", 0), (1, 99, 0));
    assert_eq!(usage(&mut a, "shared", 0), (1, 10, 0));
}

#[test]
fn set_local_switches_tenant_per_transaction() {
    let (ta, tb) = (uniq("ta"), uniq("tb"));
    let mut c = connect(&ta);
    let mut tx = c.transaction().unwrap();
    tx.execute("SELECT set_config('spendguard.tenant', $1, true)", &[&tb])
        .unwrap();
    tx.query_one("SELECT spendguard.budget_authorize_hold('x', 0, 5)", &[])
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(usage(&mut c, "x", 0), (0, 0, 0));
    assert_eq!(usage(&mut connect(&tb), "x", 0), (1, 5, 0));
}

#[test]
fn unset_tenant_is_default_unless_required() {
    let mut c = postgres::Client::connect(&conninfo(), postgres::NoTls).unwrap();
    let t: String = c
        .query_one("SELECT spendguard.current_tenant()", &[])
        .unwrap()
        .get(0);
    assert_eq!(t, "default");
    c.batch_execute("SET spendguard.require_tenant = on")
        .unwrap();
    for sql in [
        "SELECT spendguard.current_tenant()",
        "SELECT spendguard.budget_authorize_hold('c', 0, 1)",
        "SELECT spendguard.budget_release_hold(hold_id => 'h')",
        "SELECT spendguard.budget_try_increment('c', 0, 1)",
        "SELECT * FROM spendguard.budget_usages()",
        "SELECT * FROM spendguard.budget_events()",
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        assert_eq!(sqlstate(&e), "SG030", "{sql}");
    }
    let tenant = uniq("req");
    c.execute(
        "SELECT set_config('spendguard.tenant', $1, false)",
        &[&tenant],
    )
    .unwrap();
    c.batch_execute("SELECT spendguard.budget_authorize_hold('c', 0, 1)")
        .unwrap();
}

#[test]
fn plain_roles_have_no_access_until_granted() {
    let mut su = postgres::Client::connect(&conninfo(), postgres::NoTls).unwrap();
    let role = uniq("app").replace('-', "_");
    su.batch_execute(&format!("CREATE ROLE {role} NOLOGIN"))
        .unwrap();
    let as_role = |su: &mut postgres::Client, sql: &str| -> Result<(), postgres::Error> {
        let mut tx = su.transaction()?;
        tx.batch_execute(&format!("SET LOCAL ROLE {role}; {sql}"))?;
        tx.rollback()
    };
    // no USAGE on the schema for PUBLIC
    let e = as_role(
        &mut su,
        "SELECT spendguard.budget_authorize_hold('c', 0, 1)",
    )
    .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    su.batch_execute(&format!("GRANT USAGE ON SCHEMA spendguard TO {role}"))
        .unwrap();
    // with USAGE: functions work, tables stay closed to direct writes and reads
    as_role(
        &mut su,
        "SELECT spendguard.budget_authorize_hold('c', 0, 1)",
    )
    .unwrap();
    for sql in [
        "UPDATE spendguard.budget_usage SET total_cost_exposed = 0",
        "INSERT INTO spendguard.budget_event (tenant_id) VALUES ('x')",
        "SELECT * FROM spendguard.budget_hold",
    ] {
        let e = as_role(&mut su, sql).unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}");
    }
    // SELECT granted by an admin still shows only the current tenant (RLS)
    su.batch_execute(&format!(
        "GRANT SELECT ON spendguard.budget_usage TO {role}"
    ))
    .unwrap();
    let mut tx = su.transaction().unwrap();
    let mine = uniq("rls");
    tx.execute("SELECT set_config('spendguard.tenant', $1, true)", &[&mine])
        .unwrap();
    tx.batch_execute("SELECT spendguard.budget_authorize_hold('c', 0, 1)")
        .unwrap();
    tx.batch_execute(&format!("SET LOCAL ROLE {role}")).unwrap();
    let tenants: Vec<String> = tx
        .query(
            "SELECT DISTINCT tenant_id FROM spendguard.budget_usage",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tenants, vec![mine]);
    tx.rollback().unwrap();
    su.batch_execute(&format!(
        "REVOKE ALL ON spendguard.budget_usage FROM {role}; REVOKE USAGE ON SCHEMA spendguard FROM {role}; DROP ROLE {role}"
    ))
    .unwrap();
}

/// Spend, reservations and caps (SPEC §2, §3): every reader and writer of
/// tenant B sees nothing tenant A wrote, and cannot touch it.
#[test]
fn spend_and_caps_stay_in_their_tenant() {
    let (ta, tb) = (uniq("ta"), uniq("tb"));
    let mut a = connect(&ta);
    let mut b = connect(&tb);
    a.batch_execute(
        "SELECT spendguard.spend_upsert_daily('u', 'g', now(), 500); \
         SELECT spendguard.spend_set_group_budget('g', 600, 'day'); \
         SELECT spendguard.spend_set_user_override('u', 'g', 700); \
         SELECT spendguard.spend_reserve('u', 'g', 100, 'ra'); \
         SELECT spendguard.usage_record('i', 'user', 'u', 10, 10); \
         SELECT spendguard.call_cap_charge('user', 'u', 't', 1, '1 hour')",
    )
    .unwrap();
    assert!(snapshot(&mut b).is_empty());
    for (q, want) in [
        (
            "SELECT spendguard.spend_since('u', 'g', now() - interval '1 day')",
            0i64,
        ),
        (
            "SELECT spendguard.spend_group_since('g', now() - interval '1 day')",
            0,
        ),
        (
            "SELECT spent_micros FROM spendguard.spend_check('u', 'g', 1)",
            0,
        ),
        (
            "SELECT coalesce(limit_micros, -1) FROM spendguard.spend_check('u', 'g', 1)",
            -1,
        ),
        (
            "SELECT used FROM spendguard.usage_cap_check('i', 'user', 'u', 100, '1 hour')",
            0,
        ),
        (
            "SELECT used FROM spendguard.call_cap_charge('user', 'u', 't', 1, '1 hour')",
            1,
        ),
        (
            "SELECT reserved_micros FROM spendguard.spend_reserve('u', 'g', 1, 'rb')",
            1,
        ),
        ("SELECT spendguard.spend_purge('9999-12-31')", 0),
        ("SELECT spendguard.usage_purge('9999-12-31')", 1),
        ("SELECT count(*) FROM spendguard.verify()", 0),
    ] {
        let got: i64 = b.query_one(q, &[]).unwrap().get(0);
        assert_eq!(got, want, "tenant B through {q}");
    }
    for q in [
        "SELECT spendguard.spend_settle('ra', 1)",
        "SELECT spendguard.spend_cancel('ra')",
    ] {
        let e = b.batch_execute(q).unwrap_err();
        assert_eq!(sqlstate(&e), "SG001", "{q}");
    }
    // A's state is as A left it
    for (q, want) in [
        (
            "SELECT spendguard.spend_since('u', 'g', now() - interval '1 day')",
            500i64,
        ),
        (
            "SELECT spent_micros FROM spendguard.spend_check('u', 'g', 1)",
            600,
        ),
        (
            "SELECT limit_micros FROM spendguard.spend_check('u', 'g', 1)",
            700,
        ),
        (
            "SELECT used FROM spendguard.usage_cap_check('i', 'user', 'u', 100, '1 hour')",
            20,
        ),
        (
            "SELECT used FROM spendguard.call_cap_charge('user', 'u', 't', 1, '1 hour')",
            1,
        ),
        (
            "SELECT spend_micros FROM spendguard.spend_settle('ra', 50)",
            550,
        ),
        ("SELECT count(*) FROM spendguard.verify()", 0),
    ] {
        let got: i64 = a.query_one(q, &[]).unwrap().get(0);
        assert_eq!(got, want, "tenant A through {q}");
    }
}
