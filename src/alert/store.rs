//! The SQL of alerts: every write of spendguard.alert, as cached prepared
//! statements. No rules here.

use crate::spi::{spi, Db, Stmt, DATE, INT8, TEXT};
use pgrx::pg_sys::{PgBuiltInOids as T, PgOid};
use spendguard_core::alert::NewAlert;
use spendguard_core::scope::ScopePeriod;

const TEXT_ARRAY: PgOid = PgOid::BuiltIn(T::TEXTARRAYOID);
const INT4_ARRAY: PgOid = PgOid::BuiltIn(T::INT4ARRAYOID);
const INT8_ARRAY: PgOid = PgOid::BuiltIn(T::INT8ARRAYOID);
const DATE_ARRAY: PgOid = PgOid::BuiltIn(T::DATEARRAYOID);

/// New alerts, one per element of the arrays; a second alert of a key
/// (alert_once) is dropped. Returns how many were written: counted in the
/// statement, not as RETURNING rows, since on Citus (SPEC §10) an INSERT
/// whose ON CONFLICT drops rows reports more rows processed than it
/// returns, and SPI refuses that (XX000).
static NEW_ALERTS: Stmt = Stmt {
    sql: "WITH w AS (INSERT INTO spendguard.alert (tenant_id, scope, period, period_start, kind, percent, \
          limit_micros, spent_micros) \
          SELECT $1, a.scope, a.period, a.period_start, a.kind, a.percent, a.limit_micros, a.spent \
          FROM unnest($2::text[], $3::text[], $4::date[], $5::text[], $6::int4[], $7::int8[], $8::int8[]) \
            a(scope, period, period_start, kind, percent, limit_micros, spent) \
          ON CONFLICT DO NOTHING RETURNING 1) SELECT count(*) FROM w",
    types: &[
        TEXT, TEXT_ARRAY, TEXT_ARRAY, DATE_ARRAY, TEXT_ARRAY, INT4_ARRAY, INT8_ARRAY, INT8_ARRAY,
    ],
};

static NOTIFY: Stmt = Stmt {
    sql: "SELECT pg_notify('spendguard_alerts', $1)",
    types: &[TEXT],
};

static FIRED: Stmt = Stmt {
    sql: "SELECT DISTINCT percent FROM spendguard.alert \
          WHERE tenant_id = $1 AND scope = $2 AND period = $3 AND period_start = $4 \
            AND kind = 'threshold' AND limit_micros <> $5 ORDER BY 1",
    types: &[TEXT, TEXT, TEXT, DATE, INT8],
};

/// Alert storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    pub fn new_alerts(&mut self, alerts: &[NewAlert]) -> i64 {
        let scopes: Vec<&str> = alerts.iter().map(|a| a.scope.as_str()).collect();
        let periods: Vec<&str> = alerts.iter().map(|a| a.period.as_str()).collect();
        let starts: Vec<pgrx::datum::Date> = alerts
            .iter()
            .map(|a| crate::spend::store::date(a.period_start))
            .collect();
        let kinds: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
        let percents: Vec<Option<i32>> = alerts.iter().map(|a| a.percent).collect();
        let limits: Vec<i64> = alerts.iter().map(|a| a.limit).collect();
        let spent: Vec<i64> = alerts.iter().map(|a| a.spent).collect();
        let t = self.run(
            &NEW_ALERTS,
            &[
                self.tenant.into(),
                scopes.into(),
                periods.into(),
                starts.into(),
                kinds.into(),
                percents.into(),
                limits.into(),
                spent.into(),
            ],
        );
        spi(t.first().get::<i64>(1)).unwrap_or(0)
    }

    pub fn notify_alerts(&mut self) {
        self.run(&NOTIFY, &[self.tenant.into()]);
    }

    pub fn fired_thresholds(
        &mut self,
        scope: &str,
        period: ScopePeriod,
        period_start: i64,
        limit: i64,
    ) -> Vec<i32> {
        let t = self.run(
            &FIRED,
            &[
                self.tenant.into(),
                scope.into(),
                period.as_str().into(),
                crate::spend::store::date(period_start).into(),
                limit.into(),
            ],
        );
        t.filter_map(|r| spi(r.get::<i32>(1))).collect()
    }
}
