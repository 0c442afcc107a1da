//! SPI helpers: every statement spendguard runs is prepared once per
//! backend and kept (SPI_keepplan).

use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A statement and its parameter types. Declare them as `static`: the
/// plan cache is keyed by the statement's address.
pub struct Stmt {
    pub sql: &'static str,
    pub types: &'static [PgOid],
}

thread_local! {
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
