//! Propose / apply tokens and the tool-call audit log (SPEC §4): the token
//! grammar, single use under concurrency, expiry, argument binding, content
//! dedup, no nonce at rest, transactions, tenants, bad input, and the
//! canonical JSON property.

use postgres::Client;
use proptest::prelude::*;
use spendguard_it::{connect, race, snapshot, sqlstate, uniq};
use std::time::Instant;

/// (id, token) of a new proposal.
fn propose(c: &mut Client, tool: &str, args: &str, ttl: &str) -> (String, String) {
    let r = c
        .query_one(
            "SELECT id::text, token FROM spendguard.proposal_create('user', 'agent-1', $1, $2::text::jsonb, ttl => $3::text::interval)",
            &[&tool, &args, &ttl],
        )
        .unwrap();
    (
        r.get(0),
        r.get::<_, Option<String>>(1)
            .expect("a new proposal has a token"),
    )
}

fn consume(
    c: &mut Client,
    token: &str,
    args: Option<&str>,
) -> Result<(String, String, String), String> {
    c.query_one(
        "SELECT status, applied_by_kind, applied_by_id FROM spendguard.proposal_consume($1, 'user', 'approver', $2::text::jsonb)",
        &[&token, &args],
    )
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .map_err(|e| sqlstate(&e))
}

fn status(c: &mut Client, id: &str) -> String {
    c.query_one(
        "SELECT status FROM spendguard.proposal_get($1::text::uuid)",
        &[&id],
    )
    .unwrap()
    .get(0)
}

#[test]
fn every_malformed_unknown_or_wrong_token_is_sg010_and_changes_nothing() {
    let mut c = connect(&uniq("grammar"));
    let (id, token) = propose(&mut c, "t", "{}", "10 minutes");
    let nonce = token.rsplit_once('.').unwrap().1.to_string();
    let mut wrong = nonce.clone().into_bytes();
    wrong[10] = if wrong[10] == b'a' { b'b' } else { b'a' };
    let wrong = String::from_utf8(wrong).unwrap();
    let unknown = "0b3c1f6e-8a8f-4f57-9a0e-51bd2bfb9f21";
    let cases = [
        ("wrong prefix", format!("proposal:{id}.{nonce}")),
        ("no prefix", format!("{id}.{nonce}")),
        ("no separator", format!("propose:{id}{nonce}")),
        ("empty id", format!("propose:.{nonce}")),
        ("empty nonce", format!("propose:{id}.")),
        ("non-hex", format!("propose:{id}.{}zz", &nonce[..62])),
        (
            "upper-case hex",
            format!("propose:{id}.{}", nonce.to_uppercase()),
        ),
        (
            "upper-case id",
            format!("propose:{}.{nonce}", id.to_uppercase()),
        ),
        ("short nonce", format!("propose:{id}.{}", &nonce[..63])),
        ("long nonce", format!("propose:{id}.{nonce}0")),
        ("extra dots", format!("propose:{id}.{nonce}.{nonce}")),
        ("extra dot", format!("propose:{id}..{nonce}")),
        ("unknown uuid", format!("propose:{unknown}.{nonce}")),
        ("wrong nonce", format!("propose:{id}.{wrong}")),
        ("empty", String::new()),
    ];
    let mut messages = std::collections::BTreeSet::new();
    for (what, t) in cases {
        let before = snapshot(&mut c);
        for sql in [
            "SELECT spendguard.proposal_consume($1, 'user', 'x')",
            "SELECT spendguard.proposal_reject($1, 'user', 'x')",
        ] {
            let e = c.query_one(sql, &[&t]).unwrap_err();
            assert_eq!(sqlstate(&e), "SG010", "{what}: {t}");
            messages.insert(e.as_db_error().unwrap().message().to_string());
        }
        assert_eq!(snapshot(&mut c), before, "{what} changed something");
    }
    // one message for all of them: nothing tells a guesser which one it was
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(status(&mut c, &id), "proposed");
    assert_eq!(consume(&mut c, &token, None).unwrap().0, "applied");
}

#[test]
fn eight_connections_consume_one_token_once() {
    let tenant = uniq("consume-race");
    for round in 0..5 {
        let mut c = connect(&tenant);
        let (id, token) = propose(
            &mut c,
            &format!("deploy-{round}"),
            "{\"v\": 1}",
            "10 minutes",
        );
        let outs = race(&tenant, 8, move |i, c| {
            c.query_one(
                "SELECT applied_by_id FROM spendguard.proposal_consume($1, 'application', $2)",
                &[&token, &format!("worker-{i}")],
            )
            .map(|r| r.get::<_, String>(0))
            .map_err(|e| sqlstate(&e))
        });
        let winners: Vec<&String> = outs.iter().filter_map(|o| o.as_ref().ok()).collect();
        let losers = outs
            .iter()
            .filter(|o| **o == Err("SG012".to_string()))
            .count();
        assert_eq!((winners.len(), losers), (1, 7), "{outs:?}");
        let row = c
            .query_one(
                "SELECT status, applied_by_kind, applied_by_id FROM spendguard.proposal_get($1::text::uuid)",
                &[&id],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "applied");
        assert_eq!(row.get::<_, String>(1), "application");
        assert_eq!(
            &row.get::<_, String>(2),
            winners[0],
            "the row names the one applier"
        );
    }
}

#[test]
fn an_expired_proposal_is_sg011_to_its_holder_and_the_sweep_keeps_it_as_history() {
    let mut c = connect(&uniq("expiry"));
    let (id, token) = propose(&mut c, "t", "{}", "1 microsecond");
    assert_eq!(consume(&mut c, &token, None), Err("SG011".into()));
    let e = c
        .query_one(
            "SELECT spendguard.proposal_reject($1, 'user', 'x')",
            &[&token],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&e), "SG011");
    assert_eq!(status(&mut c, &id), "proposed", "not swept yet");
    let (live, live_token) = propose(&mut c, "t2", "{}", "1 hour");
    let n: i64 = c
        .query_one("SELECT spendguard.proposal_expire_stale()", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(status(&mut c, &id), "expired");
    assert_eq!(status(&mut c, &live), "proposed");
    assert_eq!(consume(&mut c, &token, None), Err("SG011".into()));
    // an hour ahead the other one is stale too
    let n: i64 = c
        .query_one(
            "SELECT spendguard.proposal_expire_stale(now() + interval '2 hours')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(consume(&mut c, &live_token, None), Err("SG011".into()));
    let kept: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.tool_calls(status => 'expired')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(kept, 2);
}

#[test]
fn the_arguments_are_bound_to_the_proposal() {
    let mut c = connect(&uniq("args"));
    let (id, token) = propose(
        &mut c,
        "transfer",
        r#"{"to": "acct-9", "amount": 10.50, "meta": {"b": [1, 2], "a": null}}"#,
        "10 minutes",
    );
    for other in [
        r#"{"to": "acct-9", "amount": 10.51, "meta": {"b": [1, 2], "a": null}}"#,
        r#"{"to": "acct-8", "amount": 10.50, "meta": {"b": [1, 2], "a": null}}"#,
        r#"{"to": "acct-9", "amount": 10.50, "meta": {"b": [2, 1], "a": null}}"#,
        r#"{"to": "acct-9", "amount": 10.50, "meta": {"b": [1, 2]}}"#,
        r#"{"to": "acct-9", "amount": "10.50", "meta": {"b": [1, 2], "a": null}}"#,
    ] {
        assert_eq!(
            consume(&mut c, &token, Some(other)),
            Err("SG013".into()),
            "{other}"
        );
        assert_eq!(
            status(&mut c, &id),
            "proposed",
            "still consumable after {other}"
        );
    }
    // the same arguments in another key order and whitespace pass
    let same = "{ \"meta\" : { \"a\" : null , \"b\" : [ 1 , 2 ] } ,\n \"amount\": 10.50, \"to\":\"acct-9\" }";
    assert_eq!(consume(&mut c, &token, Some(same)).unwrap().0, "applied");
}

#[test]
fn identical_proposals_in_flight_collapse_and_closed_ones_do_not_count() {
    let tenant = uniq("dedup");
    let mut c = connect(&tenant);
    let create = |c: &mut Client, args: &str| -> (String, Option<String>, Option<String>) {
        let r = c
            .query_one(
                "SELECT id::text, token, duplicate_of::text FROM spendguard.proposal_create('user', 'agent-1', 'email', $1::text::jsonb)",
                &[&args],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let (first, token, dup) = create(&mut c, r#"{"to": "x", "body": "hi"}"#);
    assert!(token.is_some() && dup.is_none());
    // same content in another key order: no new row, no token
    let (id2, token2, dup2) = create(&mut c, r#"{"body":"hi","to":"x"}"#);
    assert_eq!(
        (id2.as_str(), token2, dup2.as_deref()),
        (first.as_str(), None, Some(first.as_str()))
    );
    // other content, other principal, other tool: new proposals
    assert!(create(&mut c, r#"{"to": "y", "body": "hi"}"#).2.is_none());
    let other_principal: Option<String> = c
        .query_one(
            "SELECT duplicate_of::text FROM spendguard.proposal_create('user', 'agent-2', 'email', '{\"to\": \"x\", \"body\": \"hi\"}')",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(other_principal.is_none());
    // once applied, rejected or expired, it is no longer in flight
    consume(&mut c, &token.unwrap(), None).unwrap();
    let (third, token3, dup3) = create(&mut c, r#"{"to": "x", "body": "hi"}"#);
    assert!(dup3.is_none() && third != first);
    c.query_one(
        "SELECT spendguard.proposal_reject($1, 'user', 'boss')",
        &[&token3.unwrap()],
    )
    .unwrap();
    assert_eq!(status(&mut c, &third), "rejected");
    let (fourth, _, dup4) = create(&mut c, r#"{"to": "x", "body": "hi"}"#);
    assert!(dup4.is_none() && fourth != third);
    c.batch_execute("SELECT spendguard.proposal_expire_stale(now() + interval '1 hour')")
        .unwrap();
    let (_, token5, dup5) = create(&mut c, r#"{"to": "x", "body": "hi"}"#);
    assert!(dup5.is_none() && token5.is_some());
    // two identical creates at the same moment: one row
    for round in 0..5 {
        let args = format!("{{\"round\": {round}}}");
        let outs = race(&tenant, 8, move |_, c| {
            let r = c
                .query_one(
                    "SELECT token IS NOT NULL FROM spendguard.proposal_create('application', 'bot', 'deploy', $1::text::jsonb)",
                    &[&args],
                )
                .unwrap();
            r.get::<_, bool>(0)
        });
        assert_eq!(
            outs.iter().filter(|t| **t).count(),
            1,
            "round {round}: {outs:?}"
        );
    }
    let rows: i64 = c
        .query_one(
            "SELECT count(*) FROM spendguard.tool_calls(1000, tool_name => 'deploy')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 5);
}

#[test]
fn no_table_or_column_holds_the_nonce() {
    let tenant = uniq("nonce");
    let mut c = connect(&tenant);
    let (_, token) = propose(&mut c, "t", r#"{"x": 1}"#, "10 minutes");
    let nonce = token.rsplit_once('.').unwrap().1.to_string();
    let columns: Vec<(String, String)> = c
        .query(
            "SELECT c.relname::text, a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind = 'r' \
               AND a.attnum > 0 AND NOT a.attisdropped",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(columns.len() > 50, "{columns:?}");
    for (table, column) in &columns {
        // as text, and bytea as hex, in every row of every tenant
        let found: i64 = c
            .query_one(
                &format!(
                    "SELECT count(*) FROM spendguard.{table} x \
                     WHERE position($1 IN CASE WHEN pg_typeof(x.{column}) = 'bytea'::regtype \
                       THEN encode(x.{column}::text::bytea, 'hex') ELSE x.{column}::text END) > 0 \
                        OR position($1 IN x.{column}::text) > 0"
                ),
                &[&nonce],
            )
            .unwrap()
            .get(0);
        assert_eq!(found, 0, "the nonce is in {table}.{column}");
    }
    // the readers give no nonce material either
    let cols: Vec<String> = c
        .query("SELECT * FROM spendguard.tool_calls()", &[])
        .unwrap()[0]
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert!(!cols.iter().any(|c| c.contains("nonce")), "{cols:?}");
}

#[test]
fn consume_and_the_apps_own_write_commit_or_roll_back_together() {
    let mut c = connect(&uniq("tx"));
    c.batch_execute("CREATE TEMP TABLE sent (id int)").unwrap();
    let (id, token) = propose(&mut c, "email", "{}", "10 minutes");
    let mut tx = c.transaction().unwrap();
    tx.query_one(
        "SELECT spendguard.proposal_consume($1, 'user', 'u')",
        &[&token],
    )
    .unwrap();
    tx.batch_execute("INSERT INTO sent VALUES (1)").unwrap();
    tx.rollback().unwrap();
    assert_eq!(
        status(&mut c, &id),
        "proposed",
        "the rollback left it consumable"
    );
    let mut tx = c.transaction().unwrap();
    tx.query_one(
        "SELECT spendguard.proposal_consume($1, 'user', 'u')",
        &[&token],
    )
    .unwrap();
    tx.batch_execute("INSERT INTO sent VALUES (2)").unwrap();
    tx.commit().unwrap();
    assert_eq!(status(&mut c, &id), "applied");
    let sent: i64 = c
        .query_one("SELECT count(*) FROM sent", &[])
        .unwrap()
        .get(0);
    assert_eq!(sent, 1);
}

#[test]
fn a_token_of_tenant_a_is_sg010_in_tenant_b() {
    let (ta, tb) = (uniq("ta"), uniq("tb"));
    let mut a = connect(&ta);
    let mut b = connect(&tb);
    let (id, token) = propose(&mut a, "t", "{}", "10 minutes");
    assert_eq!(consume(&mut b, &token, None), Err("SG010".into()));
    let e = b
        .query_one(
            "SELECT spendguard.proposal_reject($1, 'user', 'x')",
            &[&token],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&e), "SG010");
    let seen: i64 = b
        .query_one(
            "SELECT count(*) FROM spendguard.proposal_get($1::text::uuid)",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(seen, 0);
    let n: i64 = b
        .query_one(
            "SELECT spendguard.proposal_expire_stale(now() + interval '1 day')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    assert!(snapshot(&mut b).is_empty());
    assert_eq!(consume(&mut a, &token, None).unwrap().0, "applied");
}

#[test]
fn bad_arguments_are_refused_and_change_nothing() {
    let mut c = connect(&uniq("proposal-bad"));
    let (_, token) = propose(&mut c, "t", "{}", "10 minutes");
    let long = "x".repeat(1025);
    let cases: Vec<(String, &str)> = vec![
        ("SELECT spendguard.proposal_create('robot', 'a', 't', '{}')".into(), "22023"),
        ("SELECT spendguard.proposal_create('user', 'a', 't', '{}', effect => 'nuke')".into(), "22023"),
        ("SELECT spendguard.proposal_create('user', 'a', 't', '{}', transport => 'smtp')".into(), "22023"),
        ("SELECT spendguard.proposal_create('user', 'a', 't', '{}', ttl => '0')".into(), "22023"),
        ("SELECT spendguard.proposal_create('user', 'a', 't', '{}', ttl => '-5 minutes')".into(), "22023"),
        ("SELECT spendguard.proposal_create('user', 'a', 't', '{}', ttl => NULL)".into(), "22004"),
        ("SELECT spendguard.proposal_create('user', 'a', 't', NULL)".into(), "22004"),
        ("SELECT spendguard.proposal_create(NULL, 'a', 't', '{}')".into(), "22004"),
        ("SELECT spendguard.proposal_create('user', '', 't', '{}')".into(), "22023"),
        (format!("SELECT spendguard.proposal_create('user', 'a', '{long}', '{{}}')"), "22023"),
        (format!("SELECT spendguard.proposal_create('user', 'a', 't', '{{}}', conversation_id => '{long}')"), "22023"),
        ("SELECT spendguard.proposal_consume(NULL, 'user', 'x')".into(), "22004"),
        (format!("SELECT spendguard.proposal_consume('{token}', 'robot', 'x')"), "22023"),
        (format!("SELECT spendguard.proposal_consume('{token}', 'user', '')"), "22023"),
        (format!("SELECT spendguard.proposal_reject('{token}', 'user', NULL)"), "22004"),
        ("SELECT spendguard.proposal_expire_stale(NULL)".into(), "22004"),
        ("SELECT spendguard.tool_call_record('user', 'a', 't', '{}', 'proposed')".into(), "22023"),
        ("SELECT spendguard.tool_call_record('user', 'a', 't', '{}', 'done')".into(), "22023"),
        ("SELECT spendguard.tool_call_record('user', 'a', 't', '{}', NULL)".into(), "22004"),
        ("SELECT spendguard.tool_call_record('user', 'a', 't', NULL, 'executed')".into(), "22004"),
        ("SELECT spendguard.tool_call_record('user', 'a', 't', '{}', 'executed', effect => 'x')".into(), "22023"),
        ("SELECT * FROM spendguard.tool_calls(status => 'done')".into(), "22023"),
        ("SELECT * FROM spendguard.tool_calls(principal_kind => 'robot')".into(), "22023"),
        (format!("SELECT * FROM spendguard.tool_calls(tool_name => '{long}')"), "22023"),
    ];
    for (sql, code) in cases {
        let before = snapshot(&mut c);
        let e = c.batch_execute(&sql).unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}: {e}");
        assert_eq!(snapshot(&mut c), before, "state changed after {sql}");
    }
    // the audit log records direct calls too, newest first, filtered
    c.batch_execute(
        "SELECT spendguard.tool_call_record('user', 'a', 'search', '{\"q\": 1}', 'executed', result => '{\"n\": 2}', conversation_id => 'c1'); \
         SELECT spendguard.tool_call_record('application', 'b', 'search', '{}', 'failed', error => 'timeout', conversation_id => 'c2')",
    )
    .unwrap();
    let rows: Vec<(String, String, Option<String>)> = c
        .query(
            "SELECT principal_id, status, error FROM spendguard.tool_calls(tool_name => 'search')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "b".to_string(),
                "failed".to_string(),
                Some("timeout".to_string())
            ),
            ("a".to_string(), "executed".to_string(), None)
        ]
    );
    let one: i64 = c
        .query_one("SELECT count(*) FROM spendguard.tool_calls(conversation_id => 'c1', principal_kind => 'user', principal_id => 'a')", &[])
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

/// An unknown id and a wrong nonce do the same work before SG010: the
/// median latency of each, over alternating calls from one client, must
/// not differ by more than what one round trip varies anyway.
#[test]
fn an_unknown_id_and_a_wrong_nonce_take_the_same_time() {
    let mut c = connect(&uniq("timing"));
    let (id, token) = propose(&mut c, "t", "{}", "10 minutes");
    let nonce = token.rsplit_once('.').unwrap().1;
    let wrong = format!("propose:{id}.{}", nonce.chars().rev().collect::<String>());
    let unknown = format!("propose:0b3c1f6e-8a8f-4f57-9a0e-51bd2bfb9f21.{nonce}");
    let stmt = c
        .prepare("SELECT spendguard.proposal_consume($1, 'user', 'x')")
        .unwrap();
    let mut time = |t: &str| {
        let start = Instant::now();
        let e = c.query_one(&stmt, &[&t]).unwrap_err();
        assert_eq!(sqlstate(&e), "SG010");
        start.elapsed().as_nanos() as f64
    };
    for _ in 0..200 {
        time(&wrong);
        time(&unknown);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        a.push(time(&wrong));
        b.push(time(&unknown));
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
    let diff = (ma - mb).abs() / ma.min(mb);
    println!(
        "median wrong nonce {:.1} µs, unknown id {:.1} µs, {:.1}% apart",
        ma / 1e3,
        mb / 1e3,
        diff * 100.0
    );
    assert!(diff < 0.10, "wrong nonce {ma} ns vs unknown id {mb} ns");
}

/// A random JSON document as text, with its object keys in the given order
/// and random whitespace.
fn json_text(v: &Doc, rev: bool, ws: &mut impl FnMut() -> &'static str) -> String {
    match v {
        Doc::Num(n) => n.clone(),
        Doc::Str(s) => format!("{s:?}"),
        Doc::Bool(b) => b.to_string(),
        Doc::Null => "null".into(),
        Doc::Arr(items) => {
            let parts: Vec<String> = items.iter().map(|x| json_text(x, rev, ws)).collect();
            format!("[{}{}]", ws(), parts.join(&format!(",{}", ws())))
        }
        Doc::Obj(members) => {
            let mut m: Vec<&(String, Doc)> = members.iter().collect();
            if rev {
                m.reverse();
            }
            let parts: Vec<String> = m
                .iter()
                .map(|(k, x)| format!("{k:?}{}:{}{}", ws(), ws(), json_text(x, rev, ws)))
                .collect();
            format!("{{{}{}}}", ws(), parts.join(&format!("{},", ws())))
        }
    }
}

#[derive(Clone, Debug)]
enum Doc {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Doc>),
    Obj(Vec<(String, Doc)>),
}

fn doc() -> impl Strategy<Value = Doc> {
    let leaf = prop_oneof![
        Just(Doc::Null),
        any::<bool>().prop_map(Doc::Bool),
        (-1000i64..1000, 0u32..3).prop_map(|(n, d)| Doc::Num(if d == 0 {
            n.to_string()
        } else {
            format!("{n}.{}", "5".repeat(d as usize))
        })),
        "[a-zé\"\\\\ \n]{0,6}".prop_map(Doc::Str),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Doc::Arr),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..5)
                .prop_map(|m| Doc::Obj(m.into_iter().collect())),
        ]
    })
}

/// Changes one leaf value of a document (None: it has no leaf).
fn mutate(d: &Doc) -> Option<Doc> {
    match d {
        Doc::Null => Some(Doc::Bool(true)),
        Doc::Bool(b) => Some(Doc::Bool(!b)),
        Doc::Num(n) if n.contains('.') => Some(Doc::Num(format!("{n}1"))),
        Doc::Num(n) => Some(Doc::Num(format!("{n}.25"))),
        Doc::Str(s) => Some(Doc::Str(format!("{s}x"))),
        Doc::Arr(items) => {
            for (i, x) in items.iter().enumerate() {
                if let Some(m) = mutate(x) {
                    let mut v = items.clone();
                    v[i] = m;
                    return Some(Doc::Arr(v));
                }
            }
            None
        }
        Doc::Obj(members) => {
            for (i, (k, x)) in members.iter().enumerate() {
                if let Some(m) = mutate(x) {
                    let mut v = members.clone();
                    v[i] = (k.clone(), m);
                    return Some(Doc::Obj(v));
                }
            }
            None
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Permuting keys and whitespace never changes args_hash; changing a
    /// value always does.
    #[test]
    fn args_hash_ignores_key_order_and_whitespace_but_not_values(d in doc(), seed in any::<u64>()) {
        let mut c = connect("default");
        let mut x = seed | 1;
        let spaces = [" ", "", "\n", "  ", "\t"];
        let mut ws = move || { x ^= x << 13; x ^= x >> 7; x ^= x << 17; spaces[(x % 5) as usize] };
        let a = json_text(&d, false, &mut ws);
        let b = json_text(&d, true, &mut ws);
        let hash = |c: &mut Client, t: &str| -> String {
            c.query_one("SELECT spendguard.args_hash($1::text::jsonb)", &[&t]).unwrap().get(0)
        };
        let ha = hash(&mut c, &a);
        prop_assert_eq!(&ha, &hash(&mut c, &b), "{} vs {}", a, b);
        prop_assert!(ha.len() == 64 && ha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        // the canonical text is itself canonical: hashing it gives its sha256
        let canon: String = c.query_one("SELECT spendguard.canonical_json($1::text::jsonb)", &[&a]).unwrap().get(0);
        let sha: String = c.query_one("SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex')", &[&canon]).unwrap().get(0);
        prop_assert_eq!(&ha, &sha);
        if let Some(m) = mutate(&d) {
            let t = json_text(&m, false, &mut ws);
            prop_assert_ne!(ha, hash(&mut c, &t), "{} vs {}", a, t);
        }
    }
}
