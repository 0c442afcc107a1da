//! Forming a composite result row in one go, typed by the calling
//! expression's result type. Every capability returns its composite through
//! this, with the values in the type's column order (pinned by
//! tests/pg_regress/sql/interface.sql).

use pgrx::prelude::*;

pub type Row = PgHeapTuple<'static, AllocatedByRust>;

pub fn row<const N: usize>(
    fcinfo: pg_sys::FunctionCallInfo,
    values: [Option<pg_sys::Datum>; N],
) -> Row {
    // SAFETY: fcinfo is the live call's; the datums were just made by
    // IntoDatum for the columns' types.
    unsafe {
        let flinfo = (*fcinfo).flinfo;
        let mut typoid = pg_sys::get_fn_expr_rettype(flinfo);
        if typoid == pg_sys::InvalidOid {
            typoid = pg_sys::get_func_rettype((*flinfo).fn_oid);
        }
        let desc = pgrx::PgTupleDesc::for_composite_type_by_oid(typoid)
            .expect("spendguard: the result type is a composite");
        PgHeapTuple::from_datums(desc, values)
            .expect("spendguard: the result values match the result type's columns")
    }
}
