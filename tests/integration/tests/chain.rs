//! The hash chain of the event log (SPEC §9, issue 19): every change to the
//! log made behind the functions' back (session_replication_role = replica
//! turns the append-only triggers off, as someone with write access could)
//! is reported by verify() as `chain`; a suffix rewritten with recomputed
//! hashes is caught only by an anchor taken before; retirement keeps the
//! chain checkable; many writers never fork it.

use postgres::Client;
use spendguard_it::{assert_verified, connect, race, run, uniq, Op, Outcome};

/// A history on budget ("c", 0) of every kind of event, with ids, fencing,
/// limits and a denial: 8 links.
fn history(c: &mut Client) {
    let ops = [
        Op::authorize("c", 100)
            .limits(Some(10), Some(500), Some(1000))
            .hold("h1")
            .event("e1"),
        Op::authorize("c", 50).hold("h2").auth("auth", "lease", 3),
        Op::authorize("c", 5000)
            .limits(None, None, Some(1000))
            .hold("h3"),
        Op::release("h1", Some(20)),
        Op::reconcile("h1", None, 70).event("e2"),
        Op::authorize("c", 30),
        Op::reverse("h2", None).auth("auth", "lease", 3),
        Op::increment("c", Some(100)),
    ];
    for op in &ops {
        let out = run(c, op);
        assert!(!matches!(out, Outcome::Error(_)), "{op:?}: {out:?}");
    }
    let n: i64 = c
        .query_one(
            "SELECT max(chain_n) FROM spendguard.budget_event \
             WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'c'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 8);
    assert_verified(c);
}

/// Runs `tamper` with the triggers off, then verify(), then rolls back.
fn tampered(c: &mut Client, tamper: &str) -> Vec<(String, String, String, String)> {
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .unwrap();
    tx.batch_execute(tamper)
        .unwrap_or_else(|e| panic!("{tamper}: {e}"));
    let rows: Vec<(String, String, String, String)> = tx
        .query(
            "SELECT object, check_name, expected, actual FROM spendguard.verify()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    tx.rollback().unwrap();
    rows
}

fn event_seq(c: &mut Client, chain_n: i64) -> i64 {
    c.query_one(
        "SELECT event_seq FROM spendguard.budget_event \
         WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'c' AND chain_n = $1",
        &[&chain_n],
    )
    .unwrap()
    .get(0)
}

/// A different value of the column, of its type.
fn changed(column: &str, ty: &str) -> String {
    match (column, ty) {
        ("kind", _) => "CASE WHEN kind = 'release_exposure' THEN 'reverse_exposure' \
                       ELSE 'release_exposure' END::spendguard.budget_event_kind"
            .into(),
        ("event_seq", _) => "event_seq + 1000000000".into(),
        (_, "text") => format!("coalesce({column} || 'x', 'x')"),
        (_, "bigint") | (_, "integer") => format!("coalesce({column} + 1, 1)"),
        (_, "boolean") => format!("NOT {column}"),
        (_, "timestamp with time zone") => format!("{column} + interval '1 microsecond'"),
        (_, "bytea") => format!("'\\x00'::bytea || {column}"),
        _ => panic!("no change for a column of type {ty}"),
    }
}

#[test]
fn a_change_to_any_column_of_an_event_is_reported() {
    let tenant = uniq("chain-col");
    let mut c = connect(&tenant);
    history(&mut c);
    let columns: Vec<(String, String)> = c
        .query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = 'spendguard' AND table_name = 'budget_event' \
             ORDER BY ordinal_position",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(columns.len(), 26, "{columns:?}");
    // in the middle of the chain, and at its head
    for n in [4, 8] {
        let seq = event_seq(&mut c, n);
        for (column, ty) in &columns {
            let ty = if column == "kind" {
                "kind"
            } else {
                ty.as_str()
            };
            let rows = tampered(
                &mut c,
                &format!(
                    "UPDATE spendguard.budget_event SET {column} = {} \
                     WHERE tenant_id = '{tenant}' AND event_seq = {seq}",
                    changed(column, ty)
                ),
            );
            assert!(
                rows.iter().any(|r| r.1 == "chain"),
                "changing {column} of link {n} is not reported as chain: {rows:#?}"
            );
        }
    }
    assert_verified(&mut c);
}

#[test]
fn deleted_inserted_and_swapped_events_are_reported() {
    let tenant = uniq("chain-rows");
    let mut c = connect(&tenant);
    history(&mut c);
    let (s3, s4, s8) = (
        event_seq(&mut c, 3),
        event_seq(&mut c, 4),
        event_seq(&mut c, 8),
    );
    let cases = [
        // a deleted event: in the middle, and the last one (the head on the
        // budget row no longer matches)
        format!("DELETE FROM spendguard.budget_event WHERE tenant_id = '{tenant}' AND event_seq = {s4}"),
        format!("DELETE FROM spendguard.budget_event WHERE tenant_id = '{tenant}' AND event_seq = {s8}"),
        // an inserted event: a copy of a denial (changes no counter) after it
        format!(
            "INSERT INTO spendguard.budget_event SELECT tenant_id, event_seq + 1000000000, NULL, \
             request_fingerprint, hold_id, capability_id, grant_index, kind, allowed, denial_reason, \
             recorded_at, exposure_units, realized_spend_units, max_invocations, \
             max_cost_per_invocation, max_total_cost, invocation_count_after, \
             total_cost_exposed_after, total_cost_realized_after, authority_id, lease_id, \
             lease_epoch, guarantee_level, chain_n, prev_hash, hash \
             FROM spendguard.budget_event WHERE tenant_id = '{tenant}' AND event_seq = {s3}"
        ),
        // the same, with a link of its own appended at the head: every link
        // hashes right, but the budget row's head is not the last link
        format!(
            "INSERT INTO spendguard.budget_event SELECT e.tenant_id, e.event_seq + 1000000000, NULL, \
             e.request_fingerprint, e.hold_id, e.capability_id, e.grant_index, e.kind, e.allowed, \
             e.denial_reason, e.recorded_at, e.exposure_units, e.realized_spend_units, \
             e.max_invocations, e.max_cost_per_invocation, e.max_total_cost, \
             u.invocation_count, u.total_cost_exposed, u.total_cost_realized, NULL, NULL, NULL, \
             e.guarantee_level, 9, u.chain_hash, ''::bytea \
             FROM spendguard.budget_event e JOIN spendguard.budget_usage u USING (tenant_id, capability_id, grant_index) \
             WHERE e.tenant_id = '{tenant}' AND e.event_seq = {s3};
             UPDATE spendguard.budget_event e SET hash = spendguard.event_hash(e) \
             WHERE e.tenant_id = '{tenant}' AND e.chain_n = 9"
        ),
        // two events swapped: their places in the log (event_seq) exchanged
        format!(
            "UPDATE spendguard.budget_event SET event_seq = -1 WHERE tenant_id = '{tenant}' AND event_seq = {s3};
             UPDATE spendguard.budget_event SET event_seq = {s3} WHERE tenant_id = '{tenant}' AND event_seq = {s4};
             UPDATE spendguard.budget_event SET event_seq = {s4} WHERE tenant_id = '{tenant}' AND event_seq = -1"
        ),
        // two events swapped: their links (chain_n) exchanged
        format!(
            "UPDATE spendguard.budget_event SET chain_n = CASE chain_n WHEN 3 THEN 4 ELSE 3 END \
             WHERE tenant_id = '{tenant}' AND event_seq IN ({s3}, {s4})"
        ),
        // the head on the budget row moved back
        format!(
            "UPDATE spendguard.budget_usage SET chain_n = 7, chain_hash = \
             (SELECT hash FROM spendguard.budget_event WHERE tenant_id = '{tenant}' AND chain_n = 7 \
              AND capability_id = 'c') WHERE tenant_id = '{tenant}' AND capability_id = 'c'"
        ),
    ];
    for tamper in &cases {
        let rows = tampered(&mut c, tamper);
        assert!(
            rows.iter().any(|r| r.1 == "chain"),
            "not reported as chain: {tamper}\n{rows:#?}"
        );
    }
    assert_verified(&mut c);
}

/// Recomputes every link of budget ("c", 0) from chain_n `from` on, and the
/// head: what someone with write access who knows the link function does.
fn recompute_suffix(from: i64) -> String {
    format!(
        "DO $$ DECLARE e spendguard.budget_event; prev bytea; BEGIN
           SELECT hash INTO prev FROM spendguard.budget_event
           WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'c' AND chain_n = {from} - 1;
           FOR e IN SELECT * FROM spendguard.budget_event
                    WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'c' AND chain_n >= {from}
                    ORDER BY chain_n LOOP
             e.prev_hash := prev;
             e.hash := spendguard.event_hash(e);
             UPDATE spendguard.budget_event SET prev_hash = e.prev_hash, hash = e.hash
             WHERE tenant_id = e.tenant_id AND event_seq = e.event_seq;
             prev := e.hash;
           END LOOP;
           UPDATE spendguard.budget_usage SET chain_hash = prev
           WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'c' AND grant_index = 0;
         END $$"
    )
}

#[test]
fn a_rewritten_suffix_passes_verify_and_fails_an_earlier_anchor() {
    let tenant = uniq("chain-suffix");
    let mut c = connect(&tenant);
    history(&mut c);
    // yesterday's anchor: the head, and the root
    let (n, hash): (i64, String) = {
        let r = c
            .query_one(
                "SELECT chain_n, hash FROM spendguard.chain_heads() WHERE capability_id = 'c'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let root: String = c
        .query_one("SELECT root FROM spendguard.chain_root()", &[])
        .unwrap()
        .get(0);
    let seq = event_seq(&mut c, 5);
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .unwrap();
    // the request fingerprint of link 5 changed: alone, it is reported …
    tx.batch_execute(&format!(
        "UPDATE spendguard.budget_event SET request_fingerprint = 'forged' \
         WHERE tenant_id = '{tenant}' AND event_seq = {seq}"
    ))
    .unwrap();
    let rows: i64 = tx
        .query_one(
            "SELECT count(*) FROM spendguard.verify() WHERE check_name = 'chain'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    // … and with links 5..8 and the head recomputed, verify() is clean
    tx.batch_execute(&recompute_suffix(5)).unwrap();
    let rows: i64 = tx
        .query_one("SELECT count(*) FROM spendguard.verify()", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 0,
        "a recomputed suffix verifies: only an anchor catches it"
    );
    // the anchor taken before catches it
    let (at_head, at_4, new_root): (String, String, String) = {
        let r = tx
            .query_one(
                "SELECT spendguard.verify_anchor('c', 0, $1, $2), \
                 spendguard.verify_anchor('c', 0, 4, (SELECT encode(hash, 'hex') FROM spendguard.budget_event \
                   WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'c' AND chain_n = 4)), \
                 (SELECT root FROM spendguard.chain_root())",
                &[&n, &hash],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    assert_eq!(at_head, "mismatch");
    assert_eq!(at_4, "ok", "links before the rewrite are untouched");
    assert_ne!(new_root, root);
    tx.rollback().unwrap();
    let ok: String = c
        .query_one(
            "SELECT spendguard.verify_anchor('c', 0, $1, $2)",
            &[&n, &hash],
        )
        .unwrap()
        .get(0);
    assert_eq!(ok, "ok");
    assert_verified(&mut c);
}

fn retire(c: &mut Client) -> i64 {
    c.query_one(
        "SELECT coalesce(sum(retired_events), 0)::bigint FROM spendguard.budget_retire_events(now())",
        &[],
    )
    .unwrap()
    .get(0)
}

#[test]
fn the_chain_verifies_across_several_retirement_cuts() {
    let tenant = uniq("chain-retire");
    let mut c = connect(&tenant);
    history(&mut c);
    let first: String = c
        .query_one(
            "SELECT encode(hash, 'hex') FROM spendguard.budget_event \
             WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'c' AND chain_n = 1",
            &[],
        )
        .unwrap()
        .get(0);
    let mut cuts = 0;
    for round in 0..3 {
        // h3 was denied; every hold of the history is closed: all of it retires
        let retired = retire(&mut c);
        assert!(retired > 0, "round {round}");
        cuts += 1;
        assert_verified(&mut c);
        // the previous round's open hold closes; two holds open and close;
        // a third stays open and spans the next cut
        if round > 0 {
            run(&mut c, &Op::release(&format!("r{}-2", round - 1), None));
        }
        for i in 0..3 {
            let hold = format!("r{round}-{i}");
            let out = run(&mut c, &Op::authorize("c", 1).hold(&hold));
            assert!(matches!(out, Outcome::Decision { .. }), "{out:?}");
            if i < 2 {
                run(&mut c, &Op::release(&hold, None));
            }
        }
        assert_verified(&mut c);
    }
    let (checkpoints, links): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT count(*), count(*) FILTER (WHERE hash = spendguard.checkpoint_hash(k)) \
                 FROM spendguard.budget_checkpoints('c', 0) k",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(checkpoints, cuts);
    assert_eq!(links, cuts);
    // the first link is behind a cut; the newest checkpoint's link is kept
    let (retired, kept): (String, String) = {
        let r = c
            .query_one(
                "SELECT spendguard.verify_anchor('c', 0, 1, $1), \
                 (SELECT spendguard.verify_anchor('c', 0, k.chain_n, encode(k.hash, 'hex')) \
                  FROM spendguard.budget_checkpoints('c', 0) k ORDER BY k.through_seq DESC LIMIT 1)",
                &[&first],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((retired.as_str(), kept.as_str()), ("retired", "ok"));
    // a checkpoint is a link: changing one of its columns is reported
    for column in [
        "total_cost_realized",
        "unheld_exposed",
        "retired_holds",
        "cut_hash",
    ] {
        let value = if column == "cut_hash" {
            "'\\x00'::bytea || cut_hash".to_string()
        } else {
            format!("{column} + 1")
        };
        let rows = tampered(
            &mut c,
            &format!(
                "UPDATE spendguard.budget_checkpoint SET {column} = {value} \
                 WHERE tenant_id = '{tenant}' AND through_seq = \
                 (SELECT max(through_seq) FROM spendguard.budget_checkpoint WHERE tenant_id = '{tenant}')"
            ),
        );
        assert!(
            rows.iter().any(|r| r.1 == "chain"),
            "changing the checkpoint's {column} is not reported as chain: {rows:#?}"
        );
    }
    // the first kept event must follow the cut
    let rows = tampered(
        &mut c,
        &format!(
            "UPDATE spendguard.budget_event SET prev_hash = '\\x00'::bytea || prev_hash \
             WHERE tenant_id = '{tenant}' AND event_seq = (SELECT min(event_seq) \
             FROM spendguard.budget_event WHERE tenant_id = '{tenant}')"
        ),
    );
    assert!(rows.iter().any(|r| r.1 == "chain"), "{rows:#?}");
    assert_verified(&mut c);
}

#[test]
fn sixteen_writers_never_fork_a_chain() {
    let tenant = uniq("chain-race");
    let results = race(&tenant, 16, |i, c| {
        for j in 0..40 {
            let hold = format!("h{i}-{j}");
            run(
                c,
                &Op::authorize("b", 10)
                    .limits(None, None, Some(3000))
                    .hold(&hold),
            );
            match j % 3 {
                0 => run(c, &Op::release(&hold, None)),
                1 => run(c, &Op::capture(&hold, None, 5)),
                _ => run(c, &Op::increment("b", None)),
            };
        }
    });
    assert_eq!(results.len(), 16);
    // a retirer alongside the next round of writers
    let retirer = {
        let tenant = tenant.clone();
        std::thread::spawn(move || {
            let mut c = connect(&tenant);
            (0..10).map(|_| retire(&mut c)).sum::<i64>()
        })
    };
    race(&tenant, 8, |i, c| {
        for j in 0..20 {
            run(c, &Op::authorize("b", 1).hold(&format!("k{i}-{j}")));
            run(c, &Op::release(&format!("k{i}-{j}"), None));
        }
    });
    retirer.join().unwrap();
    let mut c = connect(&tenant);
    // the kept links (events, and checkpoint links after the newest cut):
    // chain_n dense from the cut, each prev_hash the previous link's hash,
    // the head the last link; and along event_seq, chain_n only grows
    let (events, dense, linked, head, ordered): (i64, bool, bool, bool, bool) = {
        let r = c
            .query_one(
                "WITH k AS (SELECT coalesce(max(cut_chain_n), 0) AS cut FROM spendguard.budget_checkpoint \
                   WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'b'), \
                 l AS (SELECT chain_n, prev_hash, hash, event_seq FROM spendguard.budget_event \
                   WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'b' \
                   UNION ALL SELECT chain_n, prev_hash, hash, NULL FROM spendguard.budget_checkpoint, k \
                   WHERE tenant_id = spendguard.current_tenant() AND capability_id = 'b' AND chain_n > k.cut), \
                 w AS (SELECT l.*, lag(chain_n) OVER (ORDER BY chain_n) AS prev_n, \
                   lag(hash) OVER (ORDER BY chain_n) AS prev FROM l), \
                 s AS (SELECT chain_n, lag(chain_n) OVER (ORDER BY event_seq) AS before FROM l \
                   WHERE event_seq IS NOT NULL) \
                 SELECT (SELECT count(*) FROM l WHERE event_seq IS NOT NULL), \
                   bool_and(CASE WHEN prev_n IS NULL THEN chain_n = (SELECT cut FROM k) + 1 \
                                 ELSE chain_n = prev_n + 1 END), \
                   bool_and(prev IS NULL OR prev_hash = prev), \
                   (SELECT u.chain_n = max(w.chain_n) FROM spendguard.budget_usage u \
                    WHERE u.tenant_id = spendguard.current_tenant() AND u.capability_id = 'b'), \
                   (SELECT bool_and(before IS NULL OR chain_n > before) FROM s) \
                 FROM w",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
    };
    assert!(events > 0);
    assert!(dense, "chain_n has a gap or a fork");
    assert!(linked, "a prev_hash is not the previous link's hash");
    assert!(head, "the head is not the last link");
    assert!(ordered, "chain_n does not follow event_seq");
    assert_verified(&mut c);
}

#[test]
fn scoped_budgets_and_reservations_are_chained_too() {
    let tenant = uniq("chain-scope");
    let mut c = connect(&tenant);
    c.batch_execute(
        "SELECT spendguard.scope_set_budget('org:o', 'day', 1000);
         SELECT spendguard.scope_charge(ARRAY['org:o', 'user:u'], 100);
         SELECT spendguard.scope_charge(ARRAY['org:o', 'user:u'], 5000);
         SELECT spendguard.scope_reserve(ARRAY['org:o'], 50, 'r1');
         SELECT spendguard.scope_settle('r1', 40);
         SELECT spendguard.spend_set_group_budget('g', 1000, 'day');
         SELECT spendguard.spend_reserve('u', 'g', 30, 's1');
         SELECT spendguard.spend_settle('s1', 20);",
    )
    .unwrap();
    let (budgets, heads): (i64, i64) = {
        let r = c
            .query_one(
                "SELECT (SELECT count(DISTINCT (capability_id, grant_index)) FROM spendguard.budget_event \
                   WHERE tenant_id = spendguard.current_tenant()), \
                 (SELECT count(*) FROM spendguard.chain_heads())",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(budgets >= 3, "{budgets}");
    assert_eq!(heads, budgets);
    // a scope's event changed behind the functions' back is reported
    let rows = tampered(
        &mut c,
        &format!(
            "UPDATE spendguard.budget_event SET recorded_at = recorded_at - interval '1 day' \
             WHERE tenant_id = '{tenant}' AND capability_id LIKE 'scope:%' AND chain_n = 1"
        ),
    );
    assert!(rows.iter().any(|r| r.1 == "chain"), "{rows:#?}");
    assert_verified(&mut c);
}

/// examples/anchor.sh, as docs/integrity.md runs it daily: an export, a
/// check that passes, a suffix rewritten with recomputed hashes (clean to
/// verify()), and the check against the earlier export failing.
#[test]
fn the_daily_anchor_script_catches_a_rewritten_suffix() {
    let tenant = uniq("chain-anchor");
    let mut c = connect(&tenant);
    history(&mut c);
    let dir = std::env::temp_dir().join(uniq("anchors"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/anchor.sh");
    let bindir = std::process::Command::new(
        std::env::var("PG_CONFIG").unwrap_or("/usr/lib/postgresql/15/bin/pg_config".into()),
    )
    .arg("--bindir")
    .output()
    .unwrap();
    let psql = format!("{}/psql", String::from_utf8_lossy(&bindir.stdout).trim());
    let anchor = |args: &[&str]| {
        let out = std::process::Command::new("bash")
            .arg(script)
            .args(args)
            .env("ANCHOR_CONNINFO", spendguard_it::conninfo())
            .env("PSQL", &psql)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = anchor(&["export", dir.to_str().unwrap(), &tenant]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("anchored 1 chain heads of 1 tenants"), "{out}");
    let csv = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "csv"))
        .unwrap();
    let csv = csv.to_str().unwrap();
    let (code, out, err) = anchor(&["check", csv]);
    assert_eq!((code, out.trim()), (Some(0), "ok 1"), "{err}");
    // later writes keep the old head a link: still ok
    run(&mut c, &Op::authorize("c", 1));
    let (code, out, _) = anchor(&["check", csv]);
    assert_eq!((code, out.trim()), (Some(0), "ok 1"));
    // someone with write access rewrites links 5.. and recomputes them
    let seq = event_seq(&mut c, 5);
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("SET LOCAL session_replication_role = replica")
        .unwrap();
    tx.batch_execute(&format!(
        "UPDATE spendguard.budget_event SET request_fingerprint = 'forged' \
         WHERE tenant_id = '{tenant}' AND event_seq = {seq}"
    ))
    .unwrap();
    tx.batch_execute(&recompute_suffix(5)).unwrap();
    tx.commit().unwrap();
    assert_verified(&mut c);
    let (code, out, err) = anchor(&["check", csv]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("mismatch 1"), "{out}");
    assert!(
        out.contains(&format!(
            "MISMATCH tenant={tenant} capability_id=c grant_index=0"
        )),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
