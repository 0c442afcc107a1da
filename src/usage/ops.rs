//! The operations of SPEC.md §3: validate, lock the cap, sum the window,
//! decide with spendguard_core::usage, record.

use super::store::NewUsage;
use crate::spi::with_db;
use pgrx::datum::{Interval, TimestampWithTimeZone, Uuid};
use spendguard_core::enums::PrincipalKind;
use spendguard_core::usage;
use spendguard_core::{validate, Error, Result};

/// `spendguard.usage_cap`: allowed, used in the window, remaining.
pub struct Cap {
    pub allowed: bool,
    pub used: i64,
    pub remaining: i64,
}

fn window(v: Option<Interval>) -> Result<Interval> {
    crate::args::window("time_window", v)
}

fn principal(kind: Option<String>, id: Option<String>) -> Result<(String, String)> {
    let kind = validate::required("principal_kind", kind)?;
    PrincipalKind::parse_arg("principal_kind", &kind)?;
    Ok((kind, validate::id("principal_id", id)?))
}

/// The arguments of `usage_record`, named as in SQL.
pub struct RecordArgs {
    pub integration_id: Option<String>,
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub model: Option<String>,
    pub conversation_id: Option<String>,
    pub at: Option<TimestampWithTimeZone>,
}

pub fn record(a: RecordArgs) -> Result<Uuid> {
    let RecordArgs {
        integration_id,
        principal_kind,
        principal_id,
        input_tokens,
        output_tokens,
        model,
        conversation_id,
        at,
    } = a;
    let integration = validate::id("integration_id", integration_id)?;
    let (kind, id) = principal(principal_kind, principal_id)?;
    let input = validate::amount("input_tokens", input_tokens)?;
    let output = validate::amount("output_tokens", output_tokens)?;
    usage::tokens(input, output)?;
    let model = validate::opt_id("model", model)?;
    let conversation = validate::opt_id("conversation_id", conversation_id)?;
    let at = crate::args::finite_time("at", at)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        Ok(db.record_usage(&NewUsage {
            integration_id: &integration,
            principal_kind: &kind,
            principal_id: &id,
            input_tokens: input,
            output_tokens: output,
            model: model.as_deref(),
            conversation_id: conversation.as_deref(),
            at,
        }))
    })
}

fn exceeded(what: String, used: i64, budget: i64, extra: i64) -> Error {
    Error::CapExceeded(format!(
        "{what} exceeded: {used} used of {budget} in the window{}",
        if extra > 0 {
            format!(", {extra} more asked")
        } else {
            String::new()
        }
    ))
}

/// The arguments of `usage_cap_check` / `usage_cap_enforce`, named as in
/// SQL, and whether a denial raises.
pub struct CheckArgs {
    pub integration_id: Option<String>,
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub token_budget: Option<i64>,
    pub time_window: Option<Interval>,
    pub enforce: bool,
}

/// `usage_cap_check` (and `_enforce`): reads the window, locks nothing.
pub fn check(a: CheckArgs) -> Result<Cap> {
    let CheckArgs {
        integration_id,
        principal_kind,
        principal_id,
        token_budget,
        time_window,
        enforce,
    } = a;
    let integration = validate::id("integration_id", integration_id)?;
    let (kind, id) = principal(principal_kind, principal_id)?;
    let budget = validate::amount("token_budget", token_budget)?;
    let window = window(time_window)?;
    let tenant = crate::tenant::current()?;
    let used = with_db(&tenant, |db| {
        Ok(db.window_tokens([&integration, &kind, &id], window))
    })?;
    let (allowed, remaining) = usage::check(used, budget);
    if enforce && !allowed {
        return Err(exceeded(
            format!("token cap of {kind} \"{id}\" on integration \"{integration}\""),
            used,
            budget,
            0,
        ));
    }
    Ok(Cap {
        allowed,
        used,
        remaining,
    })
}

/// The arguments of `usage_cap_charge`, named as in SQL.
pub struct ChargeArgs {
    pub integration_id: Option<String>,
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub tokens: Option<i64>,
    pub token_budget: Option<i64>,
    pub time_window: Option<Interval>,
}

/// `usage_cap_charge`: under the cap's lock, records `tokens` when
/// `used + tokens <= token_budget`; the result shows the window after.
pub fn charge(a: ChargeArgs) -> Result<Cap> {
    let ChargeArgs {
        integration_id,
        principal_kind,
        principal_id,
        tokens,
        token_budget,
        time_window,
    } = a;
    let integration = validate::id("integration_id", integration_id)?;
    let (kind, id) = principal(principal_kind, principal_id)?;
    let tokens = validate::amount("tokens", tokens)?;
    let budget = validate::amount("token_budget", token_budget)?;
    let window = window(time_window)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        db.lock_cap(usage::lock_key(
            &tenant,
            "usage",
            &[&integration, &kind, &id],
        ));
        let used = db.window_tokens([&integration, &kind, &id], window);
        let allowed = usage::charge_fits(used, tokens, budget);
        let used = if allowed {
            db.record_usage(&NewUsage {
                integration_id: &integration,
                principal_kind: &kind,
                principal_id: &id,
                input_tokens: tokens,
                output_tokens: 0,
                model: None,
                conversation_id: None,
                at: now(),
            });
            used + tokens
        } else {
            used
        };
        Ok(Cap {
            allowed,
            used,
            remaining: budget.saturating_sub(used).max(0),
        })
    })
}

/// The arguments of `call_cap_charge`, named as in SQL.
pub struct CallChargeArgs {
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub tool_name: Option<String>,
    pub max_calls: Option<i64>,
    pub time_window: Option<Interval>,
}

/// `call_cap_charge`: N calls of a tool per window per principal, under the
/// cap's lock; the result shows the window after.
pub fn call_charge(a: CallChargeArgs) -> Result<Cap> {
    let CallChargeArgs {
        principal_kind,
        principal_id,
        tool_name,
        max_calls,
        time_window,
    } = a;
    let (kind, id) = principal(principal_kind, principal_id)?;
    let tool = validate::id("tool_name", tool_name)?;
    let max = validate::amount("max_calls", max_calls)?;
    let window = window(time_window)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        db.lock_cap(usage::lock_key(&tenant, "calls", &[&kind, &id, &tool]));
        let used = db.window_calls([&kind, &id, &tool], window);
        let allowed = usage::charge_fits(used, 1, max);
        if allowed {
            db.record_call([&kind, &id, &tool]);
        }
        let used = used + i64::from(allowed);
        Ok(Cap {
            allowed,
            used,
            remaining: max.saturating_sub(used).max(0),
        })
    })
}

pub fn purge(before: Option<TimestampWithTimeZone>) -> Result<i64> {
    let before = validate::required("before", before)?;
    if !before.is_finite() {
        return Err(Error::InvalidParameter(
            "before must be a finite time".into(),
        ));
    }
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| Ok(db.purge_usage(before)))
}

fn now() -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(crate::args::now()).expect("now() is a timestamptz")
}
