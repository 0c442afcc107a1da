//! spendguard behind PgBouncer in transaction mode (Debian's pgbouncer,
//! started here on a port of its own in front of the test cluster): many
//! client connections over two server connections, two tenants interleaved
//! with `SET LOCAL spendguard.tenant`; every call lands in its tenant. And
//! what goes wrong with a session-level `SET` behind a transaction pooler.
//!
//! The clients use the simple query protocol: PgBouncer 1.18 (Debian 12)
//! does not carry named prepared statements across server connections in
//! transaction mode (1.21+ can, with max_prepared_statements).

use postgres::{Client, NoTls, SimpleQueryMessage};
use spendguard_it::{connect, uniq, usage};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

struct Bouncer {
    dir: PathBuf,
    port: u16,
    child: Child,
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The test cluster's socket directory and port, from SG_CONNINFO.
fn upstream() -> (String, String) {
    let info = spendguard_it::conninfo();
    let field = |k: &str| {
        info.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("{k} in {info}"))
    };
    (field("host"), field("port"))
}

/// A PgBouncer of its own for one test (`slot` picks its port).
fn start(slot: u16) -> Bouncer {
    let port: u16 = std::env::var("SG_PGBOUNCER_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(28830)
        + slot;
    let dir = PathBuf::from(format!("/tmp/spendguard-pgbouncer-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (host, upstream_port) = upstream();
    std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
    std::fs::write(
        dir.join("pgbouncer.ini"),
        format!(
            "[databases]\n\
             spendguard = host={host} port={upstream_port} dbname=spendguard user=postgres pool_size=2\n\
             spendguard_one = host={host} port={upstream_port} dbname=spendguard user=postgres pool_size=1\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {auth}\npool_mode = transaction\n\
             max_client_conn = 200\ndefault_pool_size = 2\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             admin_users = postgres\n\
             logfile = {log}\npidfile = {pid}\n",
            auth = dir.join("userlist.txt").display(),
            log = dir.join("pgbouncer.log").display(),
            pid = dir.join("pgbouncer.pid").display(),
        ),
    )
    .unwrap();
    Command::new("chown")
        .args(["-R", "postgres:postgres", dir.to_str().unwrap()])
        .status()
        .unwrap();
    // PgBouncer refuses to run as root: as root it switches user itself (-u),
    // so the child is PgBouncer and Drop's kill reaches it
    let me = Command::new("id").arg("-un").output().unwrap();
    let mut cmd = Command::new("pgbouncer");
    if String::from_utf8_lossy(&me.stdout).trim() == "root" {
        cmd.args(["-u", "postgres"]);
    }
    let child = cmd
        .arg(dir.join("pgbouncer.ini"))
        .spawn()
        .expect("pgbouncer starts");
    let b = Bouncer { dir, port, child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Client::connect(&b.conninfo("spendguard"), NoTls).is_err() {
        assert!(Instant::now() < deadline, "pgbouncer did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    b
}

impl Bouncer {
    fn conninfo(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db}",
            self.port
        )
    }
}

/// The first value of the last row a simple query returned.
fn value(c: &mut Client, sql: &str) -> String {
    c.simple_query(sql)
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_string()),
            _ => None,
        })
        .last()
        .expect("a row")
}

#[test]
fn set_local_puts_every_call_in_its_tenant_behind_a_transaction_pooler() {
    let b = start(0);
    let (ta, tb) = (uniq("bouncer-a"), uniq("bouncer-b"));
    let clients = 20;
    let rounds = 25;
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (info, ta, tb) = (b.conninfo("spendguard"), ta.clone(), tb.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&info, NoTls).unwrap();
                let mut wrong = Vec::new();
                for r in 0..rounds {
                    let t = if (i + r) % 2 == 0 { &ta } else { &tb };
                    let got = value(
                        &mut c,
                        &format!(
                            "BEGIN; SET LOCAL spendguard.tenant = '{t}'; \
                             SELECT authorized FROM spendguard.budget_authorize_hold('b', 0, 1); \
                             SELECT spendguard.current_tenant()"
                        ),
                    );
                    c.batch_execute("COMMIT").unwrap();
                    if got != *t {
                        wrong.push((t.clone(), got));
                    }
                }
                wrong
            })
        })
        .collect();
    let wrong: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert!(wrong.is_empty(), "calls in the wrong tenant: {wrong:?}");
    // 500 calls over 2 server connections; each tenant got exactly its half
    let half = (clients * rounds / 2) as i64;
    assert_eq!(usage(&mut connect(&ta), "b", 0), (half, half, 0));
    assert_eq!(usage(&mut connect(&tb), "b", 0), (half, half, 0));
    spendguard_it::assert_verified(&mut connect(&ta));
    spendguard_it::assert_verified(&mut connect(&tb));
    // PgBouncer's own count: at most two server connections served them all
    let mut admin = Client::connect(&b.conninfo("pgbouncer"), NoTls).unwrap();
    let servers = admin
        .simple_query("SHOW SERVERS")
        .unwrap()
        .into_iter()
        .filter(
            |m| matches!(m, SimpleQueryMessage::Row(r) if r.get("database") == Some("spendguard")),
        )
        .count();
    assert!((1..=2).contains(&servers), "{servers} server connections");
}

/// A session-level SET behind a transaction pooler stays on the server
/// connection after the client's transaction: the next client that gets
/// that connection runs in the wrong tenant. (The rule: SET LOCAL, or
/// set_config(..., true), inside the transaction of the call.)
#[test]
fn a_session_level_set_leaks_to_the_next_client_of_the_server_connection() {
    let b = start(1);
    let leaky = uniq("leaky");
    // one server connection: every client shares it
    let mut x = Client::connect(&b.conninfo("spendguard_one"), NoTls).unwrap();
    let mut y = Client::connect(&b.conninfo("spendguard_one"), NoTls).unwrap();
    x.batch_execute(&format!("SET spendguard.tenant = '{leaky}'"))
        .unwrap();
    // y never set a tenant, yet its calls run in x's
    assert_eq!(value(&mut y, "SELECT spendguard.current_tenant()"), leaky);
    value(
        &mut y,
        "SELECT authorized FROM spendguard.budget_authorize_hold('oops', 0, 1)",
    );
    assert_eq!(
        usage(&mut connect(&leaky), "oops", 0),
        (1, 1, 0),
        "y's call landed in x's tenant"
    );
    // SET LOCAL does not leak: it ends with the transaction
    x.batch_execute("RESET spendguard.tenant").unwrap();
    let scoped = uniq("scoped");
    x.batch_execute(&format!(
        "BEGIN; SET LOCAL spendguard.tenant = '{scoped}'; COMMIT"
    ))
    .unwrap();
    assert_eq!(
        value(&mut y, "SELECT spendguard.current_tenant()"),
        "default"
    );
}

/// SPEC §5 behind a transaction pooler: one login role (PgBouncer's), each
/// transaction `SET LOCAL ROLE <tenant role>` and `SET LOCAL
/// spendguard.tenant`, with `spendguard.tenant_auth = role`: 500
/// interleaved calls of two tenant roles all land in their tenant, and a
/// role that names the other tenant is refused (42501).
#[test]
fn tenant_roles_behind_a_transaction_pooler() {
    let (ta, tb) = (uniq("bouncer-role-a"), uniq("bouncer-role-b"));
    let mut su = connect("default");
    for (r, t) in [("sg_bouncer_a", &ta), ("sg_bouncer_b", &tb)] {
        spendguard_it::app_role(&mut su, r);
        su.execute(
            "SELECT spendguard.tenant_grant($1::text::regrole, $2)",
            &[&r, t],
        )
        .unwrap();
    }
    let _mode = spendguard_it::RoleMode::on();
    let b = start(2);
    let (clients, rounds) = (20, 25);
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (info, ta, tb) = (b.conninfo("spendguard"), ta.clone(), tb.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect(&info, NoTls).unwrap();
                let mut calls = [0i64; 2];
                for r in 0..rounds {
                    let k = (i + r) % 2;
                    let (role, t) = if k == 0 {
                        ("sg_bouncer_a", &ta)
                    } else {
                        ("sg_bouncer_b", &tb)
                    };
                    let got = value(
                        &mut c,
                        &format!(
                            "BEGIN; SET LOCAL ROLE {role}; SET LOCAL spendguard.tenant = '{t}'; \
                             SELECT allowed FROM spendguard.scope_record(ARRAY['org:x'], 1); \
                             SELECT spendguard.current_tenant() || ' ' || current_user"
                        ),
                    );
                    c.simple_query("COMMIT").unwrap();
                    assert_eq!(got, format!("{t} {role}"));
                    calls[k] += 1;
                }
                // the other tenant's role is refused, behind the pooler too
                let e = c
                    .simple_query(&format!(
                        "BEGIN; SET LOCAL ROLE sg_bouncer_a; SET LOCAL spendguard.tenant = '{tb}'; \
                         SELECT spendguard.scope_record(ARRAY['org:x'], 1)"
                    ))
                    .unwrap_err();
                assert_eq!(e.code().map(|c| c.code()), Some("42501"));
                c.simple_query("ROLLBACK").unwrap();
                calls
            })
        })
        .collect();
    let mut calls = [0i64; 2];
    for h in handles {
        let c = h.join().unwrap();
        calls[0] += c[0];
        calls[1] += c[1];
    }
    assert_eq!(calls[0] + calls[1], 500);
    for (t, n) in [(&ta, calls[0]), (&tb, calls[1])] {
        su.execute("SELECT set_config('spendguard.tenant', $1, false)", &[t])
            .unwrap();
        let spent: i64 = su
            .query_one(
                "SELECT coalesce(sum(spent_micros), 0)::bigint FROM spendguard.scope_spend('org:x', 'total', '2000-01-01')",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(spent, n, "tenant {t}");
        spendguard_it::assert_verified(&mut su);
    }
}
