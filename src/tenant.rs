//! The current tenant (SPEC.md §0): `spendguard.tenant`, or `'default'`
//! when unset, unless `spendguard.require_tenant` is on (then SG030). An
//! empty tenant is 22023, never `'default'`: an application whose tenant
//! variable came out empty must not write into a shared tenant.
//!
//! The `spendguard.` prefix is reserved (SPEC §5): once the library is
//! loaded, `SET spendguard.tenat = 'acme'` fails. A misspelled setting made
//! before it loaded (PostgreSQL keeps it as a placeholder; spendguard loads
//! at its first call) makes the first call fail with 42704 naming it.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use spendguard_core::{Error, Result};
use std::cell::RefCell;
use std::ffi::{CStr, CString};

pub static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REQUIRE_TENANT: GucSetting<bool> = GucSetting::<bool>::new(false);
/// `spendguard.alert_notify` (SPEC §7): NOTIFY spendguard_alerts when a
/// call writes an alert; off for transactions that PREPARE TRANSACTION.
pub static ALERT_NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);

thread_local! {
    /// A `spendguard.*` placeholder found when the library loaded: the
    /// first call reports it.
    static UNKNOWN_SETTING: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub fn register_gucs() {
    GucRegistry::define_string_guc(
        c"spendguard.tenant",
        c"The tenant every spendguard call reads and writes.",
        c"Set per session or per transaction (SET LOCAL) by the application; unset means 'default'.",
        &TENANT,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"spendguard.require_tenant",
        c"Refuse spendguard calls made without spendguard.tenant.",
        c"When on, a call without a tenant fails with SQLSTATE SG030 instead of using 'default'.",
        &REQUIRE_TENANT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"spendguard.alert_notify",
        c"NOTIFY spendguard_alerts when a call writes an alert.",
        c"Turn off (SET LOCAL works) in a transaction that uses two-phase commit: PostgreSQL refuses PREPARE TRANSACTION after a NOTIFY. The alert row is written either way.",
        &ALERT_NOTIFY,
        GucContext::Userset,
        GucFlags::default(),
    );
    // Our own settings have taken over their placeholders by now: one that
    // is left is a name spendguard does not have.
    let unknown = placeholder_with_prefix(c"spendguard.");
    UNKNOWN_SETTING.with(|u| *u.borrow_mut() = unknown);
    // SAFETY: called once from _PG_init with a static C string; PostgreSQL
    // copies it, and removes the placeholders (with a WARNING each).
    unsafe { pg_sys::MarkGUCPrefixReserved(c"spendguard".as_ptr()) };
}

/// The name of the first placeholder setting (set before any module
/// defined it) whose name starts with `prefix`.
fn placeholder_with_prefix(prefix: &CStr) -> Option<String> {
    let prefix = prefix.to_bytes();
    // SAFETY: PostgreSQL's array of its GetNumConfigOptions() settings,
    // read in the backend's only thread, with nothing changing it meanwhile.
    unsafe {
        let vars = pg_sys::get_guc_variables();
        let n = usize::try_from(pg_sys::GetNumConfigOptions()).unwrap_or(0);
        (0..n).find_map(|i| {
            let g = &**vars.add(i);
            let placeholder = g.flags as u32 & pg_sys::GUC_CUSTOM_PLACEHOLDER != 0;
            let name = CStr::from_ptr(g.name);
            (placeholder && name.to_bytes().starts_with(prefix))
                .then(|| name.to_string_lossy().into_owned())
        })
    }
}

/// The tenant of this call.
pub fn current() -> Result<String> {
    if let Some(name) = UNKNOWN_SETTING.with(|u| u.borrow_mut().take()) {
        return Err(Error::UnknownSetting(name));
    }
    match TENANT.get() {
        Some(t) => {
            let t = t.to_string_lossy().into_owned();
            spendguard_core::validate::check_id("spendguard.tenant", &t)?;
            Ok(t)
        }
        None if REQUIRE_TENANT.get() => Err(Error::TenantRequired),
        None => Ok("default".to_string()),
    }
}
