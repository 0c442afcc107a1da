//! The SQL of rolling-window caps: every read and write of usage_event and
//! call_event, as cached prepared statements. No rules here.

use crate::spi::{spi, versioned, Db, Stmt, Versioned, INT8, INTERVAL, TEXT, TIMESTAMPTZ};
use pgrx::datum::{Interval, TimestampWithTimeZone};

/// The rows of one window: in this release's schema by the digest of its
/// ids (window_key, so the index entry fits with ids of 1,024 bytes; a
/// SHA-256 match is the ids' match, and the sum stays an index-only scan),
/// in the previous release's by the ids (crate::spi::Versioned).
macro_rules! window {
    (current, $ids:literal) => {
        "tenant_id = $1 AND window_key = spendguard.id_key($2, $3, $4)"
    };
    (legacy, $ids:literal) => {
        $ids
    };
}

/// Tokens in the trailing window: a range scan of usage_event_window
/// (tests/pg_regress/sql/usage.sql shows the plan with 1M rows).
macro_rules! window_tokens {
    ($v:ident) => {
        concat!(
            "SELECT coalesce(sum(input_tokens + output_tokens), 0)::bigint \
             FROM spendguard.usage_event WHERE ",
            window!(
                $v,
                "tenant_id = $1 AND integration_id = $2 AND principal_kind = $3 \
                 AND principal_id = $4"
            ),
            " AND at > now() - $5"
        )
    };
}
pub static WINDOW_TOKENS: Versioned =
    versioned!(window_tokens, &[TEXT, TEXT, TEXT, TEXT, INTERVAL]);

/// Calls in the trailing window: a range scan of call_event_window.
macro_rules! window_calls {
    ($v:ident) => {
        concat!(
            "SELECT count(*) FROM spendguard.call_event WHERE ",
            window!(
                $v,
                "tenant_id = $1 AND principal_kind = $2 AND principal_id = $3 \
                 AND tool_name = $4"
            ),
            " AND at > now() - $5"
        )
    };
}
pub static WINDOW_CALLS: Versioned = versioned!(window_calls, &[TEXT, TEXT, TEXT, TEXT, INTERVAL]);

static RECORD_USAGE: Stmt = Stmt {
    sql: "INSERT INTO spendguard.usage_event (tenant_id, integration_id, principal_kind, \
          principal_id, input_tokens, output_tokens, model, conversation_id, at) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    types: &[TEXT, TEXT, TEXT, TEXT, INT8, INT8, TEXT, TEXT, TIMESTAMPTZ],
};

static RECORD_CALL: Stmt = Stmt {
    sql: "INSERT INTO spendguard.call_event (tenant_id, principal_kind, principal_id, tool_name) \
          VALUES ($1, $2, $3, $4)",
    types: &[TEXT, TEXT, TEXT, TEXT],
};

static PURGE: Stmt = Stmt {
    sql: "WITH u AS (DELETE FROM spendguard.usage_event WHERE tenant_id = $1 AND at < $2 RETURNING 1), \
          c AS (DELETE FROM spendguard.call_event WHERE tenant_id = $1 AND at < $2 RETURNING 1) \
          SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM c)",
    types: &[TEXT, TIMESTAMPTZ],
};

/// What a use records.
pub struct NewUsage<'a> {
    pub integration_id: &'a str,
    pub principal_kind: &'a str,
    pub principal_id: &'a str,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub model: Option<&'a str>,
    pub conversation_id: Option<&'a str>,
    pub at: TimestampWithTimeZone,
}

/// Usage storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    /// (key, window) → tokens used in it.
    pub fn window_tokens(&mut self, key: [&str; 3], window: Interval) -> i64 {
        let t = self.tenant;
        self.one_i64(
            WINDOW_TOKENS.pick(),
            &[
                t.into(),
                key[0].into(),
                key[1].into(),
                key[2].into(),
                window.into(),
            ],
        )
    }

    /// (principal kind, principal id, tool) → calls in the window.
    pub fn window_calls(&mut self, key: [&str; 3], window: Interval) -> i64 {
        let t = self.tenant;
        self.one_i64(
            WINDOW_CALLS.pick(),
            &[
                t.into(),
                key[0].into(),
                key[1].into(),
                key[2].into(),
                window.into(),
            ],
        )
    }

    pub fn record_usage(&mut self, u: &NewUsage<'_>) -> pgrx::datum::Uuid {
        let t = self.run(
            &RECORD_USAGE,
            &[
                self.tenant.into(),
                u.integration_id.into(),
                u.principal_kind.into(),
                u.principal_id.into(),
                u.input_tokens.into(),
                u.output_tokens.into(),
                u.model.into(),
                u.conversation_id.into(),
                u.at.into(),
            ],
        );
        spi(t.first().get::<pgrx::datum::Uuid>(1)).expect("id is NOT NULL")
    }

    pub fn record_call(&mut self, key: [&str; 3]) {
        self.run(
            &RECORD_CALL,
            &[
                self.tenant.into(),
                key[0].into(),
                key[1].into(),
                key[2].into(),
            ],
        );
    }

    pub fn lock_cap(&mut self, digest: i64) {
        // One cap's decisions are made one at a time: a transaction-scoped
        // advisory lock on a 64-bit digest of the cap's key (nothing to
        // write, released at commit or rollback, fine behind a transaction
        // pooler).
        crate::spi::advisory_xact_lock(digest);
    }

    pub fn purge_usage(&mut self, before: TimestampWithTimeZone) -> i64 {
        let t = self.tenant;
        self.one_i64(&PURGE, &[t.into(), before.into()])
    }
}
