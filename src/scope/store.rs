//! The SQL of scoped budgets: every read and write of scope_budget,
//! scope_reservation and scope_request, as cached prepared statements. No
//! rules here. The spend and holds of scopes are §1 budgets and holds,
//! reached only through crate::budget::holds.

use crate::jsonb::JsonbText;
use crate::spi::{spi, Db, Stmt, BOOL, INT4, INT8, JSONB, TEXT, TIMESTAMPTZ};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::{PgBuiltInOids as T, PgOid};
use spendguard_core::price::Tokens;
use spendguard_core::scope::ScopePeriod;
use spendguard_core::spend::ReservationStatus;

const TEXT_ARRAY: PgOid = PgOid::BuiltIn(T::TEXTARRAYOID);
const INT4_ARRAY: PgOid = PgOid::BuiltIn(T::INT4ARRAYOID);

/// The budgets of the scopes $2, locked in the one canonical order (scope
/// bytes, then day < week < month < total): LockRows sits above the Sort,
/// so rows are locked in the order they are returned. Calls that share
/// scopes, listed in any order, lock them in this order and never deadlock.
static LOCK_BUDGETS: Stmt = Stmt {
    sql: "SELECT scope, period, limit_micros, alert_percents FROM spendguard.scope_budget \
          WHERE tenant_id = $1 AND scope = ANY ($2) \
          ORDER BY scope, array_position('{day,week,month,total}'::text[], period::text) \
          FOR UPDATE",
    types: &[TEXT, TEXT_ARRAY],
};

/// LOCK_BUDGETS without the lock (the readers).
static READ_BUDGETS: Stmt = Stmt {
    sql: "SELECT scope, period, limit_micros, alert_percents FROM spendguard.scope_budget \
          WHERE tenant_id = $1 AND scope = ANY ($2) \
          ORDER BY scope, array_position('{day,week,month,total}'::text[], period::text)",
    types: &[TEXT, TEXT_ARRAY],
};

/// Every budget of the tenant, in the same order.
static ALL_BUDGETS: Stmt = Stmt {
    sql: "SELECT scope, period, limit_micros, alert_percents FROM spendguard.scope_budget \
          WHERE tenant_id = $1 \
          ORDER BY scope, array_position('{day,week,month,total}'::text[], period::text)",
    types: &[TEXT],
};

/// The limit of one budget, locked (a limit change re-arms its alerts).
static LOCK_LIMIT: Stmt = Stmt {
    sql: "SELECT limit_micros FROM spendguard.scope_budget \
          WHERE tenant_id = $1 AND scope = $2 AND period = $3 FOR UPDATE",
    types: &[TEXT, TEXT, TEXT],
};

static SET_BUDGET: Stmt = Stmt {
    sql: "INSERT INTO spendguard.scope_budget \
          (tenant_id, scope, period, limit_micros, alert_percents, slices, updated_at) \
          VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (tenant_id, scope, period) \
          DO UPDATE SET limit_micros = EXCLUDED.limit_micros, \
          alert_percents = EXCLUDED.alert_percents, slices = EXCLUDED.slices, \
          updated_at = EXCLUDED.updated_at",
    types: &[TEXT, TEXT, TEXT, INT8, INT4_ARRAY, INT4],
};

static DROP_BUDGET: Stmt = Stmt {
    sql: "DELETE FROM spendguard.scope_budget WHERE tenant_id = $1 AND scope = $2 AND period = $3",
    types: &[TEXT, TEXT, TEXT],
};

static RESERVATION: Stmt = Stmt {
    sql: "SELECT scopes, at, expires_at, status, price_id \
          FROM spendguard.scope_reservation WHERE tenant_id = $1 AND hold_id = $2",
    types: &[TEXT, TEXT],
};

/// The reservation's status under its row lock; taken after its budgets
/// and holds (lock order: scope budgets, §1 budget rows and holds, the
/// reservation).
static LOCK_RESERVATION: Stmt = Stmt {
    sql: "SELECT status FROM spendguard.scope_reservation \
          WHERE tenant_id = $1 AND hold_id = $2 FOR UPDATE",
    types: &[TEXT, TEXT],
};

static NEW_RESERVATION: Stmt = Stmt {
    sql: "INSERT INTO spendguard.scope_reservation \
          (tenant_id, hold_id, scopes, at, estimate_micros, expires_at, model, price_id) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    types: &[
        TEXT,
        TEXT,
        TEXT_ARRAY,
        TIMESTAMPTZ,
        INT8,
        TIMESTAMPTZ,
        TEXT,
        INT8,
    ],
};

static CLOSE_RESERVATION: Stmt = Stmt {
    sql:
        "UPDATE spendguard.scope_reservation SET status = $3, cost_micros = $4, closed_at = now(), \
          input_tokens = $5, output_tokens = $6, cached_input_tokens = $7 \
          WHERE tenant_id = $1 AND hold_id = $2",
    types: &[TEXT, TEXT, TEXT, INT8, INT8, INT8, INT8],
};

static REQUEST: Stmt = Stmt {
    sql: "SELECT request_fingerprint, allowed, blocked_scope, blocked_period, remaining_micros, \
          hold_id, expires_at, headroom FROM spendguard.scope_request \
          WHERE tenant_id = $1 AND event_id = $2",
    types: &[TEXT, TEXT],
};

static NEW_REQUEST: Stmt = Stmt {
    sql: "INSERT INTO spendguard.scope_request (tenant_id, event_id, request_fingerprint, \
          allowed, blocked_scope, blocked_period, remaining_micros, hold_id, expires_at, headroom) \
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    types: &[
        TEXT,
        TEXT,
        TEXT,
        BOOL,
        TEXT,
        TEXT,
        INT8,
        TEXT,
        TIMESTAMPTZ,
        JSONB,
    ],
};

/// A budget as configured: (scope, period, limit, alert thresholds).
pub type BudgetRow = (String, ScopePeriod, i64, Vec<i32>);

/// A reservation as stored.
pub struct Reservation {
    pub scopes: Vec<String>,
    pub at: TimestampWithTimeZone,
    pub expires_at: TimestampWithTimeZone,
    pub status: ReservationStatus,
    /// the price row of a reservation of scope_reserve_tokens
    pub price_id: Option<i64>,
}

/// A scoped call's result as returned (and recorded under an event id).
#[derive(Clone, Debug)]
pub struct DecisionRow {
    pub allowed: bool,
    pub blocked_scope: Option<String>,
    pub blocked_period: Option<ScopePeriod>,
    pub remaining_micros: Option<i64>,
    pub hold_id: Option<String>,
    pub expires_at: Option<TimestampWithTimeZone>,
    pub headroom: String,
}

fn budget_rows(t: pgrx::spi::SpiTupleTable<'_>) -> Vec<BudgetRow> {
    t.map(|r| {
        let period: String = spi(r.get(2)).unwrap_or_default();
        (
            spi(r.get(1)).unwrap_or_default(),
            ScopePeriod::parse(&period).expect("its domain keeps periods valid"),
            spi(r.get(3)).unwrap_or_default(),
            spi::<Option<Vec<Option<i32>>>>(r.get(4))
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect(),
        )
    })
    .collect()
}

/// Scope storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    /// See LOCK_BUDGETS (`lock`) and READ_BUDGETS.
    pub fn scope_budgets(&mut self, scopes: &[String], lock: bool) -> Vec<BudgetRow> {
        let list: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let stmt = if lock { &LOCK_BUDGETS } else { &READ_BUDGETS };
        budget_rows(self.run(stmt, &[self.tenant.into(), list.into()]))
    }

    /// Every budget of the tenant, in decision order.
    pub fn all_scope_budgets(&mut self) -> Vec<BudgetRow> {
        budget_rows(self.run(&ALL_BUDGETS, &[self.tenant.into()]))
    }

    pub fn lock_scope_limit(&mut self, scope: &str, period: ScopePeriod) -> Option<i64> {
        let t = self.run(
            &LOCK_LIMIT,
            &[self.tenant.into(), scope.into(), period.as_str().into()],
        );
        (!t.is_empty()).then(|| spi(t.first().get::<i64>(1)).unwrap_or_default())
    }

    pub fn set_scope_budget(
        &mut self,
        scope: &str,
        period: ScopePeriod,
        limit: Option<(i64, Vec<i32>, i32)>,
    ) {
        match limit {
            Some((l, percents, slices)) => self.run(
                &SET_BUDGET,
                &[
                    self.tenant.into(),
                    scope.into(),
                    period.as_str().into(),
                    l.into(),
                    percents.into(),
                    slices.into(),
                ],
            ),
            None => self.run(
                &DROP_BUDGET,
                &[self.tenant.into(), scope.into(), period.as_str().into()],
            ),
        };
    }

    pub fn scope_reservation(&mut self, hold_id: &str) -> Option<Reservation> {
        let t = self.run(&RESERVATION, &[self.tenant.into(), hold_id.into()]);
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let status: String = spi(r.get(4)).unwrap_or_default();
        Some(Reservation {
            scopes: spi::<Option<Vec<Option<String>>>>(r.get(1))
                .unwrap_or_default()
                .into_iter()
                .flatten()
                .collect(),
            at: spi(r.get(2)).expect("at is NOT NULL"),
            expires_at: spi(r.get(3)).expect("expires_at is NOT NULL"),
            status: ReservationStatus::parse(&status).expect("its domain keeps statuses valid"),
            price_id: spi(r.get(5)),
        })
    }

    pub fn lock_scope_reservation(&mut self, hold_id: &str) -> Option<ReservationStatus> {
        let t = self.run(&LOCK_RESERVATION, &[self.tenant.into(), hold_id.into()]);
        if t.is_empty() {
            return None;
        }
        let status: String = spi(t.first().get(1)).unwrap_or_default();
        Some(ReservationStatus::parse(&status).expect("its domain keeps statuses valid"))
    }

    pub fn new_scope_reservation(
        &mut self,
        hold_id: &str,
        scopes: &[String],
        at: TimestampWithTimeZone,
        estimate: i64,
        expires_at: TimestampWithTimeZone,
        priced: Option<(&str, i64)>,
    ) {
        let list: Vec<&str> = scopes.iter().map(String::as_str).collect();
        self.run(
            &NEW_RESERVATION,
            &[
                self.tenant.into(),
                hold_id.into(),
                list.into(),
                at.into(),
                estimate.into(),
                expires_at.into(),
                priced.map(|p| p.0).into(),
                priced.map(|p| p.1).into(),
            ],
        );
    }

    pub fn close_scope_reservation(
        &mut self,
        hold_id: &str,
        status: ReservationStatus,
        cost: Option<i64>,
        tokens: Option<Tokens>,
    ) {
        self.run(
            &CLOSE_RESERVATION,
            &[
                self.tenant.into(),
                hold_id.into(),
                status.as_str().into(),
                cost.into(),
                tokens.map(|t| t.input).into(),
                tokens.map(|t| t.output).into(),
                tokens.map(|t| t.cached_input).into(),
            ],
        );
    }

    /// The recorded result of an event id: (fingerprint, result).
    pub fn scope_request(&mut self, event_id: &str) -> Option<(String, DecisionRow)> {
        let t = self.run(&REQUEST, &[self.tenant.into(), event_id.into()]);
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let period: Option<String> = spi(r.get(4));
        let headroom: Option<JsonbText> = spi(r.get(8));
        Some((
            spi(r.get(1)).unwrap_or_default(),
            DecisionRow {
                allowed: spi(r.get(2)).unwrap_or_default(),
                blocked_scope: spi(r.get(3)),
                blocked_period: period
                    .map(|p| ScopePeriod::parse(&p).expect("its domain keeps periods valid")),
                remaining_micros: spi(r.get(5)),
                hold_id: spi(r.get(6)),
                expires_at: spi(r.get(7)),
                headroom: headroom.map(|j| j.0).unwrap_or_default(),
            },
        ))
    }

    pub fn new_scope_request(&mut self, event_id: &str, fingerprint: &str, d: &DecisionRow) {
        self.run(
            &NEW_REQUEST,
            &[
                self.tenant.into(),
                event_id.into(),
                fingerprint.into(),
                d.allowed.into(),
                d.blocked_scope.as_deref().into(),
                d.blocked_period.map(|p| p.as_str()).into(),
                d.remaining_micros.into(),
                d.hold_id.as_deref().into(),
                d.expires_at.into(),
                JsonbText(d.headroom.clone()).into(),
            ],
        );
    }
}
