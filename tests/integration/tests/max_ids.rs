//! SPEC §0: ids are at most 1,024 bytes, and every call within that bound
//! must work. An index that holds the tenant and two such ids of
//! incompressible bytes passes PostgreSQL's limit for an index entry
//! (about 2,700 bytes), and the call failed with 54000 deep inside; the
//! worst case was a reservation allowed whose settle then failed forever.
//! Every function here runs with a 1,024-byte tenant and 1,024-byte ids of
//! random letters and digits (pglz cannot shrink them).

use spendguard_it::{assert_verified, clock_seed, connect, Rng};

#[test]
fn every_function_works_with_maximal_incompressible_ids() {
    let mut rng = Rng::new(clock_seed());
    let mut id = || rng.word(1024);
    let (tenant, user, group, cap, hold, hold2, event) = (id(), id(), id(), id(), id(), id(), id());
    let (integration, principal, tool, conv, res, res2) = (id(), id(), id(), id(), id(), id());
    let mut c = connect(&tenant);
    let ok =
        |c: &mut postgres::Client, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]| {
            c.execute(sql, params).unwrap_or_else(|e| {
                panic!(
                    "{sql}: {:?}",
                    e.as_db_error().map(|d| (d.code().code(), d.message()))
                )
            });
        };
    // §1 holds: a TTL hold (in the expiry indexes), capture, a second that expires
    ok(&mut c, "SELECT spendguard.budget_authorize_hold($1, 0, 10, max_total_cost => 100, hold_id => $2, event_id => $3, ttl => '1 hour', authority_id => $4, lease_id => $5, lease_epoch => 1)", &[&cap, &hold, &event, &principal, &tool]);
    ok(&mut c, "SELECT spendguard.budget_authorize_hold($1, 0, 10, max_total_cost => 100, hold_id => $2, event_id => $3, ttl => '1 hour', authority_id => $4, lease_id => $5, lease_epoch => 1)", &[&cap, &hold, &event, &principal, &tool]);
    ok(&mut c, "SELECT spendguard.budget_capture_hold(hold_id => $1, realized_spend => 5, authority_id => $2, lease_id => $3, lease_epoch => 1)", &[&hold, &principal, &tool]);
    ok(
        &mut c,
        "SELECT spendguard.budget_authorize_hold($1, 0, 10, hold_id => $2, ttl => '1 microsecond')",
        &[&cap, &hold2],
    );
    ok(&mut c, "SELECT pg_sleep(0.002)", &[]);
    ok(
        &mut c,
        "SELECT spendguard.budget_authorize_hold($1, 0, 100, max_total_cost => 100)",
        &[&cap],
    );
    ok(&mut c, "SELECT spendguard.budget_expire_holds()", &[]);
    ok(
        &mut c,
        "SELECT spendguard.budget_try_increment($1, 1, 5)",
        &[&cap],
    );
    // §2 spend: budgets, override, upsert, charge, reserve + settle, reserve + cancel
    ok(
        &mut c,
        "SELECT spendguard.spend_set_group_budget($1, 100000, 'week')",
        &[&group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_set_user_override($1, $2, 90000)",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_upsert_daily($1, $2, now(), 10)",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_upsert_daily($1, $2, now(), 10)",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_charge($1, $2, 10)",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_charge_enforce($1, $2, 10)",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_check($1, $2, 10)",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_reserve($1, $2, 100, $3)",
        &[&user, &group, &res],
    );
    ok(&mut c, "SELECT spendguard.spend_settle($1, 120)", &[&res]);
    ok(
        &mut c,
        "SELECT spendguard.spend_reserve($1, $2, 100, $3)",
        &[&user, &group, &res2],
    );
    ok(&mut c, "SELECT spendguard.spend_cancel($1)", &[&res2]);
    ok(
        &mut c,
        "SELECT spendguard.spend_since($1, $2, now() - interval '1 day')",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_group_since($1, now() - interval '1 day')",
        &[&group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_set_user_override($1, $2, NULL)",
        &[&user, &group],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_set_group_budget($1, NULL, NULL)",
        &[&group],
    );
    let spent: i64 = c
        .query_one(
            "SELECT spendguard.spend_since($1, $2, now() - interval '1 day')",
            &[&user, &group],
        )
        .unwrap()
        .get(0);
    assert_eq!(
        spent, 160,
        "upserts, charges and the settle all landed on the user's row"
    );
    // §3 caps
    ok(
        &mut c,
        "SELECT spendguard.usage_record($1, 'user', $2, 10, 5, model => $3, conversation_id => $4)",
        &[&integration, &principal, &tool, &conv],
    );
    ok(
        &mut c,
        "SELECT spendguard.usage_cap_check($1, 'user', $2, 1000, '1 hour')",
        &[&integration, &principal],
    );
    ok(
        &mut c,
        "SELECT spendguard.usage_cap_charge($1, 'user', $2, 10, 1000, '1 hour')",
        &[&integration, &principal],
    );
    ok(
        &mut c,
        "SELECT spendguard.call_cap_charge('application', $1, $2, 5, '1 hour')",
        &[&principal, &tool],
    );
    let used: i64 = c
        .query_one(
            "SELECT used FROM spendguard.usage_cap_check($1, 'user', $2, 1000, '1 hour')",
            &[&integration, &principal],
        )
        .unwrap()
        .get(0);
    assert_eq!(used, 25);
    // §4 proposals and tool calls
    let token: String = c
        .query_one("SELECT token FROM spendguard.proposal_create('application', $1, $2, '{\"a\": 1}', conversation_id => $3)", &[&principal, &tool, &conv])
        .unwrap()
        .get(0);
    ok(
        &mut c,
        "SELECT spendguard.proposal_consume($1, 'user', $2)",
        &[&token, &principal],
    );
    ok(&mut c, "SELECT spendguard.tool_call_record('user', $1, $2, '{}', 'executed', conversation_id => $3)", &[&principal, &tool, &conv]);
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.tool_calls(10, 'user', $1, $2, 'executed', $3)",
        &[&principal, &tool, &conv],
    );
    // readers, retirement and the auditor
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.budget_usage($1, 0)",
        &[&cap],
    );
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.budget_holds(10, $1, 0, 'reconciled', $2)",
        &[&cap, &hold],
    );
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.budget_events(10, $1, 0)",
        &[&cap],
    );
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.budget_retire_events(now(), $1, 1)",
        &[&cap],
    );
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.budget_checkpoints($1, 1)",
        &[&cap],
    );
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.verify($1, 0)",
        &[&cap],
    );
    ok(
        &mut c,
        "SELECT spendguard.spend_purge(current_date - 400)",
        &[],
    );
    ok(
        &mut c,
        "SELECT spendguard.usage_purge(now() - interval '400 days')",
        &[],
    );
    // §6–§8 with maximal ids: two scopes (the budget key holds the tenant
    // and a scope), a scoped reservation and its event id, a threshold
    // alert (its unique key holds the tenant and the scope), a price (its
    // key holds the tenant and the model), a token reservation, the reader
    let (scope, scope2, sres, sres2, sevent, model) = (id(), id(), id(), id(), id(), id());
    ok(
        &mut c,
        "SELECT spendguard.scope_set_budget($1, 'day', 100, alert_percents => '{50}')",
        &[&scope],
    );
    ok(
        &mut c,
        "SELECT spendguard.scope_reserve(ARRAY[$1, $2], 10, $3, event_id => $4)",
        &[&scope, &scope2, &sres, &sevent],
    );
    ok(&mut c, "SELECT spendguard.scope_settle($1, 60)", &[&sres]);
    ok(
        &mut c,
        "SELECT spendguard.scope_charge(ARRAY[$1], 1000)",
        &[&scope],
    );
    ok(
        &mut c,
        "SELECT spendguard.price_set($1, now() - interval '1 day', 1000000, 1000000)",
        &[&model],
    );
    ok(
        &mut c,
        "SELECT spendguard.scope_reserve_tokens(ARRAY[$1], $2, 1, 1, $3)",
        &[&scope2, &model, &sres2],
    );
    ok(
        &mut c,
        "SELECT spendguard.scope_settle_tokens($1, 1, 1)",
        &[&sres2],
    );
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.alert_claim($1, 10, '1 minute')",
        &[&principal],
    );
    let kinds: Vec<String> = c
        .query(
            "SELECT kind || coalesce(' ' || percent, '') FROM spendguard.alerts(scope => $1) ORDER BY id",
            &[&scope],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kinds, ["threshold 50", "blocked"]);
    ok(
        &mut c,
        "SELECT count(*) FROM spendguard.scope_spend($1, 'day', now() - interval '1 day')",
        &[&scope],
    );
    assert_verified(&mut c);
}
