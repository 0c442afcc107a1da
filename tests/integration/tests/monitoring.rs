//! The monitoring views after a scripted history: each returns exactly the
//! rows the history implies for its tenant (the views cover every tenant;
//! the test reads its own).

use spendguard_it::{connect, uniq};

#[test]
fn each_view_shows_what_the_history_implies() {
    let tenant = uniq("monitor");
    let mut c = connect(&tenant);
    c.batch_execute(
        "SELECT spendguard.budget_authorize_hold('gpt', 0, 100, hold_id => 'h1', ttl => '1 hour'); \
         SELECT spendguard.budget_authorize_hold('gpt', 0, 50, hold_id => 'h2'); \
         SELECT spendguard.budget_authorize_hold('gpt', 0, 30, hold_id => 'h3', ttl => '1 microsecond'); \
         SELECT spendguard.budget_authorize_hold('gpt', 1, 7, hold_id => 'h4'); \
         SELECT spendguard.budget_capture_hold(hold_id => 'h4', realized_spend => 5); \
         SELECT spendguard.budget_authorize_hold('gpt', 0, 1, max_total_cost => 100); \
         SELECT spendguard.budget_authorize_hold('gpt', 0, 1, max_invocations => 1); \
         SELECT spendguard.budget_authorize_hold('gpt', 0, 1, max_invocations => 1); \
         SELECT spendguard.spend_set_group_budget('team', 1000, 'month'); \
         SELECT spendguard.spend_upsert_daily('a', 'team', now(), 10); \
         SELECT spendguard.spend_upsert_daily('b', 'team', now(), 15); \
         SELECT spendguard.spend_upsert_daily('a', 'team', now() - interval '40 days', 99); \
         SELECT spendguard.spend_upsert_daily('a', 'solo', now(), 3); \
         SELECT spendguard.proposal_create('user', 'u', 'refund', '{\"o\": 1}', effect => 'destructive'); \
         SELECT spendguard.proposal_create('user', 'u', 'refund', '{\"o\": 2}', effect => 'destructive'); \
         SELECT spendguard.proposal_create('user', 'u', 'late', '{}', ttl => '1 microsecond')",
    )
    .unwrap();
    let rows = |c: &mut postgres::Client, sql: &str| -> Vec<String> {
        c.query(
            &format!("SELECT format('%s', v) FROM ({sql}) v ORDER BY 1"),
            &[&tenant],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
    };
    assert_eq!(
        rows(
            &mut c,
            "SELECT capability_id, grant_index, open_holds, open_exposure, without_ttl \
                      FROM spendguard.monitor_open_holds WHERE tenant_id = $1"
        ),
        ["(gpt,0,3,180,1)"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT holds, exposure FROM spendguard.monitor_expired_unswept WHERE tenant_id = $1"
        ),
        ["(1,30)"]
    );
    assert_eq!(
        rows(&mut c, "SELECT capability_id, denial_reason, denials FROM spendguard.monitor_denials_last_hour \
                      WHERE tenant_id = $1"),
        ["(gpt,max_invocations,2)", "(gpt,max_total_cost,1)"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT group_id, period, spend_micros, users, limit_per_user \
                      FROM spendguard.monitor_spend_by_group WHERE tenant_id = $1"
        ),
        ["(solo,day,3,1,)", "(team,month,25,2,1000)"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT tool_name, effect, pending FROM spendguard.monitor_pending_proposals \
                      WHERE tenant_id = $1"
        ),
        ["(refund,destructive,2)"]
    );
    // the sweep empties the expired view
    c.batch_execute("SELECT spendguard.budget_expire_holds()")
        .unwrap();
    assert!(rows(
        &mut c,
        "SELECT holds FROM spendguard.monitor_expired_unswept WHERE tenant_id = $1"
    )
    .is_empty());
}

#[test]
fn the_views_are_closed_to_public() {
    let mut c = connect("default");
    let open: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'spendguard'::regnamespace \
             AND relkind = 'v' AND has_table_privilege('public', oid, 'SELECT')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(open, 0);
    let views: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relnamespace = 'spendguard'::regnamespace AND relkind = 'v' \
             AND obj_description(oid, 'pg_class') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(views, 5);
}
