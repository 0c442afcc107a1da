//! Upgrades without a window (SPEC §10, issue 20): a database at the
//! previous releases (0.6.0, 0.5.0 and 0.4.0) keeps serving every call once this release's
//! package is installed (its library serves the old schema with the old
//! statements), and `ALTER EXTENSION spendguard UPDATE` runs while writers
//! of every capability keep calling: no call fails, every call a client saw
//! return is in the database as it saw it (the update chained the events
//! written before it; the writers append to those chains after it),
//! `verify()` is clean, and the schema is a fresh install's.

use postgres::{Client, NoTls};
use spendguard_it::writers::{
    check_acks, check_others, check_scope_acks, other_writer, writer, Ack, Others, ScopeAck,
    SCOPE_LIMITS,
};
use spendguard_it::{clock_seed, conninfo, verify, Rng};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TENANT: &str = "upgrade-load";
const DB: &str = "sg_upgrade_load";
const FRESH: &str = "sg_upgrade_load_fresh";

fn on(db: &str) -> String {
    format!("{} dbname={db}", conninfo())
}

/// The schema, as the catalog has it: every column, constraint, index and
/// function of spendguard with its definition.
fn schema(c: &mut Client) -> Vec<String> {
    c.query(
        "SELECT format('%s.%s %s %s %s', table_name, column_name, data_type, is_nullable, column_default) \
         FROM information_schema.columns WHERE table_schema = 'spendguard' \
         UNION ALL SELECT format('%s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)) \
         FROM pg_constraint WHERE connamespace = 'spendguard'::regnamespace \
         UNION ALL SELECT pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
         WHERE c.relnamespace = 'spendguard'::regnamespace \
         UNION ALL SELECT format('%s %s %s %s', p.oid::regprocedure, p.prosecdef, p.proconfig, md5(p.prosrc)) \
         FROM pg_proc p WHERE p.pronamespace = 'spendguard'::regnamespace \
         ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// From the release before this one (0.6.0, whose update adds the escrow
/// slices' table and columns: the library serves it with 0.6.0's
/// statements until then), from 0.5.0 (functions only) and from 0.4.0
/// (whose update adds the chain's columns).
#[test]
fn every_call_is_served_while_the_extension_is_updated() {
    for from in ["0.6.0", "0.5.0", "0.4.0"] {
        update_under_load(from);
    }
}

fn update_under_load(from: &str) {
    let mut admin = Client::connect(&conninfo(), NoTls).unwrap();
    for db in [DB, FRESH] {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .unwrap();
    }
    let mut c = Client::connect(&on(DB), NoTls).unwrap();
    c.batch_execute(&format!("CREATE EXTENSION spendguard VERSION '{from}'"))
        .unwrap();
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

    let acks: Arc<Mutex<Vec<Ack>>> = Arc::new(Mutex::new(Vec::new()));
    let scope_acks: Arc<Mutex<Vec<ScopeAck>>> = Arc::new(Mutex::new(Vec::new()));
    let others: Arc<Mutex<Others>> = Arc::new(Mutex::new(Others::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut rng = Rng::new(clock_seed());
    // writers 0..5 authorize and settle holds, 6 reserves, settles and
    // charges scoped budgets (the crash test's writers); one more charges
    // spend and caps and creates and consumes proposals
    let mut workers: Vec<_> = (0..7)
        .map(|w| {
            let (ci, a, s, seed) = (on(DB), acks.clone(), scope_acks.clone(), rng.next_u64());
            std::thread::spawn(move || writer(TENANT, ci, w, 0, seed, a, s))
        })
        .collect();
    {
        let (ci, halt, out) = (on(DB), stop.clone(), others.clone());
        workers.push(std::thread::spawn(move || {
            other_writer(TENANT, ci, halt, out)
        }));
    }
    std::thread::sleep(Duration::from_millis(1000));
    let before = acks.lock().unwrap().len();
    let t = Instant::now();
    // the procedure of docs/operations.md "Upgrading": the update waits
    // at most lock_timeout for each lock, and is tried again when it did
    // not get them (55P03) or lost a deadlock (40P01); no call fails for it
    let mut u = Client::connect(&on(DB), NoTls).unwrap();
    let mut tries = 0;
    loop {
        tries += 1;
        match u.batch_execute("SET lock_timeout = '200ms'; ALTER EXTENSION spendguard UPDATE") {
            Ok(()) => break,
            Err(e) if matches!(e.code().map(|c| c.code()), Some("55P03" | "40P01")) => {
                assert!(tries < 200, "the update did not get its locks in 200 tries");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("ALTER EXTENSION spendguard UPDATE: {e:?}"),
        }
    }
    let took = t.elapsed();
    std::thread::sleep(Duration::from_millis(1000));
    // the writers run until their connections end; a call cut off by that
    // is not acknowledged
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{DB}' AND pid <> pg_backend_pid()"
        ))
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.join()
            .expect("a call failed during the update with an error SPEC does not name");
    }
    let after = acks.lock().unwrap().len();
    assert!(before > 0, "no call returned before the update");
    assert!(after > before, "no call returned after the update");

    let mut c = Client::connect(&on(DB), NoTls).unwrap();
    let (version, default): (String, String) = {
        let r = c
            .query_one(
                "SELECT e.extversion, a.default_version FROM pg_extension e \
                 JOIN pg_available_extensions a ON a.name = e.extname WHERE e.extname = 'spendguard'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(version, default);
    let all = acks.lock().unwrap().clone();
    let problems = check_acks(&mut c, TENANT, &all);
    assert!(problems.is_empty(), "{problems:#?}");
    let scoped = scope_acks.lock().unwrap().clone();
    let problems = check_scope_acks(&mut c, TENANT, &scoped);
    assert!(problems.is_empty(), "{problems:#?}");
    let o = others.lock().unwrap();
    let problems = check_others(&mut c, TENANT, &o, (o.spend_unknown, o.cap_unknown));
    assert!(problems.is_empty(), "{problems:#?}");
    // the events from before the update were chained by it, the later ones
    // appended: verify() walks them all
    let broken = verify(&mut c);
    assert!(broken.is_empty(), "verify() found {broken:#?}");
    let heads: i64 = c
        .query_one("SELECT count(*) FROM spendguard.chain_heads()", &[])
        .unwrap()
        .get(0);
    assert!(heads > 0);
    let mut fresh = Client::connect(&on(FRESH), NoTls).unwrap();
    fresh.batch_execute("CREATE EXTENSION spendguard").unwrap();
    let (a, b) = (schema(&mut c), schema(&mut fresh));
    let differ: Vec<_> = a
        .iter()
        .filter(|x| !b.contains(x))
        .chain(b.iter().filter(|x| !a.contains(x)))
        .collect();
    assert!(
        differ.is_empty() && a.len() > 300,
        "the updated schema differs from a fresh install ({} objects): {differ:#?}",
        a.len()
    );
    println!(
        "upgrade under load from {from}: {before} calls acknowledged before ALTER EXTENSION spendguard UPDATE \
         ({:.2} s under load, {tries} tries), {} after, none failed; every acknowledged call in the log, \
         verify() clean, schema equal to a fresh install ({} objects)",
        took.as_secs_f64(),
        after - before,
        a.len()
    );
    drop(c);
    drop(fresh);
    for db in [DB, FRESH] {
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .unwrap();
    }
}
