//! High availability on pg_auto_failover (SPEC §10, issue 20): a monitor, a
//! primary and a synchronous secondary of Debian's
//! `postgresql-15-auto-failover` on localhost ports of the test's own, with
//! spendguard on the primary. Writers of every capability (holds and
//! scoped budgets with event ids, spend, caps, proposals) run through a
//! multi-host `target_session_attrs=read-write` connection string; the test
//! SIGKILLs the primary's process group (its pg_autoctl keeper and its
//! PostgreSQL), waits for the monitor to promote the secondary, and checks
//! on the new primary that every call a client saw return is there as the
//! client saw it, that a retry with the same event id returns the recorded
//! result, that `verify()` is empty and no cap is exceeded; then the old
//! primary rejoins as the secondary and the next round kills the other
//! node. Before the rounds, `guarantee_level()` is `ha_linearizable` while
//! the secondary is synchronous, and not once it is made asynchronous (the
//! negative control: then an acknowledged call may be lost).
//!
//! The monitor's health checks are tuned for one machine
//! (docs/operations.md "High availability"): a failover takes seconds.
//! Settings: SG_FAILOVER_ROUNDS (default 3), SG_FAILOVER_PORT (the monitor;
//! the nodes take the next two; default 28850).

use postgres::{Client, NoTls};
use spendguard_it::writers::{
    check_acks, check_others, check_scope_acks, is_disconnect, other_writer, writer, Ack, Others,
    ScopeAck, CAP, SCOPE_LIMITS,
};
use spendguard_it::{clock_seed, verify, Rng};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TENANT: &str = "failover";

fn postgres_ids() -> Option<(u32, u32)> {
    let id = |flag: &str| -> u32 {
        let o = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    let me = Command::new("id").arg("-u").output().unwrap();
    let me: u32 = String::from_utf8_lossy(&me.stdout).trim().parse().unwrap();
    (me != id("-u")).then(|| (id("-u"), id("-g")))
}

struct Formation {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    /// process group of each pg_autoctl this test started, by node name
    groups: Mutex<Vec<(String, Child)>>,
}

impl Formation {
    fn sock(&self) -> String {
        self.dir.join("sock").display().to_string()
    }

    fn node_port(&self, node: &str) -> u16 {
        match node {
            "monitor" => self.port,
            "node1" => self.port + 1,
            _ => self.port + 2,
        }
    }

    /// pg_autoctl (or another program) as the postgres user, with the
    /// formation's environment: its config and state under `dir`.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = postgres_ids() {
            c.uid(uid).gid(gid);
        }
        let d = |s: &str| self.dir.join(s).display().to_string();
        c.env("XDG_CONFIG_HOME", d("config"))
            .env("XDG_DATA_HOME", d("data"))
            .env("XDG_RUNTIME_DIR", d("run"))
            .env("HOME", d("."))
            .env("PGHOST", self.sock())
            .env("PG_CONFIG", self.bin.join("pg_config"))
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            );
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pg_autoctl <args>` in the background, in a process group of its own.
    fn spawn(&self, node: &str, args: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{node}.log")))
            .unwrap();
        let child = self
            .command("pg_autoctl")
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("pg_autoctl (postgresql-15-auto-failover): {e}"));
        let mut groups = self.groups.lock().unwrap();
        // a killed one of the same node was reaped by kill()
        groups.retain(|(n, _)| n != node);
        groups.push((node.to_string(), child));
    }

    fn pgdata(&self, node: &str) -> String {
        self.dir.join(node).display().to_string()
    }

    fn sql(&self, node: &str, db: &str) -> Result<Client, postgres::Error> {
        Client::connect(
            &format!(
                "host={} port={} user=postgres dbname={db} connect_timeout=3",
                self.sock(),
                self.node_port(node)
            ),
            NoTls,
        )
    }

    fn monitor(&self) -> Client {
        self.sql("monitor", "pg_auto_failover").unwrap()
    }

    /// The multi-host string the application uses.
    fn conninfo(&self) -> String {
        format!(
            "host=localhost,localhost port={},{} user=postgres dbname=spendguard \
             target_session_attrs=read-write connect_timeout=2",
            self.port + 1,
            self.port + 2
        )
    }

    /// (reported state, goal state) of each node, by name.
    fn states(&self) -> Vec<(String, String, String)> {
        self.monitor()
            .query(
                "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node ORDER BY nodename",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }

    /// Waits until one node is primary and the other secondary, both
    /// settled, and the primary's commits wait for the secondary; returns
    /// the primary's name. CHECKPOINTs on the primary speed up the
    /// secondary's base backup (it waits for one).
    fn wait_sync(&self, what: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let s = self.states();
            let primary = s
                .iter()
                .find(|n| n.1 == "primary" && n.2 == "primary")
                .map(|n| n.0.clone());
            let secondary = s.iter().any(|n| n.1 == "secondary" && n.2 == "secondary");
            if let Some(p) = &primary {
                let mut c = self.sql(p, "postgres").ok();
                if let Some(c) = c.as_mut() {
                    let _ = c.batch_execute("CHECKPOINT");
                    let names: String = c
                        .query_one("SHOW synchronous_standby_names", &[])
                        .map(|r| r.get(0))
                        .unwrap_or_default();
                    if secondary && !names.is_empty() {
                        return p.clone();
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{what}: no primary with a synchronous secondary after 180 s: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn create() -> Formation {
        let port: u16 = std::env::var("SG_FAILOVER_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(28850);
        let f = Formation {
            dir: PathBuf::from(format!("/tmp/spendguard-failover-{port}")),
            port,
            bin: spendguard_it::writers::pg_bin(),
            groups: Mutex::new(Vec::new()),
        };
        f.stop_leftovers();
        let _ = std::fs::remove_dir_all(&f.dir);
        for d in ["sock", "config", "data", "run"] {
            std::fs::create_dir_all(f.dir.join(d)).unwrap();
        }
        Command::new("chown")
            .args(["-R", "postgres:postgres", f.dir.to_str().unwrap()])
            .status()
            .unwrap();
        // the monitor and the first node on clusters of our own making, so
        // that their sockets are in the formation's directory
        for node in ["monitor", "node1"] {
            f.run(
                &f.bin.join("initdb").display().to_string(),
                &[
                    "-D",
                    &f.pgdata(node),
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
                "\n# spendguard failover test\nunix_socket_directories = '{}'\n",
                f.sock()
            );
            let path = f.dir.join(node).join("postgresql.conf");
            let mut text = std::fs::read_to_string(&path).unwrap();
            text.push_str(&conf);
            std::fs::write(&path, text).unwrap();
        }
        let mport = port.to_string();
        f.spawn(
            "monitor",
            &[
                "create",
                "monitor",
                "--pgdata",
                &f.pgdata("monitor"),
                "--pgport",
                &mport,
                "--listen",
                "localhost",
                "--hostname",
                "localhost",
                "--auth",
                "trust",
                "--no-ssl",
                "--run",
            ],
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut m = loop {
            if let Ok(mut c) = f.sql("monitor", "pg_auto_failover") {
                let ready = c
                    .query_one("SELECT to_regclass('pgautofailover.node') IS NOT NULL", &[])
                    .map(|r| r.get::<_, bool>(0))
                    .unwrap_or(false);
                if ready {
                    break c;
                }
            }
            assert!(Instant::now() < deadline, "the monitor did not start");
            std::thread::sleep(Duration::from_millis(200));
        };
        // health checks tuned for one machine: a dead node is noticed in
        // about 2 s, and a primary that stopped answering is taken as
        // demoted after 5 s (its keeper demotes it itself after 3 s without
        // the monitor: timeout.network_partition_timeout below)
        for (name, value) in [
            ("health_check_period", 1000),
            ("health_check_timeout", 1000),
            ("health_check_max_retries", 1),
            ("health_check_retry_delay", 500),
            ("node_considered_unhealthy_timeout", 2000),
            ("primary_demote_timeout", 5000),
        ] {
            m.batch_execute(&format!("ALTER SYSTEM SET pgautofailover.{name} = {value}"))
                .unwrap();
        }
        m.batch_execute("SELECT pg_reload_conf()").unwrap();
        let uri =
            format!("postgres://autoctl_node@localhost:{port}/pg_auto_failover?sslmode=disable");
        for node in ["node1", "node2"] {
            let p = f.node_port(node).to_string();
            f.spawn(
                node,
                &[
                    "create",
                    "postgres",
                    "--pgdata",
                    &f.pgdata(node),
                    "--pgport",
                    &p,
                    "--listen",
                    "localhost",
                    "--hostname",
                    "localhost",
                    "--auth",
                    "trust",
                    "--no-ssl",
                    "--monitor",
                    &uri,
                    "--dbname",
                    "spendguard",
                    "--name",
                    node,
                    "--run",
                ],
            );
            if node == "node1" {
                // the first node is up (single) before the second joins
                let deadline = Instant::now() + Duration::from_secs(120);
                while !f.states().iter().any(|n| n.0 == "node1" && n.1 == "single") {
                    assert!(
                        Instant::now() < deadline,
                        "node1 did not start: {:?}",
                        f.states()
                    );
                    std::thread::sleep(Duration::from_millis(300));
                }
            }
        }
        let primary = f.wait_sync("setup");
        for node in ["node1", "node2"] {
            f.run(
                "pg_autoctl",
                &[
                    "config",
                    "set",
                    "--pgdata",
                    &f.pgdata(node),
                    "timeout.network_partition_timeout",
                    "3",
                ],
            );
        }
        let mut c = f.sql(&primary, "spendguard").unwrap();
        c.batch_execute("CREATE EXTENSION spendguard").unwrap();
        f
    }

    /// SIGKILL the node's process group: its keeper and its PostgreSQL.
    fn kill(&self, node: &str) {
        let pm = std::fs::read_to_string(self.dir.join(node).join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().map(|l| l.trim().to_string()));
        let mut groups = self.groups.lock().unwrap();
        let child = &mut groups.iter_mut().find(|g| g.0 == node).unwrap().1;
        let _ = Command::new("kill")
            .args(["-9", "--", &format!("-{}", child.id())])
            .status();
        // its postmaster too, should it have left the group
        if let Some(pm) = pm {
            let _ = Command::new("kill").args(["-9", &pm]).status();
        }
        // reaped, so that its pid is gone: a keeper started again checks
        // that no keeper of its data directory still runs
        let _ = child.wait();
    }

    fn stop_leftovers(&self) {
        // keepers of an earlier run of this test (their command line names
        // this test's directory); nothing else is touched
        let me = self.dir.display().to_string();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if (cmd.starts_with("pg_autoctl") || cmd.contains("/postgres ")) && cmd.contains(&me) {
                let _ = Command::new("kill")
                    .args(["-9", &entry.file_name().to_string_lossy()])
                    .status();
            }
        }
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        for (_, child) in self.groups.lock().unwrap().iter_mut() {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
        }
        self.stop_leftovers();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A call with an event id and everything it was asked, to retry after
/// the failover: the same request must return the recorded result.
#[derive(Clone, Debug)]
struct Retry {
    hold: String,
    event_id: String,
    amount: i64,
    commit_index: Option<i64>,
    authorized: bool,
}

fn retrier(conninfo: String, round: usize, stop: Arc<AtomicBool>, out: Arc<Mutex<Vec<Retry>>>) {
    let Ok(mut c) = Client::connect(&conninfo, NoTls) else {
        return;
    };
    if c.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
        .is_err()
    {
        return;
    }
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let hold = format!("rt{round}-{n}");
        let event_id = format!("rte{round}-{n}");
        let amount = 1 + (n % 7) as i64;
        match c.query_one(
            "SELECT authorized, commit_index FROM spendguard.budget_authorize_hold('rt', 0, $1, \
             max_total_cost => 1000000000, hold_id => $2, event_id => $3)",
            &[&amount, &hold, &event_id],
        ) {
            Ok(r) => out.lock().unwrap().push(Retry {
                hold,
                event_id,
                amount,
                commit_index: r.get(1),
                authorized: r.get(0),
            }),
            Err(e) if is_disconnect(&e) => return,
            Err(e) => panic!("retrier: {e}"),
        }
    }
}

#[test]
fn acknowledged_calls_survive_the_primary_being_killed() {
    let rounds: usize = std::env::var("SG_FAILOVER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let started = Instant::now();
    let f = Formation::create();
    let setup = started.elapsed();
    let conninfo = f.conninfo();
    let mut c = Client::connect(&conninfo, NoTls).unwrap();
    c.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
        .unwrap();
    for (scope, period, limit) in SCOPE_LIMITS {
        c.query_one(
            "SELECT spendguard.scope_set_budget($1, $2, $3, alert_percents => '{50,80,100}')",
            &[&scope, &period, &limit],
        )
        .unwrap();
    }
    c.batch_execute("SELECT spendguard.spend_set_group_budget('g', 1000000000, 'day')")
        .unwrap();

    // guarantee_level: ha_linearizable while the secondary is synchronous;
    // the negative control: with the secondary asynchronous it is not
    let level = |c: &mut Client| -> String {
        c.query_one("SELECT spendguard.guarantee_level()", &[])
            .unwrap()
            .get(0)
    };
    assert_eq!(level(&mut c), "ha_linearizable");
    let primary = f.wait_sync("before the control");
    let secondary = if primary == "node1" { "node2" } else { "node1" };
    f.run(
        "pg_autoctl",
        &[
            "set",
            "node",
            "replication-quorum",
            "false",
            "--pgdata",
            &f.pgdata(secondary),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut p = f.sql(&primary, "spendguard").unwrap();
        if level(&mut p) != "ha_linearizable" {
            let r = p
                .query_one(
                    "SELECT guarantee_level FROM spendguard.budget_authorize_hold('async', 0, 1, event_id => 'async-1')",
                    &[],
                )
                .unwrap();
            let logged: String = r.get(0);
            assert_eq!(
                logged, "single_node_atomic",
                "an asynchronous commit is not ha_linearizable"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the secondary did not become asynchronous"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    f.run(
        "pg_autoctl",
        &[
            "set",
            "node",
            "replication-quorum",
            "true",
            "--pgdata",
            &f.pgdata(secondary),
        ],
    );
    f.wait_sync("after the control");
    drop(c);

    let acks: Arc<Mutex<Vec<Ack>>> = Arc::new(Mutex::new(Vec::new()));
    let scope_acks: Arc<Mutex<Vec<ScopeAck>>> = Arc::new(Mutex::new(Vec::new()));
    let retries: Arc<Mutex<Vec<Retry>>> = Arc::new(Mutex::new(Vec::new()));
    let others: Arc<Mutex<Others>> = Arc::new(Mutex::new(Others::default()));
    let mut rng = Rng::new(clock_seed());
    let mut outages = Vec::new();
    let mut in_flight = (0i64, 0i64);
    for round in 0..rounds {
        let primary = f.wait_sync(&format!("round {round}"));
        let mut p = f.sql(&primary, "spendguard").unwrap();
        assert_eq!(level(&mut p), "ha_linearizable", "round {round}");
        drop(p);
        let before = acks.lock().unwrap().len();
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers: Vec<_> = (0..7)
            .map(|w| {
                let (ci, a, s, seed) = (
                    conninfo.clone(),
                    acks.clone(),
                    scope_acks.clone(),
                    rng.next_u64(),
                );
                // writer 7 (sweep and retire) of the crash test is left out:
                // history retirement is not what a failover tests
                std::thread::spawn(move || writer(TENANT, ci, w, round, seed, a, s))
            })
            .collect();
        {
            let (ci, halt, out) = (conninfo.clone(), stop.clone(), retries.clone());
            workers.push(std::thread::spawn(move || retrier(ci, round, halt, out)));
            let (ci, halt, out) = (conninfo.clone(), stop.clone(), others.clone());
            workers.push(std::thread::spawn(move || {
                other_writer(TENANT, ci, halt, out)
            }));
        }
        std::thread::sleep(Duration::from_millis(800 + rng.below(1500)));
        let killed_at = Instant::now();
        f.kill(&primary);
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join()
                .expect("a writer failed with an error SPEC does not name");
        }
        // the outage: until a write commits through the application's string
        let mut c = loop {
            if let Ok(mut c) = Client::connect(&conninfo, NoTls) {
                if c.batch_execute(&format!(
                    "SET spendguard.tenant = '{TENANT}'; \
                         SELECT spendguard.budget_authorize_hold('probe', 0, 0)"
                ))
                .is_ok()
                {
                    break c;
                }
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(120),
                "round {round}: no writable primary 120 s after the kill: {:?}",
                f.states()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let outage = killed_at.elapsed();
        outages.push(outage);
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
        // a retry with the same event id returns the recorded result
        let recent: Vec<Retry> = retries
            .lock()
            .unwrap()
            .iter()
            .rev()
            .take(20)
            .cloned()
            .collect();
        assert!(
            !recent.is_empty(),
            "round {round}: the retrier saw nothing return"
        );
        for r in &recent {
            let row = c
                .query_one(
                    "SELECT authorized, commit_index FROM spendguard.budget_authorize_hold('rt', 0, $1, \
                     max_total_cost => 1000000000, hold_id => $2, event_id => $3)",
                    &[&r.amount, &r.hold, &r.event_id],
                )
                .unwrap();
            let got: (bool, Option<i64>) = (row.get(0), row.get(1));
            assert_eq!(
                got,
                (r.authorized, r.commit_index),
                "round {round}: retry of {r:?}"
            );
        }
        // spend, caps, proposals: every acknowledged call counted, and
        // nothing beyond what was in flight
        {
            let o = others.lock().unwrap();
            in_flight.0 += o.spend_unknown;
            in_flight.1 += o.cap_unknown;
            let problems = check_others(&mut c, TENANT, &o, in_flight);
            assert!(problems.is_empty(), "round {round}: {problems:#?}");
        }
        let broken = verify(&mut c);
        assert!(
            broken.is_empty(),
            "round {round}: verify() found {broken:#?}"
        );
        for r in c
            .query(
                "SELECT capability_id, total_cost_exposed + total_cost_realized \
                 FROM spendguard.budget_usages(1000) WHERE capability_id LIKE 'b%'",
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
        println!(
            "failover round {round}: {primary} killed, writable again after {:.1} s, \
             {} acknowledged calls checked",
            outage.as_secs_f64(),
            all.len()
        );
        // the old primary rejoins as the secondary
        f.spawn(&primary, &["run", "--pgdata", &f.pgdata(&primary)]);
    }
    f.wait_sync("after the last round");
    let worst = outages.iter().max().unwrap();
    println!(
        "failover: {rounds} rounds, outages {:?} (worst {:.1} s), {} acknowledged calls and {} scoped ones \
         all on the new primary, verify() clean; setup {:.0} s, total {:.0} s",
        outages.iter().map(|o| format!("{:.1} s", o.as_secs_f64())).collect::<Vec<_>>(),
        worst.as_secs_f64(),
        acks.lock().unwrap().len(),
        scope_acks.lock().unwrap().len(),
        setup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
