//! The current tenant (SPEC.md §0): `spendguard.tenant`, or `'default'`
//! when unset, unless `spendguard.require_tenant` is on (then SG030). An
//! empty tenant is 22023, never `'default'`: an application whose tenant
//! variable came out empty must not write into a shared tenant.
//!
//! The `spendguard.` prefix is reserved (SPEC §5): once the library is
//! loaded, `SET spendguard.tenat = 'acme'` fails. A misspelled setting made
//! before it loaded (PostgreSQL keeps it as a placeholder; spendguard loads
//! at its first call) makes the first call fail with 42704 naming it.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use pgrx::pg_sys;
use spendguard_core::{Error, Result};
use std::cell::RefCell;
use std::ffi::{CStr, CString};

pub static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static REQUIRE_TENANT: GucSetting<bool> = GucSetting::<bool>::new(false);
/// `spendguard.tenant_auth` (SPEC §5): who may act for a tenant.
#[derive(PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum TenantAuth {
    /// any role with USAGE on the schema acts for the tenant it sets
    #[name = c"off"]
    Off,
    /// only a member of a role granted the tenant (tenant_grant)
    #[name = c"role"]
    Role,
}

pub static TENANT_AUTH: GucSetting<TenantAuth> = GucSetting::<TenantAuth>::new(TenantAuth::Off);

/// `spendguard.alert_notify` (SPEC §7): NOTIFY spendguard_alerts when a
/// call writes an alert; off for transactions that PREPARE TRANSACTION.
pub static ALERT_NOTIFY: GucSetting<bool> = GucSetting::<bool>::new(true);

thread_local! {
    /// A `spendguard.*` placeholder found when the library loaded: the
    /// first call reports it.
    static UNKNOWN_SETTING: RefCell<Option<String>> = const { RefCell::new(None) };
}

thread_local! {
    /// `spendguard.tenant_auth` was given a value from outside the server's
    /// configuration before the library loaded (a client's startup options,
    /// a role or database setting, a SET): PostgreSQL then keeps only that
    /// value, the check hook refuses it, and the configured mode is lost
    /// for the session. Every call of such a session fails (42501).
    static TENANT_AUTH_FORCED: RefCell<bool> = const { RefCell::new(false) };
}

pub fn register_gucs() {
    let forced = placeholder_source(c"spendguard.tenant_auth")
        .is_some_and(|source| source > pg_sys::GucSource::PGC_S_ARGV);
    TENANT_AUTH_FORCED.with(|f| *f.borrow_mut() = forced);
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
    // SIGHUP: postgresql.conf or ALTER SYSTEM and a reload. The check hook
    // refuses every other source: PostgreSQL keeps a value given before the
    // library loaded (a client's startup options) as a placeholder and
    // applies it when the library defines the setting, which SIGHUP alone
    // does not stop.
    // SAFETY: the hook is a plain function that cannot panic.
    unsafe {
        GucRegistry::define_enum_guc_with_hooks(
            c"spendguard.tenant_auth",
            c"Bind tenants to roles: off, or role (only members of a role granted the tenant act for it).",
            c"Set in postgresql.conf or with ALTER SYSTEM and a reload only. In role mode every spendguard call fails with 42501 unless the current role (after SET ROLE) is a superuser or a member of a role granted the tenant with spendguard.tenant_grant.",
            &TENANT_AUTH,
            GucContext::Sighup,
            GucFlags::default(),
            Some(tenant_auth_from_server_config),
            None,
            None,
        );
    }
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

/// The check hook of `spendguard.tenant_auth`: only the server's own
/// configuration (its defaults, postgresql.conf and postgresql.auto.conf,
/// the postmaster's command line) may set it; a database, role, client or
/// session value is refused.
unsafe extern "C-unwind" fn tenant_auth_from_server_config(
    _newval: *mut std::ffi::c_int,
    _extra: *mut *mut std::ffi::c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    source <= pg_sys::GucSource::PGC_S_ARGV
}

/// The source of the placeholder setting `name` (set before any module
/// defined it), when there is one.
fn placeholder_source(name: &CStr) -> Option<pg_sys::GucSource::Type> {
    // SAFETY: as in placeholder_with_prefix.
    unsafe {
        let vars = pg_sys::get_guc_variables();
        let n = usize::try_from(pg_sys::GetNumConfigOptions()).unwrap_or(0);
        (0..n).find_map(|i| {
            let g = &**vars.add(i);
            let placeholder = g.flags as u32 & pg_sys::GUC_CUSTOM_PLACEHOLDER != 0;
            (placeholder && CStr::from_ptr(g.name) == name).then_some(g.source)
        })
    }
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
    let t = match TENANT.get() {
        Some(t) => {
            let t = t.to_string_lossy().into_owned();
            spendguard_core::validate::check_id("spendguard.tenant", &t)?;
            t
        }
        None if REQUIRE_TENANT.get() => return Err(Error::TenantRequired),
        None => "default".to_string(),
    };
    if TENANT_AUTH_FORCED.with(|f| *f.borrow()) {
        return Err(Error::InsufficientPrivilege(
            "spendguard.tenant_auth was set for this session (startup options, a role or database setting, or SET before spendguard loaded): it may only be set in the server's configuration, so this session's calls are refused".into(),
        ));
    }
    if TENANT_AUTH.get() == TenantAuth::Role {
        authorize(&t)?;
    }
    Ok(t)
}

/// In `tenant_auth = role` mode: 42501 unless the current role (the one
/// `SET ROLE` chose, not the owner a SECURITY DEFINER function runs as) is
/// a superuser or a member of a role granted the tenant.
fn authorize(tenant: &str) -> Result<()> {
    // SAFETY: plain reads of the session's user ids and the role catalog.
    let (outer, is_superuser) = unsafe {
        let outer = pg_sys::GetOuterUserId();
        (outer, pg_sys::superuser_arg(outer))
    };
    if is_superuser {
        return Ok(());
    }
    let granted = pgrx::Spi::connect(|client| {
        let args = [tenant.into(), outer.into()];
        client
            .select(
                "SELECT EXISTS (SELECT 1 FROM spendguard.tenant_role g \
                 WHERE g.tenant_id = $1 AND pg_catalog.pg_has_role($2, g.role, 'MEMBER'))",
                None,
                &args,
            )
            .ok()
            .and_then(|t| t.first().get::<bool>(1).ok().flatten())
            .unwrap_or(false)
    });
    if granted {
        return Ok(());
    }
    // SAFETY: the name of an existing role (the current one), copied.
    let role = unsafe {
        let name = pg_sys::GetUserNameFromId(outer, true);
        if name.is_null() {
            format!("{outer:?}")
        } else {
            CStr::from_ptr(name).to_string_lossy().into_owned()
        }
    };
    Err(Error::InsufficientPrivilege(format!(
        "role \"{role}\" may not act for tenant \"{tenant}\": spendguard.tenant_auth is role and no role it is a member of was granted the tenant (spendguard.tenant_grant)"
    )))
}
