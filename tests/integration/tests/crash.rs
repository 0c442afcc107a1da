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
use spendguard_it::writers::{
    as_postgres, check_acks, check_scope_acks, pg_bin, writer, Ack, ScopeAck, CAP, SCOPE_LIMITS,
};
use spendguard_it::{clock_seed, connect, slice_overdrafts, uniq, verify, Rng};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TENANT: &str = "crash";

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
        if round == 1 {
            // from the second round on, the org's budgets have escrow
            // slices (SPEC §6 `slices`): the same checks hold with them
            let mut c = Client::connect(&cluster.conninfo(), NoTls).unwrap();
            c.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
                .unwrap();
            for (s, p, l) in SCOPE_LIMITS.iter().filter(|b| b.0 == "org:o") {
                c.execute(
                    "SELECT spendguard.scope_set_budget($1, $2, $3, '{50,80,100}', slices => 4)",
                    &[s, p, l],
                )
                .unwrap();
            }
        }
        let before = acks.lock().unwrap().len();
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (conninfo, acks, seed) = (cluster.conninfo(), acks.clone(), rng.next_u64());
                let scope_acks = scope_acks.clone();
                std::thread::spawn(move || {
                    writer(TENANT, conninfo, w, round, seed, acks, scope_acks)
                })
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
        let over = slice_overdrafts(&mut c, TENANT);
        assert!(
            over.is_empty(),
            "round {round}: slices over their quota: {over:#?}"
        );
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
        "crash test: {rounds} rounds (org:o sliced from the second), {killed} processes killed, \
         {n} acknowledged calls and {scoped} scoped ones, all in the log as acknowledged or in a checkpoint ({retired} events retired), \
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
