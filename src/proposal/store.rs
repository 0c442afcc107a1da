//! The SQL of proposals and the tool-call audit log: every read and write of
//! tool_call and proposal_secret, as cached prepared statements.

use crate::jsonb::JsonbText;
use crate::spi::{spi, Db, Stmt, BYTEA, INT8, INTERVAL, JSONB, TEXT, TIMESTAMPTZ};
use pgrx::datum::{Interval, TimestampWithTimeZone, Uuid};
use pgrx::spi::SpiTupleTable;
use spendguard_core::proposal::Status;

/// Every column of tool_call, in table order (the result row's order).
macro_rules! cols {
    () => {
        "id, tenant_id, principal_kind, principal_id, transport, conversation_id, tool_name, \
         effect, args_hash, status, result_snapshot, error, proposed_payload, proposed_at, \
         expires_at, applied_at, applied_by_kind, applied_by_id, rejected_at, rejected_by_kind, \
         rejected_by_id, created_at, content_key"
    };
}

/// The in-flight proposal of the same content: proposed, not expired, by
/// its content key (index tool_call_in_flight; the other columns are
/// compared too, so a digest collision could never merge two contents).
/// There is at most one: creates of one content are decided under its
/// lock, and make none while one is in flight.
static IN_FLIGHT: Stmt = Stmt {
    sql: "SELECT id, expires_at FROM spendguard.tool_call \
          WHERE content_key = $6 AND status = 'proposed' AND expires_at > now() \
            AND tenant_id = $1 AND principal_kind = $2 AND principal_id = $3 AND tool_name = $4 \
            AND args_hash = $5 \
          LIMIT 1",
    types: &[TEXT, TEXT, TEXT, TEXT, TEXT, INT8],
};

/// A new proposal and its nonce hash, in one statement.
static CREATE: Stmt = Stmt {
    sql: "WITH t AS (INSERT INTO spendguard.tool_call (tenant_id, principal_kind, principal_id, \
            transport, conversation_id, tool_name, effect, args_hash, status, proposed_payload, \
            proposed_at, expires_at, content_key) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'proposed', $9, now(), now() + $10, $12) \
          RETURNING id, expires_at), \
          s AS (INSERT INTO spendguard.proposal_secret (tenant_id, id, nonce_hash) \
            SELECT $1, t.id, $11 FROM t) \
          SELECT t.id, t.expires_at FROM t",
    types: &[
        TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, JSONB, INTERVAL, BYTEA, INT8,
    ],
};

/// The nonce hash of a proposal of this tenant, read without a lock (a
/// wrong nonce must not cost a row lock that a right one would not), and
/// whether the id is known. An unknown id reads the sentinel row of tenant
/// '' (sql/proposal.sql) instead, so both shapes of bad token cost one
/// found row and the same comparison.
static SECRET: Stmt = Stmt {
    sql: "SELECT coalesce(s.nonce_hash, d.nonce_hash), s.nonce_hash IS NOT NULL \
          FROM (SELECT (SELECT nonce_hash FROM spendguard.proposal_secret \
                        WHERE tenant_id = $1 AND id = $2::uuid) AS nonce_hash) s \
          LEFT JOIN spendguard.proposal_secret d \
            ON s.nonce_hash IS NULL AND d.tenant_id = '' \
           AND d.id = '00000000-0000-0000-0000-000000000000'",
    types: &[TEXT, TEXT],
};

/// The proposal, locked: concurrent consumes queue here and see the first
/// one's commit.
static LOCK: Stmt = Stmt {
    sql: "SELECT status, expires_at <= now(), args_hash FROM spendguard.tool_call \
          WHERE tenant_id = $1 AND id = $2::uuid FOR UPDATE",
    types: &[TEXT, TEXT],
};

static APPLY: Stmt = Stmt {
    sql: concat!(
        "UPDATE spendguard.tool_call SET status = 'applied', applied_at = now(), \
         applied_by_kind = $3, applied_by_id = $4 WHERE tenant_id = $1 AND id = $2::uuid \
         RETURNING ",
        cols!()
    ),
    types: &[TEXT, TEXT, TEXT, TEXT],
};

static REJECT: Stmt = Stmt {
    sql: concat!(
        "UPDATE spendguard.tool_call SET status = 'rejected', rejected_at = now(), \
         rejected_by_kind = $3, rejected_by_id = $4 WHERE tenant_id = $1 AND id = $2::uuid \
         RETURNING ",
        cols!()
    ),
    types: &[TEXT, TEXT, TEXT, TEXT],
};

static EXPIRE_STALE: Stmt = Stmt {
    sql: "WITH x AS (UPDATE spendguard.tool_call SET status = 'expired' \
          WHERE tenant_id = $1 AND status = 'proposed' AND expires_at <= $2 RETURNING 1) \
          SELECT count(*) FROM x",
    types: &[TEXT, TIMESTAMPTZ],
};

static RECORD: Stmt = Stmt {
    sql: "INSERT INTO spendguard.tool_call (tenant_id, principal_kind, principal_id, transport, \
          conversation_id, tool_name, effect, args_hash, status, result_snapshot, error) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
    types: &[
        TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, JSONB, TEXT,
    ],
};

/// `spendguard.tool_call`, as owned values in column order.
pub struct ToolCall {
    pub id: Option<Uuid>,
    pub tenant_id: Option<String>,
    pub principal_kind: Option<String>,
    pub principal_id: Option<String>,
    pub transport: Option<String>,
    pub conversation_id: Option<String>,
    pub tool_name: Option<String>,
    pub effect: Option<String>,
    pub args_hash: Option<String>,
    pub status: Option<String>,
    pub result_snapshot: Option<JsonbText>,
    pub error: Option<String>,
    pub proposed_payload: Option<JsonbText>,
    pub proposed_at: Option<TimestampWithTimeZone>,
    pub expires_at: Option<TimestampWithTimeZone>,
    pub applied_at: Option<TimestampWithTimeZone>,
    pub applied_by_kind: Option<String>,
    pub applied_by_id: Option<String>,
    pub rejected_at: Option<TimestampWithTimeZone>,
    pub rejected_by_kind: Option<String>,
    pub rejected_by_id: Option<String>,
    pub created_at: Option<TimestampWithTimeZone>,
    pub content_key: Option<i64>,
}

fn tool_call(t: &SpiTupleTable<'_>) -> ToolCall {
    ToolCall {
        id: spi(t.get(1)),
        tenant_id: spi(t.get(2)),
        principal_kind: spi(t.get(3)),
        principal_id: spi(t.get(4)),
        transport: spi(t.get(5)),
        conversation_id: spi(t.get(6)),
        tool_name: spi(t.get(7)),
        effect: spi(t.get(8)),
        args_hash: spi(t.get(9)),
        status: spi(t.get(10)),
        result_snapshot: spi(t.get(11)),
        error: spi(t.get(12)),
        proposed_payload: spi(t.get(13)),
        proposed_at: spi(t.get(14)),
        expires_at: spi(t.get(15)),
        applied_at: spi(t.get(16)),
        applied_by_kind: spi(t.get(17)),
        applied_by_id: spi(t.get(18)),
        rejected_at: spi(t.get(19)),
        rejected_by_kind: spi(t.get(20)),
        rejected_by_id: spi(t.get(21)),
        created_at: spi(t.get(22)),
        content_key: spi(t.get(23)),
    }
}

/// What a new proposal or record carries.
pub struct NewCall<'a> {
    pub principal_kind: &'a str,
    pub principal_id: &'a str,
    pub transport: &'a str,
    pub conversation_id: Option<&'a str>,
    pub tool_name: &'a str,
    pub effect: &'a str,
    pub args_hash: &'a str,
}

/// Proposal storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    /// Locks a proposal content (its key) until the transaction ends.
    pub fn lock_content(&mut self, key: i64) {
        crate::spi::advisory_xact_lock(key);
    }

    pub fn in_flight(
        &mut self,
        c: &NewCall<'_>,
        key: i64,
    ) -> Option<(Uuid, TimestampWithTimeZone)> {
        let t = self.tenant;
        let r = self.run(
            &IN_FLIGHT,
            &[
                t.into(),
                c.principal_kind.into(),
                c.principal_id.into(),
                c.tool_name.into(),
                c.args_hash.into(),
                key.into(),
            ],
        );
        if r.is_empty() {
            return None;
        }
        let r = r.first();
        Some((
            spi(r.get(1)).expect("id"),
            spi(r.get(2)).expect("expires_at"),
        ))
    }

    pub fn create_proposal(
        &mut self,
        c: &NewCall<'_>,
        payload: Option<JsonbText>,
        ttl: Interval,
        nonce_hash: &[u8; 32],
        key: i64,
    ) -> (Uuid, TimestampWithTimeZone) {
        let t = self.tenant;
        let r = self.run(
            &CREATE,
            &[
                t.into(),
                c.principal_kind.into(),
                c.principal_id.into(),
                c.transport.into(),
                c.conversation_id.into(),
                c.tool_name.into(),
                c.effect.into(),
                c.args_hash.into(),
                payload.into(),
                ttl.into(),
                nonce_hash.to_vec().into(),
                key.into(),
            ],
        );
        let r = r.first();
        (
            spi(r.get(1)).expect("id"),
            spi(r.get(2)).expect("expires_at"),
        )
    }

    /// The nonce hash to check a token against (the sentinel's when the
    /// id is unknown in this tenant) and whether the id is known.
    pub fn secret(&mut self, id: &str) -> (Vec<u8>, bool) {
        let t = self.tenant;
        let r = self.run(&SECRET, &[t.into(), id.into()]);
        let r = r.first();
        (
            spi(r.get::<Vec<u8>>(1)).expect("the sentinel secret exists"),
            spi(r.get::<bool>(2)).unwrap_or(false),
        )
    }

    /// (status, past its expiry, args_hash) of proposal `id`, locked.
    pub fn lock_proposal(&mut self, id: &str) -> Option<(Status, bool, String)> {
        let t = self.tenant;
        let r = self.run(&LOCK, &[t.into(), id.into()]);
        if r.is_empty() {
            return None;
        }
        let r = r.first();
        let status: String = spi(r.get(1)).expect("status");
        Some((
            Status::parse(&status).expect("its domain keeps statuses valid"),
            spi(r.get(2)).expect("expires_at of a proposal"),
            spi(r.get(3)).expect("args_hash"),
        ))
    }

    /// Closes proposal `id` as applied (or rejected) by `kind`/`by`.
    pub fn close_proposal(&mut self, id: &str, applied: bool, kind: &str, by: &str) -> ToolCall {
        let t = self.tenant;
        let stmt = if applied { &APPLY } else { &REJECT };
        let r = self.run(stmt, &[t.into(), id.into(), kind.into(), by.into()]);
        tool_call(&r.first())
    }

    pub fn expire_stale(&mut self, now: TimestampWithTimeZone) -> i64 {
        let t = self.tenant;
        let r = self.run(&EXPIRE_STALE, &[t.into(), now.into()]);
        spi(r.first().get::<i64>(1)).unwrap_or(0)
    }

    pub fn record_tool_call(
        &mut self,
        c: &NewCall<'_>,
        status: &str,
        result: Option<JsonbText>,
        error: Option<&str>,
    ) -> Uuid {
        let t = self.tenant;
        let r = self.run(
            &RECORD,
            &[
                t.into(),
                c.principal_kind.into(),
                c.principal_id.into(),
                c.transport.into(),
                c.conversation_id.into(),
                c.tool_name.into(),
                c.effect.into(),
                c.args_hash.into(),
                status.into(),
                result.into(),
                error.into(),
            ],
        );
        spi(r.first().get(1)).expect("id")
    }
}
