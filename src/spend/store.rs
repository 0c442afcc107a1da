//! The SQL of daily spend and period budgets: every read and write of
//! daily_spend, spend_budget, spend_user_override and spend_reservation, as
//! cached prepared statements. No rules here. Reservations' holds go
//! through the budget store (super::super::budget::store).

use crate::spi::{spi, versioned, Db, Stmt, Versioned, DATE, INT8, TEXT};
use pgrx::datum::Date;
use spendguard_core::spend::{Period, ReservationStatus};

// The rows of a user and group are found by their key: in this release's
// schema the digest of the two ids (index daily_spend_key,
// spend_user_override_key; the ids are compared too), in the previous
// release's the ids themselves (its primary keys). Each statement that
// finds them comes in both forms (crate::spi::Versioned): the library
// serves a database at the previous version until ALTER EXTENSION UPDATE.
macro_rules! user_rows {
    (current, $a:literal) => {
        concat!(
            $a,
            "tenant_id = $1 AND spendguard.id_key(",
            $a,
            "user_id, ",
            $a,
            "group_id) = spendguard.id_key($2, $3) AND ",
            $a,
            "user_id = $2 AND ",
            $a,
            "group_id = $3"
        )
    };
    (legacy, $a:literal) => {
        concat!(
            $a,
            "tenant_id = $1 AND ",
            $a,
            "user_id = $2 AND ",
            $a,
            "group_id = $3"
        )
    };
}

/// The conflict target of a user and group's row (of a day, for daily_spend).
macro_rules! user_key {
    (current) => {
        "tenant_id, spendguard.id_key(user_id, group_id)"
    };
    (legacy) => {
        "tenant_id, user_id, group_id"
    };
}

macro_rules! upsert_daily {
    ($v:ident) => {
        concat!(
            "INSERT INTO spendguard.daily_spend AS d (tenant_id, user_id, group_id, day, \
             spend_micros) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (",
            user_key!($v),
            ", day) DO UPDATE SET spend_micros = d.spend_micros + EXCLUDED.spend_micros \
             RETURNING d.spend_micros"
        )
    };
}
static UPSERT_DAILY: Versioned = versioned!(upsert_daily, &[TEXT, TEXT, TEXT, DATE, INT8]);

/// A user's spend in a group over days [$4, $5) (a range scan of its key).
macro_rules! spent {
    ($v:ident) => {
        concat!(
            "SELECT coalesce(sum(spend_micros), 0)::bigint FROM spendguard.daily_spend WHERE ",
            user_rows!($v, ""),
            " AND day >= $4 AND day < $5"
        )
    };
}
static SPENT: Versioned = versioned!(spent, &[TEXT, TEXT, TEXT, DATE, DATE]);

/// A group's spend from day $3 on (index daily_spend_group).
static GROUP_SPENT: Stmt = Stmt {
    sql: "SELECT coalesce(sum(spend_micros), 0)::bigint FROM spendguard.daily_spend \
          WHERE tenant_id = $1 AND group_id = $2 AND day >= $3",
    types: &[TEXT, TEXT, DATE],
};

/// The group budget (limit, period) and the user's override.
macro_rules! limits {
    ($v:ident) => {
        concat!(
            "SELECT b.limit_micros, b.period, \
             (SELECT o.limit_micros FROM spendguard.spend_user_override o WHERE ",
            user_rows!($v, "o."),
            ") FROM (SELECT 1) one LEFT JOIN spendguard.spend_budget b \
             ON b.tenant_id = $1 AND b.group_id = $3"
        )
    };
}
static LIMITS: Versioned = versioned!(limits, &[TEXT, TEXT, TEXT]);

static SET_BUDGET: Stmt = Stmt {
    sql: "INSERT INTO spendguard.spend_budget (tenant_id, group_id, limit_micros, period, \
          updated_at) VALUES ($1, $2, $3, $4, now()) ON CONFLICT (tenant_id, group_id) \
          DO UPDATE SET limit_micros = EXCLUDED.limit_micros, period = EXCLUDED.period, \
          updated_at = EXCLUDED.updated_at",
    types: &[TEXT, TEXT, INT8, TEXT],
};

static DROP_BUDGET: Stmt = Stmt {
    sql: "DELETE FROM spendguard.spend_budget WHERE tenant_id = $1 AND group_id = $2",
    types: &[TEXT, TEXT],
};

macro_rules! set_override {
    ($v:ident) => {
        concat!(
            "INSERT INTO spendguard.spend_user_override (tenant_id, user_id, group_id, \
             limit_micros, updated_at) VALUES ($1, $2, $3, $4, now()) ON CONFLICT (",
            user_key!($v),
            ") DO UPDATE SET limit_micros = EXCLUDED.limit_micros, \
             updated_at = EXCLUDED.updated_at"
        )
    };
}
static SET_OVERRIDE: Versioned = versioned!(set_override, &[TEXT, TEXT, TEXT, INT8]);

macro_rules! drop_override {
    ($v:ident) => {
        concat!(
            "DELETE FROM spendguard.spend_user_override WHERE ",
            user_rows!($v, "")
        )
    };
}
static DROP_OVERRIDE: Versioned = versioned!(drop_override, &[TEXT, TEXT, TEXT]);

static NEW_RESERVATION: Stmt = Stmt {
    sql: "INSERT INTO spendguard.spend_reservation \
          (tenant_id, hold_id, user_id, group_id, day, estimate_micros) \
          VALUES ($1, $2, $3, $4, $5, $6)",
    types: &[TEXT, TEXT, TEXT, TEXT, DATE, INT8],
};

/// A reservation, locked; taken after its hold and budget (lock order:
/// budget row, hold, reservation).
static LOCK_RESERVATION: Stmt = Stmt {
    sql: "SELECT user_id, group_id, day, status FROM spendguard.spend_reservation \
          WHERE tenant_id = $1 AND hold_id = $2 FOR UPDATE",
    types: &[TEXT, TEXT],
};

/// A settle's two writes in one statement: the reservation closed with its
/// cost, and the cost added to the user's row of the reservation's day
/// ($3 user, $4 group, $5 day, $6 cost); returns the day's total.
macro_rules! settle_reservation {
    ($v:ident) => {
        concat!(
            "WITH c AS (UPDATE spendguard.spend_reservation \
             SET status = 'settled', cost_micros = $6, closed_at = now() \
             WHERE tenant_id = $1 AND hold_id = $2 RETURNING 1) \
             INSERT INTO spendguard.daily_spend AS d (tenant_id, user_id, group_id, day, \
             spend_micros) SELECT $1, $3, $4, $5, $6 FROM c ON CONFLICT (",
            user_key!($v),
            ", day) DO UPDATE SET spend_micros = d.spend_micros + EXCLUDED.spend_micros \
             RETURNING d.spend_micros"
        )
    };
}
static SETTLE_RESERVATION: Versioned =
    versioned!(settle_reservation, &[TEXT, TEXT, TEXT, TEXT, DATE, INT8]);

static CLOSE_RESERVATION: Stmt = Stmt {
    sql:
        "UPDATE spendguard.spend_reservation SET status = $3, cost_micros = $4, closed_at = now() \
          WHERE tenant_id = $1 AND hold_id = $2",
    types: &[TEXT, TEXT, TEXT, INT8],
};

static PURGE: Stmt = Stmt {
    sql: "WITH d AS (DELETE FROM spendguard.daily_spend WHERE tenant_id = $1 AND day < $2 \
          RETURNING 1) SELECT count(*) FROM d",
    types: &[TEXT, DATE],
};

pub fn date(day: i64) -> Date {
    // SAFETY: any i32 day number is a date; out-of-range ones are rejected
    // by the caller's arithmetic on real timestamps first.
    unsafe {
        Date::from_pg_epoch_days(i32::try_from(day).expect("a date within PostgreSQL's range"))
    }
}

/// A reservation as stored.
pub struct Reservation {
    pub user_id: String,
    pub group_id: String,
    pub day: i64,
    pub status: ReservationStatus,
}

/// Spend storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    /// Adds `cost` to the user's row of `day`; the row's total after.
    pub fn upsert_daily(&mut self, user: &str, group: &str, day: i64, cost: i64) -> i64 {
        let t = self.tenant;
        self.one_i64(
            UPSERT_DAILY.pick(),
            &[
                t.into(),
                user.into(),
                group.into(),
                date(day).into(),
                cost.into(),
            ],
        )
    }

    pub fn spent(&mut self, user: &str, group: &str, from: i64, to: i64) -> i64 {
        let t = self.tenant;
        self.one_i64(
            SPENT.pick(),
            &[
                t.into(),
                user.into(),
                group.into(),
                date(from).into(),
                date(to).into(),
            ],
        )
    }

    /// Closes a reservation as settled with `cost` and adds the cost to the
    /// user's row of `day`, in one statement; the day's total after.
    pub fn settle_reservation(
        &mut self,
        hold_id: &str,
        user: &str,
        group: &str,
        day: i64,
        cost: i64,
    ) -> i64 {
        let t = self.tenant;
        self.one_i64(
            SETTLE_RESERVATION.pick(),
            &[
                t.into(),
                hold_id.into(),
                user.into(),
                group.into(),
                date(day).into(),
                cost.into(),
            ],
        )
    }

    pub fn group_spent(&mut self, group: &str, from: i64) -> i64 {
        let t = self.tenant;
        self.one_i64(&GROUP_SPENT, &[t.into(), group.into(), date(from).into()])
    }

    /// (group budget, user override).
    pub fn limits(&mut self, user: &str, group: &str) -> (Option<(i64, Period)>, Option<i64>) {
        let t = self.run(
            LIMITS.pick(),
            &[self.tenant.into(), user.into(), group.into()],
        );
        let r = t.first();
        let limit: Option<i64> = spi(r.get(1));
        let period: Option<String> = spi(r.get(2));
        let group_budget = limit.zip(period).map(|(l, p)| {
            (
                l,
                Period::parse(&p).expect("its domain keeps periods valid"),
            )
        });
        (group_budget, spi(r.get(3)))
    }

    pub fn set_budget(&mut self, group: &str, limit: Option<(i64, Period)>) {
        match limit {
            Some((l, p)) => self.run(
                &SET_BUDGET,
                &[
                    self.tenant.into(),
                    group.into(),
                    l.into(),
                    p.as_str().into(),
                ],
            ),
            None => self.run(&DROP_BUDGET, &[self.tenant.into(), group.into()]),
        };
    }

    pub fn set_override(&mut self, user: &str, group: &str, limit: Option<i64>) {
        match limit {
            Some(l) => self.run(
                SET_OVERRIDE.pick(),
                &[self.tenant.into(), user.into(), group.into(), l.into()],
            ),
            None => self.run(
                DROP_OVERRIDE.pick(),
                &[self.tenant.into(), user.into(), group.into()],
            ),
        };
    }

    /// Records a new reservation of the hold just opened.
    pub fn new_reservation(
        &mut self,
        hold_id: &str,
        user: &str,
        group: &str,
        day: i64,
        estimate: i64,
    ) {
        let t = self.tenant;
        self.run(
            &NEW_RESERVATION,
            &[
                t.into(),
                hold_id.into(),
                user.into(),
                group.into(),
                date(day).into(),
                estimate.into(),
            ],
        );
    }

    pub fn lock_reservation(&mut self, hold_id: &str) -> Option<Reservation> {
        let t = self.run(&LOCK_RESERVATION, &[self.tenant.into(), hold_id.into()]);
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        let day: Date = spi(r.get(3)).expect("day is NOT NULL");
        Some(Reservation {
            user_id: spi(r.get(1)).unwrap_or_default(),
            group_id: spi(r.get(2)).unwrap_or_default(),
            day: i64::from(day.to_pg_epoch_days()),
            status: ReservationStatus::parse(&spi(r.get::<String>(4)).unwrap_or_default())
                .expect("its domain keeps statuses valid"),
        })
    }

    pub fn close_reservation(
        &mut self,
        hold_id: &str,
        status: ReservationStatus,
        cost: Option<i64>,
    ) {
        self.run(
            &CLOSE_RESERVATION,
            &[
                self.tenant.into(),
                hold_id.into(),
                status.as_str().into(),
                cost.into(),
            ],
        );
    }

    pub fn purge_spend(&mut self, before: i64) -> i64 {
        let t = self.tenant;
        self.one_i64(&PURGE, &[t.into(), date(before).into()])
    }
}
