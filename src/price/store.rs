//! The SQL of prices: every read and write of spendguard.price, as cached
//! prepared statements. No rules here.

use crate::spi::{spi, Db, Stmt, INT8, TEXT, TIMESTAMPTZ};
use pgrx::datum::TimestampWithTimeZone;
use spendguard_core::price::Rates;

/// A new price row; no row when the model has one from that time already.
static NEW_PRICE: Stmt = Stmt {
    sql: "INSERT INTO spendguard.price (tenant_id, model, effective_from, input_micros_per_mtok, \
          output_micros_per_mtok, cached_input_micros_per_mtok) VALUES ($1, $2, $3, $4, $5, $6) \
          ON CONFLICT (tenant_id, model, effective_from) DO NOTHING RETURNING id",
    types: &[TEXT, TEXT, TIMESTAMPTZ, INT8, INT8, INT8],
};

/// The price in force at $3: the greatest effective_from <= $3 (a backward
/// scan of the unique index).
static IN_FORCE: Stmt = Stmt {
    sql: "SELECT id, input_micros_per_mtok, output_micros_per_mtok, cached_input_micros_per_mtok \
          FROM spendguard.price WHERE tenant_id = $1 AND model = $2 AND effective_from <= $3 \
          ORDER BY effective_from DESC LIMIT 1",
    types: &[TEXT, TEXT, TIMESTAMPTZ],
};

static BY_ID: Stmt = Stmt {
    sql: "SELECT id, input_micros_per_mtok, output_micros_per_mtok, cached_input_micros_per_mtok \
          FROM spendguard.price WHERE tenant_id = $1 AND id = $2",
    types: &[TEXT, INT8],
};

fn price_of(t: pgrx::spi::SpiTupleTable<'_>) -> Option<(i64, Rates)> {
    if t.is_empty() {
        return None;
    }
    let r = t.first();
    Some((
        spi(r.get(1)).unwrap_or_default(),
        Rates {
            input: spi(r.get(2)).unwrap_or_default(),
            output: spi(r.get(3)).unwrap_or_default(),
            cached_input: spi(r.get(4)),
        },
    ))
}

/// Price storage: an `impl` on the one store layer.
impl Db<'_, '_> {
    /// The new row's id, `None` when (model, effective_from) exists.
    pub fn new_price(&mut self, model: &str, from: TimestampWithTimeZone, r: Rates) -> Option<i64> {
        let t = self.run(
            &NEW_PRICE,
            &[
                self.tenant.into(),
                model.into(),
                from.into(),
                r.input.into(),
                r.output.into(),
                r.cached_input.into(),
            ],
        );
        (!t.is_empty()).then(|| spi(t.first().get::<i64>(1)).unwrap_or_default())
    }

    pub fn price_in_force(
        &mut self,
        model: &str,
        at: TimestampWithTimeZone,
    ) -> Option<(i64, Rates)> {
        price_of(self.run(&IN_FORCE, &[self.tenant.into(), model.into(), at.into()]))
    }

    pub fn price_by_id(&mut self, id: i64) -> Option<(i64, Rates)> {
        price_of(self.run(&BY_ID, &[self.tenant.into(), id.into()]))
    }
}
