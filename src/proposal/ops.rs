//! The operations of SPEC.md §4: validate, then create / consume / reject
//! proposals and record tool calls, with the rules of
//! spendguard_core::proposal.

use super::store::{NewCall, ToolCall};
use crate::jsonb::JsonbText;
use crate::spi::with_db;
use pgrx::datum::{Interval, TimestampWithTimeZone, Uuid};
use spendguard_core::enums::{Effect, PrincipalKind, Transport};
use spendguard_core::proposal::{self as p, Status};
use spendguard_core::{usage, validate, Error, Result};

/// `spendguard.proposal_created`.
pub struct Created {
    pub id: Uuid,
    pub token: Option<String>,
    pub expires_at: TimestampWithTimeZone,
    pub args_hash: String,
    pub duplicate_of: Option<Uuid>,
}

/// A required argument of an enumeration (spendguard_core::enums): NULL is
/// 22004, anything but its labels 22023 with the one message.
fn label<E>(name: &str, v: Option<String>, parse: fn(&str, &str) -> Result<E>) -> Result<String> {
    let v = validate::required(name, v)?;
    parse(name, &v)?;
    Ok(v)
}

/// `args_hash` of a jsonb argument (NULL is 22004).
fn hash_of(name: &str, args: Option<JsonbText>) -> Result<String> {
    p::args_hash(&validate::required(name, args)?.0, &mut guard)
}

/// The guard of every walk of a document (spendguard_core::proposal::Guard):
/// PostgreSQL's own stack depth check, as its jsonb code makes at every
/// level (a too-deep document is 54001, not a crash, whatever
/// max_stack_depth is), and its interrupts (a statement timeout or cancel
/// stops a long walk).
fn guard() -> Result<()> {
    pgrx::check_for_interrupts!();
    // SAFETY: reads the backend's stack base and max_stack_depth only.
    if unsafe { pgrx::pg_sys::stack_is_too_deep() } {
        return Err(spendguard_core::Error::TooDeep);
    }
    Ok(())
}

pub fn canonical_json(doc: JsonbText) -> Result<String> {
    p::canonical_json(&doc.0, &mut guard)
}

pub fn args_hash(doc: JsonbText) -> Result<String> {
    p::args_hash(&doc.0, &mut guard)
}

/// The owned parts of a new call, validated.
struct Call {
    principal_kind: String,
    principal_id: String,
    tool_name: String,
    effect: String,
    transport: String,
    conversation_id: Option<String>,
    args_hash: String,
}

impl Call {
    fn new_call(&self) -> NewCall<'_> {
        NewCall {
            principal_kind: &self.principal_kind,
            principal_id: &self.principal_id,
            transport: &self.transport,
            conversation_id: self.conversation_id.as_deref(),
            tool_name: &self.tool_name,
            effect: &self.effect,
            args_hash: &self.args_hash,
        }
    }
}

/// What `proposal_create` and `tool_call_record` share: the call itself.
pub struct CallArgs {
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub tool_name: Option<String>,
    pub args: Option<JsonbText>,
    pub effect: Option<String>,
    pub transport: Option<String>,
    pub conversation_id: Option<String>,
}

fn call(a: CallArgs) -> Result<Call> {
    let CallArgs {
        principal_kind,
        principal_id,
        tool_name,
        args,
        effect,
        transport,
        conversation_id,
    } = a;
    Ok(Call {
        principal_kind: label("principal_kind", principal_kind, PrincipalKind::parse_arg)?,
        principal_id: validate::id("principal_id", principal_id)?,
        tool_name: validate::id("tool_name", tool_name)?,
        args_hash: hash_of("args", args)?,
        effect: label("effect", effect, Effect::parse_arg)?,
        transport: label("transport", transport, Transport::parse_arg)?,
        conversation_id: validate::opt_id("conversation_id", conversation_id)?,
    })
}

/// The arguments of `proposal_create`, named as in SQL.
pub struct CreateArgs {
    pub call: CallArgs,
    pub payload: Option<JsonbText>,
    pub ttl: Option<Interval>,
}

/// `proposal_create`: a new proposal with a fresh token, or, when the same
/// principal already has this tool with these arguments in flight, that
/// proposal (`duplicate_of`, no token). Identical creates at the same
/// moment are decided one at a time under an advisory lock on the content.
pub fn create(a: CreateArgs) -> Result<Created> {
    let CreateArgs {
        call: args,
        payload,
        ttl,
    } = a;
    let c = call(args)?;
    let ttl = crate::args::ttl("ttl", validate::required("ttl", ttl)?)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        let nc = c.new_call();
        let key = usage::lock_key(
            &tenant,
            "proposal",
            &[
                nc.principal_kind,
                nc.principal_id,
                nc.tool_name,
                nc.args_hash,
            ],
        );
        db.lock_content(key);
        if let Some((id, expires_at)) = db.in_flight(&nc, key) {
            return Ok(Created {
                id,
                token: None,
                expires_at,
                args_hash: c.args_hash.clone(),
                duplicate_of: Some(id),
            });
        }
        let nonce = p::new_nonce();
        let (id, expires_at) = db.create_proposal(&nc, payload, ttl, &p::nonce_hash(&nonce), key);
        Ok(Created {
            id,
            token: Some(p::token(&id.to_string(), &nonce)),
            expires_at,
            args_hash: c.args_hash.clone(),
            duplicate_of: None,
        })
    })
}

/// Consume (apply) or reject a proposal by its token. The nonce is checked
/// before anything is locked, against a dummy hash when the id is unknown,
/// so an unknown id and a wrong nonce cost the same and raise the same
/// SG010; only the holder of the right nonce learns SG011 / SG012 / SG013.
fn close(
    token: Option<String>,
    kind: Option<String>,
    by: Option<String>,
    args: Option<JsonbText>,
    apply: bool,
) -> Result<ToolCall> {
    let (kind_name, by_name) = if apply {
        ("applier_kind", "applier_id")
    } else {
        ("by_kind", "by_id")
    };
    let token = validate::required("token", token)?;
    let kind = label(kind_name, kind, PrincipalKind::parse_arg)?;
    let by = validate::id(by_name, by)?;
    let args_hash = args.map(|a| p::args_hash(&a.0, &mut guard)).transpose()?;
    let tenant = crate::tenant::current()?;
    let (id, nonce) = p::parse_token(&token)?;
    with_db(&tenant, |db| {
        let (stored, known) = db.secret(&id);
        if !(p::nonce_matches(&nonce, &stored) & known) {
            return Err(p::invalid_token());
        }
        let (status, expired, hash) = db.lock_proposal(&id).ok_or_else(p::invalid_token)?;
        let args_match = args_hash.as_ref().map(|h| *h == hash);
        p::check_consumable(&id, status, expired, if apply { args_match } else { None })?;
        Ok(db.close_proposal(&id, apply, &kind, &by))
    })
}

pub fn consume(
    token: Option<String>,
    applier_kind: Option<String>,
    applier_id: Option<String>,
    args: Option<JsonbText>,
) -> Result<ToolCall> {
    close(token, applier_kind, applier_id, args, true)
}

pub fn reject(
    token: Option<String>,
    by_kind: Option<String>,
    by_id: Option<String>,
) -> Result<ToolCall> {
    close(token, by_kind, by_id, None, false)
}

pub fn expire_stale(now: Option<TimestampWithTimeZone>) -> Result<i64> {
    let now = validate::required("now", now)?;
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| Ok(db.expire_stale(now)))
}

/// The arguments of `tool_call_record`, named as in SQL.
pub struct RecordArgs {
    pub call: CallArgs,
    pub status: Option<String>,
    pub result: Option<JsonbText>,
    pub error: Option<String>,
}

pub fn record(a: RecordArgs) -> Result<Uuid> {
    let RecordArgs {
        call: args,
        status,
        result,
        error,
    } = a;
    let c = call(args)?;
    let status = validate::required("status", status)?;
    match Status::parse(&status) {
        Ok(Status::Executed | Status::Failed) => {}
        _ => {
            return Err(Error::InvalidParameter(format!(
                "invalid status for tool_call_record: \"{status}\" (expected executed or failed)"
            )))
        }
    }
    let tenant = crate::tenant::current()?;
    with_db(&tenant, |db| {
        Ok(db.record_tool_call(&c.new_call(), &status, result, error.as_deref()))
    })
}
