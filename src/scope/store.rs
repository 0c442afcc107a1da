//! The SQL of scoped budgets: every read and write of scope_budget,
//! scope_reservation and scope_request, as cached prepared statements. No
//! rules here. The spend and holds of scopes are §1 budgets and holds,
//! reached only through crate::budget::holds.

use crate::jsonb::JsonbText;
use crate::spi::{spi, versioned, Db, Stmt, Versioned, BOOL, INT4, INT8, JSONB, TEXT, TIMESTAMPTZ};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::{PgBuiltInOids as T, PgOid};
use spendguard_core::price::Tokens;
use spendguard_core::scope::ScopePeriod;
use spendguard_core::spend::ReservationStatus;

const TEXT_ARRAY: PgOid = PgOid::BuiltIn(T::TEXTARRAYOID);
const INT4_ARRAY: PgOid = PgOid::BuiltIn(T::INT4ARRAYOID);
const INT8_ARRAY: PgOid = PgOid::BuiltIn(T::INT8ARRAYOID);

/// The budgets of the scopes $2, locked in the one canonical order (scope
/// bytes, then day < week < month < total): LockRows sits above the Sort,
/// so rows are locked in the order they are returned. Calls that share
/// scopes, listed in any order, lock them in this order and never deadlock.
///
/// A sliced scope's budget rows are not locked (its slices are, after
/// these): it comes back once, unlocked, as (scope, NULL, NULL, NULL,
/// true). Which scopes are sliced is read first (`c`, materialized): a row
/// that scope_set_budget slices while this call waits for its lock is
/// still returned, locked, with `sliced` now true (a recheck of the locked
/// row does not re-read `c`), so the call sees it and takes a slice too.
static LOCK_BUDGETS: Versioned = Versioned {
    current: Stmt {
        sql: "WITH c AS MATERIALIZED (SELECT scope, period, sliced FROM spendguard.scope_budget \
              WHERE tenant_id = $1 AND scope = ANY ($2)), \
              l AS (SELECT b.scope, b.period::text AS period, b.limit_micros, b.alert_percents, b.sliced \
              FROM c JOIN spendguard.scope_budget b \
              ON b.tenant_id = $1 AND b.scope = c.scope AND b.period = c.period \
              WHERE NOT c.sliced AND b.scope = ANY ($2) \
              ORDER BY b.scope, array_position('{day,week,month,total}'::text[], b.period::text) \
              FOR UPDATE OF b) \
              SELECT scope, period, limit_micros, alert_percents, sliced FROM l \
              UNION ALL \
              SELECT DISTINCT scope, NULL::text, NULL::bigint, NULL::integer[], true FROM c WHERE sliced",
        types: &[TEXT, TEXT_ARRAY],
    },
    legacy: Stmt {
        sql: "SELECT scope, period, limit_micros, alert_percents, false FROM spendguard.scope_budget \
              WHERE tenant_id = $1 AND scope = ANY ($2) \
              ORDER BY scope, array_position('{day,week,month,total}'::text[], period::text) \
              FOR UPDATE",
        types: &[TEXT, TEXT_ARRAY],
    },
    has: crate::spi::sliceable,
};

/// How many slice families a scope's spend is kept in (1 unless sliced),
/// as the fifth column of the readers below.
macro_rules! families {
    (current) => {
        "coalesce((SELECT max(s.slice) + 1 FROM spendguard.scope_slice s \
         WHERE s.tenant_id = b.tenant_id AND s.scope = b.scope), 1)"
    };
    (legacy) => {
        "1"
    };
}

macro_rules! read_budgets {
    ($v:ident) => {
        concat!(
            "SELECT scope, period, limit_micros, alert_percents, ",
            families!($v),
            " FROM spendguard.scope_budget b WHERE tenant_id = $1 AND scope = ANY ($2) \
             ORDER BY scope, array_position('{day,week,month,total}'::text[], period::text)"
        )
    };
}

/// The budgets of the scopes $2 without a lock (the readers, and a sliced
/// scope's once its slices are locked), in the same order.
static READ_BUDGETS: Versioned =
    versioned!(read_budgets, &[TEXT, TEXT_ARRAY], crate::spi::sliceable);

macro_rules! all_budgets {
    ($v:ident) => {
        concat!(
            "SELECT scope, period, limit_micros, alert_percents, ",
            families!($v),
            " FROM spendguard.scope_budget b WHERE tenant_id = $1 \
             ORDER BY scope, array_position('{day,week,month,total}'::text[], period::text)"
        )
    };
}

/// Every budget of the tenant, in the same order.
static ALL_BUDGETS: Versioned = versioned!(all_budgets, &[TEXT], crate::spi::sliceable);

/// Every budget of one scope, locked in period order (scope_set_budget:
/// the budgets of a scope change together when it is sliced).
static LOCK_SCOPE: Stmt = Stmt {
    sql: "SELECT period, limit_micros, slices FROM spendguard.scope_budget \
          WHERE tenant_id = $1 AND scope = $2 \
          ORDER BY array_position('{day,week,month,total}'::text[], period::text) FOR UPDATE",
    types: &[TEXT, TEXT],
};

static MARK_SLICED: Stmt = Stmt {
    sql: "UPDATE spendguard.scope_budget SET sliced = true \
          WHERE tenant_id = $1 AND scope = $2 AND NOT sliced",
    types: &[TEXT, TEXT],
};

/// A free slice among the first `slices` of a scope, tried from slice $3
/// mod slices on (a backend's own, by its process id), never waiting for a
/// busy one.
static TAKE_SLICE: Stmt = Stmt {
    sql:
        "SELECT slice, families, slices, limits, starts, quotas, lines FROM spendguard.scope_slice \
          WHERE tenant_id = $1 AND scope = $2 AND slice < slices \
          ORDER BY (slice - $3 % slices + 64) % 64 LIMIT 1 FOR UPDATE SKIP LOCKED",
    types: &[TEXT, TEXT, INT4],
};

/// TAKE_SLICE when every slice was busy: waits for the first in that order.
static WAIT_SLICE: Stmt = Stmt {
    sql:
        "SELECT slice, families, slices, limits, starts, quotas, lines FROM spendguard.scope_slice \
          WHERE tenant_id = $1 AND scope = $2 AND slice < slices \
          ORDER BY (slice - $3 % slices + 64) % 64 LIMIT 1 FOR UPDATE",
    types: &[TEXT, TEXT, INT4],
};

/// One given slice (the one a reservation's hold is on), waiting for it.
static LOCK_SLICE: Stmt = Stmt {
    sql:
        "SELECT slice, families, slices, limits, starts, quotas, lines FROM spendguard.scope_slice \
          WHERE tenant_id = $1 AND scope = $2 AND slice = $3 FOR UPDATE",
    types: &[TEXT, TEXT, INT4],
};

/// Every slice of a scope, in slice order (a decision on the whole budget,
/// a change of its budgets).
static LOCK_SLICES: Stmt = Stmt {
    sql:
        "SELECT slice, families, slices, limits, starts, quotas, lines FROM spendguard.scope_slice \
          WHERE tenant_id = $1 AND scope = $2 ORDER BY slice FOR UPDATE",
    types: &[TEXT, TEXT],
};

/// New slice rows $3..$4-1, without a split.
static NEW_SLICES: Stmt = Stmt {
    sql: "INSERT INTO spendguard.scope_slice (tenant_id, scope, slice, families, slices) \
          SELECT $1, $2, g, $4, $5 FROM generate_series($3, $4 - 1) g",
    types: &[TEXT, TEXT, INT4, INT4, INT4],
};

/// A change of the scope's budgets: the split is no longer valid.
static RESET_SLICES: Stmt = Stmt {
    sql: "UPDATE spendguard.scope_slice SET families = $3, slices = $4, \
          limits = NULL, starts = NULL, quotas = NULL, lines = NULL \
          WHERE tenant_id = $1 AND scope = $2",
    types: &[TEXT, TEXT, INT4, INT4],
};

/// A new split: limits and period starts for every slice, and each slice's
/// four quotas and lines from flat arrays (slice k at k*4+1..k*4+4; four
/// subscripts, not an array slice, which Citus 13's deparser of a
/// single-shard UPDATE crashes on).
static SPLIT_SLICES: Stmt = Stmt {
    sql: "UPDATE spendguard.scope_slice SET limits = $3, starts = $4, \
          quotas = ARRAY[$5[slice * 4 + 1], $5[slice * 4 + 2], $5[slice * 4 + 3], $5[slice * 4 + 4]], \
          lines = ARRAY[$6[slice * 4 + 1], $6[slice * 4 + 2], $6[slice * 4 + 3], $6[slice * 4 + 4]] \
          WHERE tenant_id = $1 AND scope = $2",
    types: &[TEXT, TEXT, INT8_ARRAY, INT4_ARRAY, INT8_ARRAY, INT8_ARRAY],
};

/// How many slice families a scope has (0 when not sliced).
static FAMILIES: Stmt = Stmt {
    sql: "SELECT count(*) FROM spendguard.scope_slice WHERE tenant_id = $1 AND scope = $2",
    types: &[TEXT, TEXT],
};

static SET_BUDGET: Versioned = Versioned {
    current: Stmt {
        sql: "INSERT INTO spendguard.scope_budget \
              (tenant_id, scope, period, limit_micros, alert_percents, slices, updated_at, sliced) \
              VALUES ($1, $2, $3, $4, $5, $6, now(), $7) ON CONFLICT (tenant_id, scope, period) \
              DO UPDATE SET limit_micros = EXCLUDED.limit_micros, \
              alert_percents = EXCLUDED.alert_percents, slices = EXCLUDED.slices, \
              updated_at = EXCLUDED.updated_at, sliced = EXCLUDED.sliced",
        types: &[TEXT, TEXT, TEXT, INT8, INT4_ARRAY, INT4, BOOL],
    },
    legacy: Stmt {
        sql: "INSERT INTO spendguard.scope_budget \
              (tenant_id, scope, period, limit_micros, alert_percents, slices, updated_at) \
              VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (tenant_id, scope, period) \
              DO UPDATE SET limit_micros = EXCLUDED.limit_micros, \
              alert_percents = EXCLUDED.alert_percents, slices = EXCLUDED.slices, \
              updated_at = EXCLUDED.updated_at",
        types: &[TEXT, TEXT, TEXT, INT8, INT4_ARRAY, INT4, BOOL],
    },
    has: crate::spi::sliceable,
};

static DROP_BUDGET: Stmt = Stmt {
    sql: "DELETE FROM spendguard.scope_budget WHERE tenant_id = $1 AND scope = $2 AND period = $3",
    types: &[TEXT, TEXT, TEXT],
};

macro_rules! reservation {
    (current) => {
        "SELECT scopes, at, expires_at, status, price_id, estimate_micros, scope_slices \
         FROM spendguard.scope_reservation WHERE tenant_id = $1 AND hold_id = $2"
    };
    (legacy) => {
        "SELECT scopes, at, expires_at, status, price_id, estimate_micros, NULL::integer[] \
         FROM spendguard.scope_reservation WHERE tenant_id = $1 AND hold_id = $2"
    };
}

static RESERVATION: Versioned = versioned!(reservation, &[TEXT, TEXT], crate::spi::sliceable);

/// The reservation's status under its row lock; taken after its budgets
/// and holds (lock order: scope budgets, §1 budget rows and holds, the
/// reservation).
static LOCK_RESERVATION: Stmt = Stmt {
    sql: "SELECT status FROM spendguard.scope_reservation \
          WHERE tenant_id = $1 AND hold_id = $2 FOR UPDATE",
    types: &[TEXT, TEXT],
};

macro_rules! new_reservation {
    (current) => {
        "INSERT INTO spendguard.scope_reservation \
         (tenant_id, hold_id, scopes, at, estimate_micros, expires_at, model, price_id, scope_slices) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    };
    // a legacy schema has no slices: $9 is always NULL
    (legacy) => {
        "INSERT INTO spendguard.scope_reservation \
         (tenant_id, hold_id, scopes, at, estimate_micros, expires_at, model, price_id) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE $9::integer[] IS NULL"
    };
}

static NEW_RESERVATION: Versioned = versioned!(
    new_reservation,
    &[
        TEXT,
        TEXT,
        TEXT_ARRAY,
        TIMESTAMPTZ,
        INT8,
        TIMESTAMPTZ,
        TEXT,
        INT8,
        INT4_ARRAY
    ],
    crate::spi::sliceable
);

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

/// A budget as configured, with the number of slice families its scope's
/// spend is kept in (1 unless the scope is sliced).
#[derive(Clone, Debug)]
pub struct BudgetRow {
    pub scope: String,
    pub period: ScopePeriod,
    pub limit: i64,
    pub alert_percents: Vec<i32>,
    pub families: i32,
}

/// A reservation as stored.
pub struct Reservation {
    pub scopes: Vec<String>,
    pub at: TimestampWithTimeZone,
    pub expires_at: TimestampWithTimeZone,
    pub status: ReservationStatus,
    /// the price row of a reservation of scope_reserve_tokens
    pub price_id: Option<i64>,
    pub estimate: i64,
    /// the slice each scope's hold is on, in the order of `scopes`
    pub slices: Vec<i32>,
}

/// A reservation to write: its scopes, `at`, estimate and expiry, the
/// model and price row of a reservation priced by tokens, and the slice
/// each scope's hold is on (None: none is sliced).
pub struct NewReservation<'a> {
    pub hold_id: &'a str,
    pub scopes: &'a [String],
    pub at: TimestampWithTimeZone,
    pub estimate: i64,
    pub expires_at: TimestampWithTimeZone,
    pub priced: Option<(&'a str, i64)>,
    pub slices: Option<Vec<i32>>,
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

/// One escrow slice row (see sql/scope.sql): its split, per period rank,
/// empty when it has none.
#[derive(Clone, Debug)]
pub struct SliceRow {
    pub slice: i32,
    pub families: i32,
    pub slices: i32,
    pub limits: Vec<Option<i64>>,
    pub starts: Vec<Option<i32>>,
    pub quotas: Vec<Option<i64>>,
    pub lines: Vec<Option<i64>>,
}

fn period_of(r: &pgrx::spi::SpiHeapTupleData<'_>, i: usize) -> ScopePeriod {
    let period: String = spi(r.get(i)).unwrap_or_default();
    ScopePeriod::parse(&period).expect("its domain keeps periods valid")
}

fn percents_of(r: &pgrx::spi::SpiHeapTupleData<'_>, i: usize) -> Vec<i32> {
    spi::<Option<Vec<Option<i32>>>>(r.get(i))
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

fn budget_rows(t: pgrx::spi::SpiTupleTable<'_>) -> Vec<BudgetRow> {
    t.map(|r| BudgetRow {
        scope: spi(r.get(1)).unwrap_or_default(),
        period: period_of(&r, 2),
        limit: spi(r.get(3)).unwrap_or_default(),
        alert_percents: percents_of(&r, 4),
        families: spi(r.get(5)).unwrap_or(1),
    })
    .collect()
}

fn slice_rows(t: pgrx::spi::SpiTupleTable<'_>) -> Vec<SliceRow> {
    t.map(|r| SliceRow {
        slice: spi(r.get(1)).unwrap_or_default(),
        families: spi(r.get(2)).unwrap_or(1),
        slices: spi(r.get(3)).unwrap_or(1),
        limits: spi::<Option<Vec<Option<i64>>>>(r.get(4)).unwrap_or_default(),
        starts: spi::<Option<Vec<Option<i32>>>>(r.get(5)).unwrap_or_default(),
        quotas: spi::<Option<Vec<Option<i64>>>>(r.get(6)).unwrap_or_default(),
        lines: spi::<Option<Vec<Option<i64>>>>(r.get(7)).unwrap_or_default(),
    })
    .collect()
}

/// Scope storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    /// See LOCK_BUDGETS: the unsliced scopes' budgets, locked, and the
    /// scopes that are sliced (bytes order), whose budgets are read once
    /// their slices are locked.
    pub fn lock_scope_budgets(&mut self, scopes: &[String]) -> (Vec<BudgetRow>, Vec<String>) {
        let list: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let t = self.run_generic(LOCK_BUDGETS.pick(), &[self.tenant.into(), list.into()]);
        let mut rows = Vec::new();
        let mut sliced: Vec<String> = Vec::new();
        for r in t {
            let scope: String = spi(r.get(1)).unwrap_or_default();
            if spi::<Option<bool>>(r.get(5)).unwrap_or_default() {
                sliced.push(scope);
                continue;
            }
            rows.push(BudgetRow {
                scope,
                period: period_of(&r, 2),
                limit: spi(r.get(3)).unwrap_or_default(),
                alert_percents: percents_of(&r, 4),
                families: 1,
            });
        }
        sliced.sort_unstable();
        sliced.dedup();
        // a scope sliced while this call waited: its rows are locked too,
        // and it is decided on its slices like the others
        rows.retain(|b| sliced.binary_search(&b.scope).is_err());
        (rows, sliced)
    }

    /// See READ_BUDGETS.
    pub fn scope_budgets(&mut self, scopes: &[String]) -> Vec<BudgetRow> {
        let list: Vec<&str> = scopes.iter().map(String::as_str).collect();
        budget_rows(self.run(READ_BUDGETS.pick(), &[self.tenant.into(), list.into()]))
    }

    /// Every budget of the tenant, in decision order.
    pub fn all_scope_budgets(&mut self) -> Vec<BudgetRow> {
        budget_rows(self.run(ALL_BUDGETS.pick(), &[self.tenant.into()]))
    }

    /// Every budget of one scope, locked: (period, limit, slices).
    pub fn lock_scope(&mut self, scope: &str) -> Vec<(ScopePeriod, i64, i32)> {
        self.run(&LOCK_SCOPE, &[self.tenant.into(), scope.into()])
            .map(|r| {
                (
                    period_of(&r, 1),
                    spi(r.get(2)).unwrap_or_default(),
                    spi(r.get(3)).unwrap_or(1),
                )
            })
            .collect()
    }

    pub fn mark_scope_sliced(&mut self, scope: &str) {
        self.run(&MARK_SLICED, &[self.tenant.into(), scope.into()]);
    }

    /// See TAKE_SLICE (`wait`: WAIT_SLICE).
    pub fn take_slice(&mut self, scope: &str, from: i32, wait: bool) -> Option<SliceRow> {
        let stmt = if wait { &WAIT_SLICE } else { &TAKE_SLICE };
        slice_rows(self.run(stmt, &[self.tenant.into(), scope.into(), from.into()])).pop()
    }

    pub fn lock_slice(&mut self, scope: &str, slice: i32) -> Option<SliceRow> {
        slice_rows(self.run(
            &LOCK_SLICE,
            &[self.tenant.into(), scope.into(), slice.into()],
        ))
        .pop()
    }

    pub fn lock_slices(&mut self, scope: &str) -> Vec<SliceRow> {
        slice_rows(self.run(&LOCK_SLICES, &[self.tenant.into(), scope.into()]))
    }

    pub fn new_slices(&mut self, scope: &str, from: i32, families: i32, slices: i32) {
        self.run(
            &NEW_SLICES,
            &[
                self.tenant.into(),
                scope.into(),
                from.into(),
                families.into(),
                slices.into(),
            ],
        );
    }

    pub fn reset_slices(&mut self, scope: &str, families: i32, slices: i32) {
        self.run(
            &RESET_SLICES,
            &[
                self.tenant.into(),
                scope.into(),
                families.into(),
                slices.into(),
            ],
        );
    }

    /// See SPLIT_SLICES: `quotas` and `lines` have four entries a slice.
    pub fn split_slices(
        &mut self,
        scope: &str,
        limits: Vec<Option<i64>>,
        starts: Vec<Option<i32>>,
        quotas: Vec<Option<i64>>,
        lines: Vec<Option<i64>>,
    ) {
        self.run(
            &SPLIT_SLICES,
            &[
                self.tenant.into(),
                scope.into(),
                limits.into(),
                starts.into(),
                quotas.into(),
                lines.into(),
            ],
        );
    }

    /// How many slice families `scope` has: 1 unless it is sliced.
    pub fn scope_families(&mut self, scope: &str) -> i32 {
        if !crate::spi::sliceable() {
            return 1;
        }
        let n = self.one_i64(&FAMILIES, &[self.tenant.into(), scope.into()]);
        i32::try_from(n).unwrap_or(1).max(1)
    }

    pub fn set_scope_budget(
        &mut self,
        scope: &str,
        period: ScopePeriod,
        limit: Option<(i64, Vec<i32>, i32, bool)>,
    ) {
        match limit {
            Some((l, percents, slices, sliced)) => self.run(
                SET_BUDGET.pick(),
                &[
                    self.tenant.into(),
                    scope.into(),
                    period.as_str().into(),
                    l.into(),
                    percents.into(),
                    slices.into(),
                    sliced.into(),
                ],
            ),
            None => self.run(
                &DROP_BUDGET,
                &[self.tenant.into(), scope.into(), period.as_str().into()],
            ),
        };
    }

    pub fn scope_reservation(&mut self, hold_id: &str) -> Option<Reservation> {
        let t = self.run(RESERVATION.pick(), &[self.tenant.into(), hold_id.into()]);
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let status: String = spi(r.get(4)).unwrap_or_default();
        let scopes: Vec<String> = spi::<Option<Vec<Option<String>>>>(r.get(1))
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect();
        let slices: Vec<i32> = match spi::<Option<Vec<Option<i32>>>>(r.get(7)) {
            Some(v) => v.into_iter().map(Option::unwrap_or_default).collect(),
            None => vec![0; scopes.len()],
        };
        Some(Reservation {
            scopes,
            estimate: spi(r.get(6)).unwrap_or_default(),
            slices,
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

    pub fn new_scope_reservation(&mut self, r: NewReservation<'_>) {
        let list: Vec<&str> = r.scopes.iter().map(String::as_str).collect();
        self.run(
            NEW_RESERVATION.pick(),
            &[
                self.tenant.into(),
                r.hold_id.into(),
                list.into(),
                r.at.into(),
                r.estimate.into(),
                r.expires_at.into(),
                r.priced.map(|p| p.0).into(),
                r.priced.map(|p| p.1).into(),
                r.slices.into(),
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
