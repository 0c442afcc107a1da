//! The SQL of budgets: every read and write of budget_usage, budget_hold and
//! budget_event, as cached prepared statements. No rules here.

use crate::spi::{run, Stmt};
use pgrx::pg_sys::{PgBuiltInOids as T, PgOid};
use pgrx::spi::{SpiClient, SpiResult};
use spendguard_core::budget::{Authority, Disposition, Hold, Usage};
use spendguard_core::{Error, Result};

const TEXT: PgOid = PgOid::BuiltIn(T::TEXTOID);
const INT4: PgOid = PgOid::BuiltIn(T::INT4OID);
const INT8: PgOid = PgOid::BuiltIn(T::INT8OID);
const BOOL: PgOid = PgOid::BuiltIn(T::BOOLOID);

const LOCK_USAGE: Stmt = Stmt {
    sql: "SELECT invocation_count, total_cost_exposed, total_cost_realized \
          FROM spendguard.budget_usage \
          WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 FOR UPDATE",
    types: &[TEXT, TEXT, INT4],
};

const CREATE_USAGE: Stmt = Stmt {
    sql: "INSERT INTO spendguard.budget_usage (tenant_id, capability_id, grant_index) \
          VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    types: &[TEXT, TEXT, INT4],
};

const UPDATE_USAGE: Stmt = Stmt {
    sql: "UPDATE spendguard.budget_usage SET invocation_count = $4, total_cost_exposed = $5, \
          total_cost_realized = $6, seq = nextval('spendguard.commit_seq'), updated_at = now() \
          WHERE tenant_id = $1 AND capability_id = $2 AND grant_index = $3 RETURNING seq",
    types: &[TEXT, TEXT, INT4, INT8, INT8, INT8],
};

const GET_HOLD: Stmt = Stmt {
    sql: "SELECT capability_id, grant_index, authorized_exposure, remaining_exposure, \
          realized_spend, disposition, authority_id, lease_id, lease_epoch \
          FROM spendguard.budget_hold WHERE tenant_id = $1 AND hold_id = $2",
    types: &[TEXT, TEXT],
};

const INSERT_HOLD: Stmt = Stmt {
    sql: "INSERT INTO spendguard.budget_hold (tenant_id, hold_id, capability_id, grant_index, \
          authorized_exposure, remaining_exposure, authority_id, lease_id, lease_epoch) \
          VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING 1",
    types: &[TEXT, TEXT, TEXT, INT4, INT8, TEXT, TEXT, INT8],
};

const UPDATE_HOLD: Stmt = Stmt {
    sql: "UPDATE spendguard.budget_hold SET remaining_exposure = $3, realized_spend = $4, \
          disposition = $5, updated_at = now() WHERE tenant_id = $1 AND hold_id = $2",
    types: &[TEXT, TEXT, INT8, INT8, TEXT],
};

const GET_EVENT: Stmt = Stmt {
    sql: "SELECT request_fingerprint, hold_id, kind, allowed, denial_reason, exposure_units, \
          realized_spend_units, invocation_count_after, total_cost_exposed_after, \
          total_cost_realized_after, event_seq, authority_id, lease_epoch, guarantee_level \
          FROM spendguard.budget_event WHERE tenant_id = $1 AND event_id = $2",
    types: &[TEXT, TEXT],
};

const INSERT_EVENT: Stmt = Stmt {
    sql: "INSERT INTO spendguard.budget_event (tenant_id, event_seq, event_id, \
          request_fingerprint, hold_id, capability_id, grant_index, kind, allowed, denial_reason, \
          exposure_units, realized_spend_units, max_invocations, max_cost_per_invocation, \
          max_total_cost, invocation_count_after, total_cost_exposed_after, \
          total_cost_realized_after, authority_id, lease_id, lease_epoch, guarantee_level) \
          VALUES ($1, COALESCE($2, nextval('spendguard.commit_seq')), $3, $4, $5, $6, $7, $8, \
          $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) \
          ON CONFLICT (tenant_id, event_id) WHERE event_id IS NOT NULL DO NOTHING \
          RETURNING event_seq",
    types: &[
        TEXT, INT8, TEXT, TEXT, TEXT, TEXT, INT4, TEXT, BOOL, TEXT, INT8, INT8, INT8, INT8, INT8,
        INT8, INT8, INT8, TEXT, TEXT, INT8, TEXT,
    ],
};

/// An event as recorded: enough to return the original result on replay.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub fingerprint: String,
    pub hold_id: Option<String>,
    pub kind: String,
    pub allowed: bool,
    pub denial_reason: Option<String>,
    pub exposure_units: i64,
    pub realized_spend_units: i64,
    pub usage_after: Usage,
    pub event_seq: i64,
    pub budget_term: Option<String>,
    pub guarantee_level: String,
}

/// An event to append.
pub struct NewEvent<'a> {
    pub seq: Option<i64>,
    pub event_id: Option<&'a str>,
    pub fingerprint: Option<&'a str>,
    pub hold_id: Option<&'a str>,
    pub capability_id: &'a str,
    pub grant_index: i32,
    pub kind: &'static str,
    pub allowed: bool,
    pub denial_reason: Option<&'static str>,
    pub exposure_units: i64,
    pub realized_spend_units: i64,
    pub limits: [Option<i64>; 3],
    pub usage_after: Usage,
    pub authority: Option<&'a Authority>,
    pub guarantee_level: &'static str,
}

/// Budget storage for one tenant inside one SPI connection.
pub struct Store<'a, 'c> {
    pub client: &'a mut SpiClient<'c>,
    pub tenant: &'a str,
}

fn spi<T>(r: SpiResult<T>) -> T {
    // An SPI-level failure (not a PostgreSQL ERROR, which unwinds by itself)
    // means a bug in a statement above: report it as an internal error.
    r.unwrap_or_else(|e| panic!("spendguard: SPI failure: {e}"))
}

impl<'a, 'c> Store<'a, 'c> {
    /// Locks the budget row (creating it at zero on first use) and returns
    /// its counters. Every decision on a budget goes through this lock.
    pub fn lock_usage(&mut self, cap: &str, grant: i32) -> Usage {
        for _ in 0..2 {
            let t = spi(run(
                self.client,
                &LOCK_USAGE,
                &[self.tenant.into(), cap.into(), grant.into()],
            ));
            if !t.is_empty() {
                let row = t.first();
                return Usage {
                    invocation_count: spi(row.get::<i64>(1)).unwrap_or(0),
                    exposed: spi(row.get::<i64>(2)).unwrap_or(0),
                    realized: spi(row.get::<i64>(3)).unwrap_or(0),
                };
            }
            spi(run(
                self.client,
                &CREATE_USAGE,
                &[self.tenant.into(), cap.into(), grant.into()],
            ));
        }
        panic!("spendguard: budget row of \"{cap}\" vanished after creation")
    }

    /// Writes new counters and stamps the budget with a fresh commit index.
    pub fn update_usage(&mut self, cap: &str, grant: i32, u: Usage) -> i64 {
        let t = spi(run(
            self.client,
            &UPDATE_USAGE,
            &[
                self.tenant.into(),
                cap.into(),
                grant.into(),
                u.invocation_count.into(),
                u.exposed.into(),
                u.realized.into(),
            ],
        ));
        spi(t.first().get::<i64>(1)).expect("seq is NOT NULL")
    }

    pub fn hold(&mut self, hold_id: &str) -> Option<Hold> {
        let t = spi(run(
            self.client,
            &GET_HOLD,
            &[self.tenant.into(), hold_id.into()],
        ));
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let authority = match (
            spi(r.get::<String>(7)),
            spi(r.get::<String>(8)),
            spi(r.get::<i64>(9)),
        ) {
            (Some(a), Some(l), Some(e)) => Some(Authority {
                authority_id: a,
                lease_id: l,
                lease_epoch: e,
            }),
            _ => None,
        };
        let disposition: String = spi(r.get(6)).unwrap_or_default();
        Some(Hold {
            hold_id: hold_id.to_string(),
            capability_id: spi(r.get(1)).unwrap_or_default(),
            grant_index: spi(r.get(2)).unwrap_or_default(),
            authorized: spi(r.get(3)).unwrap_or_default(),
            remaining: spi(r.get(4)).unwrap_or_default(),
            realized: spi(r.get(5)).unwrap_or_default(),
            disposition: Disposition::parse(&disposition).expect("CHECK keeps dispositions valid"),
            authority,
        })
    }

    /// Opens a hold; SG003 when the id is taken (also by a concurrent call).
    pub fn insert_hold(&mut self, h: &Hold) -> Result<()> {
        let a = h.authority.as_ref();
        let t = spi(run(
            self.client,
            &INSERT_HOLD,
            &[
                self.tenant.into(),
                h.hold_id.as_str().into(),
                h.capability_id.as_str().into(),
                h.grant_index.into(),
                h.authorized.into(),
                a.map(|a| a.authority_id.as_str()).into(),
                a.map(|a| a.lease_id.as_str()).into(),
                a.map(|a| a.lease_epoch).into(),
            ],
        ));
        if t.is_empty() {
            return Err(hold_exists(&h.hold_id));
        }
        Ok(())
    }

    pub fn update_hold(&mut self, h: &Hold) {
        spi(run(
            self.client,
            &UPDATE_HOLD,
            &[
                self.tenant.into(),
                h.hold_id.as_str().into(),
                h.remaining.into(),
                h.realized.into(),
                h.disposition.as_str().into(),
            ],
        ));
    }

    pub fn event(&mut self, event_id: &str) -> Option<RecordedEvent> {
        let t = spi(run(
            self.client,
            &GET_EVENT,
            &[self.tenant.into(), event_id.into()],
        ));
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let authority_id: Option<String> = spi(r.get(12));
        let epoch: Option<i64> = spi(r.get(13));
        Some(RecordedEvent {
            fingerprint: spi(r.get(1)).unwrap_or_default(),
            hold_id: spi(r.get(2)),
            kind: spi(r.get(3)).unwrap_or_default(),
            allowed: spi(r.get(4)).unwrap_or_default(),
            denial_reason: spi(r.get(5)),
            exposure_units: spi(r.get(6)).unwrap_or_default(),
            realized_spend_units: spi(r.get(7)).unwrap_or_default(),
            usage_after: Usage {
                invocation_count: spi(r.get(8)).unwrap_or_default(),
                exposed: spi(r.get(9)).unwrap_or_default(),
                realized: spi(r.get(10)).unwrap_or_default(),
            },
            event_seq: spi(r.get(11)).unwrap_or_default(),
            budget_term: authority_id.zip(epoch).map(|(a, e)| format!("{a}:{e}")),
            guarantee_level: spi(r.get(14)).unwrap_or_default(),
        })
    }

    /// Appends an event; returns its event_seq. SG004 when its event_id was
    /// taken meanwhile by a concurrent call on another budget.
    pub fn insert_event(&mut self, e: &NewEvent<'_>) -> Result<i64> {
        let a = e.authority;
        let t = spi(run(
            self.client,
            &INSERT_EVENT,
            &[
                self.tenant.into(),
                e.seq.into(),
                e.event_id.into(),
                e.fingerprint.into(),
                e.hold_id.into(),
                e.capability_id.into(),
                e.grant_index.into(),
                e.kind.into(),
                e.allowed.into(),
                e.denial_reason.into(),
                e.exposure_units.into(),
                e.realized_spend_units.into(),
                e.limits[0].into(),
                e.limits[1].into(),
                e.limits[2].into(),
                e.usage_after.invocation_count.into(),
                e.usage_after.exposed.into(),
                e.usage_after.realized.into(),
                a.map(|a| a.authority_id.as_str()).into(),
                a.map(|a| a.lease_id.as_str()).into(),
                a.map(|a| a.lease_epoch).into(),
                e.guarantee_level.into(),
            ],
        ));
        if t.is_empty() {
            return Err(Error::IdempotencyConflict {
                event_id: e.event_id.unwrap_or_default().to_string(),
            });
        }
        Ok(spi(t.first().get::<i64>(1)).expect("event_seq is NOT NULL"))
    }
}

pub fn hold_exists(hold_id: &str) -> Error {
    Error::HoldMismatch(format!(
        "hold \"{hold_id}\" already exists: a hold id can be opened only once"
    ))
}
