//! spendguard from Rust with tokio-postgres: the same flow and SQLSTATE
//! handling as examples/python/flow_psycopg.py. tokio-postgres prepares
//! every statement; a custom SQLSTATE (SG0xx) is `SqlState::from_code`.
//! Connection: $SG_CONNINFO (libpq key=value, which tokio-postgres parses).

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Error, IsolationLevel, NoTls};

fn what_to_do(code: &str) -> &'static str {
    match code {
        "SG020" => "HTTP 429",
        "SG004" => "bug in the caller",
        "SG011" | "SG012" => "ask again",
        "40001" => "retry",
        _ => "unexpected",
    }
}

fn sqlstate_of<T>(r: Result<T, Error>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code().expect("a database error").code().to_string(),
    }
}

async fn connect(tenant: &str) -> Client {
    let info = std::env::var("SG_CONNINFO").expect("SG_CONNINFO");
    let (client, conn) = tokio_postgres::connect(&info, NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .execute(
            "SELECT set_config('spendguard.tenant', $1, false)",
            &[&tenant],
        )
        .await
        .unwrap();
    client
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tenant = format!("rust-{}-{nanos}", std::process::id());
    let mut db = connect(&tenant).await;
    let other = connect(&tenant).await;

    let r = db
        .query_one(
            "SELECT authorized, committed_cost_after FROM spendguard.budget_authorize_hold('openai:gpt-4o', 0, 30000, \
             max_total_cost => 100000, hold_id => $1, event_id => $2, ttl => '5 minutes')",
            &[&"call-1", &"req-1"],
        )
        .await
        .unwrap();
    let authorized: bool = r.get(0);
    println!(
        "authorize with ttl: {}, committed {}",
        if authorized { "authorized" } else { "denied" },
        r.get::<_, i64>(1)
    );
    let cost: i64 = 27450;
    println!("model call: {cost} micros");
    let capture =
        "SELECT kind, realized_spend_units, commit_index FROM spendguard.budget_capture_hold(\
                   hold_id => $1, realized_spend => $2, event_id => $3)";
    let cap = db
        .query_one(capture, &[&"call-1", &cost, &"cap-1"])
        .await
        .unwrap();
    println!(
        "capture: {}, realized {}",
        cap.get::<_, String>(0),
        cap.get::<_, i64>(1)
    );
    let again = db
        .query_one(capture, &[&"call-1", &cost, &"cap-1"])
        .await
        .unwrap();
    let same = again.get::<_, i64>(2) == cap.get::<_, i64>(2);
    println!(
        "replay of the capture's event_id: {} commit index",
        if same { "same" } else { "another" }
    );
    let code = sqlstate_of(db.query_one(capture, &[&"call-1", &1i64, &"cap-1"]).await);
    println!(
        "event_id reused for another request: {code} -> {}",
        what_to_do(&code)
    );
    assert_eq!(SqlState::from_code(&code), SqlState::from_code("SG004"));

    db.execute(
        "SELECT spendguard.spend_set_group_budget('free', 40000, 'day')",
        &[],
    )
    .await
    .unwrap();
    let r = db
        .query_one(
            "SELECT allowed, reserved_micros FROM spendguard.spend_reserve('user-42', 'free', 30000, 'res-1')",
            &[],
        )
        .await
        .unwrap();
    println!(
        "reserve: {}, reserved {}",
        if r.get::<_, bool>(0) {
            "allowed"
        } else {
            "denied"
        },
        r.get::<_, i64>(1)
    );
    let r = db
        .query_one(
            "SELECT spend_micros FROM spendguard.spend_settle('res-1', $1)",
            &[&cost],
        )
        .await
        .unwrap();
    println!("settle: day total {}", r.get::<_, i64>(0));
    let code = sqlstate_of(
        db.query_one(
            "SELECT allowed FROM spendguard.spend_charge_enforce('user-42', 'free', 20000)",
            &[],
        )
        .await,
    );
    println!(
        "charge over the daily budget: {code} -> {}",
        what_to_do(&code)
    );

    // scoped budgets: one decision over every budget of key, user, team and
    // org; a denial names the budget that blocked and the room left
    db.batch_execute(
        "SELECT spendguard.scope_set_budget('org:acme', 'day', 50000); \
         SELECT spendguard.scope_set_budget('user:u42', 'day', 100000)",
    )
    .await
    .unwrap();
    let scopes = vec!["key:k1", "user:u42", "team:ml", "org:acme"];
    let r = db
        .query_one(
            "SELECT allowed, remaining_micros FROM spendguard.scope_reserve($1, 30000, 'sres-1')",
            &[&scopes],
        )
        .await
        .unwrap();
    println!(
        "scoped reserve over key, user, team and org: {}, least room left {}",
        if r.get::<_, bool>(0) {
            "allowed"
        } else {
            "denied"
        },
        r.get::<_, i64>(1)
    );
    let r = db
        .query_one(
            "SELECT (SELECT (h->>'spent_micros')::bigint FROM jsonb_array_elements(d.headroom) h \
             WHERE h->>'scope' = 'org:acme' AND h->>'period' = 'day') \
             FROM spendguard.scope_settle('sres-1', $1) d",
            &[&cost],
        )
        .await
        .unwrap();
    println!("scoped settle: org:acme day spent {}", r.get::<_, i64>(0));
    let r = db
        .query_one(
            "SELECT allowed, blocked_scope, blocked_period, remaining_micros \
             FROM spendguard.scope_reserve($1, 30000, 'sres-2')",
            &[&scopes],
        )
        .await
        .unwrap();
    println!(
        "scoped reserve again: {} at {} ({}), {} left",
        if r.get::<_, bool>(0) {
            "allowed"
        } else {
            "denied"
        },
        r.get::<_, String>(1),
        r.get::<_, String>(2),
        r.get::<_, i64>(3)
    );

    // 40001 under REPEATABLE READ; the retry with the same event_id takes effect once
    let (mut attempts, mut codes) = (0, Vec::new());
    let mut first = true;
    loop {
        attempts += 1;
        let tx = db
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .start()
            .await
            .unwrap();
        tx.query_one("SELECT 1", &[]).await.unwrap();
        if first {
            other
                .execute(
                    "SELECT spendguard.budget_authorize_hold('shared', 0, 1)",
                    &[],
                )
                .await
                .unwrap();
            first = false;
        }
        let r = tx
            .query_one(
                "SELECT authorized FROM spendguard.budget_authorize_hold('shared', 0, 5, event_id => 'req-ser')",
                &[],
            )
            .await;
        match r {
            Ok(_) => {
                tx.commit().await.unwrap();
                break;
            }
            Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                codes.push(e.code().unwrap().code().to_string());
            }
            Err(e) => panic!("{e}"),
        }
    }
    let n: i64 = db
        .query_one(
            "SELECT count(*) FROM spendguard.budget_events(100, 'shared', 0) WHERE event_id = 'req-ser'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let once = n == 1 && attempts == 2;
    println!(
        "serialization failure: {} -> retried with the same event_id, authorized {}",
        codes[0],
        if once {
            "once".to_string()
        } else {
            n.to_string()
        }
    );

    db.batch_execute("CREATE TEMP TABLE refunds (order_id int, amount int)")
        .await
        .unwrap();
    let token: String = db
        .query_one(
            "SELECT token FROM spendguard.proposal_create('application', 'agent-7', 'refund', \
             $1::text::jsonb, effect => 'destructive')",
            &[&r#"{"order": 43, "amount": 500}"#],
        )
        .await
        .unwrap()
        .get(0);
    println!(
        "proposal: created, token {}",
        if token.starts_with("propose:") {
            "shown once"
        } else {
            "missing"
        }
    );
    let tx = db.transaction().await.unwrap();
    let by: String = tx
        .query_one(
            "SELECT applied_by_id FROM spendguard.proposal_consume($1, 'user', 'ops-1', $2::text::jsonb)",
            &[&token, &r#"{"amount": 500, "order": 43}"#],
        )
        .await
        .unwrap()
        .get(0);
    tx.execute("INSERT INTO refunds VALUES (43, 500)", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let n: i64 = db
        .query_one("SELECT count(*) FROM refunds", &[])
        .await
        .unwrap()
        .get(0);
    println!("apply with the app's own write: applied by {by}, refunds {n}");
    let consume = "SELECT status FROM spendguard.proposal_consume($1, 'user', 'ops-2')";
    let code = sqlstate_of(db.query_one(consume, &[&token]).await);
    println!("apply again: {code} -> {}", what_to_do(&code));
    let late: String = db
        .query_one(
            "SELECT token FROM spendguard.proposal_create('user', 'u', 'late', '{}', ttl => '1 microsecond')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let code = sqlstate_of(db.query_one(consume, &[&late]).await);
    println!("apply after expiry: {code} -> {}", what_to_do(&code));
    let n: i64 = db
        .query_one("SELECT count(*) FROM spendguard.verify()", &[])
        .await
        .unwrap()
        .get(0);
    println!("verify: {n} problems");
}
