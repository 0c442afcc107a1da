//! Scale-out on Citus (SPEC §10, issue 20), run by `make citus-test` against
//! a coordinator and two workers (tests/citus/cluster.sh) with spendguard
//! distributed by `citus_distribute()`. Without them (no
//! SPENDGUARD_CITUS_CONNINFO, which `make citus-test` sets only when
//! citus.so is installed) it says so and passes: Citus is not packaged
//! where this project installs from.
//!
//! Writers of every capability race one tenant's budgets through the
//! coordinator; then the tenant's shard group moves to the other worker
//! while they keep calling. After each phase: every acknowledged call in the
//! log as its client saw it, `event_seq` strictly increasing along each
//! budget's chain, `verify()` empty. A call sent to a worker is refused
//! (0A000) and writes nothing.

use postgres::{Client, NoTls};
use spendguard_it::writers::{
    check_acks, check_others, check_scope_acks, other_writer, writer, Ack, Others, ScopeAck,
};
use spendguard_it::{clock_seed, sqlstate, Rng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TENANT: &str = "citus-race";
const APP: &str = "sg-citus-writer";

struct Cluster {
    coordinator: String,
    /// host:port of each worker
    workers: Vec<(String, i32)>,
}

fn cluster() -> Option<Cluster> {
    let coordinator = std::env::var("SPENDGUARD_CITUS_CONNINFO").ok()?;
    let mut c = Client::connect(&coordinator, NoTls).expect("the Citus coordinator");
    let workers = c
        .query(
            "SELECT node_name::text, node_port::int FROM citus_get_active_worker_nodes() \
             ORDER BY node_port",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Some(Cluster {
        coordinator,
        workers,
    })
}

/// Where the tenant's shard group lives: (shard id of its budget_usage
/// shard, host, port).
fn placement(c: &mut Client) -> (i64, String, i32) {
    let r = c
        .query_one(
            "SELECT p.shardid, n.nodename::text, n.nodeport::int \
             FROM pg_dist_placement p JOIN pg_dist_node n ON n.groupid = p.groupid \
             WHERE p.shardid = get_shard_id_for_distribution_column('spendguard.budget_usage', $1::text)",
            &[&TENANT],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

/// Every budget of the tenant whose event_seq does not strictly increase
/// along its chain (chain_n order).
fn out_of_order(c: &mut Client) -> Vec<String> {
    c.query(
        "SELECT capability_id || '/' || grant_index || ' at link ' || chain_n FROM ( \
           SELECT capability_id, grant_index, chain_n, event_seq, \
                  lag(event_seq) OVER (PARTITION BY capability_id, grant_index ORDER BY chain_n) AS prev \
           FROM spendguard.budget_event WHERE tenant_id = $1) e \
         WHERE e.prev >= e.event_seq",
        &[&TENANT],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn verify(c: &mut Client) -> Vec<String> {
    c.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
        .unwrap();
    c.query("SELECT format('%s', v) FROM spendguard.verify() v", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Writers 0..8 of the crash test (holds, scoped budgets, sweep and
/// retire) and the §2–§4 writer, for `run`, with `during` called midway;
/// they stop when their backends are terminated.
struct Phase {
    acks: Arc<Mutex<Vec<Ack>>>,
    scope_acks: Arc<Mutex<Vec<ScopeAck>>>,
    others: Arc<Mutex<Others>>,
}

impl Phase {
    fn run(&self, k: &Cluster, round: usize, rng: &mut Rng, run: Duration, during: impl FnOnce()) {
        let conninfo = format!("{} application_name={APP}", k.coordinator);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<_> = (0..8)
            .map(|w| {
                let (ci, a, s, seed) = (
                    conninfo.clone(),
                    self.acks.clone(),
                    self.scope_acks.clone(),
                    rng.next_u64(),
                );
                std::thread::spawn(move || writer(TENANT, ci, w, round, seed, a, s))
            })
            .collect();
        {
            let (ci, halt, out) = (conninfo.clone(), stop.clone(), self.others.clone());
            threads.push(std::thread::spawn(move || {
                other_writer(TENANT, ci, halt, out)
            }));
        }
        std::thread::sleep(run / 2);
        during();
        std::thread::sleep(run / 2);
        stop.store(true, Ordering::Relaxed);
        let mut admin = Client::connect(&k.coordinator, NoTls).unwrap();
        admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                &[&APP],
            )
            .unwrap();
        for t in threads {
            t.join()
                .expect("a writer failed with an error SPEC does not name");
        }
    }

    fn check(&self, c: &mut Client, what: &str, in_flight: &mut (i64, i64)) {
        let acks = self.acks.lock().unwrap().clone();
        assert!(
            acks.len() > 100,
            "{what}: only {} calls acknowledged",
            acks.len()
        );
        let problems = check_acks(c, TENANT, &acks);
        assert!(problems.is_empty(), "{what}: {problems:#?}");
        let scoped = self.scope_acks.lock().unwrap().clone();
        assert!(!scoped.is_empty(), "{what}: no scoped call acknowledged");
        let problems = check_scope_acks(c, TENANT, &scoped);
        assert!(problems.is_empty(), "{what}: {problems:#?}");
        let o = std::mem::take(&mut *self.others.lock().unwrap());
        in_flight.0 += o.spend_unknown;
        in_flight.1 += o.cap_unknown;
        let problems = check_others(c, TENANT, &o, *in_flight);
        assert!(problems.is_empty(), "{what}: {problems:#?}");
        *self.others.lock().unwrap() = o;
        let order = out_of_order(c);
        assert!(
            order.is_empty(),
            "{what}: event_seq goes back along {order:?}"
        );
        let v = verify(c);
        assert!(v.is_empty(), "{what}: verify() = {v:#?}");
    }
}

#[test]
fn a_tenant_races_and_moves_on_citus() {
    let Some(k) = cluster() else {
        println!(
            "citus: skipped: SPENDGUARD_CITUS_CONNINFO is not set (make citus-test sets it when \
             citus.so is installed)"
        );
        return;
    };
    assert_eq!(k.workers.len(), 2, "two workers: {:?}", k.workers);
    let mut c = Client::connect(&k.coordinator, NoTls).unwrap();
    // run again, it distributes nothing
    let again: Vec<String> = c
        .query(
            "SELECT DISTINCT action FROM spendguard.citus_distribute()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(again, ["already distributed"]);
    c.batch_execute(&format!(
        "SET spendguard.tenant = '{TENANT}'; \
         SELECT spendguard.spend_set_group_budget('g', 1000000000, 'day')"
    ))
    .unwrap();
    for (scope, period, limit) in spendguard_it::writers::SCOPE_LIMITS {
        c.query_one(
            "SELECT spendguard.scope_set_budget($1, $2, $3, alert_percents => '{50,80,100}')",
            &[&scope, &period, &limit],
        )
        .unwrap();
    }

    let phase = Phase {
        acks: Default::default(),
        scope_acks: Default::default(),
        others: Default::default(),
    };
    let mut rng = Rng::new(clock_seed());
    let mut in_flight = (0, 0);

    // 1. a race through the coordinator
    let started = Instant::now();
    phase.run(&k, 0, &mut rng, Duration::from_secs(4), || {});
    let took = started.elapsed();
    phase.check(&mut c, "race", &mut in_flight);
    let n_race = phase.acks.lock().unwrap().len();

    // 2. the tenant's shard group moves to the other worker while they call
    let (shard, host, port) = placement(&mut c);
    let (to_host, to_port) = k
        .workers
        .iter()
        .find(|w| w.1 != port)
        .cloned()
        .expect("another worker");
    let moved = Arc::new(Mutex::new(None));
    {
        let moved = moved.clone();
        let ci = k.coordinator.clone();
        let (host, to_host) = (host.clone(), to_host.clone());
        phase.run(&k, 1, &mut rng, Duration::from_secs(4), move || {
            let mut m = Client::connect(&ci, NoTls).unwrap();
            let t = Instant::now();
            m.query_one(
                "SELECT citus_move_shard_placement($1, $2, $3, $4, $5, \
                 shard_transfer_mode => 'block_writes')",
                &[&shard, &host, &port, &to_host, &to_port],
            )
            .expect("citus_move_shard_placement");
            *moved.lock().unwrap() = Some(t.elapsed());
        });
    }
    let move_took = moved.lock().unwrap().expect("the move ran");
    let (_, now_host, now_port) = placement(&mut c);
    assert_eq!(
        (now_host, now_port),
        (to_host.clone(), to_port),
        "the tenant's shards moved"
    );
    phase.check(&mut c, "after the move", &mut in_flight);
    let n_all = phase.acks.lock().unwrap().len();

    // 3. a call sent to a worker is refused, and writes nothing
    let (wh, wp) = &k.workers[0];
    let on_worker = k
        .coordinator
        .split_whitespace()
        .map(|kv| {
            if kv.starts_with("port=") {
                format!("port={wp}")
            } else if kv.starts_with("host=") && !wh.is_empty() {
                format!("host={wh}")
            } else {
                kv.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let events = |c: &mut Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM spendguard.budget_event WHERE tenant_id = $1",
            &[&TENANT],
        )
        .unwrap()
        .get(0)
    };
    let before = events(&mut c);
    let mut w = Client::connect(&on_worker, NoTls).unwrap();
    w.batch_execute(&format!("SET spendguard.tenant = '{TENANT}'"))
        .unwrap();
    let e = w
        .query_one(
            "SELECT * FROM spendguard.budget_authorize_hold('b0', 0, 1)",
            &[],
        )
        .expect_err("a decision on a worker");
    assert_eq!(sqlstate(&e), "0A000", "{e:?}");
    assert_eq!(events(&mut c), before, "the refused call wrote an event");

    println!(
        "citus: {n_race} calls acknowledged in {:.1} s of racing ({:.0}/s through the coordinator), \
         {} more while the tenant's shards moved from {host}:{port} to {to_host}:{to_port} \
         (the move took {:.2} s); every acknowledged call in the log, event_seq increasing \
         along every budget, verify() clean; a call on a worker refused with 0A000",
        took.as_secs_f64(),
        n_race as f64 / took.as_secs_f64(),
        n_all - n_race,
        move_took.as_secs_f64()
    );
}
