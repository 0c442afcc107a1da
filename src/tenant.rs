//! The current tenant (SPEC.md §0): `spendguard.tenant`, or `'default'`
//! when unset, unless `spendguard.require_tenant` is on (then SG030).

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use spendguard_core::{Error, Result};
use std::ffi::CString;

pub static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REQUIRE_TENANT: GucSetting<bool> = GucSetting::<bool>::new(false);

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
}

/// The tenant of this call.
pub fn current() -> Result<String> {
    let set = TENANT
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty());
    match set {
        Some(t) => {
            spendguard_core::validate::check_id("spendguard.tenant", &t)?;
            Ok(t)
        }
        None if REQUIRE_TENANT.get() => Err(Error::TenantRequired),
        None => Ok("default".to_string()),
    }
}
