//! Crash safety: a throwaway cluster of its own (fsync and
//! synchronous_commit on), 8 connections authorizing and capturing /
//! releasing / reversing holds with event ids, one of them sweeping and
//! retiring history, one reserving, settling and charging scoped budgets
//! (SPEC §6) with event ids and alert thresholds armed (§7: after each
//! restart an alert exists exactly for each threshold the committed spend
//! crossed), while the test SIGKILLs the postmaster and its
//! children at a random moment, then restarts it (crash recovery). After
//! each restart every call a client saw acknowledged is in the log with the
//! result the client saw (or, once retired, covered by its budget's
//! checkpoint), `verify()` returns nothing, and no budget is above its cap.
//!
//! Settings: SG_CRASH_ROUNDS (default 5), SG_CRASH_PORT (default 28819).
//! Only processes this test started are killed, by pid: the postmaster of
//! its own data directory (from postmaster.pid) and that postmaster's
//! children.

use postgres::{Client, NoTls};
use spendguard_it::model::LONG_TTL;
use spendguard_it::{clock_seed, connect, uniq, verify, Rng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CAP: i64 = 5_000;
const TENANT: &str = "crash";

/// What a client was told by a call that returned (so it committed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    event_id: String,
    /// the budget's capability_id
    budget: String,
    kind: String,
    allowed: bool,
    /// commit_index (NULL for a denial)
    seq: Option<i64>,
    exposure: i64,
    realized: i64,
    committed_after: i64,
    count_after: i64,
}

/// Every acknowledged call that the log does not show as the client saw it.
/// History is retired while the writers run, so a call may have left the
/// log: an allowed one only into a checkpoint of its budget that covers its
/// commit index, a denial (it has no commit index to check) only from a
/// budget that has a checkpoint.
fn check_acks(c: &mut Client, tenant: &str, acks: &[Ack]) -> Vec<String> {
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

fn pg_bin() -> PathBuf {
    let pg_config =
        std::env::var("PG_CONFIG").unwrap_or("/usr/lib/postgresql/15/bin/pg_config".into());
    let out = Command::new(&pg_config).arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8(o.stdout).unwrap().trim()),
        _ => PathBuf::from("/usr/lib/postgresql/15/bin"),
    }
}

/// Runs a command as the `postgres` user (PostgreSQL refuses root).
fn as_postgres(program: &Path, args: &[&str]) -> std::process::Output {
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

struct Cluster {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
}

impl Cluster {
    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }
    fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.join("sock").display(),
            self.port
        )
    }
    fn pg_ctl(&self, args: &[&str]) {
        let data = self.data();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        as_postgres(&self.bin.join("pg_ctl"), &all);
    }

    fn create() -> Cluster {
        let port: u16 = std::env::var("SG_CRASH_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(28819);
        let c = Cluster {
            dir: PathBuf::from(format!("/tmp/spendguard-crash-{port}")),
            port,
            bin: pg_bin(),
        };
        if c.dir.join("data/PG_VERSION").exists() {
            c.pg_ctl(&["-m", "immediate", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&c.dir);
        std::fs::create_dir_all(c.dir.join("sock")).unwrap();
        Command::new("chown")
            .args(["-R", "postgres:postgres", c.dir.to_str().unwrap()])
            .status()
            .unwrap();
        as_postgres(
            &c.bin.join("initdb"),
            &[
                "-D",
                &c.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        let conf = format!(
            "\n# spendguard crash test\nport = {}\nlisten_addresses = ''\n\
             unix_socket_directories = '{}'\nfsync = on\nsynchronous_commit = on\n\
             full_page_writes = on\nmax_connections = 40\nshared_buffers = 32MB\n",
            c.port,
            c.dir.join("sock").display()
        );
        let path = c.dir.join("data/postgresql.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&conf);
        std::fs::write(&path, text).unwrap();
        c.start();
        let mut db = Client::connect(&c.conninfo(), NoTls).unwrap();
        db.batch_execute("CREATE EXTENSION spendguard").unwrap();
        c
    }

    fn start(&self) {
        let log = self.dir.join("server.log").display().to_string();
        self.pg_ctl(&["-l", &log, "-w", "-t", "120", "start"]);
    }

    /// SIGKILL the postmaster of this data directory and all its children.
    fn kill(&self) -> usize {
        let pidfile = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).unwrap();
        let pm: u32 = pidfile.lines().next().unwrap().trim().parse().unwrap();
        let mut pids = vec![pm];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ...": comm may hold spaces, so split after ')'
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(pm) {
                pids.push(pid);
            }
        }
        let args: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
        let status = Command::new("kill").arg("-9").args(&args).status().unwrap();
        assert!(status.success(), "kill -9 {args:?}");
        // wait until the postmaster is gone
        let deadline = Instant::now() + Duration::from_secs(10);
        while Path::new(&format!("/proc/{pm}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        pids.len()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.pg_ctl(&["-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_disconnect(e: &postgres::Error) -> bool {
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
struct ScopeAck {
    event_id: String,
    allowed: bool,
    /// a settle: (hold id, cost)
    settled: Option<(String, i64)>,
}

/// The scoped budgets of the crash tenant: every limit below CAP.
const SCOPE_LIMITS: [(&str, &str, i64); 3] = [
    ("org:o", "day", 3_000),
    ("org:o", "total", 4_000),
    ("user:u", "day", 2_500),
];
const SCOPE_AT: &str = "2026-06-24 12:00Z";

/// Every acknowledged scoped call that the database does not show as the
/// client saw it, and every scoped budget above its limit.
fn check_scope_acks(c: &mut Client, tenant: &str, acks: &[ScopeAck]) -> Vec<String> {
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
fn scope_writer(c: &mut Client, round: usize, rng: &mut Rng, acks: &Mutex<Vec<ScopeAck>>) {
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
            Err(e) => panic!("scope_settle: {e}"),
        }
    }
}

/// One writer until the server dies under it: every call it saw return is
/// pushed to `acks`.
fn writer(
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
    if c.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
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
                Err(e) => panic!("sweep or retire: {e}"),
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
            Err(e) => panic!("authorize: {e}"),
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
            Err(e) => panic!("{kind}: {e}"),
        }
    }
}

#[test]
fn acknowledged_calls_survive_sigkill_of_the_server() {
    let rounds: usize = std::env::var("SG_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let cluster = Cluster::create();
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::new(Mutex::new(Vec::new()));
    let scope_acks: Arc<Mutex<Vec<ScopeAck>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let mut c = Client::connect(&cluster.conninfo(), NoTls).unwrap();
        c.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
            .unwrap();
        for (s, p, l) in SCOPE_LIMITS {
            c.execute(
                "SELECT spendguard.scope_set_budget($1, $2, $3, alert_percents => '{50,80,100}')",
                &[&s, &p, &l],
            )
            .unwrap();
        }
    }
    let started = Instant::now();
    let mut rng = Rng::new(clock_seed());
    let mut killed = 0;
    let mut anchors: Vec<(String, i32, i64, String)> = Vec::new();
    for round in 0..rounds {
        let before = acks.lock().unwrap().len();
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (conninfo, acks, seed) = (cluster.conninfo(), acks.clone(), rng.next_u64());
                let scope_acks = scope_acks.clone();
                std::thread::spawn(move || writer(conninfo, w, round, seed, acks, scope_acks))
            })
            .collect();
        // a random moment while the writers are busy
        std::thread::sleep(Duration::from_millis(300 + rng.below(1200)));
        killed += cluster.kill();
        for w in workers {
            w.join()
                .expect("a writer failed with an error SPEC does not name");
        }
        cluster.start();
        let mut c = Client::connect(&cluster.conninfo(), NoTls).unwrap();
        let all = acks.lock().unwrap().clone();
        assert!(
            all.len() > before,
            "round {round}: no call was acknowledged"
        );
        let problems = check_acks(&mut c, TENANT, &all);
        assert!(problems.is_empty(), "round {round}: {problems:#?}");
        let scoped = scope_acks.lock().unwrap().clone();
        let problems = check_scope_acks(&mut c, TENANT, &scoped);
        assert!(problems.is_empty(), "round {round}: {problems:#?}");
        c.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
            .unwrap();
        let broken = verify(&mut c);
        assert!(
            broken.is_empty(),
            "round {round}: verify() found {broken:#?}"
        );
        // the chain (SPEC §9): verify() above walked every link; the heads
        // anchored after the previous restart are still links of it
        for (cap, grant, n, hash) in &anchors {
            let at: String = c
                .query_one(
                    "SELECT spendguard.verify_anchor($1, $2, $3, $4)",
                    &[cap, grant, n, hash],
                )
                .unwrap()
                .get(0);
            assert!(
                at == "ok" || at == "retired",
                "round {round}: the anchor ({cap}, {grant}, {n}) taken after the last restart says {at}"
            );
        }
        anchors = c
            .query(
                "SELECT capability_id, grant_index, chain_n, hash FROM spendguard.chain_heads()",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        assert!(!anchors.is_empty(), "round {round}: no chain head");
        for r in c
            .query(
                "SELECT capability_id, total_cost_exposed + total_cost_realized \
                 FROM spendguard.budget_usages(100)",
                &[],
            )
            .unwrap()
        {
            let (b, committed): (String, i64) = (r.get(0), r.get(1));
            assert!(
                committed <= CAP,
                "round {round}: budget {b} at {committed} > {CAP}"
            );
        }
    }
    let n = acks.lock().unwrap().len();
    let scoped = scope_acks.lock().unwrap().len();
    assert!(scoped > 0, "no scoped call was acknowledged");
    let mut c = Client::connect(&cluster.conninfo(), NoTls).unwrap();
    let retired: i64 = c
        .query_one(
            "SELECT coalesce(sum(events), 0)::int8 FROM (SELECT DISTINCT ON (capability_id) events \
             FROM spendguard.budget_checkpoint WHERE tenant_id = $1 \
             ORDER BY capability_id, through_seq DESC) k",
            &[&TENANT],
        )
        .unwrap()
        .get(0);
    assert!(retired > 0, "no history was retired during the crash test");
    println!(
        "crash test: {rounds} rounds, {killed} processes killed, {n} acknowledged calls \
         and {scoped} scoped ones, all in the log as acknowledged or in a checkpoint ({retired} events retired), \
         verify() clean, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The checker above is only worth something if it can fail: an
/// acknowledged id that is not in the log, and one whose recorded result
/// differs from what the client was told, are both reported.
#[test]
fn the_crash_checker_reports_what_is_missing_or_different() {
    let tenant = uniq("checker");
    let mut c = connect(&tenant);
    let r = c
        .query_one(
            "SELECT authorized, commit_index, committed_cost_after, invocation_count_after \
             FROM spendguard.budget_authorize_hold('b', 0, 10, hold_id => 'h', event_id => 'e1')",
            &[],
        )
        .unwrap();
    let real = Ack {
        event_id: "e1".into(),
        budget: "b".into(),
        kind: "authorize_exposure".into(),
        allowed: r.get(0),
        seq: r.get(1),
        exposure: 10,
        realized: 0,
        committed_after: r.get(2),
        count_after: r.get(3),
    };
    assert!(check_acks(&mut c, &tenant, std::slice::from_ref(&real)).is_empty());
    let missing = Ack {
        event_id: "never-recorded".into(),
        ..real.clone()
    };
    let different = Ack {
        committed_after: 11,
        ..real.clone()
    };
    let problems = check_acks(&mut c, &tenant, &[real.clone(), missing, different]);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("never-recorded is not in the log"));
    assert!(problems[1].contains("committed_after: 11"));
    // b's history retires: e1 leaves the log for a checkpoint that covers
    // its commit index, which is no problem; a missing call past the
    // checkpoint still is
    c.execute(
        "SELECT spendguard.budget_capture_hold(hold_id => 'h', realized_spend => 1)",
        &[],
    )
    .unwrap();
    let n: i64 = c
        .query_one(
            "SELECT sum(retired_events)::int8 FROM spendguard.budget_retire_events(now())",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    assert!(check_acks(&mut c, &tenant, std::slice::from_ref(&real)).is_empty());
    let beyond = Ack {
        event_id: "never-recorded-2".into(),
        seq: Some(i64::MAX),
        ..real.clone()
    };
    assert_eq!(check_acks(&mut c, &tenant, &[beyond]).len(), 1);
}
