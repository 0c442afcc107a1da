//! Tenants bound to roles (SPEC §5): with `spendguard.tenant_auth = role`,
//! a role acts only for the tenants granted to a role it is a member of,
//! writers and readers alike (42501 naming role and tenant); `SET ROLE` to
//! a granted role works; a revoke takes effect at the next call; the
//! application role can neither grant nor change the setting; with `off`
//! nothing changes. (Behind PgBouncer: tests/pgbouncer.rs.)

use spendguard_it::{app_role, assert_verified, connect, sqlstate, uniq, RoleMode};

/// The SQLSTATE of `sql` run as `as_role` in `tenant` ("ok" when it works).
fn as_role(c: &mut postgres::Client, as_role: &str, tenant: &str, sql: &str) -> String {
    let r = c.batch_execute(&format!(
        "BEGIN; SET LOCAL ROLE {as_role}; SET LOCAL spendguard.tenant = '{tenant}'; {sql}; COMMIT"
    ));
    match r {
        Ok(()) => "ok".into(),
        Err(e) => {
            c.batch_execute("ROLLBACK").unwrap();
            sqlstate(&e)
        }
    }
}

#[test]
fn role_mode_binds_tenants_to_roles() {
    let (ta, tb) = (uniq("auth-a"), uniq("auth-b"));
    let mut su = connect("default");
    for r in ["sg_auth_a", "sg_auth_b", "sg_auth_member"] {
        app_role(&mut su, r);
    }
    su.batch_execute("GRANT sg_auth_a TO sg_auth_member")
        .unwrap();
    su.execute("SELECT spendguard.tenant_grant('sg_auth_a', $1)", &[&ta])
        .unwrap();
    su.execute("SELECT spendguard.tenant_grant('sg_auth_b', $1)", &[&tb])
        .unwrap();
    let write = "SELECT spendguard.scope_charge(ARRAY['org:x'], 1)";
    let calls = [
        write,
        "SELECT spendguard.budget_authorize_hold('b', 0, 1)",
        "SELECT spendguard.spend_charge('u', 'g', 1)",
        "SELECT count(*) FROM spendguard.scope_usage()",
        "SELECT count(*) FROM spendguard.budget_usages()",
        "SELECT count(*) FROM spendguard.verify()",
        "SELECT count(*) FROM spendguard.alerts()",
    ];

    // off (the default): any role acts for any tenant it sets
    let mut c = connect("default");
    assert_eq!(as_role(&mut c, "sg_auth_a", &tb, write), "ok");

    let mode = RoleMode::on();
    let mut c = connect("default");
    for sql in calls {
        assert_eq!(
            as_role(&mut c, "sg_auth_a", &ta, sql),
            "ok",
            "{sql} in its tenant"
        );
        assert_eq!(
            as_role(&mut c, "sg_auth_a", &tb, sql),
            "42501",
            "{sql} in another tenant"
        );
        assert_eq!(as_role(&mut c, "sg_auth_b", &tb, sql), "ok", "{sql} as b");
    }
    // the message names the role and the tenant
    c.batch_execute(&format!(
        "SET ROLE sg_auth_a; SET spendguard.tenant = '{tb}'"
    ))
    .unwrap();
    let e = c.batch_execute(write).unwrap_err();
    let msg = e.as_db_error().unwrap().message().to_string();
    assert!(msg.contains("sg_auth_a") && msg.contains(&tb), "{msg}");
    c.batch_execute("RESET ROLE; RESET spendguard.tenant")
        .unwrap();
    // a member of a granted role acts for its tenant (SET ROLE, not login)
    assert_eq!(as_role(&mut c, "sg_auth_member", &ta, write), "ok");
    assert_eq!(as_role(&mut c, "sg_auth_member", &tb, write), "42501");
    // the application role cannot grant, nor turn the mode off
    assert_eq!(
        as_role(
            &mut c,
            "sg_auth_a",
            &ta,
            &format!("SELECT spendguard.tenant_grant('sg_auth_a', '{tb}')")
        ),
        "42501"
    );
    assert_eq!(
        as_role(
            &mut c,
            "sg_auth_a",
            &ta,
            "SET spendguard.tenant_auth = 'off'"
        ),
        "55P02"
    );
    su.batch_execute("LOAD 'spendguard'").unwrap();
    let e = su
        .batch_execute("ALTER ROLE sg_auth_a SET spendguard.tenant_auth = 'off'")
        .unwrap_err();
    assert_eq!(sqlstate(&e), "55P02", "no role setting can change it");
    // nor a client's startup options
    let mut opt = postgres::Client::connect(
        &format!(
            "{} options='-c spendguard.tenant_auth=off'",
            spendguard_it::conninfo()
        ),
        postgres::NoTls,
    )
    .unwrap();
    // PostgreSQL keeps only the client's value until the library defines
    // the setting, which then refuses it: the session's calls fail closed
    opt.execute("SELECT set_config('spendguard.tenant', $1, false)", &[&ta])
        .unwrap();
    let e = opt
        .batch_execute("SELECT spendguard.scope_charge(ARRAY['org:x'], 1)")
        .unwrap_err();
    assert_eq!(
        sqlstate(&e),
        "42501",
        "a startup option changed tenant_auth"
    );
    let e = opt
        .batch_execute("SELECT count(*) FROM spendguard.scope_usage()")
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    // a superuser is not checked
    su.batch_execute(&format!(
        "SET spendguard.tenant = '{tb}'; {write}; RESET spendguard.tenant"
    ))
    .unwrap();
    // a revoke takes effect at the next call
    su.execute("SELECT spendguard.tenant_revoke('sg_auth_a', $1)", &[&ta])
        .unwrap();
    assert_eq!(as_role(&mut c, "sg_auth_a", &ta, write), "42501");
    assert_eq!(as_role(&mut c, "sg_auth_member", &ta, write), "42501");
    // what each tenant holds: a's calls landed in a's tenant only
    drop(mode);
    let mut c = connect("default");
    assert_eq!(as_role(&mut c, "sg_auth_a", &tb, write), "ok", "off again");
    let spent = |c: &mut postgres::Client, t: &str| -> i64 {
        c.execute("SELECT set_config('spendguard.tenant', $1, false)", &[&t])
            .unwrap();
        c.query_one(
            "SELECT coalesce(sum(spent_micros), 0)::bigint FROM spendguard.scope_spend('org:x', 'total', '2000-01-01')",
            &[],
        )
        .unwrap()
        .get(0)
    };
    // ta: 1 (role a) + 1 (member) ; tb: 1 (off) + 1 (b) + 1 (superuser) + 1 (off again)
    assert_eq!((spent(&mut su, &ta), spent(&mut su, &tb)), (2, 4));
    for t in [&ta, &tb] {
        su.execute("SELECT set_config('spendguard.tenant', $1, false)", &[t])
            .unwrap();
        assert_verified(&mut su);
    }
}
