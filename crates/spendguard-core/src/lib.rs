//! spendguard-core: the rules of spendguard as plain Rust, with no
//! PostgreSQL dependency, so they are unit-tested with `cargo test` and the
//! pgrx crate only wires them to SQL.

pub mod alert;
pub mod budget;
pub mod chain;
pub mod enums;
pub mod error;
pub mod escrow;
pub mod fingerprint;
pub mod key;
pub mod price;
pub mod proposal;
pub mod scope;
pub mod spend;
pub mod usage;
pub mod validate;

pub use error::{Error, Result};
