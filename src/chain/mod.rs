//! SQL entry points of the hash chain (SPEC §9). The link function itself
//! is spendguard_core::chain; these expose it to `verify()`, to history
//! retirement and to the upgrade from 0.4.0 (sql/chain.sql), and compute
//! `chain_root()`. The writer (budget/store.rs) calls the core function
//! directly with the values it stores.

pub mod store;

use crate::error::ok_or_raise;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use spendguard_core::chain::{self, Checkpoint, Event, Hash};

/// A stored `prev_hash`: 32 bytes, or not a hash at all.
fn prev(p: Option<&[u8]>) -> Option<Hash> {
    p.and_then(|p| Hash::try_from(p).ok())
}

/// The hash of an event link from its stored columns (in `budget_event`'s
/// order, `prev_hash` first). NULL when a NOT NULL column is NULL or
/// `prev_hash` is not 32 bytes: no stored hash equals it, so `verify()`
/// reports the link.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn event_link(
    prev_hash: Option<&[u8]>,
    tenant_id: Option<&str>,
    event_seq: Option<i64>,
    event_id: Option<&str>,
    request_fingerprint: Option<&str>,
    hold_id: Option<&str>,
    capability_id: Option<&str>,
    grant_index: Option<i32>,
    kind: Option<&str>,
    allowed: Option<bool>,
    denial_reason: Option<&str>,
    recorded_at: Option<TimestampWithTimeZone>,
    exposure_units: Option<i64>,
    realized_spend_units: Option<i64>,
    max_invocations: Option<i64>,
    max_cost_per_invocation: Option<i64>,
    max_total_cost: Option<i64>,
    invocation_count_after: Option<i64>,
    total_cost_exposed_after: Option<i64>,
    total_cost_realized_after: Option<i64>,
    authority_id: Option<&str>,
    lease_id: Option<&str>,
    lease_epoch: Option<i64>,
    guarantee_level: Option<&str>,
    chain_n: Option<i64>,
) -> Option<Vec<u8>> {
    let e = Event {
        tenant_id: tenant_id?,
        event_seq: event_seq?,
        event_id,
        request_fingerprint,
        hold_id,
        capability_id: capability_id?,
        grant_index: grant_index?,
        kind: kind?,
        allowed: allowed?,
        denial_reason,
        recorded_at: i64::from(recorded_at?),
        exposure_units: exposure_units?,
        realized_spend_units: realized_spend_units?,
        max_invocations,
        max_cost_per_invocation,
        max_total_cost,
        invocation_count_after: invocation_count_after?,
        total_cost_exposed_after: total_cost_exposed_after?,
        total_cost_realized_after: total_cost_realized_after?,
        authority_id,
        lease_id,
        lease_epoch,
        guarantee_level: guarantee_level?,
        chain_n: chain_n?,
    };
    Some(chain::event_link(&prev(prev_hash)?, &e).to_vec())
}

/// The hash of a checkpoint link from its stored columns (in
/// `budget_checkpoint`'s order, `prev_hash` first; the two numerics as
/// their text output). NULL as for `event_link`.
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn checkpoint_link(
    prev_hash: Option<&[u8]>,
    tenant_id: Option<&str>,
    capability_id: Option<&str>,
    grant_index: Option<i32>,
    through_seq: Option<i64>,
    retired_before: Option<TimestampWithTimeZone>,
    retired_at: Option<TimestampWithTimeZone>,
    events: Option<i64>,
    invocation_count: Option<i64>,
    total_cost_exposed: Option<i64>,
    total_cost_realized: Option<i64>,
    unheld_exposed: Option<&str>,
    last_allowed_seq: Option<i64>,
    retired_holds: Option<i64>,
    retired_hold_realized: Option<&str>,
    cut_chain_n: Option<i64>,
    cut_hash: Option<&[u8]>,
    chain_n: Option<i64>,
) -> Option<Vec<u8>> {
    let k = Checkpoint {
        tenant_id: tenant_id?,
        capability_id: capability_id?,
        grant_index: grant_index?,
        through_seq: through_seq?,
        retired_before: i64::from(retired_before?),
        retired_at: i64::from(retired_at?),
        events: events?,
        invocation_count: invocation_count?,
        total_cost_exposed: total_cost_exposed?,
        total_cost_realized: total_cost_realized?,
        unheld_exposed: unheld_exposed?,
        last_allowed_seq: last_allowed_seq?,
        retired_holds: retired_holds?,
        retired_hold_realized: retired_hold_realized?,
        cut_chain_n: cut_chain_n?,
        cut_hash: cut_hash?,
        chain_n: chain_n?,
    };
    Some(chain::checkpoint_link(&prev(prev_hash)?, &k).to_vec())
}

/// The `prev_hash` of a budget's first link.
#[pg_extern(immutable, strict, parallel_safe)]
fn chain_genesis(tenant_id: &str, capability_id: &str, grant_index: i32) -> Vec<u8> {
    chain::genesis(tenant_id, capability_id, grant_index).to_vec()
}

/// SPEC §9: SHA-256 over the current tenant's chain heads in key order,
/// and how many there are.
#[pg_extern(stable, parallel_safe)]
fn chain_root() -> TableIterator<'static, (name!(budgets, i64), name!(root, String))> {
    let (n, root) = ok_or_raise(crate::tenant::current().and_then(|t| store::root(&t)));
    TableIterator::once((n, root))
}
