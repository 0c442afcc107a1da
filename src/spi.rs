//! The one layer between spendguard and SPI: the connection with its
//! tenant (`Db`, every capability's store is an `impl` on it), the
//! statements (prepared once per backend and kept, SPI_keepplan), their
//! parameter types and the row helpers.

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgBuiltInOids as T;
use pgrx::pg_sys::{self, PgOid};
use pgrx::spi::{OwnedPreparedStatement, Spi, SpiClient, SpiResult, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

// The parameter types of the statements.
pub const TEXT: PgOid = PgOid::BuiltIn(T::TEXTOID);
pub const INT4: PgOid = PgOid::BuiltIn(T::INT4OID);
pub const INT8: PgOid = PgOid::BuiltIn(T::INT8OID);
pub const BOOL: PgOid = PgOid::BuiltIn(T::BOOLOID);
pub const DATE: PgOid = PgOid::BuiltIn(T::DATEOID);
pub const TIMESTAMPTZ: PgOid = PgOid::BuiltIn(T::TIMESTAMPTZOID);
pub const INTERVAL: PgOid = PgOid::BuiltIn(T::INTERVALOID);
pub const JSONB: PgOid = PgOid::BuiltIn(T::JSONBOID);
pub const BYTEA: PgOid = PgOid::BuiltIn(T::BYTEAOID);

/// The connection of one call and its tenant: every capability's store is
/// an `impl` on this (budget/store.rs, spend/store.rs, usage/store.rs,
/// proposal/store.rs), so a call that spans capabilities uses one.
pub struct Db<'a, 'c> {
    pub client: &'a mut SpiClient<'c>,
    pub tenant: &'a str,
    /// The chain heads of the budgets this call has locked (budget/store.rs).
    pub heads: crate::budget::store::Heads,
}

/// Runs `f` with a `Db` of `tenant` over one SPI connection.
pub fn with_db<R>(
    tenant: &str,
    f: impl FnOnce(&mut Db<'_, '_>) -> spendguard_core::Result<R>,
) -> spendguard_core::Result<R> {
    Spi::connect_mut(|client| {
        match citus(client) {
            Citus::No => {}
            Citus::Worker => {
                return Err(spendguard_core::Error::NotSupported(
                    "on Citus, spendguard's functions run on the coordinator, and this node is \
                     a worker: the coordinator's commit_seq is what orders each budget's \
                     history (docs/scale-out.md)"
                        .into(),
                ))
            }
            Citus::Coordinator => pin_tenant_shards(client, tenant),
        }
        f(&mut Db {
            client,
            tenant,
            heads: Default::default(),
        })
    })
}

impl<'c> Db<'_, 'c> {
    /// Runs a cached statement (see [`run`]).
    pub fn run(&mut self, stmt: &'static Stmt, args: &[DatumWithOid<'_>]) -> SpiTupleTable<'c> {
        spi(run(self.client, stmt, args))
    }

    /// Runs a cached statement on its generic plan, planned once per
    /// backend. For a statement whose parameters are arrays, PostgreSQL's
    /// plan cache compares the generic plan's cost with custom plans that
    /// know each array's length, finds the generic one dearer and plans the
    /// statement again at every call: LOCK_BUDGETS took 136 µs to plan and
    /// 60 µs to run. Only for a statement with one plan worth having (its
    /// tables offer a single index for it): FAMILY_TOTALS, whose holds can
    /// be read by two indexes, got a generic plan on the wrong one once the
    /// table's statistics changed (6 ms instead of 50 µs), so it is left to
    /// custom plans.
    ///
    /// `plan_cache_mode` is set for this statement only and put back when
    /// it returns or raises (a PostgreSQL ERROR unwinds through the guard).
    /// Not on a Citus coordinator: Citus cannot plan the statement's
    /// generic form over distributed tables ("could not create distributed
    /// plan"), only custom ones.
    pub fn run_generic(
        &mut self,
        stmt: &'static Stmt,
        args: &[DatumWithOid<'_>],
    ) -> SpiTupleTable<'c> {
        if CITUS.get() == Some(Citus::Coordinator) {
            return self.run(stmt, args);
        }
        struct Restore(i32);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: a backend-local int GUC, put back as it was
                unsafe { pg_sys::plan_cache_mode = self.0 }
            }
        }
        // SAFETY: as above; read and written by this backend only
        let _restore = Restore(unsafe { pg_sys::plan_cache_mode });
        unsafe {
            pg_sys::plan_cache_mode =
                pg_sys::PlanCacheMode::PLAN_CACHE_MODE_FORCE_GENERIC_PLAN as i32;
        }
        self.run(stmt, args)
    }

    /// The first column of the first row as a bigint, 0 when NULL.
    pub fn one_i64(&mut self, stmt: &'static Stmt, args: &[DatumWithOid<'_>]) -> i64 {
        let t = self.run(stmt, args);
        spi(t.first().get::<i64>(1)).unwrap_or(0)
    }
}

/// Whether this transaction has written nothing yet (no transaction id):
/// what it reads then is other transactions' committed work only.
pub fn wrote_nothing() -> bool {
    // SAFETY: reads the backend's transaction state
    unsafe { pg_sys::GetTopTransactionIdIfAny() == pg_sys::InvalidTransactionId }
}

/// An SPI-level failure (not a PostgreSQL ERROR, which unwinds by itself)
/// means a bug in a statement: reported as an internal error.
pub fn spi<T>(r: SpiResult<T>) -> T {
    r.unwrap_or_else(|e| panic!("spendguard: SPI failure: {e}"))
}

/// A statement and its parameter types. Declare them as `static`: the
/// plan cache is keyed by the statement's address.
pub struct Stmt {
    pub sql: &'static str,
    pub types: &'static [PgOid],
}

thread_local! {
    /// Where this backend runs on Citus, once known (see [`citus`]).
    static CITUS: std::cell::Cell<Option<Citus>> = const { std::cell::Cell::new(None) };
    static PLANS: RefCell<HashMap<usize, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

fn plan(client: &SpiClient<'_>, stmt: &'static Stmt) -> SpiResult<Rc<OwnedPreparedStatement>> {
    let key = stmt as *const Stmt as usize;
    if let Some(p) = PLANS.with(|m| m.borrow().get(&key).cloned()) {
        return Ok(p);
    }
    let p = Rc::new(client.prepare_mut(stmt.sql, stmt.types)?.keep());
    PLANS.with(|m| m.borrow_mut().insert(key, p.clone()));
    Ok(p)
}

/// Runs a cached statement that may write.
///
/// Every plan is prepared as mutating, so SPI runs it read-write (a fresh
/// snapshot per statement, the command counter advanced) whichever way it
/// is called. It is called through `select`, not `update`: pgrx's `update`
/// first asks for a transaction id (`GetCurrentTransactionId`), which gives
/// a call that only reads (an idempotent replay, `spend_check`) a commit
/// record and a WAL flush at commit. PostgreSQL assigns the id itself at
/// the first row a statement writes or locks.
pub fn run<'c>(
    client: &mut SpiClient<'c>,
    stmt: &'static Stmt,
    args: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'c>> {
    let p = plan(client, stmt)?;
    client.select(&*p, None, args)
}

/// `pg_advisory_xact_lock(key)` called directly, not as an SPI statement:
/// the same transaction-scoped lock without a statement's executor
/// start-up (one statement fewer per usage_cap_charge and proposal_create).
pub fn advisory_xact_lock(key: i64) {
    use pgrx::datum::IntoDatum;
    // SAFETY: a core function taking one int8, called with one int8; it
    // returns void or raises (deadlock, cancel).
    unsafe {
        pgrx::direct_function_call_as_datum(
            pgrx::pg_sys::pg_advisory_xact_lock_int8,
            &[key.into_datum()],
        );
    }
}

/// A statement in two forms: `current` for this release's schema and
/// `legacy` for the previous release's. Between installing a new package
/// and `ALTER EXTENSION spendguard UPDATE` the new library serves a
/// database at the previous version (SPEC §10 "Upgrades without a
/// window"); the statements whose text the update changes come in both
/// forms, and `pick` takes the one the database's schema has.
pub struct Versioned {
    pub current: Stmt,
    pub legacy: Stmt,
    /// whether the database's schema has what `current` needs
    pub has: fn() -> bool,
}

/// `versioned!(m, types)`: a [`Versioned`] from a macro `m!(current)` /
/// `m!(legacy)` that spells the two forms, `current` from 0.3.1's keys on
/// ([`keyed_by_digest`]); `versioned!(m, types, has)` with another test.
macro_rules! versioned {
    ($m:ident, $types:expr) => {
        $crate::spi::versioned!($m, $types, $crate::spi::keyed_by_digest)
    };
    ($m:ident, $types:expr, $has:path) => {
        $crate::spi::Versioned {
            current: $crate::spi::Stmt {
                sql: $m!(current),
                types: $types,
            },
            legacy: $crate::spi::Stmt {
                sql: $m!(legacy),
                types: $types,
            },
            has: $has,
        }
    };
}
pub(crate) use versioned;

impl Versioned {
    pub fn pick(&'static self) -> &'static Stmt {
        self.pick_if((self.has)())
    }

    /// `current` when the caller found the schema has what it needs.
    pub fn pick_if(&'static self, current: bool) -> &'static Stmt {
        if current {
            &self.current
        } else {
            &self.legacy
        }
    }
}

// What the schema has is looked up in the catalog caches on every call, so a
// backend follows an update as soon as it commits (a cached answer would
// keep an old backend on the old form).

fn schema_oid() -> pg_sys::Oid {
    // SAFETY: a syscache look-up by name; InvalidOid when absent.
    unsafe { pg_sys::get_namespace_oid(c"spendguard".as_ptr(), true) }
}

/// 0.3.1 on: daily_spend is keyed by a digest of its ids (index
/// daily_spend_key); 0.3.0 did not have it.
pub fn keyed_by_digest() -> bool {
    let ns = schema_oid();
    // SAFETY: a syscache look-up by name; InvalidOid when absent.
    ns != pg_sys::InvalidOid
        && unsafe { pg_sys::get_relname_relid(c"daily_spend_key".as_ptr(), ns) }
            != pg_sys::InvalidOid
}

/// 0.5.0 on: the event log is a hash chain (budget_event.chain_n, SPEC §9);
/// 0.4.0 and earlier have no link columns.
pub fn chained() -> bool {
    let ns = schema_oid();
    if ns == pg_sys::InvalidOid {
        return false;
    }
    // SAFETY: syscache look-ups by name; InvalidOid / InvalidAttrNumber
    // when absent.
    unsafe {
        let rel = pg_sys::get_relname_relid(c"budget_event".as_ptr(), ns);
        rel != pg_sys::InvalidOid
            && pg_sys::get_attnum(rel, c"chain_n".as_ptr()) != pg_sys::InvalidAttrNumber as i16
    }
}

/// 0.7.0 on: scoped budgets can have escrow slices (table scope_slice,
/// scope_budget.sliced, scope_reservation.scope_slices).
pub fn sliceable() -> bool {
    let ns = schema_oid();
    // SAFETY: a syscache look-up by name; InvalidOid when absent.
    ns != pg_sys::InvalidOid
        && unsafe { pg_sys::get_relname_relid(c"scope_slice".as_ptr(), ns) } != pg_sys::InvalidOid
}

/// An internal subtransaction, as PL/pgSQL's exception blocks use one: the
/// row locks taken inside it are released when it is rolled back, kept
/// (by the enclosing transaction) when it is released. Begun and ended
/// in stack order; SPI tuple tables read inside it must be dropped before
/// it ends (a rollback frees them). An ERROR inside it aborts the whole
/// transaction, this subtransaction with it.
pub struct SubXact {
    owner: pg_sys::ResourceOwner,
    ctx: pg_sys::MemoryContext,
}

impl SubXact {
    pub fn begin() -> SubXact {
        // SAFETY: the calls PL/pgSQL makes around a block with an
        // exception handler (pl_exec.c exec_stmt_block): begin, and stay in
        // the caller's memory context and resource owner.
        unsafe {
            let ctx = pg_sys::CurrentMemoryContext;
            let owner = pg_sys::CurrentResourceOwner;
            pg_sys::BeginInternalSubTransaction(std::ptr::null());
            pg_sys::MemoryContextSwitchTo(ctx);
            SubXact { owner, ctx }
        }
    }

    /// Ends it keeping its locks and writes.
    pub fn release(self) {
        // SAFETY: as begin; this is the innermost subtransaction.
        unsafe {
            pg_sys::ReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(self.ctx);
            pg_sys::CurrentResourceOwner = self.owner;
        }
    }

    /// Ends it undoing its writes and releasing its locks.
    pub fn rollback(self) {
        // SAFETY: as begin; this is the innermost subtransaction.
        unsafe {
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
            pg_sys::MemoryContextSwitchTo(self.ctx);
            pg_sys::CurrentResourceOwner = self.owner;
        }
    }
}

/// This backend's process id.
pub fn pid() -> i32 {
    // SAFETY: a global set once at backend start.
    unsafe { pg_sys::MyProcPid }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Citus {
    /// no citus extension, or spendguard's tables not distributed (yet)
    No,
    /// the coordinator of a database whose spendguard tables are distributed
    Coordinator,
    /// a worker of such a database
    Worker,
}

/// Where this call runs (SPEC §10, docs/scale-out.md). A call runs where
/// the application sends it; on Citus that must be the coordinator: every
/// node has its own `commit_seq`, and the event_seq of a budget's events
/// must grow along its history wherever its shard lives. Without Citus:
/// `No`, from a catalog cache lookup. Known per backend once
/// the tables are distributed (a node does not change role, nor a table
/// go back to local, under a running backend).
fn citus(client: &SpiClient<'_>) -> Citus {
    if let Some(c) = CITUS.get() {
        return c;
    }
    // Citus's catalog table, looked up in the relation name cache (a hash
    // probe: every call on a single node pays only this).
    // SAFETY: a catalog cache lookup by name.
    let dist = unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        )
    };
    if dist == pg_sys::InvalidOid {
        return Citus::No;
    }
    let t = spi(client.select(
        "SELECT pg_catalog.citus_is_coordinator(), EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition \
         WHERE logicalrelid = 'spendguard.budget_usage'::pg_catalog.regclass)",
        None,
        &[],
    ))
    .first();
    let coordinator = spi(t.get::<bool>(1)).unwrap_or(true);
    if !spi(t.get::<bool>(2)).unwrap_or(false) {
        return Citus::No;
    }
    let c = if coordinator {
        Citus::Coordinator
    } else {
        Citus::Worker
    };
    CITUS.set(Some(c));
    c
}

/// The tenant's shard group, pinned for the rest of the transaction: a
/// share lock on its shards' metadata, the lock a Citus write takes and a
/// shard move waits for. Without it a decision's first statement (a
/// locking read, which Citus does not count as a write) can read a budget
/// row on the placement a move is leaving, and write on the one it moved
/// to: a lost update, seen in tests/integration/tests/citus.rs.
fn pin_tenant_shards(client: &mut SpiClient<'_>, tenant: &str) {
    static PIN: Stmt = Stmt {
        sql: "SELECT pg_catalog.lock_shard_metadata(5, ARRAY[\
              pg_catalog.get_shard_id_for_distribution_column('spendguard.budget_usage', $1)])",
        types: &[TEXT],
    };
    spi(run(client, &PIN, &[tenant.into()]));
}
