//! The one error type of spendguard and its SQLSTATE mapping (SPEC.md §0).
//!
//! Every failure that reaches SQL is one of these variants; the pgrx layer
//! turns it into an `ereport(ERROR)` carrying `sqlstate()` and `message()`.
//! Messages follow core PostgreSQL style: lower case, no trailing period,
//! quoted object names.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// 22023: negative amount, empty id, unknown enum text, TTL <= 0.
    InvalidParameter(String),
    /// 22004: a required argument is NULL. Holds the argument's name.
    NullValue(String),
    /// 22003: an amount or a running total would overflow bigint.
    OutOfRange(String),
    /// SG001: hold not found in this tenant.
    HoldNotFound { hold_id: String },
    /// SG002: hold is no longer open.
    HoldNotOpen {
        hold_id: String,
        disposition: String,
    },
    /// SG003: hold does not match the request.
    HoldMismatch(String),
    /// SG004: an event id was reused for a different request.
    IdempotencyConflict { event_id: String },
    /// SG005: authority / lease fencing failed.
    Fencing(String),
    /// SG006: a budget invariant would break.
    BudgetInvariant(String),
    /// SG010: a proposal token is malformed, unknown or carries the wrong
    /// nonce: one variant and one message for all three (no oracle).
    TokenInvalid,
    /// SG011: the proposal expired.
    ProposalExpired { id: String },
    /// SG012: the proposal was already applied, rejected or otherwise closed.
    ProposalClosed { id: String, status: String },
    /// SG013: the arguments differ from the proposed ones.
    ProposalArgsMismatch { id: String },
    /// SG020: a spend or usage cap is exceeded (the `*_enforce` functions).
    CapExceeded(String),
    /// SG030: `spendguard.require_tenant` is on and no tenant is set.
    TenantRequired,
    /// SG040: no price in force for a model at a time (SPEC §8).
    NoPrice(String),
    /// 42501: in `tenant_auth = role` mode, the current role was not
    /// granted the tenant (SPEC §5).
    InsufficientPrivilege(String),
    /// 42704: a `spendguard.*` setting that does not exist was set before
    /// the library loaded (a misspelling, kept by PostgreSQL as a
    /// placeholder). Holds the setting's name.
    UnknownSetting(String),
    /// 54001: a document nests deeper than the stack allows.
    TooDeep,
    /// 0A000: a value SPEC names that this release does not implement yet
    /// (refused, never silently ignored), or a call on a node that does not
    /// serve it (a Citus worker, SPEC §10).
    NotSupported(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The five-character SQLSTATE that SPEC.md promises for this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Error::InvalidParameter(_) => "22023",
            Error::NullValue(_) => "22004",
            Error::OutOfRange(_) => "22003",
            Error::HoldNotFound { .. } => "SG001",
            Error::HoldNotOpen { .. } => "SG002",
            Error::HoldMismatch(_) => "SG003",
            Error::IdempotencyConflict { .. } => "SG004",
            Error::Fencing(_) => "SG005",
            Error::BudgetInvariant(_) => "SG006",
            Error::TokenInvalid => "SG010",
            Error::ProposalExpired { .. } => "SG011",
            Error::ProposalClosed { .. } => "SG012",
            Error::ProposalArgsMismatch { .. } => "SG013",
            Error::CapExceeded(_) => "SG020",
            Error::TenantRequired => "SG030",
            Error::NoPrice(_) => "SG040",
            Error::InsufficientPrivilege(_) => "42501",
            Error::UnknownSetting(_) => "42704",
            Error::TooDeep => "54001",
            Error::NotSupported(_) => "0A000",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Error::InvalidParameter(m)
            | Error::OutOfRange(m)
            | Error::HoldMismatch(m)
            | Error::Fencing(m)
            | Error::BudgetInvariant(m)
            | Error::CapExceeded(m)
            | Error::NotSupported(m)
            | Error::NoPrice(m)
            | Error::InsufficientPrivilege(m) => m.clone(),
            Error::NullValue(arg) => format!("argument \"{arg}\" must not be NULL"),
            Error::HoldNotFound { hold_id } => format!("hold \"{hold_id}\" does not exist"),
            Error::HoldNotOpen {
                hold_id,
                disposition,
            } => format!("hold \"{hold_id}\" is not open: it is {disposition}"),
            Error::IdempotencyConflict { event_id } => {
                format!("event id \"{event_id}\" was already used for a different request")
            }
            Error::TenantRequired => {
                "spendguard.require_tenant is on but spendguard.tenant is not set".to_string()
            }
            Error::TokenInvalid => "proposal token is invalid".to_string(),
            Error::ProposalExpired { id } => format!("proposal {id} has expired"),
            Error::ProposalClosed { id, status } => {
                format!("proposal {id} is no longer open: it is {status}")
            }
            Error::ProposalArgsMismatch { id } => format!(
                "arguments do not match proposal {id}: their args_hash differs from the proposed one"
            ),
            Error::UnknownSetting(name) => format!(
                "unrecognized configuration parameter \"{name}\": the spendguard. prefix is reserved (was it misspelled?)"
            ),
            Error::TooDeep => {
                "the document nests too deeply: stack depth limit exceeded".to_string()
            }
        }
    }

    /// Packs the five SQLSTATE characters the way PostgreSQL's
    /// `MAKE_SQLSTATE` macro does, so custom codes like `SG001` survive.
    pub fn sqlstate_code(&self) -> i32 {
        make_sqlstate(self.sqlstate())
    }
}

/// `MAKE_SQLSTATE(c1..c5)` from `utils/elog.h`: six bits per character.
pub fn make_sqlstate(code: &str) -> i32 {
    let b = code.as_bytes();
    assert_eq!(b.len(), 5, "a SQLSTATE has five characters");
    b.iter()
        .enumerate()
        .map(|(i, c)| ((i32::from(*c) - i32::from(b'0')) & 0x3F) << (6 * i))
        .sum()
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.sqlstate(), self.message())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_sqlstate_matches_postgres_constants() {
        // ERRCODE_INVALID_PARAMETER_VALUE and ERRCODE_NULL_VALUE_NOT_ALLOWED
        // as PostgreSQL 15 defines them (errcodes.h, computed by the macro).
        assert_eq!(make_sqlstate("22023"), 50856066);
        assert_eq!(make_sqlstate("22004"), 67108994);
        assert_eq!(make_sqlstate("22003"), 50331778);
    }

    #[test]
    fn every_variant_has_a_five_character_code() {
        let all = [
            Error::InvalidParameter("x".into()),
            Error::NullValue("x".into()),
            Error::OutOfRange("x".into()),
            Error::HoldNotFound {
                hold_id: "h".into(),
            },
            Error::HoldNotOpen {
                hold_id: "h".into(),
                disposition: "released".into(),
            },
            Error::HoldMismatch("x".into()),
            Error::IdempotencyConflict {
                event_id: "e".into(),
            },
            Error::Fencing("x".into()),
            Error::BudgetInvariant("x".into()),
            Error::TokenInvalid,
            Error::ProposalExpired { id: "p".into() },
            Error::ProposalClosed {
                id: "p".into(),
                status: "applied".into(),
            },
            Error::ProposalArgsMismatch { id: "p".into() },
            Error::CapExceeded("x".into()),
            Error::TenantRequired,
            Error::UnknownSetting("spendguard.tenat".into()),
            Error::TooDeep,
            Error::NotSupported("x".into()),
            Error::NoPrice("x".into()),
            Error::InsufficientPrivilege("x".into()),
        ];
        let codes: Vec<_> = all.iter().map(|e| e.sqlstate()).collect();
        assert_eq!(
            codes,
            [
                "22023", "22004", "22003", "SG001", "SG002", "SG003", "SG004", "SG005", "SG006",
                "SG010", "SG011", "SG012", "SG013", "SG020", "SG030", "42704", "54001", "0A000",
                "SG040", "42501"
            ]
        );
        assert_eq!(
            Error::HoldNotFound {
                hold_id: "h1".into()
            }
            .message(),
            "hold \"h1\" does not exist"
        );
    }
}
