//! Every enumeration of spendguard, once: each is a SQL domain over text
//! (`sql/bootstrap.sql`, used by every column that holds it) and one Rust
//! type here, with one validator and one message for a bad value. A
//! `#[pg_test]` checks that each type's labels are its domain's values, and
//! `spendguard.check_enum` lets the SQL readers validate with the same
//! message.

use crate::error::{Error, Result};

/// The one message for a value outside an enumeration.
pub fn invalid(name: &str, s: &str, labels: &[&str]) -> Error {
    let expected = match labels {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    };
    Error::InvalidParameter(format!("invalid {name}: \"{s}\" (expected {expected})"))
}

macro_rules! enumeration {
    ($(#[$meta:meta])* $name:ident, domain $domain:literal, argument $arg:literal {
        $($variant:ident = $label:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            /// The SQL domain `spendguard.<DOMAIN>` that holds these values.
            pub const DOMAIN: &'static str = $domain;
            /// The labels, in SQL's order.
            pub const LABELS: &'static [&'static str] = &[$($label),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }

            /// The value of the argument `name`; 22023 with the one message
            /// for anything else (case-sensitive).
            pub fn parse_arg(name: &str, s: &str) -> Result<Self> {
                match s {
                    $($label => Ok($name::$variant),)+
                    _ => Err(invalid(name, s, Self::LABELS)),
                }
            }

            /// As `parse_arg`, for the argument this enumeration is usually
            /// passed as.
            pub fn parse(s: &str) -> Result<Self> {
                Self::parse_arg($arg, s)
            }
        }
    };
}

enumeration!(
    /// Where a hold stands (`budget_hold.disposition`, SPEC §1).
    Disposition, domain "hold_disposition", argument "disposition" {
        Open = "open", Released = "released", Reversed = "reversed",
        Reconciled = "reconciled", Expired = "expired",
    }
);

enumeration!(
    /// A budget's calendar period (UTC; weeks start on Monday; SPEC §2).
    Period, domain "budget_period", argument "period" {
        Day = "day", Week = "week", Month = "month",
    }
);

enumeration!(
    /// Where a reservation stands (`spend_reservation.status`).
    ReservationStatus, domain "reservation_status", argument "status" {
        Open = "open", Settled = "settled", Cancelled = "cancelled",
    }
);

enumeration!(
    /// Who acts (SPEC §3, §4): `principal_kind`, and the kind of whoever
    /// applied or rejected a proposal.
    PrincipalKind, domain "principal_kind", argument "principal_kind" {
        User = "user", Application = "application",
    }
);

enumeration!(
    /// How a tool call reached the agent (SPEC §4).
    Transport, domain "transport", argument "transport" {
        Chat = "chat", Mcp = "mcp", Automation = "automation",
    }
);

enumeration!(
    /// What a tool call does (SPEC §4).
    Effect, domain "tool_effect", argument "effect" {
        Read = "read", Mutate = "mutate", Destructive = "destructive",
    }
);

enumeration!(
    /// Where a tool call stands (`tool_call.status`, SPEC §4).
    ToolCallStatus, domain "tool_call_status", argument "status" {
        Executed = "executed", Failed = "failed", Proposed = "proposed",
        Applied = "applied", Rejected = "rejected", Expired = "expired",
    }
);

enumeration!(
    /// The period of a scoped budget (SPEC §6): UTC calendar periods (weeks
    /// start on Monday), and `total`, which never resets. Listed in the
    /// order that names the first blocking budget of a scope.
    ScopePeriod, domain "scope_period", argument "period" {
        Day = "day", Week = "week", Month = "month", Total = "total",
    }
);

enumeration!(
    /// What an alert says (SPEC §7): a threshold was crossed, a budget
    /// denied for the first time in its period, or spend is below a fired
    /// threshold again after a limit change.
    AlertKind, domain "alert_kind", argument "kind" {
        Threshold = "threshold", Blocked = "blocked", Resolved = "resolved",
    }
);

/// (domain, labels) of every enumeration: what the `#[pg_test]` compares
/// with the catalog, and what `spendguard.check_enum` validates against.
pub const ALL: &[(&str, &[&str])] = &[
    (Disposition::DOMAIN, Disposition::LABELS),
    (Period::DOMAIN, Period::LABELS),
    (ReservationStatus::DOMAIN, ReservationStatus::LABELS),
    (PrincipalKind::DOMAIN, PrincipalKind::LABELS),
    (Transport::DOMAIN, Transport::LABELS),
    (Effect::DOMAIN, Effect::LABELS),
    (ToolCallStatus::DOMAIN, ToolCallStatus::LABELS),
    (ScopePeriod::DOMAIN, ScopePeriod::LABELS),
    (AlertKind::DOMAIN, AlertKind::LABELS),
];

/// `value` as a label of the domain `domain`, for the argument `name`.
pub fn check(name: &str, value: &str, domain: &str) -> Result<()> {
    let (_, labels) = ALL.iter().find(|(d, _)| *d == domain).ok_or_else(|| {
        Error::InvalidParameter(format!("\"{domain}\" is not an enumeration of spendguard"))
    })?;
    if labels.contains(&value) {
        Ok(())
    } else {
        Err(invalid(name, value, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_for_every_enumeration() {
        assert_eq!(PrincipalKind::parse("user"), Ok(PrincipalKind::User));
        assert_eq!(
            PrincipalKind::parse("agent").unwrap_err().message(),
            "invalid principal_kind: \"agent\" (expected user or application)"
        );
        assert_eq!(
            Disposition::parse_arg("disposition", "gone").unwrap_err().message(),
            "invalid disposition: \"gone\" (expected open, released, reversed, reconciled or expired)"
        );
        assert_eq!(Period::parse("Day").unwrap_err().sqlstate(), "22023");
        for (domain, labels) in ALL {
            for l in *labels {
                assert_eq!(check("x", l, domain), Ok(()));
            }
            assert_eq!(check("x", "", domain).unwrap_err().sqlstate(), "22023");
        }
        assert_eq!(
            check("effect", "delete", "tool_effect"),
            Err(invalid("effect", "delete", Effect::LABELS))
        );
        for e in [Effect::Read, Effect::Mutate, Effect::Destructive] {
            assert_eq!(Effect::parse(e.as_str()), Ok(e));
        }
    }
}
