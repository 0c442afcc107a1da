//! Raising spendguard's errors with their real SQLSTATE.
//!
//! pgrx's `ErrorReport` only carries codes from its closed `PgSqlErrorCode`
//! enum (an unknown code becomes XX000), so the custom `SG0xx` codes of
//! SPEC.md cannot travel through it. `raise` calls PostgreSQL's own
//! `errstart / errcode / errmsg / errfinish`, exactly what the `ereport`
//! macro expands to in C. It is only called from the top of a
//! `#[pg_extern]` body, after the SPI connection is closed and with every
//! Rust value already dropped, so the longjmp out of `errfinish` skips no
//! destructor (the "plain old frames" rule of RFC 2945).

use spendguard_core::Error;
use std::ffi::{c_char, c_int, CString};

// errstart and friends are deliberately left out of pgrx's bindings; these
// are the C signatures of PostgreSQL 15's utils/elog.h.
unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
}

/// Returns the value, or raises the error as an ERROR with its SQLSTATE.
#[inline]
pub fn ok_or_raise<T>(r: Result<T, Error>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => raise(e),
    }
}

/// Raises `e` as `ERROR` with `e.sqlstate()`. Never returns.
#[cold]
pub fn raise(e: Error) -> ! {
    let code = e.sqlstate_code();
    let msg = CString::new(e.message().replace('\0', "")).unwrap_or_default();
    drop(e);
    // SAFETY: ERROR-level errstart always returns true; errmsg copies the
    // message into ErrorContext, so `msg` may be dropped before errfinish.
    unsafe {
        let _ = errstart(pgrx::PgLogLevel::ERROR as c_int, std::ptr::null());
        errcode(code);
        errmsg(c"%s".as_ptr(), msg.as_ptr());
    }
    drop(msg);
    // SAFETY: nothing with a destructor is alive in this frame, and callers
    // only call us from the top of a #[pg_extern] body (see module docs).
    unsafe {
        errfinish(c"spendguard".as_ptr(), 0, std::ptr::null());
    }
    unreachable!("errfinish(ERROR) returned")
}
