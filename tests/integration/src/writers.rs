//! The writers of the crash and failover tests (tests/crash.rs,
//! tests/failover.rs): connections that authorize and capture / release /
//! reverse holds, sweep and retire, and reserve, settle and charge scoped
//! budgets, every call with an event id, recording what each call that
//! returned told its client; and the checks that the database still shows
//! every such call as the client saw it.

use crate::model::LONG_TTL;
use crate::Rng;
use postgres::{Client, NoTls};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CAP: i64 = 5_000;

/// What a client was told by a call that returned (so it committed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub event_id: String,
    /// the budget's capability_id
    pub budget: String,
    pub kind: String,
    pub allowed: bool,
    /// commit_index (NULL for a denial)
    pub seq: Option<i64>,
    pub exposure: i64,
    pub realized: i64,
    pub committed_after: i64,
    pub count_after: i64,
}

/// Every acknowledged call that the log does not show as the client saw it.
/// History is retired while the writers run, so a call may have left the
/// log: an allowed one only into a checkpoint of its budget that covers its
/// commit index, a denial (it has no commit index to check) only from a
/// budget that has a checkpoint.
pub fn check_acks(c: &mut Client, tenant: &str, acks: &[Ack]) -> Vec<String> {
    let mut problems = Vec::new();
    let covered: std::collections::HashMap<String, i64> = c
        .query(
            "SELECT capability_id, max(through_seq) FROM spendguard.budget_checkpoint \
             WHERE tenant_id = $1 GROUP BY capability_id",
            &[&tenant],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for a in acks {
        let row = c
            .query_opt(
                "SELECT kind::text, allowed, event_seq, exposure_units, realized_spend_units, \
                 total_cost_exposed_after + total_cost_realized_after, invocation_count_after \
                 FROM spendguard.budget_event WHERE tenant_id = $1 AND event_id = $2",
                &[&tenant, &a.event_id],
            )
            .unwrap();
        let Some(r) = row else {
            let through = covered.get(&a.budget).copied();
            let retired = match (a.seq, through) {
                (Some(seq), Some(t)) => seq <= t,
                (None, Some(_)) => true,
                (_, None) => false,
            };
            if !retired {
                problems.push(format!("acknowledged {} is not in the log", a.event_id));
            }
            continue;
        };
        let allowed: bool = r.get(1);
        let logged = Ack {
            event_id: a.event_id.clone(),
            budget: a.budget.clone(),
            kind: r.get(0),
            allowed,
            seq: allowed.then(|| r.get(2)),
            exposure: r.get(3),
            realized: r.get(4),
            committed_after: r.get(5),
            count_after: r.get(6),
        };
        if logged != *a {
            problems.push(format!("acknowledged {a:?} but the log has {logged:?}"));
        }
    }
    problems
}

pub fn pg_bin() -> PathBuf {
    let pg_config =
        std::env::var("PG_CONFIG").unwrap_or("/usr/lib/postgresql/15/bin/pg_config".into());
    let out = Command::new(&pg_config).arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8(o.stdout).unwrap().trim()),
        _ => PathBuf::from("/usr/lib/postgresql/15/bin"),
    }
}

/// Runs a command as the `postgres` user (PostgreSQL refuses root).
pub fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
    let me = Command::new("id").arg("-un").output().unwrap();
    let mut cmd = if String::from_utf8_lossy(&me.stdout).trim() == "postgres" {
        Command::new(program)
    } else {
        let mut c = Command::new("sudo");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    };
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success() || args.contains(&"stop"),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn is_disconnect(e: &postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08") || c.starts_with("57P")
        }
    }
}

/// What a client was told by a scoped call that returned.
#[derive(Clone, Debug)]
pub struct ScopeAck {
    pub event_id: String,
    pub allowed: bool,
    /// a settle: (hold id, cost)
    pub settled: Option<(String, i64)>,
}

/// The scoped budgets of the crash tenant: every limit below CAP.
pub const SCOPE_LIMITS: [(&str, &str, i64); 3] = [
    ("org:o", "day", 3_000),
    ("org:o", "total", 4_000),
    ("user:u", "day", 2_500),
];
pub const SCOPE_AT: &str = "2026-06-24 12:00Z";

/// Every acknowledged scoped call that the database does not show as the
/// client saw it, and every scoped budget above its limit.
pub fn check_scope_acks(c: &mut Client, tenant: &str, acks: &[ScopeAck]) -> Vec<String> {
    let mut problems = Vec::new();
    for a in acks {
        let row = c
            .query_opt(
                "SELECT allowed FROM spendguard.scope_request WHERE tenant_id = $1 AND event_id = $2",
                &[&tenant, &a.event_id],
            )
            .unwrap();
        match row {
            None => problems.push(format!("acknowledged {} is not recorded", a.event_id)),
            Some(r) if r.get::<_, bool>(0) != a.allowed => {
                problems.push(format!("{} recorded with another result", a.event_id))
            }
            Some(_) => {}
        }
        if let Some((hold, cost)) = &a.settled {
            let r = c
                .query_opt(
                    "SELECT status::text, cost_micros FROM spendguard.scope_reservation \
                     WHERE tenant_id = $1 AND hold_id = $2",
                    &[&tenant, hold],
                )
                .unwrap();
            let got = r.map(|r| (r.get::<_, String>(0), r.get::<_, Option<i64>>(1)));
            if got != Some(("settled".to_string(), Some(*cost))) {
                problems.push(format!(
                    "settle of {hold} for {cost} acknowledged, found {got:?}"
                ));
            }
        }
    }
    c.batch_execute(&format!("SET spendguard.tenant = '{tenant}'"))
        .unwrap();
    for r in c
        .query(
            "SELECT scope, period, limit_micros, spent_micros + reserved_micros \
             FROM spendguard.scope_usage(NULL, $1::text::timestamptz)",
            &[&SCOPE_AT],
        )
        .unwrap()
    {
        let (s, p, l, used): (String, String, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        if used > l {
            problems.push(format!("scope {s} ({p}) at {used} > {l}"));
        }
    }
    // an alert exists exactly for each threshold the committed spend
    // crossed (spend only grows here): none lost, none twice
    for r in c
        .query(
            "SELECT u.scope, u.period, u.limit_micros, u.spent_micros, \
               (SELECT count(*) FROM spendguard.alerts(scope => u.scope) a \
                WHERE a.period = u.period AND a.period_start = u.period_start \
                  AND a.kind = 'threshold' AND a.percent = p.p) AS n, p.p \
             FROM spendguard.scope_usage(NULL, $1::text::timestamptz) u, \
                  (VALUES (50), (80), (100)) p(p)",
            &[&SCOPE_AT],
        )
        .unwrap()
    {
        let (s, period, l, spent, n, p): (String, String, i64, i64, i64, i32) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        let crossed = i128::from(spent) * 100 >= i128::from(p) * i128::from(l);
        if n != i64::from(crossed) {
            problems.push(format!(
                "scope {s} ({period}) at {spent} of {l}: {n} alerts of {p} %"
            ));
        }
    }
    problems
}

/// The scope writer: reserves over three scopes, settles (at most the
/// estimate) or cancels, and charges, every call with an event id.
pub fn scope_writer(c: &mut Client, round: usize, rng: &mut Rng, acks: &Mutex<Vec<ScopeAck>>) {
    for n in 0.. {
        let hold = format!("s{round}-{n}");
        let scopes = vec![
            "user:u".to_string(),
            "org:o".to_string(),
            format!("key:k{}", n % 3),
        ];
        let amount = 1 + rng.below(60) as i64;
        let ev = format!("sr-{hold}");
        let reserve = rng.below(3) != 0;
        let r = if !reserve {
            c.query_one(
                "SELECT allowed FROM spendguard.scope_charge($1, $2, $3::text::timestamptz, $4)",
                &[&scopes, &amount, &SCOPE_AT, &ev],
            )
        } else {
            c.query_one(
                "SELECT allowed FROM spendguard.scope_reserve($1, $2, $3, \
                 $4::text::timestamptz, event_id => $5)",
                &[&scopes, &amount, &hold, &SCOPE_AT, &ev],
            )
        };
        let allowed: bool = match r {
            Ok(r) => r.get(0),
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("scoped call: {e:?}"),
        };
        acks.lock().unwrap().push(ScopeAck {
            event_id: ev.clone(),
            allowed,
            settled: None,
        });
        if !(reserve && allowed) || rng.below(4) == 0 {
            continue;
        }
        let cost = rng.below(amount as u64 + 1) as i64;
        let ev = format!("ss-{hold}");
        match c.query_one(
            "SELECT allowed FROM spendguard.scope_settle($1, $2, $3)",
            &[&hold, &cost, &ev],
        ) {
            Ok(_) => acks.lock().unwrap().push(ScopeAck {
                event_id: ev,
                allowed: true,
                settled: Some((hold, cost)),
            }),
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("scope_settle: {e:?}"),
        }
    }
}

/// One writer until the server dies under it: every call it saw return is
/// pushed to `acks`.
pub fn writer(
    tenant: &'static str,
    conninfo: String,
    w: usize,
    round: usize,
    seed: u64,
    acks: Arc<Mutex<Vec<Ack>>>,
    scope_acks: Arc<Mutex<Vec<ScopeAck>>>,
) {
    let Ok(mut c) = Client::connect(&conninfo, NoTls) else {
        return;
    };
    if c.batch_execute(&format!("SET spendguard.tenant = '{tenant}'"))
        .is_err()
    {
        return;
    }
    let mut rng = Rng::new(seed);
    if w == 6 {
        return scope_writer(&mut c, round, &mut rng, &scope_acks);
    }
    for n in 0.. {
        if w == 7 {
            // one connection sweeps, an hour ahead (holds with a TTL
            // expire), and retires what is older than 100 ms
            let sql = if n % 2 == 0 {
                "SELECT spendguard.budget_expire_holds(now() + interval '2 hours')"
            } else {
                "SELECT count(*) FROM spendguard.budget_retire_events(now() - interval '100 ms')"
            };
            match c.query_one(sql, &[]) {
                Ok(_) => {}
                Err(e) if is_disconnect(&e) => return,
                Err(e) => panic!("sweep or retire: {e:?}"),
            }
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let budget = format!("b{}", w % 3);
        let hold = format!("r{round}-w{w}-{n}");
        let ev = format!("a-{hold}");
        let amount = 1 + rng.below(60) as i64;
        let ttl = (rng.below(3) == 0).then_some(LONG_TTL);
        let r = c.query_one(
            "SELECT authorized, commit_index, committed_cost_after, invocation_count_after \
             FROM spendguard.budget_authorize_hold($1, 0, $2, max_total_cost => $3, \
             hold_id => $4, event_id => $5, ttl => $6::text::interval)",
            &[&budget, &amount, &CAP, &hold, &ev, &ttl],
        );
        let r = match r {
            Ok(r) => r,
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("authorize: {e:?}"),
        };
        let authorized: bool = r.get(0);
        acks.lock().unwrap().push(Ack {
            event_id: ev,
            budget: budget.clone(),
            kind: "authorize_exposure".into(),
            allowed: authorized,
            seq: r.get(1),
            exposure: amount,
            realized: 0,
            committed_after: r.get(2),
            count_after: r.get(3),
        });
        if !authorized {
            continue;
        }
        let ev = format!("m-{hold}");
        let (sql, kind, realized) = match rng.below(3) {
            0 => (
                "SELECT * FROM spendguard.budget_capture_hold(hold_id => $1, event_id => $2, realized_spend => $3)",
                "reconcile_spend",
                rng.below(amount as u64 + 1) as i64,
            ),
            1 => (
                "SELECT * FROM spendguard.budget_release_hold(hold_id => $1, event_id => $2, released_exposure => $3)",
                "release_exposure",
                0,
            ),
            _ => (
                "SELECT * FROM spendguard.budget_reverse_hold(hold_id => $1, event_id => $2, reversed_exposure => $3)",
                "reverse_exposure",
                0,
            ),
        };
        // the third argument: realized spend for a capture, the amount otherwise
        let third = if kind == "reconcile_spend" {
            realized
        } else {
            amount
        };
        match c.query_one(sql, &[&hold, &ev, &third]) {
            Ok(r) => acks.lock().unwrap().push(Ack {
                event_id: ev,
                budget: budget.clone(),
                kind: kind.into(),
                allowed: true,
                seq: Some(r.get("commit_index")),
                exposure: r.get("exposure_units"),
                realized: r.get("realized_spend_units"),
                committed_after: r.get("committed_cost_after"),
                count_after: r.get("invocation_count_after"),
            }),
            Err(e) if is_disconnect(&e) => return,
            // the sweeper may have expired the hold first
            Err(e) if e.code().map(|c| c.code()) == Some("SG002") => {}
            Err(e) => panic!("{kind}: {e:?}"),
        }
    }
}

/// What the §2-§4 writer saw return: spend charged, cap units charged,
/// proposals created and consumed; and how much was in flight when the
/// connection died (it may or may not have committed).
#[derive(Default, Debug)]
pub struct Others {
    pub spend: i64,
    pub spend_unknown: i64,
    pub cap: i64,
    pub cap_unknown: i64,
    pub created: Vec<(String, bool)>,
}

/// Spend charges, cap charges, proposals created and consumed, until
/// `stop` or the connection dies.
pub fn other_writer(
    tenant: &str,
    conninfo: String,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Others>>,
) {
    let Ok(mut c) = Client::connect(&conninfo, NoTls) else {
        return;
    };
    if c.batch_execute(&format!("SET spendguard.tenant = '{tenant}'"))
        .is_err()
    {
        return;
    }
    // proposal contents unique to this writer: an identical one still in
    // flight (a consume cut off by a kill) would be returned as its
    // duplicate, with no token
    let me = crate::uniq("w");
    let mut n: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        out.lock().unwrap().spend_unknown = 3;
        match c.query_one("SELECT spendguard.spend_charge('u', 'g', 3)", &[]) {
            Ok(_) => {
                let mut o = out.lock().unwrap();
                o.spend += 3;
                o.spend_unknown = 0;
            }
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("spend_charge: {e:?}"),
        }
        out.lock().unwrap().cap_unknown = 2;
        match c.query_one(
            "SELECT used FROM spendguard.usage_cap_charge('api', 'user', 'u', 2, 1000000000, '1 day')",
            &[],
        ) {
            Ok(_) => {
                let mut o = out.lock().unwrap();
                o.cap += 2;
                o.cap_unknown = 0;
            }
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("usage_cap_charge: {e:?}"),
        }
        let args = format!("{{\"to\": \"{me}\", \"n\": {n}}}");
        let (id, token): (String, String) = match c.query_one(
            "SELECT id::text, token FROM spendguard.proposal_create('user', 'u', 'send', $1::text::jsonb)",
            &[&args],
        ) {
            Ok(r) => (r.get(0), r.get(1)),
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("proposal_create: {e:?}"),
        };
        out.lock().unwrap().created.push((id, false));
        match c.query_one(
            "SELECT 1 FROM spendguard.proposal_consume($1, 'application', 'writer')",
            &[&token],
        ) {
            Ok(_) => {
                let mut o = out.lock().unwrap();
                let last = o.created.len() - 1;
                o.created[last].1 = true;
            }
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("proposal_consume: {e:?}"),
        }
    }
}

/// Every call of the §2-§4 writer that the database does not show as its
/// client saw it: spend and cap usage at least what was acknowledged and
/// at most that plus what was in flight (`in_flight`: spend, cap units),
/// every proposal created there, applied if its consume returned.
pub fn check_others(
    c: &mut Client,
    tenant: &str,
    o: &Others,
    in_flight: (i64, i64),
) -> Vec<String> {
    let mut problems = Vec::new();
    c.batch_execute(&format!("SET spendguard.tenant = '{tenant}'"))
        .unwrap();
    let spent: i64 = c
        .query_one(
            "SELECT spendguard.spend_since('u', 'g', now() - interval '2 days')",
            &[],
        )
        .unwrap()
        .get(0);
    if spent < o.spend || spent > o.spend + in_flight.0 {
        problems.push(format!(
            "spend {spent}, acknowledged {} (+{} in flight)",
            o.spend, in_flight.0
        ));
    }
    let used: i64 = c
        .query_one(
            "SELECT used FROM spendguard.usage_cap_check('api', 'user', 'u', 1000000000, '1 day')",
            &[],
        )
        .unwrap()
        .get(0);
    if used < o.cap || used > o.cap + in_flight.1 {
        problems.push(format!(
            "cap usage {used}, acknowledged {} (+{} in flight)",
            o.cap, in_flight.1
        ));
    }
    for (id, consumed) in &o.created {
        let status: Option<String> = c
            .query_opt(
                "SELECT status::text FROM spendguard.tool_call WHERE tenant_id = $1 AND id = $2::text::uuid",
                &[&tenant, id],
            )
            .unwrap()
            .map(|r| r.get(0));
        let ok = matches!(
            (consumed, status.as_deref()),
            (true, Some("applied")) | (false, Some("proposed" | "applied"))
        );
        if !ok {
            problems.push(format!(
                "proposal {id} (consumed: {consumed}) is {status:?}"
            ));
        }
    }
    problems
}
