//! `jsonb` as the text PostgreSQL prints for it (jsonb_out), with no serde
//! round trip: numbers keep the text jsonb gives them (SPEC §4
//! canonical_json), which pgrx's `JsonB` (a serde_json::Value) would not.

use pgrx::callconv::{ArgAbi, BoxRet, FcInfo};
use pgrx::datum::{FromDatum, IntoDatum};
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable, TypeOrigin,
};

/// A jsonb argument or value, held as its canonical PostgreSQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonbText(pub String);

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        let varlena = datum.cast_mut_ptr();
        // SAFETY: a non-NULL jsonb datum; jsonb_out returns a palloc'd C string.
        unsafe {
            let detoasted = pg_sys::pg_detoast_datum_packed(varlena);
            let cstr = pgrx::direct_function_call::<&core::ffi::CStr>(
                pg_sys::jsonb_out,
                &[Some(detoasted.into())],
            )
            .expect("a jsonb datum prints");
            let text = cstr.to_str().expect("jsonb prints as UTF-8").to_string();
            pg_sys::pfree(cstr.as_ptr() as *mut core::ffi::c_void);
            if detoasted != varlena {
                pg_sys::pfree(detoasted as *mut core::ffi::c_void);
            }
            Some(JsonbText(text))
        }
    }
}

impl IntoDatum for JsonbText {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        let c = std::ffi::CString::new(self.0).expect("jsonb text has no NUL");
        // SAFETY: jsonb_in parses the text jsonb_out printed (or raises).
        unsafe { pgrx::direct_function_call_as_datum(pg_sys::jsonb_in, &[Some(c.as_ptr().into())]) }
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// The argument and return conventions pgrx gives its own FromDatum /
// IntoDatum types (pgrx/src/callconv.rs argue_from_datum!,
// impl_repackage_into_datum!).
unsafe impl<'fcx> ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        // SAFETY: as pgrx's own jsonb argument
        unsafe {
            arg.unbox_arg_using_from_datum()
                .unwrap_or_else(|| panic!("argument {index} must not be null"))
        }
    }

    unsafe fn unbox_nullable_arg(
        arg: pgrx::callconv::Arg<'_, 'fcx>,
    ) -> pgrx::nullable::Nullable<Self> {
        // SAFETY: as pgrx's own jsonb argument
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

unsafe impl BoxRet for JsonbText {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            Some(d) => unsafe { fcinfo.return_raw_datum(d) },
            None => fcinfo.return_null(),
        }
    }
}

unsafe impl SqlTranslatable for JsonbText {
    const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!(JsonbText);
    const TYPE_ORIGIN: TypeOrigin = TypeOrigin::External;
    const ARGUMENT_SQL: Result<SqlMappingRef, ArgumentError> = Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
