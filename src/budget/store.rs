//! The SQL of budgets: every read and write of budget_usage, budget_hold and
//! budget_event, as cached prepared statements. No rules here.
//!
//! Each operation is two statements on its common path: one that locks
//! what it decides on (the budget row, and the hold when there is one), and
//! one data-modifying CTE that writes usage, hold and event together. Every
//! statement costs an executor start-up and a re-read of the tables' CHECK
//! constraints, so fewer statements is most of the speed (see bench/).

use crate::spi::{
    chained, spi, versioned, Db, Stmt, Versioned, BOOL, BYTEA, INT4, INT8, INTERVAL, TEXT,
    TIMESTAMPTZ,
};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::pg_sys::PgOid;
use pgrx::spi::SpiTupleTable;
use spendguard_core::budget::{Authority, Disposition, Hold, Usage};
use spendguard_core::chain::{self, Hash};
use spendguard_core::{Error, Result};

// The budget row's chain head (SPEC §9), read with its lock: 0.4.0's
// schema (served until ALTER EXTENSION UPDATE, crate::spi::Versioned) has
// none, and its events no link.
macro_rules! head {
    (current, $a:literal) => {
        concat!($a, "chain_n, ", $a, "chain_hash")
    };
    (legacy, $a:literal) => {
        "0::bigint, NULL::bytea"
    };
}

macro_rules! lock_usage {
    ($v:ident) => {
        concat!(
            "SELECT invocation_count, total_cost_exposed, total_cost_realized, false, ",
            head!($v, ""),
            " FROM spendguard.budget_usage \
             WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 FOR UPDATE"
        )
    };
}
static LOCK_USAGE: Versioned = versioned!(lock_usage, &[TEXT, TEXT, INT4, TEXT], chained);

/// LOCK_USAGE that also says whether the hold id $4 is taken (a separate
/// statement: the executor initialises a sub-plan even when it is skipped).
macro_rules! lock_usage_new_hold {
    ($v:ident) => {
        concat!(
            "SELECT invocation_count, total_cost_exposed, total_cost_realized, \
             EXISTS (SELECT 1 FROM spendguard.budget_hold h WHERE h.tenant_id = $1 AND h.hold_id = $4), ",
            head!($v, ""),
            " FROM spendguard.budget_usage \
             WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 FOR UPDATE"
        )
    };
}
static LOCK_USAGE_NEW_HOLD: Versioned =
    versioned!(lock_usage_new_hold, &[TEXT, TEXT, INT4, TEXT], chained);

static CREATE_USAGE: Stmt = Stmt {
    sql: "INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index) \
          VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    types: &[TEXT, TEXT, INT4],
};

/// The hold and its budget, both locked (the budget first: every decision
/// on a budget holds its row lock).
macro_rules! lock_hold {
    ($v:ident) => {
        concat!(
            "SELECT u.invocation_count, u.total_cost_exposed, u.total_cost_realized, \
             h.capability_id, h.grant_index, h.authorized_exposure, h.remaining_exposure, \
             h.realized_spend, h.disposition, h.authority_id, h.lease_id, h.lease_epoch, \
             h.expires_at, ",
            head!($v, "u."),
            " FROM spendguard.budget_hold h JOIN spendguard.budget_usage u \
               ON u.tenant_id = h.tenant_id AND u.capability_id = h.capability_id \
              AND u.grant_index = h.grant_index \
             WHERE h.tenant_id = $1 AND h.hold_id = $2 FOR UPDATE OF u, h"
        )
    };
}
static LOCK_HOLD: Versioned = versioned!(lock_hold, &[TEXT, TEXT], chained);

static GET_EVENT: Stmt = Stmt {
    sql:
        "SELECT request_fingerprint, hold_id, kind::text, allowed, denial_reason, exposure_units, \
          realized_spend_units, invocation_count_after, total_cost_exposed_after, \
          total_cost_realized_after, event_seq, authority_id, lease_epoch, guarantee_level \
          FROM spendguard.budget_event WHERE tenant_id = $1 AND event_id = $2",
    types: &[TEXT, TEXT],
};

/// The sweep's work list: open holds of the tenant past their expiry,
/// oldest first (index budget_hold_expiry). Read without locks; each
/// budget is then locked, skipping the busy ones.
static EXPIRY_CANDIDATES: Stmt = Stmt {
    sql: "SELECT capability_id, grant_index FROM spendguard.budget_hold \
          WHERE tenant_id = $1 AND disposition = 'open' AND expires_at <= $2 \
          ORDER BY expires_at, hold_id LIMIT $3",
    types: &[TEXT, TIMESTAMPTZ, INT8],
};

/// The remaining exposure of a budget's open holds with a TTL not expired
/// at $4 (index budget_hold_budget_expiry): what holds opened by other
/// capabilities (budget/holds.rs) still hold. `expires_at + '0 s'` keeps
/// the expiry out of the index conditions, see FAMILY_TOTALS.
static OPEN_EXPOSURE: Stmt = Stmt {
    sql: "SELECT coalesce(sum(remaining_exposure), 0)::bigint FROM spendguard.budget_hold \
          WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 \
            AND disposition = 'open' AND expires_at IS NOT NULL \
            AND expires_at + interval '0 s' > $4",
    types: &[TEXT, TEXT, INT4, TIMESTAMPTZ],
};

/// Families of budgets (one capability each, a budget per day: SPEC §6's
/// scopes), each summed over a range of days: row i of the arrays is
/// (capability $2[i], days [$3[i], $4[i])). Realized spend, and the
/// remaining exposure of holds open and not expired at $5. Range scans of
/// the usage key and of budget_hold_budget_expiry, all in one statement
/// (one snapshot).
///
/// The expiry is compared as `expires_at + '0 s'`, which no index can
/// serve, so that only the family's columns can be index conditions and
/// budget_hold_expiry (tenant, expires_at) is costed as a scan of the
/// tenant's every open hold. Compared as written, statistics older than
/// the holds (every hold of the last ANALYZE expired by $5) make
/// `expires_at > $5` look empty, and the planner took budget_hold_expiry
/// for it, reading every hold of the tenant settled since the last vacuum:
/// 6.3 ms and 2,137 buffers for one family on the bench cluster, for what
/// the family's range reads in a few buffers.
static FAMILY_TOTALS: Stmt = Stmt {
    sql: "SELECT r.i, \
          (SELECT coalesce(sum(u.total_cost_realized), 0)::bigint FROM spendguard.budget_usage u \
           WHERE u.tenant_id = $1 AND u.capability_id = r.cap \
             AND u.grant_index >= r.s AND u.grant_index < r.e), \
          (SELECT coalesce(sum(h.remaining_exposure), 0)::bigint FROM spendguard.budget_hold h \
           WHERE h.tenant_id = $1 AND h.capability_id = r.cap \
             AND h.grant_index >= r.s AND h.grant_index < r.e \
             AND h.disposition = 'open' AND h.expires_at IS NOT NULL \
             AND h.expires_at + interval '0 s' > $5) \
          FROM unnest($2::text[], $3::int4[], $4::int4[]) WITH ORDINALITY r(cap, s, e, i) \
          ORDER BY r.i",
    types: &[TEXT, TEXT_ARRAY, INT4_ARRAY, INT4_ARRAY, TIMESTAMPTZ],
};

const TEXT_ARRAY: PgOid = PgOid::BuiltIn(pgrx::pg_sys::PgBuiltInOids::TEXTARRAYOID);
const INT4_ARRAY: PgOid = PgOid::BuiltIn(pgrx::pg_sys::PgBuiltInOids::INT4ARRAYOID);

/// The realized spend of each budget of a family with grant_index in
/// [$3, $4), in order.
static FAMILY_REALIZED: Stmt = Stmt {
    sql: "SELECT grant_index, total_cost_realized FROM spendguard.budget_usage \
          WHERE tenant_id = $1 AND capability_id = $2 AND grant_index >= $3 AND grant_index < $4 \
          ORDER BY grant_index",
    types: &[TEXT, TEXT, INT4, INT4],
};

/// LOCK_USAGE for the sweep: a budget another call holds is skipped, not
/// waited for (the next sweep gets it).
macro_rules! lock_usage_skip_locked {
    ($v:ident) => {
        concat!(
            "SELECT invocation_count, total_cost_exposed, total_cost_realized, ",
            head!($v, ""),
            " FROM spendguard.budget_usage \
             WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 \
             FOR UPDATE SKIP LOCKED"
        )
    };
}
static LOCK_USAGE_SKIP_LOCKED: Versioned =
    versioned!(lock_usage_skip_locked, &[TEXT, TEXT, INT4], chained);

/// The open holds of one budget past their expiry at $4, oldest first,
/// locked (index budget_hold_budget_expiry; holds due at the same
/// microsecond in the index's order: the index has no hold_id, which would
/// not fit beside a capability id of 1,024 bytes). Only run under the
/// budget's row lock; SKIP LOCKED so that it can never wait, whatever else
/// holds a hold row.
static LOCK_EXPIRED_HOLDS: Stmt = Stmt {
    sql: "SELECT hold_id, authorized_exposure, remaining_exposure, realized_spend, \
          authority_id, lease_id, lease_epoch, expires_at \
          FROM spendguard.budget_hold \
          WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 \
            AND disposition = 'open' AND expires_at <= $4 \
          ORDER BY expires_at LIMIT $5 FOR UPDATE SKIP LOCKED",
    types: &[TEXT, TEXT, INT4, TIMESTAMPTZ, INT8],
};

// The write statements share one parameter list:
// $1 tenant, $2 capability, $3 grant, $4..$6 usage after (count, exposed,
// realized), $7 event_id, $8 fingerprint, $9 hold_id, $10 kind, $11 allowed,
// $12 denial reason, $13 exposure units, $14 realized units, $15..$17 limits,
// $18..$20 authority, $21 guarantee level, $22..$24 hold after (remaining,
// realized, disposition), $25 the new hold's TTL, $26 event_seq (and the
// usage row's seq), $27 recorded_at, $28..$30 the link (chain_n,
// prev_hash, hash). The caller computes the link from these same values
// (spendguard_core::chain::event_link), so event_seq and recorded_at are
// parameters, not nextval() and now() in the statement.
#[rustfmt::skip]
const WRITE_TYPES: &[PgOid] = &[
    TEXT, TEXT, INT4, INT8, INT8, INT8, TEXT, TEXT, TEXT, TEXT, BOOL, TEXT, INT8, INT8, INT8, INT8,
    INT8, TEXT, TEXT, INT8, TEXT, INT8, INT8, TEXT, INTERVAL,
    INT8, TIMESTAMPTZ, INT8, BYTEA, BYTEA,
];

/// The event INSERT. `$conflict` is the ON CONFLICT clause for a call with
/// an event id (a concurrent retry of it inserts nothing), or empty: ON
/// CONFLICT makes every insert speculative (an arbiter-index check first,
/// and one more WAL record to confirm the row), which a call without an
/// event id cannot need. In 0.4.0's schema, without the link.
macro_rules! event_insert {
    (current, $source:literal, $conflict:expr) => {
        event_insert!(@ ", chain_n, prev_hash, hash", ", $28, $29, $30 ", $source, $conflict)
    };
    (legacy, $source:literal, $conflict:expr) => {
        event_insert!(@ "", " ", $source, $conflict)
    };
    (@ $cols:literal, $vals:literal, $source:literal, $conflict:expr) => {
        concat!(
            "INSERT INTO spendguard.budget_event (tenant_id, event_seq, event_id, \
             request_fingerprint, hold_id, capability_id, grant_index, kind, allowed, \
             denial_reason, recorded_at, exposure_units, realized_spend_units, max_invocations, \
             max_cost_per_invocation, max_total_cost, invocation_count_after, \
             total_cost_exposed_after, total_cost_realized_after, authority_id, lease_id, \
             lease_epoch, guarantee_level",
            $cols,
            ") SELECT $1, $26, $7, $8, $9, $2, $3, $10::spendguard.budget_event_kind, $11, $12, \
             $27, $13, $14, $15, $16, $17, $4, $5, $6, $18, $19, $20, $21",
            $vals,
            $source,
            $conflict,
            " RETURNING event_seq"
        )
    };
}

macro_rules! on_conflict {
    (0) => {
        ""
    };
    (1) => {
        " ON CONFLICT (tenant_id, event_id) WHERE event_id IS NOT NULL DO NOTHING"
    };
}

macro_rules! usage_update {
    (current) => {
        usage_update!(@ ", chain_n = $28, chain_hash = $30")
    };
    (legacy) => {
        usage_update!(@ "")
    };
    (@ $head:literal) => {
        concat!(
            "u AS (UPDATE spendguard.budget_usage SET invocation_count = $4, \
             total_cost_exposed = $5, total_cost_realized = $6, seq = $26, updated_at = now()",
            $head,
            " WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 RETURNING seq)"
        )
    };
}

/// Each write statement comes in two forms: `[0]` for a call without an
/// event id, `[1]` with one (ON CONFLICT on the event id); each of them
/// for this release's schema and for 0.4.0's.
type Write = [Versioned; 2];

/// `write!(m)`: the four statements of a write from `m!(v, c)`, `v` the
/// schema form and `c` 0 or 1 (without or with ON CONFLICT).
macro_rules! write {
    ($m:ident) => {
        [write!(@ $m, 0), write!(@ $m, 1)]
    };
    (@ $m:ident, $c:tt) => {
        Versioned {
            current: Stmt {
                sql: $m!(current, $c),
                types: WRITE_TYPES,
            },
            legacy: Stmt {
                sql: $m!(legacy, $c),
                types: WRITE_TYPES,
            },
            has: chained,
        }
    };
}

/// A denial: the event, and the budget's chain head (its counters, seq
/// and updated_at unchanged).
macro_rules! write_denial {
    (current, $c:tt) => {
        concat!(
            "WITH u AS (UPDATE spendguard.budget_usage SET chain_n = $28, chain_hash = $30 \
             WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 RETURNING 1) ",
            event_insert!(current, "FROM u", on_conflict!($c))
        )
    };
    (legacy, $c:tt) => {
        event_insert!(legacy, "", on_conflict!($c))
    };
}
static WRITE_EVENT: Write = write!(write_denial);

/// Usage and event (authorize without a hold, budget-level mutations,
/// try_increment).
macro_rules! write_usage {
    ($v:ident, $c:tt) => {
        concat!(
            "WITH ",
            usage_update!($v),
            " ",
            event_insert!($v, "FROM u", on_conflict!($c))
        )
    };
}
static WRITE_USAGE: Write = write!(write_usage);

/// Usage, event and a new hold; the event row is only written when the
/// hold was (a taken hold id leaves no event and the caller raises SG003).
/// The hold keeps its ON CONFLICT: the same hold id may be opened at the
/// same moment on another budget, whose lock this call does not hold.
macro_rules! write_open_hold {
    ($v:ident, $c:tt) => {
        concat!(
            "WITH ",
            usage_update!($v),
            ", h AS (INSERT INTO spendguard.budget_hold (tenant_id, hold_id, capability_id, \
             grant_index, authorized_exposure, remaining_exposure, authority_id, lease_id, \
             lease_epoch, expires_at) VALUES ($1, $9, $2, $3, $13, $13, $18, $19, $20, now() + $25) \
             ON CONFLICT DO NOTHING RETURNING 1) ",
            event_insert!($v, "FROM u, h", on_conflict!($c))
        )
    };
}
static WRITE_OPEN_HOLD: Write = write!(write_open_hold);

/// Usage, event and the hold's new state.
macro_rules! write_update_hold {
    ($v:ident, $c:tt) => {
        concat!(
            "WITH ",
            usage_update!($v),
            ", h AS (UPDATE spendguard.budget_hold SET remaining_exposure = $22, \
             realized_spend = $23, disposition = $24, updated_at = now() \
             WHERE tenant_id = $1 AND hold_id = $9 RETURNING 1) ",
            event_insert!($v, "FROM u, h", on_conflict!($c))
        )
    };
}
static WRITE_UPDATE_HOLD: Write = write!(write_update_hold);

/// An event as recorded: enough to return the original result on replay.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub fingerprint: String,
    pub hold_id: Option<String>,
    pub kind: String,
    pub allowed: bool,
    pub denial_reason: Option<String>,
    pub exposure_units: i64,
    pub realized_spend_units: i64,
    pub usage_after: Usage,
    pub event_seq: i64,
    pub budget_term: Option<String>,
    pub guarantee_level: String,
}

/// What one call writes besides the usage row. A new hold takes its
/// values from the event (hold id, exposure, authority) and its TTL from
/// here (`expires_at = now() + ttl`).
pub(super) enum HoldWrite<'a> {
    None,
    Open(Option<Interval>),
    Update(&'a Hold),
}

/// One call's writes: the event (always), the usage after it (when allowed)
/// and the hold.
pub(super) struct NewEvent<'a> {
    pub event_id: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
    pub hold_id: Option<&'a str>,
    pub capability_id: &'a str,
    pub grant_index: i32,
    pub kind: &'static str,
    pub allowed: bool,
    pub denial_reason: Option<&'static str>,
    pub exposure_units: i64,
    pub realized_spend_units: i64,
    pub limits: [Option<i64>; 3],
    pub usage_after: Usage,
    pub authority: Option<&'a Authority>,
    pub guarantee_level: &'static str,
}

/// The chain heads (SPEC §9) of the budgets one call has locked: read
/// with each budget's row lock, advanced by each event the call writes on
/// it, so a link is appended to the head as it is under that lock. Each
/// says whether it was read from the chain's columns: a call that locked a
/// budget on 0.4.0's schema and writes after `ALTER EXTENSION spendguard
/// UPDATE` committed (it waited for the update's locks) reads the head
/// the update left before it appends (`Db::commit`).
#[derive(Default)]
pub struct Heads(Vec<(String, i32, i64, Option<Hash>, bool)>);

impl Heads {
    /// Remembers a budget's head as its locking statement read it (columns
    /// `n` and `n + 1` of `t`: chain_n and chain_hash; `chained`: whether
    /// the statement was this release's form). `None` before the budget's
    /// first link.
    fn read(&mut self, cap: &str, grant: i32, t: &SpiTupleTable<'_>, n: usize, chained: bool) {
        let chain_n: i64 = spi(t.get(n)).unwrap_or(0);
        let hash = spi(t.get::<Vec<u8>>(n + 1)).map(|h| {
            Hash::try_from(h.as_slice())
                .unwrap_or_else(|_| panic!("spendguard: chain head of \"{cap}\" is not 32 bytes"))
        });
        self.set(cap, grant, chain_n, hash, chained);
    }

    fn set(&mut self, cap: &str, grant: i32, chain_n: i64, hash: Option<Hash>, chained: bool) {
        match self.0.iter_mut().find(|h| h.0 == cap && h.1 == grant) {
            Some(h) => (h.2, h.3, h.4) = (chain_n, hash, chained),
            None => self
                .0
                .push((cap.to_string(), grant, chain_n, hash, chained)),
        }
    }

    fn get(&self, cap: &str, grant: i32) -> (i64, Option<Hash>, bool) {
        let h = self
            .0
            .iter()
            .find(|h| h.0 == cap && h.1 == grant)
            .unwrap_or_else(|| {
                panic!("spendguard: an event of \"{cap}\" without its budget's lock")
            });
        (h.2, h.3, h.4)
    }
}

/// A locked budget's chain head, read again (see [`Heads`]).
static READ_HEAD: Stmt = Stmt {
    sql: "SELECT chain_n, chain_hash FROM spendguard.budget_usage \
          WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3",
    types: &[TEXT, TEXT, INT4],
};

/// The next commit index: nextval('spendguard.commit_seq'), taken under
/// the budget's lock like the statement's own nextval() was.
fn next_commit_seq() -> i64 {
    use pgrx::datum::IntoDatum;
    // SAFETY: catalog lookups by name and a core function of (regclass).
    unsafe {
        let ns = pgrx::pg_sys::get_namespace_oid(c"spendguard".as_ptr(), false);
        let seq = pgrx::pg_sys::get_relname_relid(c"commit_seq".as_ptr(), ns);
        assert!(
            seq != pgrx::pg_sys::InvalidOid,
            "spendguard.commit_seq is missing"
        );
        pgrx::direct_function_call::<i64>(pgrx::pg_sys::nextval_oid, &[seq.into_datum()])
    }
    .expect("nextval returns a bigint")
}

fn usage_of(t: &SpiTupleTable<'_>) -> Usage {
    Usage {
        invocation_count: spi(t.get::<i64>(1)).unwrap_or(0),
        exposed: spi(t.get::<i64>(2)).unwrap_or(0),
        realized: spi(t.get::<i64>(3)).unwrap_or(0),
    }
}

impl<'a> NewEvent<'a> {
    /// The one constructor of an event: an allowed `kind` on a budget that
    /// leaves it at `usage_after`, with no event id, hold, amounts, limits
    /// or authority, at this commit's guarantee level. The builders below
    /// set the rest.
    pub(super) fn new(
        kind: &'static str,
        capability_id: &'a str,
        grant_index: i32,
        usage_after: Usage,
    ) -> Self {
        NewEvent {
            event_id: None,
            fingerprint: None,
            hold_id: None,
            capability_id,
            grant_index,
            kind,
            allowed: true,
            denial_reason: None,
            exposure_units: 0,
            realized_spend_units: 0,
            limits: [None, None, None],
            usage_after,
            authority: None,
            guarantee_level: super::ops::guarantee_level(),
        }
    }

    /// The idempotency key and the request's fingerprint.
    pub(super) fn idempotent(
        mut self,
        event_id: Option<&'a str>,
        fingerprint: Option<&'a str>,
    ) -> Self {
        self.event_id = event_id;
        self.fingerprint = fingerprint;
        self
    }

    pub(super) fn hold(mut self, hold_id: Option<&'a str>) -> Self {
        self.hold_id = hold_id;
        self
    }

    /// A denial (`allowed = false`) when `reason` is given.
    pub(super) fn denied(mut self, reason: Option<&'static str>) -> Self {
        self.allowed = reason.is_none();
        self.denial_reason = reason;
        self
    }

    pub(super) fn units(mut self, exposure: i64, realized: i64) -> Self {
        self.exposure_units = exposure;
        self.realized_spend_units = realized;
        self
    }

    pub(super) fn limits(mut self, limits: [Option<i64>; 3]) -> Self {
        self.limits = limits;
        self
    }

    pub(super) fn authority(mut self, authority: Option<&'a Authority>) -> Self {
        self.authority = authority;
        self
    }
}

/// Budget storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    /// Locks the budget row (creating it at zero on first use) and returns
    /// its counters, and whether `hold_id` is taken. Every decision on a
    /// budget goes through this lock.
    pub(super) fn lock_usage(
        &mut self,
        cap: &str,
        grant: i32,
        hold_id: Option<&str>,
    ) -> (Usage, bool) {
        let chained = crate::spi::chained();
        let lock = if hold_id.is_some() {
            LOCK_USAGE_NEW_HOLD.pick_if(chained)
        } else {
            LOCK_USAGE.pick_if(chained)
        };
        for _ in 0..2 {
            let t = self.run(
                lock,
                &[self.tenant.into(), cap.into(), grant.into(), hold_id.into()],
            );
            if !t.is_empty() {
                let t = t.first();
                self.heads.read(cap, grant, &t, 5, chained);
                return (usage_of(&t), spi(t.get::<bool>(4)).unwrap_or(false));
            }
            self.run(
                &CREATE_USAGE,
                &[self.tenant.into(), cap.into(), grant.into()],
            );
        }
        panic!("spendguard: budget row of \"{cap}\" vanished after creation")
    }

    /// Locks a hold and its budget; `None` when the hold does not exist.
    pub(super) fn lock_hold(&mut self, hold_id: &str) -> Option<(Usage, Hold)> {
        let chained = crate::spi::chained();
        let t = self.run(
            LOCK_HOLD.pick_if(chained),
            &[self.tenant.into(), hold_id.into()],
        );
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let authority = authority(spi(r.get(10)), spi(r.get(11)), spi(r.get(12)));
        let disposition: String = spi(r.get(9)).unwrap_or_default();
        let hold = Hold {
            hold_id: hold_id.to_string(),
            capability_id: spi(r.get(4)).unwrap_or_default(),
            grant_index: spi(r.get(5)).unwrap_or_default(),
            authorized: spi(r.get(6)).unwrap_or_default(),
            remaining: spi(r.get(7)).unwrap_or_default(),
            realized: spi(r.get(8)).unwrap_or_default(),
            disposition: Disposition::parse(&disposition)
                .expect("its domain keeps dispositions valid"),
            authority,
            expires_at: spi(r.get::<TimestampWithTimeZone>(13)).map(i64::from),
        };
        self.heads
            .read(&hold.capability_id, hold.grant_index, &r, 14, chained);
        Some((usage_of(&r), hold))
    }

    /// The budgets that have open holds past their expiry at `now`, in the
    /// order of their oldest such hold, from the oldest `lim` holds.
    pub(super) fn expiry_candidates(&mut self, now: i64, lim: i64) -> Vec<(String, i32)> {
        let t = self.run(
            &EXPIRY_CANDIDATES,
            &[self.tenant.into(), timestamptz(now).into(), lim.into()],
        );
        let mut out: Vec<(String, i32)> = Vec::new();
        for r in t {
            let budget = (
                spi(r.get::<String>(1)).unwrap_or_default(),
                spi(r.get::<i32>(2)).unwrap_or_default(),
            );
            if !out.contains(&budget) {
                out.push(budget);
            }
        }
        out
    }

    /// See OPEN_EXPOSURE.
    pub(super) fn open_exposure(&mut self, cap: &str, grant: i32, now: i64) -> i64 {
        let t = self.tenant;
        self.one_i64(
            &OPEN_EXPOSURE,
            &[t.into(), cap.into(), grant.into(), timestamptz(now).into()],
        )
    }

    /// See FAMILY_TOTALS: (realized, open exposure) per (capability,
    /// start, end), in order.
    pub(super) fn family_totals(
        &mut self,
        ranges: &[(&str, i32, i32)],
        now: i64,
    ) -> Vec<(i64, i64)> {
        if ranges.is_empty() {
            return Vec::new();
        }
        let caps: Vec<&str> = ranges.iter().map(|r| r.0).collect();
        let starts: Vec<i32> = ranges.iter().map(|r| r.1).collect();
        let ends: Vec<i32> = ranges.iter().map(|r| r.2).collect();
        let t = self.run(
            &FAMILY_TOTALS,
            &[
                self.tenant.into(),
                caps.into(),
                starts.into(),
                ends.into(),
                timestamptz(now).into(),
            ],
        );
        t.map(|r| {
            (
                spi(r.get::<i64>(2)).unwrap_or(0),
                spi(r.get::<i64>(3)).unwrap_or(0),
            )
        })
        .collect()
    }

    /// See FAMILY_REALIZED.
    pub(super) fn family_realized(&mut self, cap: &str, from: i32, to: i32) -> Vec<(i32, i64)> {
        let t = self.run(
            &FAMILY_REALIZED,
            &[self.tenant.into(), cap.into(), from.into(), to.into()],
        );
        t.map(|r| {
            (
                spi(r.get::<i32>(1)).unwrap_or(0),
                spi(r.get::<i64>(2)).unwrap_or(0),
            )
        })
        .collect()
    }

    /// Locks a budget row unless another transaction holds it (`None`
    /// then, and when it does not exist).
    pub(super) fn try_lock_usage(&mut self, cap: &str, grant: i32) -> Option<Usage> {
        let chained = crate::spi::chained();
        let t = self.run(
            LOCK_USAGE_SKIP_LOCKED.pick_if(chained),
            &[self.tenant.into(), cap.into(), grant.into()],
        );
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        self.heads.read(cap, grant, &r, 4, chained);
        Some(usage_of(&r))
    }

    /// Locks up to `lim` open holds of a budget past their expiry at `now`,
    /// oldest first. Call only with the budget's row lock held.
    pub(super) fn lock_expired_holds(
        &mut self,
        cap: &str,
        grant: i32,
        now: i64,
        lim: i64,
    ) -> Vec<Hold> {
        let t = self.run(
            &LOCK_EXPIRED_HOLDS,
            &[
                self.tenant.into(),
                cap.into(),
                grant.into(),
                timestamptz(now).into(),
                lim.into(),
            ],
        );
        t.map(|r| Hold {
            hold_id: spi(r.get(1)).unwrap_or_default(),
            capability_id: cap.to_string(),
            grant_index: grant,
            authorized: spi(r.get(2)).unwrap_or_default(),
            remaining: spi(r.get(3)).unwrap_or_default(),
            realized: spi(r.get(4)).unwrap_or_default(),
            disposition: Disposition::Open,
            authority: authority(spi(r.get(5)), spi(r.get(6)), spi(r.get(7))),
            expires_at: spi(r.get::<TimestampWithTimeZone>(8)).map(i64::from),
        })
        .collect()
    }

    pub(super) fn event(&mut self, event_id: &str) -> Option<RecordedEvent> {
        let t = self.run(&GET_EVENT, &[self.tenant.into(), event_id.into()]);
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let authority_id: Option<String> = spi(r.get(12));
        let epoch: Option<i64> = spi(r.get(13));
        Some(RecordedEvent {
            fingerprint: spi(r.get(1)).unwrap_or_default(),
            hold_id: spi(r.get(2)),
            kind: spi(r.get(3)).unwrap_or_default(),
            allowed: spi(r.get(4)).unwrap_or_default(),
            denial_reason: spi(r.get(5)),
            exposure_units: spi(r.get(6)).unwrap_or_default(),
            realized_spend_units: spi(r.get(7)).unwrap_or_default(),
            usage_after: Usage {
                invocation_count: spi(r.get(8)).unwrap_or_default(),
                exposed: spi(r.get(9)).unwrap_or_default(),
                realized: spi(r.get(10)).unwrap_or_default(),
            },
            event_seq: spi(r.get(11)).unwrap_or_default(),
            budget_term: authority_id.zip(epoch).map(|(a, e)| format!("{a}:{e}")),
            guarantee_level: spi(r.get(14)).unwrap_or_default(),
        })
    }

    /// Writes one call in one statement and returns its event_seq (the
    /// commit index when allowed). A denial writes the event only.
    /// SG003 when a new hold's id was taken meanwhile, SG004 when the event
    /// id was (both only by a concurrent call).
    pub(super) fn commit(&mut self, e: &NewEvent<'_>, hold: HoldWrite<'_>) -> Result<i64> {
        let opening = e.allowed && matches!(hold, HoldWrite::Open(_));
        let write = match (&hold, e.allowed) {
            (_, false) => &WRITE_EVENT,
            (HoldWrite::None, true) => &WRITE_USAGE,
            (HoldWrite::Open(_), true) => &WRITE_OPEN_HOLD,
            (HoldWrite::Update(_), true) => &WRITE_UPDATE_HOLD,
        };
        // 0.4.0's schema (until ALTER EXTENSION UPDATE) has no chain: its
        // statements, and no hash computed
        let chained = crate::spi::chained();
        let stmt = write[usize::from(e.event_id.is_some())].pick_if(chained);
        let (h, ttl) = match hold {
            HoldWrite::Update(h) => (Some(h), None),
            HoldWrite::Open(ttl) => (None, ttl),
            HoldWrite::None => (None, None),
        };
        let a = e.authority;
        let u = e.usage_after;
        let (cap, grant) = (e.capability_id, e.grant_index);
        if chained && !self.heads.get(cap, grant).2 {
            // locked on 0.4.0's schema, updated since: the head the update left
            let t = self.run(&READ_HEAD, &[self.tenant.into(), cap.into(), grant.into()]);
            self.heads.read(cap, grant, &t.first(), 1, true);
        }
        let (head_n, prev, _) = self.heads.get(cap, grant);
        let seq = next_commit_seq();
        let recorded_at = crate::args::now();
        let chain_n = head_n + 1;
        let prev = match prev {
            Some(p) => p,
            None if chained => chain::genesis(self.tenant, e.capability_id, e.grant_index),
            None => [0; 32],
        };
        let hash = if !chained {
            [0; 32]
        } else {
            chain::event_link(
                &prev,
                &chain::Event {
                    tenant_id: self.tenant,
                    event_seq: seq,
                    event_id: e.event_id,
                    request_fingerprint: e.fingerprint,
                    hold_id: e.hold_id,
                    capability_id: e.capability_id,
                    grant_index: e.grant_index,
                    kind: e.kind,
                    allowed: e.allowed,
                    denial_reason: e.denial_reason,
                    recorded_at,
                    exposure_units: e.exposure_units,
                    realized_spend_units: e.realized_spend_units,
                    max_invocations: e.limits[0],
                    max_cost_per_invocation: e.limits[1],
                    max_total_cost: e.limits[2],
                    invocation_count_after: u.invocation_count,
                    total_cost_exposed_after: u.exposed,
                    total_cost_realized_after: u.realized,
                    authority_id: a.map(|a| a.authority_id.as_str()),
                    lease_id: a.map(|a| a.lease_id.as_str()),
                    lease_epoch: a.map(|a| a.lease_epoch),
                    guarantee_level: e.guarantee_level,
                    chain_n,
                },
            )
        };
        let t = self.run(
            stmt,
            &[
                self.tenant.into(),
                e.capability_id.into(),
                e.grant_index.into(),
                u.invocation_count.into(),
                u.exposed.into(),
                u.realized.into(),
                e.event_id.into(),
                e.fingerprint.into(),
                e.hold_id.into(),
                e.kind.into(),
                e.allowed.into(),
                e.denial_reason.into(),
                e.exposure_units.into(),
                e.realized_spend_units.into(),
                e.limits[0].into(),
                e.limits[1].into(),
                e.limits[2].into(),
                a.map(|a| a.authority_id.as_str()).into(),
                a.map(|a| a.lease_id.as_str()).into(),
                a.map(|a| a.lease_epoch).into(),
                e.guarantee_level.into(),
                h.map(|h| h.remaining).into(),
                h.map(|h| h.realized).into(),
                h.map(|h| h.disposition.as_str()).into(),
                ttl.into(),
                seq.into(),
                timestamptz(recorded_at).into(),
                chain_n.into(),
                prev.to_vec().into(),
                hash.to_vec().into(),
            ],
        );
        if t.is_empty() {
            // Opening a hold: no row means the hold id or the event id was
            // taken by a concurrent call; the event id decides which.
            if let (true, Some(id)) = (opening, e.hold_id) {
                let event_taken = e.event_id.is_some_and(|ev| self.event(ev).is_some());
                if !event_taken {
                    return Err(hold_exists(id));
                }
            }
            return Err(Error::IdempotencyConflict {
                event_id: e.event_id.unwrap_or_default().to_string(),
            });
        }
        self.heads
            .set(e.capability_id, e.grant_index, chain_n, Some(hash), chained);
        Ok(spi(t.first().get::<i64>(1)).expect("event_seq is NOT NULL"))
    }
}

/// A hold's fencing metadata from its three columns (all set or none, by
/// a CHECK constraint).
fn authority(a: Option<String>, l: Option<String>, e: Option<i64>) -> Option<Authority> {
    match (a, l, e) {
        (Some(authority_id), Some(lease_id), Some(lease_epoch)) => Some(Authority {
            authority_id,
            lease_id,
            lease_epoch,
        }),
        _ => None,
    }
}

/// A timestamptz datum from PostgreSQL's microseconds since 2000-01-01.
fn timestamptz(micros: i64) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(micros).expect("a timestamptz read from PostgreSQL is valid")
}

pub(super) fn hold_exists(hold_id: &str) -> Error {
    Error::HoldMismatch(format!(
        "hold \"{hold_id}\" already exists: a hold id can be opened only once"
    ))
}
