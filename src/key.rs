//! `spendguard.id_key`: the digest that indexes hold instead of several ids
//! (spendguard_core::key). IMMUTABLE, for index expressions and generated
//! columns (sql/spend.sql, sql/usage.sql).

use pgrx::prelude::*;

#[pg_extern(immutable, strict, parallel_safe, name = "id_key")]
fn id_key2(a: &str, b: &str) -> Vec<u8> {
    spendguard_core::key::id_key(&[a, b]).to_vec()
}

#[pg_extern(immutable, strict, parallel_safe, name = "id_key")]
fn id_key3(a: &str, b: &str, c: &str) -> Vec<u8> {
    spendguard_core::key::id_key(&[a, b, c]).to_vec()
}
