//! SQL entry points of propose / apply tokens and the tool-call audit log
//! (SPEC.md §4). The rules live in spendguard_core::proposal.

pub mod ops;
pub mod store;

use crate::error::ok_or_raise;
use crate::jsonb::JsonbText;
use crate::result::{row, Row};
use pgrx::prelude::*;
use store::ToolCall;

fn tool_call_row(fcinfo: pg_sys::FunctionCallInfo, t: ToolCall) -> Row {
    row(
        fcinfo,
        [
            t.id.into_datum(),
            t.tenant_id.into_datum(),
            t.principal_kind.into_datum(),
            t.principal_id.into_datum(),
            t.transport.into_datum(),
            t.conversation_id.into_datum(),
            t.tool_name.into_datum(),
            t.effect.into_datum(),
            t.args_hash.into_datum(),
            t.status.into_datum(),
            t.result_snapshot.into_datum(),
            t.error.into_datum(),
            t.proposed_payload.into_datum(),
            t.proposed_at.into_datum(),
            t.expires_at.into_datum(),
            t.applied_at.into_datum(),
            t.applied_by_kind.into_datum(),
            t.applied_by_id.into_datum(),
            t.rejected_at.into_datum(),
            t.rejected_by_kind.into_datum(),
            t.rejected_by_id.into_datum(),
            t.created_at.into_datum(),
            t.content_key.into_datum(),
        ],
    )
}

/// Keys sorted at every level, no insignificant whitespace, numbers as
/// jsonb prints them.
#[pg_extern(immutable, strict, parallel_safe)]
fn canonical_json(doc: JsonbText) -> String {
    ok_or_raise(ops::canonical_json(doc))
}

/// Lowercase hex SHA-256 of canonical_json.
#[pg_extern(immutable, strict, parallel_safe)]
fn args_hash(doc: JsonbText) -> String {
    ok_or_raise(ops::args_hash(doc))
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe, requires = ["proposal_schema"])]
fn proposal_create(
    principal_kind: Option<String>,
    principal_id: Option<String>,
    tool_name: Option<String>,
    args: Option<JsonbText>,
    effect: default!(Option<String>, "'mutate'"),
    transport: default!(Option<String>, "'chat'"),
    payload: default!(Option<JsonbText>, "NULL"),
    conversation_id: default!(Option<String>, "NULL"),
    ttl: default!(Option<Interval>, "'10 minutes'"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.proposal_created") {
    let c = ok_or_raise(ops::create(ops::CreateArgs {
        call: ops::CallArgs {
            principal_kind,
            principal_id,
            tool_name,
            args,
            effect,
            transport,
            conversation_id,
        },
        payload,
        ttl,
    }));
    row(
        fcinfo,
        [
            c.id.into_datum(),
            c.token.into_datum(),
            c.expires_at.into_datum(),
            c.args_hash.into_datum(),
            c.duplicate_of.into_datum(),
        ],
    )
}

#[pg_extern(volatile, parallel_unsafe, requires = ["proposal_schema"])]
fn proposal_consume(
    token: Option<String>,
    applier_kind: Option<String>,
    applier_id: Option<String>,
    args: default!(Option<JsonbText>, "NULL"),
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.tool_call") {
    let t = ok_or_raise(ops::consume(token, applier_kind, applier_id, args));
    tool_call_row(fcinfo, t)
}

#[pg_extern(volatile, parallel_unsafe, requires = ["proposal_schema"])]
fn proposal_reject(
    token: Option<String>,
    by_kind: Option<String>,
    by_id: Option<String>,
    fcinfo: pg_sys::FunctionCallInfo,
) -> pgrx::composite_type!('static, "spendguard.tool_call") {
    let t = ok_or_raise(ops::reject(token, by_kind, by_id));
    tool_call_row(fcinfo, t)
}

#[pg_extern(volatile, parallel_unsafe)]
fn proposal_expire_stale(now: default!(Option<TimestampWithTimeZone>, "now()")) -> i64 {
    ok_or_raise(ops::expire_stale(now))
}

#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn tool_call_record(
    principal_kind: Option<String>,
    principal_id: Option<String>,
    tool_name: Option<String>,
    args: Option<JsonbText>,
    status: Option<String>,
    effect: default!(Option<String>, "'read'"),
    transport: default!(Option<String>, "'chat'"),
    result: default!(Option<JsonbText>, "NULL"),
    error: default!(Option<String>, "NULL"),
    conversation_id: default!(Option<String>, "NULL"),
) -> pgrx::datum::Uuid {
    ok_or_raise(ops::record(ops::RecordArgs {
        call: ops::CallArgs {
            principal_kind,
            principal_id,
            tool_name,
            args,
            effect,
            transport,
            conversation_id,
        },
        status,
        result,
        error,
    }))
}
