//! SPEC §9: the hash chain of the event log. One function computes a link
//! ([`link`]); the writer (src/budget/store.rs) calls it through
//! [`event_link`] with the values it is about to store, `verify()` through
//! the SQL functions `spendguard.event_link` / `spendguard.checkpoint_link`
//! with the values stored, and the upgrade to 0.5.0 to chain older events.
//!
//! The encoding (version 1), the bytes hashed with SHA-256:
//!
//! ```text
//! "spendguard-chain" | version u8 = 1 | record u8 (0 genesis, 1 event, 2 checkpoint, 3 root)
//! | prev_hash (32 bytes; none for a genesis or a root) | field count u32 (not for a root)
//! | each field: tag u8 | length u32 | payload (none for NULL)
//! ```
//!
//! Tags: 0 NULL (length 0), 1 text (UTF-8 bytes), 2 bigint (8 bytes), 3
//! integer (4 bytes), 4 boolean (1 byte, 0 or 1), 5 timestamptz (8 bytes:
//! microseconds since 2000-01-01 UTC, as PostgreSQL stores it), 6 bytea,
//! 7 numeric (its text output: the stored digits and scale). Integers are
//! big-endian two's complement, lengths big-endian. Every column is
//! present in table order, so an added column needs a new version.

use sha2::{Digest, Sha256};

/// A link's hash, and the `prev_hash` of the next.
pub type Hash = [u8; 32];

pub const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"spendguard-chain";

/// One column's value, typed as stored.
#[derive(Clone, Copy, Debug)]
pub enum Field<'a> {
    Null,
    Text(&'a str),
    Int8(i64),
    Int4(i32),
    Bool(bool),
    /// microseconds since 2000-01-01 00:00 UTC
    Time(i64),
    Bytes(&'a [u8]),
    /// a numeric's text output
    Numeric(&'a str),
}

impl<'a> From<Option<&'a str>> for Field<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Field::Null, Field::Text)
    }
}

impl From<Option<i64>> for Field<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Field::Null, Field::Int8)
    }
}

/// What a link records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Record {
    Genesis = 0,
    Event = 1,
    Checkpoint = 2,
}

fn field(h: &mut Sha256, f: &Field<'_>) {
    let (tag, payload): (u8, &[u8]) = match f {
        Field::Null => (0, &[]),
        Field::Text(s) => (1, s.as_bytes()),
        Field::Int8(v) => return fixed(h, 2, &v.to_be_bytes()),
        Field::Int4(v) => return fixed(h, 3, &v.to_be_bytes()),
        Field::Bool(v) => return fixed(h, 4, &[u8::from(*v)]),
        Field::Time(v) => return fixed(h, 5, &v.to_be_bytes()),
        Field::Bytes(b) => (6, b),
        Field::Numeric(s) => (7, s.as_bytes()),
    };
    fixed(h, tag, payload);
}

/// tag | length u32 | payload. Ids are at most 1,024 bytes and every other
/// field is fixed-size: a length never reaches u32::MAX.
fn fixed(h: &mut Sha256, tag: u8, payload: &[u8]) {
    h.update([tag]);
    h.update((payload.len() as u32).to_be_bytes());
    h.update(payload);
}

/// The one link function: SHA-256 over the versioned, length-prefixed
/// encoding of `prev` and `fields` (module docs).
pub fn link(record: Record, prev: Option<&Hash>, fields: &[Field<'_>]) -> Hash {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update([VERSION, record as u8]);
    if let Some(p) = prev {
        h.update(p);
    }
    h.update((fields.len() as u32).to_be_bytes());
    for f in fields {
        field(&mut h, f);
    }
    h.finalize().into()
}

/// The `prev_hash` of a budget's first link: derived from its key.
pub fn genesis(tenant_id: &str, capability_id: &str, grant_index: i32) -> Hash {
    link(
        Record::Genesis,
        None,
        &[
            Field::Text(tenant_id),
            Field::Text(capability_id),
            Field::Int4(grant_index),
        ],
    )
}

/// Every column of a `budget_event` row but `prev_hash` and `hash`, as
/// stored.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    pub tenant_id: &'a str,
    pub event_seq: i64,
    pub event_id: Option<&'a str>,
    pub request_fingerprint: Option<&'a str>,
    pub hold_id: Option<&'a str>,
    pub capability_id: &'a str,
    pub grant_index: i32,
    pub kind: &'a str,
    pub allowed: bool,
    pub denial_reason: Option<&'a str>,
    pub recorded_at: i64,
    pub exposure_units: i64,
    pub realized_spend_units: i64,
    pub max_invocations: Option<i64>,
    pub max_cost_per_invocation: Option<i64>,
    pub max_total_cost: Option<i64>,
    pub invocation_count_after: i64,
    pub total_cost_exposed_after: i64,
    pub total_cost_realized_after: i64,
    pub authority_id: Option<&'a str>,
    pub lease_id: Option<&'a str>,
    pub lease_epoch: Option<i64>,
    pub guarantee_level: &'a str,
    pub chain_n: i64,
}

/// An event's hash, in `budget_event`'s column order.
pub fn event_link(prev: &Hash, e: &Event<'_>) -> Hash {
    link(
        Record::Event,
        Some(prev),
        &[
            Field::Text(e.tenant_id),
            Field::Int8(e.event_seq),
            e.event_id.into(),
            e.request_fingerprint.into(),
            e.hold_id.into(),
            Field::Text(e.capability_id),
            Field::Int4(e.grant_index),
            Field::Text(e.kind),
            Field::Bool(e.allowed),
            e.denial_reason.into(),
            Field::Time(e.recorded_at),
            Field::Int8(e.exposure_units),
            Field::Int8(e.realized_spend_units),
            e.max_invocations.into(),
            e.max_cost_per_invocation.into(),
            e.max_total_cost.into(),
            Field::Int8(e.invocation_count_after),
            Field::Int8(e.total_cost_exposed_after),
            Field::Int8(e.total_cost_realized_after),
            e.authority_id.into(),
            e.lease_id.into(),
            e.lease_epoch.into(),
            Field::Text(e.guarantee_level),
            Field::Int8(e.chain_n),
        ],
    )
}

/// Every column of a `budget_checkpoint` row but `prev_hash` and `hash`,
/// as stored (numerics as their text output).
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint<'a> {
    pub tenant_id: &'a str,
    pub capability_id: &'a str,
    pub grant_index: i32,
    pub through_seq: i64,
    pub retired_before: i64,
    pub retired_at: i64,
    pub events: i64,
    pub invocation_count: i64,
    pub total_cost_exposed: i64,
    pub total_cost_realized: i64,
    pub unheld_exposed: &'a str,
    pub last_allowed_seq: i64,
    pub retired_holds: i64,
    pub retired_hold_realized: &'a str,
    pub cut_chain_n: i64,
    pub cut_hash: &'a [u8],
    pub chain_n: i64,
}

/// A checkpoint link's hash, in `budget_checkpoint`'s column order.
pub fn checkpoint_link(prev: &Hash, k: &Checkpoint<'_>) -> Hash {
    link(
        Record::Checkpoint,
        Some(prev),
        &[
            Field::Text(k.tenant_id),
            Field::Text(k.capability_id),
            Field::Int4(k.grant_index),
            Field::Int8(k.through_seq),
            Field::Time(k.retired_before),
            Field::Time(k.retired_at),
            Field::Int8(k.events),
            Field::Int8(k.invocation_count),
            Field::Int8(k.total_cost_exposed),
            Field::Int8(k.total_cost_realized),
            Field::Numeric(k.unheld_exposed),
            Field::Int8(k.last_allowed_seq),
            Field::Int8(k.retired_holds),
            Field::Numeric(k.retired_hold_realized),
            Field::Int8(k.cut_chain_n),
            Field::Bytes(k.cut_hash),
            Field::Int8(k.chain_n),
        ],
    )
}

/// `chain_root()`: SHA-256 over the heads of a tenant's chains in key order
/// (capability id bytes, then grant index), each as its four fields.
pub fn root<'a>(heads: impl IntoIterator<Item = (&'a str, i32, i64, &'a [u8])>) -> Hash {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update([VERSION, 3]);
    for (cap, grant, n, hash) in heads {
        for f in [
            Field::Text(cap),
            Field::Int4(grant),
            Field::Int8(n),
            Field::Bytes(hash),
        ] {
            field(&mut h, &f);
        }
    }
    h.finalize().into()
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// A hash from 64 hexadecimal digits (either case); `None` otherwise.
pub fn parse_hex(s: &str) -> Option<Hash> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The test vector event (tests/pg_regress/sql/chain.sql builds the
    /// same row in SQL and expects the same hashes; tests/chain/vectors.py
    /// computes them from the encoding alone, in Python).
    pub fn vector_event() -> Event<'static> {
        Event {
            tenant_id: "acme",
            event_seq: 42,
            event_id: Some("ev-1"),
            request_fingerprint: Some("fp"),
            hold_id: Some("h1"),
            capability_id: "gpt",
            grant_index: 7,
            kind: "authorize_exposure",
            allowed: true,
            denial_reason: None,
            // 2026-01-01 03:04:05.678901 UTC
            recorded_at: 820_551_845_678_901,
            exposure_units: 1500,
            realized_spend_units: 0,
            max_invocations: None,
            max_cost_per_invocation: Some(2000),
            max_total_cost: Some(10_000),
            invocation_count_after: 1,
            total_cost_exposed_after: 1500,
            total_cost_realized_after: 0,
            authority_id: None,
            lease_id: None,
            lease_epoch: None,
            guarantee_level: "single_primary_linearizable",
            chain_n: 1,
        }
    }

    pub const GENESIS: &str = "a4d7ad19a24abd52846d45a352937567bd57f3b04534de43fc06f179c1fe54e4";
    pub const EVENT: &str = "7aefe6eb704ac9ee002b52459084d82aa21be1480206c855a85d4ec55b6a726e";

    pub fn vector_checkpoint(cut_hash: &[u8]) -> Checkpoint<'_> {
        Checkpoint {
            tenant_id: "acme",
            capability_id: "gpt",
            grant_index: 7,
            through_seq: 42,
            retired_before: 820_551_845_678_901,
            retired_at: 820_551_900_000_000,
            events: 1,
            invocation_count: 1,
            total_cost_exposed: 1500,
            total_cost_realized: 0,
            unheld_exposed: "-12.50",
            last_allowed_seq: 42,
            retired_holds: 0,
            retired_hold_realized: "0",
            cut_chain_n: 1,
            cut_hash,
            chain_n: 2,
        }
    }

    pub const CHECKPOINT: &str = "66865caf052cffffed3b8c36c95f14473aa4a7f545bb9f792a29e17cbd9b9d4c";
    pub const ROOT: &str = "9155a7ba436682abb61af9ccc5a4084a304b5f1b8d66885f920f4223833a4335";

    #[test]
    fn vectors() {
        let g = genesis("acme", "gpt", 7);
        assert_eq!(hex(&g), GENESIS);
        let e = event_link(&g, &vector_event());
        assert_eq!(hex(&e), EVENT);
        let k = checkpoint_link(&e, &vector_checkpoint(&e));
        assert_eq!(hex(&k), CHECKPOINT);
        let r = root([("gpt", 7, 2, &k[..]), ("gpu", 0, 1, &e[..])]);
        assert_eq!(hex(&r), ROOT);
        assert_eq!(hex(&root([])), hex(&root(Vec::new())));
    }

    #[test]
    fn the_encoding_by_hand() {
        // genesis of ("t", "c", 1), written out byte by byte
        let mut b: Vec<u8> = b"spendguard-chain".to_vec();
        b.extend([1, 0]);
        b.extend(3u32.to_be_bytes());
        b.extend([1, 0, 0, 0, 1, b't']);
        b.extend([1, 0, 0, 0, 1, b'c']);
        b.extend([3, 0, 0, 0, 4, 0, 0, 0, 1]);
        let want: Hash = Sha256::digest(&b).into();
        assert_eq!(genesis("t", "c", 1), want);
    }

    #[test]
    fn every_column_counts() {
        let g = genesis("acme", "gpt", 7);
        let base = event_link(&g, &vector_event());
        let mut variants: Vec<Event<'static>> = Vec::new();
        let e = vector_event;
        variants.push(Event {
            tenant_id: "acme2",
            ..e()
        });
        variants.push(Event {
            event_seq: 43,
            ..e()
        });
        variants.push(Event {
            event_id: None,
            ..e()
        });
        variants.push(Event {
            request_fingerprint: Some("fq"),
            ..e()
        });
        variants.push(Event {
            hold_id: Some(""),
            ..e()
        });
        variants.push(Event {
            capability_id: "gpu",
            ..e()
        });
        variants.push(Event {
            grant_index: 8,
            ..e()
        });
        variants.push(Event {
            kind: "release_exposure",
            ..e()
        });
        variants.push(Event {
            allowed: false,
            ..e()
        });
        variants.push(Event {
            denial_reason: Some("max_total_cost"),
            ..e()
        });
        variants.push(Event {
            recorded_at: 820_551_845_678_902,
            ..e()
        });
        variants.push(Event {
            exposure_units: 1501,
            ..e()
        });
        variants.push(Event {
            realized_spend_units: 1,
            ..e()
        });
        variants.push(Event {
            max_invocations: Some(0),
            ..e()
        });
        variants.push(Event {
            max_cost_per_invocation: None,
            ..e()
        });
        variants.push(Event {
            max_total_cost: Some(10_001),
            ..e()
        });
        variants.push(Event {
            invocation_count_after: 2,
            ..e()
        });
        variants.push(Event {
            total_cost_exposed_after: 1499,
            ..e()
        });
        variants.push(Event {
            total_cost_realized_after: 1,
            ..e()
        });
        variants.push(Event {
            authority_id: Some("a"),
            ..e()
        });
        variants.push(Event {
            lease_id: Some("l"),
            ..e()
        });
        variants.push(Event {
            lease_epoch: Some(0),
            ..e()
        });
        variants.push(Event {
            guarantee_level: "ha_linearizable",
            ..e()
        });
        variants.push(Event { chain_n: 2, ..e() });
        let mut seen = vec![base];
        for v in &variants {
            let h = event_link(&g, v);
            assert!(!seen.contains(&h), "{v:?} hashes like another variant");
            seen.push(h);
        }
        // and the previous link
        assert_ne!(event_link(&[0; 32], &e()), base);
    }

    #[test]
    fn boundaries_and_nulls_are_not_confused() {
        let g = [7u8; 32];
        let a = Event {
            event_id: Some("ab"),
            request_fingerprint: Some("c"),
            ..vector_event()
        };
        let b = Event {
            event_id: Some("a"),
            request_fingerprint: Some("bc"),
            ..vector_event()
        };
        assert_ne!(event_link(&g, &a), event_link(&g, &b));
        let n = Event {
            event_id: None,
            ..vector_event()
        };
        let empty = Event {
            event_id: Some(""),
            ..vector_event()
        };
        assert_ne!(event_link(&g, &n), event_link(&g, &empty));
        // the same digits as text and as a number differ
        assert_ne!(
            link(Record::Event, Some(&g), &[Field::Text("1")]),
            link(Record::Event, Some(&g), &[Field::Numeric("1")])
        );
        assert_ne!(
            link(Record::Event, Some(&g), &[Field::Int8(1)]),
            link(Record::Checkpoint, Some(&g), &[Field::Int8(1)])
        );
    }

    #[test]
    fn hex_round_trip() {
        let h = genesis("a", "b", 0);
        assert_eq!(parse_hex(&hex(&h)), Some(h));
        assert_eq!(parse_hex(&hex(&h).to_uppercase()), Some(h));
        assert_eq!(parse_hex("00"), None);
        assert_eq!(parse_hex(&"g".repeat(64)), None);
        assert_eq!(parse_hex(&"é".repeat(32)), None);
    }
}
