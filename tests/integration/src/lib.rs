//! Shared pieces of the multi-connection tests: connecting to the cluster
//! that `make test` started, unique ids so suites can share one database,
//! the operations of SPEC §1 as data, and running them against the database.
//! The reference model that the database is checked against is in `model`.

pub mod model;
pub mod strategies;
pub mod writers;

use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

/// The libpq connection string: $SG_CONNINFO (set by scripts/env.sh), else
/// the default local cluster of scripts/cluster.sh.
pub fn conninfo() -> String {
    std::env::var("SG_CONNINFO").unwrap_or_else(|_| {
        "host=/tmp/spendguard-28815/sock port=28815 user=postgres dbname=spendguard".to_string()
    })
}

/// A connection whose calls run in `tenant`.
pub fn connect(tenant: &str) -> Client {
    let mut c = Client::connect(&conninfo(), NoTls)
        .unwrap_or_else(|e| panic!("connect to {}: {e}", conninfo()));
    c.execute(
        "SELECT set_config('spendguard.tenant', $1, false)",
        &[&tenant],
    )
    .unwrap();
    c
}

/// An id no other test (or earlier run) uses.
pub fn uniq(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A small deterministic generator (xorshift64) for the tests that draw
/// random operations or values from a seed they print.
pub struct Rng(pub u64);

impl Rng {
    /// A generator seeded from `seed` (never 0).
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// `n` random ASCII letters and digits (incompressible for pglz).
    pub fn word(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n)
            .map(|_| A[self.below(A.len() as u64) as usize] as char)
            .collect()
    }
}

/// A seed from the clock, for a run that prints it.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The SQLSTATE of a failed call (panics on a non-database error).
pub fn sqlstate(e: &postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| panic!("not a database error: {e}"))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    pub id: String,
    pub lease: String,
    pub epoch: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Release,
    Reverse,
    Reconcile,
    Capture,
}

/// One call of SPEC §1 with its arguments exactly as passed (None = NULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Authorize {
        cap: Option<String>,
        grant: Option<i32>,
        amount: Option<i64>,
        max_inv: Option<i64>,
        max_cpi: Option<i64>,
        max_total: Option<i64>,
        hold: Option<String>,
        event: Option<String>,
        auth: Option<Auth>,
        /// the TTL as interval text (`'1 hour'`), None = NULL
        ttl: Option<String>,
    },
    Mutate {
        kind: Kind,
        cap: Option<String>,
        grant: Option<i32>,
        amount: Option<i64>,
        /// realized_spend, reconcile/capture only
        realized: Option<i64>,
        hold: Option<String>,
        event: Option<String>,
        auth: Option<Auth>,
    },
    Increment {
        cap: Option<String>,
        grant: Option<i32>,
        max: Option<i64>,
        event: Option<String>,
    },
    /// `budget_expire_holds(now() + hours_ahead hours, lim)`
    Expire { hours_ahead: i64, lim: Option<i32> },
}

/// What a call returned, reduced to what the model can predict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Decision {
        authorized: bool,
        denial: Option<String>,
        committed_after: i64,
        count_after: i64,
    },
    Mutation {
        kind: String,
        exposure: i64,
        realized: i64,
        committed_after: i64,
        count_after: i64,
    },
    Increment(bool),
    /// how many holds a sweep expired
    Expired(i64),
    Error(String),
}

impl Outcome {
    pub fn denied(reason: &str, committed_after: i64, count_after: i64) -> Outcome {
        Outcome::Decision {
            authorized: false,
            denial: Some(reason.into()),
            committed_after,
            count_after,
        }
    }
    pub fn authorized(committed_after: i64, count_after: i64) -> Outcome {
        Outcome::Decision {
            authorized: true,
            denial: None,
            committed_after,
            count_after,
        }
    }
    pub fn err(code: &str) -> Outcome {
        Outcome::Error(code.into())
    }
}

fn auth_parts(a: &Option<Auth>) -> (Option<String>, Option<String>, Option<i64>) {
    match a {
        Some(a) => (Some(a.id.clone()), Some(a.lease.clone()), Some(a.epoch)),
        None => (None, None, None),
    }
}

/// Runs `op` as one autocommit call and reduces the result.
pub fn run(c: &mut Client, op: &Op) -> Outcome {
    let r = match op {
        Op::Authorize {
            cap,
            grant,
            amount,
            max_inv,
            max_cpi,
            max_total,
            hold,
            event,
            auth,
            ttl,
        } => {
            let (ai, li, ep) = auth_parts(auth);
            c.query_one(
                "SELECT authorized, denial_reason, committed_cost_after, invocation_count_after \
                 FROM spendguard.budget_authorize_hold($1::text, $2::int4, $3::int8, $4::int8, \
                 $5::int8, $6::int8, $7::text, $8::text, $9::text, $10::text, $11::int8, \
                 $12::text::interval)",
                &[
                    cap, grant, amount, max_inv, max_cpi, max_total, hold, event, &ai, &li, &ep,
                    ttl,
                ],
            )
            .map(|r| Outcome::Decision {
                authorized: r.get(0),
                denial: r.get(1),
                committed_after: r.get(2),
                count_after: r.get(3),
            })
        }
        Op::Mutate {
            kind,
            cap,
            grant,
            amount,
            realized,
            hold,
            event,
            auth,
        } => {
            let (ai, li, ep) = auth_parts(auth);
            let cols = "kind, exposure_units, realized_spend_units, committed_cost_after, \
                        invocation_count_after";
            let r = match kind {
                Kind::Release | Kind::Reverse => {
                    let f = if *kind == Kind::Release {
                        "budget_release_hold"
                    } else {
                        "budget_reverse_hold"
                    };
                    c.query_one(
                        &format!(
                            "SELECT {cols} FROM spendguard.{f}($1::text, $2::int4, $3::int8, \
                             $4::text, $5::text, $6::text, $7::text, $8::int8)"
                        ),
                        &[cap, grant, amount, hold, event, &ai, &li, &ep],
                    )
                }
                Kind::Reconcile | Kind::Capture => {
                    let f = if *kind == Kind::Reconcile {
                        "budget_reconcile_hold"
                    } else {
                        "budget_capture_hold"
                    };
                    c.query_one(
                        &format!(
                            "SELECT {cols} FROM spendguard.{f}($1::text, $2::int4, $3::int8, \
                             $4::int8, $5::text, $6::text, $7::text, $8::text, $9::int8)"
                        ),
                        &[cap, grant, amount, realized, hold, event, &ai, &li, &ep],
                    )
                }
            };
            r.map(|r| Outcome::Mutation {
                kind: r.get(0),
                exposure: r.get(1),
                realized: r.get(2),
                committed_after: r.get(3),
                count_after: r.get(4),
            })
        }
        Op::Increment {
            cap,
            grant,
            max,
            event,
        } => c
            .query_one(
                "SELECT spendguard.budget_try_increment($1::text, $2::int4, $3::int8, $4::text)",
                &[cap, grant, max, event],
            )
            .map(|r| Outcome::Increment(r.get(0))),
        Op::Expire { hours_ahead, lim } => c
            .query_one(
                "SELECT spendguard.budget_expire_holds(now() + $1::int8 * interval '1 hour', $2::int4)",
                &[hours_ahead, lim],
            )
            .map(|r| Outcome::Expired(r.get(0))),
    };
    r.unwrap_or_else(|e| Outcome::Error(sqlstate(&e)))
}

/// Counters of one budget: (invocation_count, exposed, realized), zeros
/// when the budget has no row.
pub fn usage(c: &mut Client, cap: &str, grant: i32) -> (i64, i64, i64) {
    c.query_opt(
        "SELECT invocation_count, total_cost_exposed, total_cost_realized \
         FROM spendguard.budget_usage($1, $2)",
        &[&cap, &grant],
    )
    .unwrap()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .unwrap_or((0, 0, 0))
}

/// (disposition, authorized, remaining, realized) of one hold.
pub fn hold(c: &mut Client, hold_id: &str) -> Option<(String, i64, i64, i64)> {
    c.query_opt(
        "SELECT disposition, authorized_exposure, remaining_exposure, realized_spend \
         FROM spendguard.budget_holds(hold_id => $1)",
        &[&hold_id],
    )
    .unwrap()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
}

/// Runs `per_conn(conn_index, client)` on `n` connections started together.
pub fn race<T: Send + 'static>(
    tenant: &str,
    n: usize,
    per_conn: impl Fn(usize, &mut postgres::Client) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let barrier = Arc::new(Barrier::new(n));
    let f = Arc::new(per_conn);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (b, f, tenant) = (barrier.clone(), f.clone(), tenant.to_string());
            thread::spawn(move || {
                let mut c = connect(&tenant);
                b.wait();
                f(i, &mut c)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// The rows `verify()` returns for the tenant of `c` (none when sound).
pub fn verify(c: &mut Client) -> Vec<(String, String, String, String)> {
    c.query(
        "SELECT object, check_name, expected, actual FROM spendguard.verify()",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// Panics with the broken invariants unless `verify()` returns nothing.
pub fn assert_verified(c: &mut Client) {
    let rows = verify(c);
    assert!(rows.is_empty(), "verify() found: {rows:#?}");
}

/// Every row of every spendguard table that belongs to the tenant of `c`,
/// as text: to assert "nothing changed". (The tests connect as a superuser,
/// whom row level security does not filter, so the tenant is filtered here.)
pub fn snapshot(c: &mut Client) -> Vec<String> {
    let tables: Vec<String> = c
        .query(
            "SELECT c.relname::text FROM pg_class c \
             WHERE c.relnamespace = 'spendguard'::regnamespace AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let q = format!(
            "SELECT format('{t} %s', x) FROM spendguard.{t} x \
             WHERE x.tenant_id = spendguard.current_tenant() ORDER BY 1"
        );
        for r in c.query(&q, &[]).unwrap() {
            out.push(r.get(0));
        }
    }
    out
}

/// Builders for readable operation tables.
impl Op {
    pub fn authorize(cap: &str, amount: i64) -> Op {
        Op::Authorize {
            cap: Some(cap.into()),
            grant: Some(0),
            amount: Some(amount),
            max_inv: None,
            max_cpi: None,
            max_total: None,
            hold: None,
            event: None,
            auth: None,
            ttl: None,
        }
    }
    /// A sweep at `now() + hours_ahead` hours with the default limit.
    pub fn expire(hours_ahead: i64) -> Op {
        Op::Expire {
            hours_ahead,
            lim: Some(10000),
        }
    }
    fn mutation(kind: Kind, hold: &str, amount: Option<i64>, realized: Option<i64>) -> Op {
        Op::Mutate {
            kind,
            cap: None,
            grant: None,
            amount,
            realized,
            hold: Some(hold.into()),
            event: None,
            auth: None,
        }
    }
    pub fn release(hold: &str, amount: Option<i64>) -> Op {
        Op::mutation(Kind::Release, hold, amount, None)
    }
    pub fn reverse(hold: &str, amount: Option<i64>) -> Op {
        Op::mutation(Kind::Reverse, hold, amount, None)
    }
    pub fn reconcile(hold: &str, amount: Option<i64>, realized: i64) -> Op {
        Op::mutation(Kind::Reconcile, hold, amount, Some(realized))
    }
    pub fn capture(hold: &str, amount: Option<i64>, realized: i64) -> Op {
        Op::mutation(Kind::Capture, hold, amount, Some(realized))
    }
    /// A mutation of the budget itself (no hold): all arguments given.
    pub fn budget(kind: Kind, cap: &str, amount: i64, realized: Option<i64>) -> Op {
        Op::Mutate {
            kind,
            cap: Some(cap.into()),
            grant: Some(0),
            amount: Some(amount),
            realized,
            hold: None,
            event: None,
            auth: None,
        }
    }
    pub fn increment(cap: &str, max: Option<i64>) -> Op {
        Op::Increment {
            cap: Some(cap.into()),
            grant: Some(0),
            max,
            event: None,
        }
    }
    pub fn limits(mut self, inv: Option<i64>, cpi: Option<i64>, total: Option<i64>) -> Op {
        if let Op::Authorize {
            max_inv,
            max_cpi,
            max_total,
            ..
        } = &mut self
        {
            (*max_inv, *max_cpi, *max_total) = (inv, cpi, total);
        }
        self
    }
    pub fn hold(mut self, h: &str) -> Op {
        if let Op::Authorize { hold, .. } = &mut self {
            *hold = Some(h.into());
        }
        self
    }
    pub fn ttl(mut self, t: &str) -> Op {
        if let Op::Authorize { ttl, .. } = &mut self {
            *ttl = Some(t.into());
        }
        self
    }
    pub fn on(mut self, c: &str) -> Op {
        if let Op::Mutate { cap, grant, .. } = &mut self {
            (*cap, *grant) = (Some(c.into()), Some(0));
        }
        self
    }
    pub fn event(mut self, e: &str) -> Op {
        match &mut self {
            Op::Authorize { event, .. }
            | Op::Mutate { event, .. }
            | Op::Increment { event, .. } => *event = Some(e.into()),
            Op::Expire { .. } => panic!("a sweep takes no event id"),
        }
        self
    }
    pub fn auth(mut self, id: &str, lease: &str, epoch: i64) -> Op {
        let a = Some(Auth {
            id: id.into(),
            lease: lease.into(),
            epoch,
        });
        match &mut self {
            Op::Authorize { auth, .. } | Op::Mutate { auth, .. } => *auth = a,
            Op::Increment { .. } | Op::Expire { .. } => panic!("{self:?} takes no authority"),
        }
        self
    }
}

/// Mutation outcome shorthand: (kind, exposure, realized, committed_after, count_after).
pub fn mutated(kind: &str, exposure: i64, realized: i64, committed: i64, count: i64) -> Outcome {
    Outcome::Mutation {
        kind: kind.into(),
        exposure,
        realized,
        committed_after: committed,
        count_after: count,
    }
}

/// `spendguard.tenant_auth = role` for the cluster while it lives (ALTER
/// SYSTEM and a reload), `off` again when dropped, even after a failed
/// assertion. Test binaries run one at a time, and the other tests connect
/// as a superuser, whom role mode does not check.
pub struct RoleMode;

impl RoleMode {
    pub fn on() -> RoleMode {
        set_tenant_auth("role");
        RoleMode
    }
}

impl Drop for RoleMode {
    fn drop(&mut self) {
        set_tenant_auth("off");
    }
}

fn set_tenant_auth(mode: &str) {
    let mut c = connect("default");
    // ALTER SYSTEM knows the setting once the library is loaded; it runs
    // outside a transaction block, so one statement per call
    c.batch_execute("LOAD 'spendguard'").unwrap();
    c.batch_execute(&format!(
        "ALTER SYSTEM SET spendguard.tenant_auth = '{mode}'"
    ))
    .unwrap();
    c.batch_execute("SELECT pg_reload_conf()").unwrap();
    // a new session sees it once the postmaster has re-read the file
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut n = connect("default");
        n.batch_execute("LOAD 'spendguard'").unwrap();
        let now: String = n
            .query_one("SHOW spendguard.tenant_auth", &[])
            .unwrap()
            .get(0);
        if now == mode {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "tenant_auth stayed {now}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A NOLOGIN role `name` (made once) with USAGE on the schema: an
/// application role that a superuser connection becomes with `SET ROLE`.
pub fn app_role(c: &mut Client, name: &str) {
    c.batch_execute(&format!(
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN
             CREATE ROLE {name};
           END IF;
         END $$;
         GRANT USAGE ON SCHEMA spendguard TO {name};"
    ))
    .unwrap();
}

/// Escrow slices over their quota (SPEC §6 `slices`): for every slice of a
/// valid split, its spend and open, unexpired reservations in the split's
/// period must stay within its quota. One line per slice that is not.
pub fn slice_overdrafts(c: &mut Client, tenant: &str) -> Vec<String> {
    // each slice's family: its §1 budgets' capability id
    let slices: Vec<(String, i32)> = c
        .query(
            "SELECT scope, slice FROM spendguard.scope_slice WHERE tenant_id = $1",
            &[&tenant],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let scopes: Vec<&str> = slices.iter().map(|x| x.0.as_str()).collect();
    let nums: Vec<i32> = slices.iter().map(|x| x.1).collect();
    let caps: Vec<String> = slices
        .iter()
        .map(|(s, k)| spendguard_core::scope::slice_budget_id(s, *k))
        .collect();
    c.query(
        "WITH f AS (SELECT * FROM unnest($1::text[], $2::int[], $3::text[]) f(scope, slice, cap)),
         s AS (
           SELECT x.scope, x.slice, p.rank, x.quotas[p.rank] AS quota, x.starts[p.rank] AS start,
                  CASE p.rank WHEN 1 THEN x.starts[p.rank] + 1
                              WHEN 2 THEN x.starts[p.rank] + 7
                              WHEN 3 THEN ((date '2000-01-01' + x.starts[p.rank]) + interval '1 month')::date
                                          - date '2000-01-01'
                              ELSE 2147483647 END AS stop,
                  f.cap
           FROM spendguard.scope_slice x CROSS JOIN generate_series(1, 4) p(rank)
           JOIN f ON f.scope = x.scope AND f.slice = x.slice
           WHERE x.tenant_id = $4 AND x.quotas[p.rank] IS NOT NULL)
         SELECT format('%s slice %s rank %s: quota %s, spent %s, reserved %s', s.scope, s.slice,
                       s.rank, s.quota, sp, re)
         FROM s,
         LATERAL (SELECT coalesce(sum(u.total_cost_realized), 0) AS sp FROM spendguard.budget_usage u
                  WHERE u.tenant_id = $4 AND u.capability_id = s.cap
                    AND u.grant_index >= s.start AND u.grant_index < s.stop) a,
         LATERAL (SELECT coalesce(sum(h.remaining_exposure), 0) AS re FROM spendguard.budget_hold h
                  WHERE h.tenant_id = $4 AND h.capability_id = s.cap
                    AND h.grant_index >= s.start AND h.grant_index < s.stop
                    AND h.disposition = 'open' AND h.expires_at > now()) b
         WHERE sp + re > s.quota",
        &[&scopes, &nums, &caps, &tenant],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}
