//! Alerts of scoped budgets (SPEC.md §7): written once, in the transaction
//! of the call that crossed a line (`write`, called by the scoped calls),
//! with a NOTIFY on commit as a wake-up. Delivery (claim, ack, the
//! readers) is SQL over the table: sql/alert.sql. The rules of what to
//! write are in spendguard_core::alert.

pub mod store;

use crate::spi::Db;
use spendguard_core::alert::NewAlert;

/// Writes the alerts (each once: the table's unique key drops one written
/// before) and, when one is new and `spendguard.alert_notify` is on, sends
/// `NOTIFY spendguard_alerts` with the tenant as payload at commit.
/// Returns how many were new.
pub fn write(db: &mut Db<'_, '_>, alerts: &[NewAlert]) -> i64 {
    if alerts.is_empty() {
        return 0;
    }
    let n = db.new_alerts(alerts);
    if n > 0 && crate::tenant::ALERT_NOTIFY.get() {
        db.notify_alerts();
    }
    n
}

/// The thresholds of a budget that fired as `threshold` alerts in the
/// period starting on `period_start` under a limit other than `limit`.
pub fn fired_under_other_limits(
    db: &mut Db<'_, '_>,
    scope: &str,
    period: spendguard_core::scope::ScopePeriod,
    period_start: i64,
    limit: i64,
) -> Vec<i32> {
    db.fired_thresholds(scope, period, period_start, limit)
}
