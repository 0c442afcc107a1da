//! Propose / apply tokens and the canonical form of tool arguments (SPEC.md
//! §4) as pure functions: the token grammar, the nonce and its hash, the
//! constant-time nonce check, the state checks of consume / reject, and
//! canonical JSON with its SHA-256.

use crate::error::{Error, Result};
use rand::rngs::OsRng;
use rand::TryRngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "propose:";

/// A nonce: 32 bytes from the operating system's cryptographic RNG.
pub fn new_nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    OsRng
        .try_fill_bytes(&mut n)
        .expect("the operating system's random number generator is available");
    n
}

/// What the database stores instead of the nonce: its SHA-256. A 256-bit
/// random nonce needs no salt; the hash is of no use as a token.
pub fn nonce_hash(nonce: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(nonce).into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// `propose:<id>.<nonce as 64 lowercase hex>`.
pub fn token(id: &str, nonce: &[u8; 32]) -> String {
    format!("{PREFIX}{id}.{}", hex(nonce))
}

/// The one error of every bad token: malformed, unknown id or wrong nonce
/// alike (SG010), with the same message, so it tells a guesser nothing.
pub fn invalid_token() -> Error {
    Error::TokenInvalid
}

fn lower_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

/// Splits a token into its proposal id (canonical lowercase UUID text) and
/// nonce; anything else is SG010.
pub fn parse_token(t: &str) -> Result<(String, [u8; 32])> {
    let rest = t.strip_prefix(PREFIX).ok_or_else(invalid_token)?;
    let (id, nonce_hex) = rest.split_once('.').ok_or_else(invalid_token)?;
    let uuid_shape = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => lower_hex(b).is_some(),
        });
    if !uuid_shape || nonce_hex.len() != 64 {
        return Err(invalid_token());
    }
    let mut nonce = [0u8; 32];
    let bytes = nonce_hex.as_bytes();
    for (i, out) in nonce.iter_mut().enumerate() {
        let hi = lower_hex(bytes[2 * i]).ok_or_else(invalid_token)?;
        let lo = lower_hex(bytes[2 * i + 1]).ok_or_else(invalid_token)?;
        *out = (hi << 4) | lo;
    }
    Ok((id.to_string(), nonce))
}

/// The hash every unknown id is compared against, so an unknown id costs
/// the same hash and comparison as a known one with a wrong nonce.
pub const DUMMY_HASH: [u8; 32] = [0x5a; 32];

/// Whether `nonce` is the one whose hash is `stored` (constant time in the
/// nonce: it hashes, then compares all 32 bytes whatever they are).
pub fn nonce_matches(nonce: &[u8; 32], stored: &[u8]) -> bool {
    let h = nonce_hash(nonce);
    let stored: &[u8] = if stored.len() == 32 {
        stored
    } else {
        &DUMMY_HASH
    };
    bool::from(h.ct_eq(stored)) & (stored.len() == 32)
}

pub use crate::enums::ToolCallStatus as Status;

/// The state checks of consume and reject, after the nonce matched, in
/// SPEC order: expired (SG011), not proposed (SG012), other arguments
/// (SG013, consume only; the proposal stays consumable).
pub fn check_consumable(
    id: &str,
    status: Status,
    expired: bool,
    args_match: Option<bool>,
) -> Result<()> {
    match status {
        Status::Expired => return Err(Error::ProposalExpired { id: id.into() }),
        Status::Proposed if expired => return Err(Error::ProposalExpired { id: id.into() }),
        Status::Proposed => {}
        other => {
            return Err(Error::ProposalClosed {
                id: id.into(),
                status: other.as_str().into(),
            })
        }
    }
    if args_match == Some(false) {
        return Err(Error::ProposalArgsMismatch { id: id.into() });
    }
    Ok(())
}

// Canonical JSON -------------------------------------------------------------

/// A JSON value as slices of the text it was parsed from: numbers and
/// literals as written, strings raw (between the quotes, escapes intact)
/// with their decoded text only when they contain an escape. Strings as
/// jsonb prints them are already in canonical form unless they contain a
/// backslash (jsonb escapes exactly what `write_str` escapes), so the common
/// case copies no string and allocates nothing per value.
#[derive(Debug)]
enum V<'a> {
    Lit(&'a str),
    Str(Str<'a>),
    Arr(Vec<V<'a>>),
    Obj(Vec<(Str<'a>, V<'a>)>),
}

#[derive(Debug)]
struct Str<'a> {
    raw: &'a str,
    decoded: Option<String>,
}

impl Str<'_> {
    /// The UTF-8 bytes of the string's value: keys sort by these.
    fn bytes(&self) -> &[u8] {
        self.decoded.as_deref().unwrap_or(self.raw).as_bytes()
    }
    fn write(&self, out: &mut String) {
        match &self.decoded {
            None => {
                out.push('"');
                out.push_str(self.raw);
                out.push('"');
            }
            Some(d) => write_str(out, d),
        }
    }
}

/// Called at every value a walk of a document enters (parse and write):
/// the pgrx layer checks PostgreSQL's stack depth (54001, `Error::TooDeep`)
/// and interrupts there, so no document, however deep or long, can
/// overflow the stack or outlast a statement timeout (SPEC §5).
pub type Guard<'g> = &'g mut dyn FnMut() -> Result<()>;

struct Parser<'a, 'g> {
    text: &'a str,
    s: &'a [u8],
    i: usize,
    guard: Guard<'g>,
}

fn bad_json() -> Error {
    Error::InvalidParameter("invalid JSON text".into())
}

impl<'a> Parser<'a, '_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn eat(&mut self, b: u8) -> Result<()> {
        self.ws();
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(bad_json())
        }
    }
    fn value(&mut self) -> Result<V<'a>> {
        (self.guard)()?;
        self.ws();
        match self.s.get(self.i).copied().ok_or_else(bad_json)? {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(V::Obj(members));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    members.push((k, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(V::Obj(members));
                        }
                        _ => return Err(bad_json()),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(V::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(V::Arr(items));
                        }
                        _ => return Err(bad_json()),
                    }
                }
            }
            b'"' => Ok(V::Str(self.string()?)),
            b't' => self.word("true"),
            b'f' => self.word("false"),
            b'n' => self.word("null"),
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                    )
                {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(bad_json());
                }
                Ok(V::Lit(&self.text[start..self.i]))
            }
        }
    }
    fn word(&mut self, w: &'static str) -> Result<V<'a>> {
        if self.s[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(V::Lit(w))
        } else {
            Err(bad_json())
        }
    }
    fn hex4(&mut self) -> Result<u32> {
        let h = self.s.get(self.i..self.i + 4).ok_or_else(bad_json)?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).map_err(|_| bad_json())?, 16)
            .map_err(|_| bad_json())
    }
    /// A string token: its raw text, decoded only when it has an escape.
    fn string(&mut self) -> Result<Str<'a>> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(bad_json());
        }
        self.i += 1;
        let start = self.i;
        // the fast path: no escape, no control character up to the quote
        let end = self.s[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .ok_or_else(bad_json)?;
        self.i = start + end;
        if self.s[self.i] == b'"' {
            let raw = &self.text[start..self.i];
            self.i += 1;
            return Ok(Str { raw, decoded: None });
        }
        let mut out = self.s[start..self.i].to_vec();
        loop {
            let b = *self.s.get(self.i).ok_or_else(bad_json)?;
            self.i += 1;
            match b {
                b'"' => {
                    let raw = &self.text[start..self.i - 1];
                    let decoded = String::from_utf8(out).map_err(|_| bad_json())?;
                    return Ok(Str {
                        raw,
                        decoded: Some(decoded),
                    });
                }
                b'\\' => {
                    let e = *self.s.get(self.i).ok_or_else(bad_json)?;
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(bad_json());
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3FF)
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or_else(bad_json)?
                        }
                        _ => return Err(bad_json()),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(b),
            }
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write(out: &mut String, v: &mut V<'_>, guard: Guard<'_>) -> Result<()> {
    match v {
        V::Lit(t) => out.push_str(t),
        V::Str(s) => s.write(out),
        V::Arr(items) => {
            guard()?;
            out.push('[');
            for (i, x) in items.iter_mut().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(out, x, guard)?;
            }
            out.push(']');
        }
        V::Obj(members) => {
            guard()?;
            // stable, so duplicate keys (jsonb has none) keep their order
            members.sort_by(|a, b| a.0.bytes().cmp(b.0.bytes()));
            out.push('{');
            for (i, (k, x)) in members.iter_mut().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                k.write(out);
                out.push(':');
                write(out, x, guard)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// The canonical text of a JSON document (as jsonb prints it): object keys
/// sorted by their UTF-8 bytes at every level, no insignificant whitespace,
/// strings escaped one fixed way, numbers exactly as written.
/// `guard` runs at every value entered (see [`Guard`]).
pub fn canonical_json(text: &str, guard: Guard<'_>) -> Result<String> {
    let mut p = Parser {
        text,
        s: text.as_bytes(),
        i: 0,
        guard,
    };
    let mut v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(bad_json());
    }
    let mut out = String::with_capacity(text.len());
    write(&mut out, &mut v, p.guard)?;
    Ok(out)
}

/// Lowercase hex SHA-256 of the canonical text.
pub fn args_hash(text: &str, guard: Guard<'_>) -> Result<String> {
    Ok(hex(&Sha256::digest(
        canonical_json(text, guard)?.as_bytes(),
    )))
}

/// The first canonicalizer (a tree of owned values), kept as the oracle the
/// zero-copy one above is checked against on random documents.
#[cfg(test)]
mod reference {
    use crate::{Error, Result};

    /// A JSON value with numbers kept as the text they were written in.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum J {
        Null,
        Bool(bool),
        Num(String),
        Str(String),
        Arr(Vec<J>),
        Obj(Vec<(String, J)>),
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    fn bad_json() -> Error {
        Error::InvalidParameter("invalid JSON text".into())
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }
        fn eat(&mut self, b: u8) -> Result<()> {
            self.ws();
            if self.s.get(self.i) == Some(&b) {
                self.i += 1;
                Ok(())
            } else {
                Err(bad_json())
            }
        }
        fn value(&mut self) -> Result<J> {
            self.ws();
            match self.s.get(self.i).copied().ok_or_else(bad_json)? {
                b'{' => {
                    self.i += 1;
                    let mut members = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(J::Obj(members));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        members.push((k, self.value()?));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(J::Obj(members));
                            }
                            _ => return Err(bad_json()),
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    let mut items = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(J::Arr(items));
                    }
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(J::Arr(items));
                            }
                            _ => return Err(bad_json()),
                        }
                    }
                }
                b'"' => Ok(J::Str(self.string()?)),
                b't' => self.word("true", J::Bool(true)),
                b'f' => self.word("false", J::Bool(false)),
                b'n' => self.word("null", J::Null),
                _ => {
                    let start = self.i;
                    while self.i < self.s.len()
                        && matches!(
                            self.s[self.i],
                            b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'
                        )
                    {
                        self.i += 1;
                    }
                    if start == self.i {
                        return Err(bad_json());
                    }
                    let text =
                        std::str::from_utf8(&self.s[start..self.i]).map_err(|_| bad_json())?;
                    Ok(J::Num(text.to_string()))
                }
            }
        }
        fn word(&mut self, w: &str, v: J) -> Result<J> {
            if self.s[self.i..].starts_with(w.as_bytes()) {
                self.i += w.len();
                Ok(v)
            } else {
                Err(bad_json())
            }
        }
        fn hex4(&mut self) -> Result<u32> {
            let h = self.s.get(self.i..self.i + 4).ok_or_else(bad_json)?;
            self.i += 4;
            u32::from_str_radix(std::str::from_utf8(h).map_err(|_| bad_json())?, 16)
                .map_err(|_| bad_json())
        }
        /// A string token, decoded.
        fn string(&mut self) -> Result<String> {
            if self.s.get(self.i) != Some(&b'"') {
                return Err(bad_json());
            }
            self.i += 1;
            let mut out = Vec::new();
            loop {
                let b = *self.s.get(self.i).ok_or_else(bad_json)?;
                self.i += 1;
                match b {
                    b'"' => return String::from_utf8(out).map_err(|_| bad_json()),
                    b'\\' => {
                        let e = *self.s.get(self.i).ok_or_else(bad_json)?;
                        self.i += 1;
                        let c = match e {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => {
                                let hi = self.hex4()?;
                                let cp = if (0xD800..0xDC00).contains(&hi) {
                                    if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                        return Err(bad_json());
                                    }
                                    self.i += 2;
                                    let lo = self.hex4()?;
                                    0x10000
                                        + ((hi - 0xD800) << 10)
                                        + (lo.wrapping_sub(0xDC00) & 0x3FF)
                                } else {
                                    hi
                                };
                                char::from_u32(cp).ok_or_else(bad_json)?
                            }
                            _ => return Err(bad_json()),
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => out.push(b),
                }
            }
        }
    }

    fn write_str(out: &mut String, s: &str) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn write(out: &mut String, v: &J) {
        match v {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Num(n) => out.push_str(n),
            J::Str(s) => write_str(out, s),
            J::Arr(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, x);
                }
                out.push(']');
            }
            J::Obj(members) => {
                let mut sorted: Vec<&(String, J)> = members.iter().collect();
                sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                out.push('{');
                for (i, (k, x)) in sorted.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    write(out, x);
                }
                out.push('}');
            }
        }
    }

    /// The canonical text of a JSON document (as jsonb prints it): object keys
    /// sorted by their UTF-8 bytes at every level, no insignificant whitespace,
    /// strings escaped one fixed way, numbers exactly as written.
    pub fn canonical_json(text: &str) -> Result<String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(bad_json());
        }
        let mut out = String::with_capacity(text.len());
        write(&mut out, &v);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical_json(s: &str) -> Result<String> {
        super::canonical_json(s, &mut || Ok(()))
    }

    fn args_hash(s: &str) -> Result<String> {
        super::args_hash(s, &mut || Ok(()))
    }

    /// The guard runs at every value a walk enters, and its error ends the
    /// walk: a document nested 100,000 deep stops at the 200th level
    /// with the guard's error instead of overflowing the stack.
    #[test]
    fn the_guard_stops_deep_documents() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        let mut calls = 0;
        let mut guard = || {
            calls += 1;
            if calls > 200 {
                Err(Error::TooDeep)
            } else {
                Ok(())
            }
        };
        assert_eq!(
            super::canonical_json(&deep, &mut guard),
            Err(Error::TooDeep)
        );
        assert_eq!(calls, 201);
        let deep_obj = format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
        let mut calls = 0;
        let r = super::args_hash(&deep_obj, &mut || {
            calls += 1;
            if calls > 500 {
                Err(Error::TooDeep)
            } else {
                Ok(())
            }
        });
        assert_eq!(r.unwrap_err().sqlstate(), "54001");
        // parse and write both ask: 3 values and 2 containers
        let mut calls = 0;
        let out = super::canonical_json(r#"{"b":[1],"a":2}"#, &mut || {
            calls += 1;
            Ok(())
        });
        assert_eq!(out.as_deref(), Ok(r#"{"a":2,"b":[1]}"#));
        assert_eq!(calls, 4 + 2);
    }

    #[test]
    fn tokens_round_trip_and_every_malformation_is_sg010() {
        let id = "0b3c1f6e-8a8f-4f57-9a0e-51bd2bfb9f21";
        let n = new_nonce();
        assert_ne!(n, new_nonce());
        let t = token(id, &n);
        assert_eq!(t.len(), "propose:".len() + 36 + 1 + 64);
        assert_eq!(parse_token(&t), Ok((id.to_string(), n)));
        let h = hex(&n);
        for bad in [
            format!("proposal:{id}.{h}"),
            format!("{id}.{h}"),
            format!("propose:{id}{h}"),
            format!("propose:.{h}"),
            format!("propose:{id}."),
            format!("propose:{id}.{}", h.to_uppercase()),
            format!("propose:{}.{h}", id.to_uppercase()),
            format!("propose:{id}.{}", &h[..63]),
            format!("propose:{id}.{h}0"),
            format!("propose:{id}.{}g", &h[..63]),
            format!("propose:{id}.{h}.{h}"),
            format!("propose:{id}..{h}"),
            format!("propose:{}.{h}", id.replace('-', "")),
            String::new(),
        ] {
            assert_eq!(parse_token(&bad).unwrap_err().sqlstate(), "SG010", "{bad}");
        }
        assert_eq!(invalid_token().message(), "proposal token is invalid");
    }

    #[test]
    fn the_nonce_check_is_exact() {
        let n = new_nonce();
        let stored = nonce_hash(&n);
        assert!(nonce_matches(&n, &stored));
        let mut other = n;
        other[31] ^= 1;
        assert!(!nonce_matches(&other, &stored));
        assert!(!nonce_matches(&n, &DUMMY_HASH));
        assert!(!nonce_matches(&n, &stored[..31]));
    }

    #[test]
    fn state_checks_in_spec_order() {
        let id = "p";
        assert!(check_consumable(id, Status::Proposed, false, None).is_ok());
        assert!(check_consumable(id, Status::Proposed, false, Some(true)).is_ok());
        let code = |r: Result<()>| r.unwrap_err().sqlstate();
        assert_eq!(
            code(check_consumable(id, Status::Proposed, true, Some(false))),
            "SG011"
        );
        assert_eq!(
            code(check_consumable(id, Status::Expired, false, None)),
            "SG011"
        );
        assert_eq!(
            code(check_consumable(id, Status::Applied, false, None)),
            "SG012"
        );
        assert_eq!(
            code(check_consumable(id, Status::Rejected, true, None)),
            "SG012"
        );
        assert_eq!(
            code(check_consumable(id, Status::Proposed, false, Some(false))),
            "SG013"
        );
    }

    #[test]
    fn canonical_json_sorts_keys_and_keeps_numbers() {
        let c = |s: &str| canonical_json(s).unwrap();
        assert_eq!(
            c(r#"{"b": 1, "a": [true, null, {"d": 2, "c": "x"}]}"#),
            r#"{"a":[true,null,{"c":"x","d":2}],"b":1}"#
        );
        assert_eq!(
            c(" [ 1.50 , -0 , 1e400, 12345678901234567890.123 ] "),
            "[1.50,-0,1e400,12345678901234567890.123]"
        );
        // keys by their bytes, not by jsonb's length-first order
        assert_eq!(
            c(r#"{"bb": 1, "a": 2, "é": 3, "Z": 4}"#),
            r#"{"Z":4,"a":2,"bb":1,"é":3}"#
        );
        // one escape form whatever the input used
        assert_eq!(
            c(r#""\u0041\/\u00e9\ud83d\ude00\n\u0001""#),
            "\"A/é😀\\n\\u0001\""
        );
        assert_eq!(c(r#"{"a\"b": "q\\"}"#), r#"{"a\"b":"q\\"}"#);
        assert_eq!(c("{}"), "{}");
        assert_eq!(c("[]"), "[]");
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "1 2", "\"abc"] {
            assert_eq!(
                canonical_json(bad).unwrap_err().sqlstate(),
                "22023",
                "{bad}"
            );
        }
        assert_eq!(
            args_hash("{}").unwrap(),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            args_hash(r#"{"a":1,"b":2}"#),
            args_hash("{ \"b\" : 2 , \"a\" : 1 }")
        );
        assert_ne!(args_hash(r#"{"a":1}"#), args_hash(r#"{"a":2}"#));
    }

    /// The zero-copy canonicalizer gives the reference's text, or its
    /// error, on random documents: nesting, duplicate-free keys that sort
    /// differently escaped and decoded, every escape, non-ASCII, numbers as
    /// written, whitespace, and malformed text.
    #[test]
    fn canonical_json_equals_the_reference_on_random_documents() {
        struct Rng(u64);
        impl Rng {
            fn next(&mut self) -> u64 {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0
            }
            fn below(&mut self, n: u64) -> u64 {
                self.next() % n
            }
        }
        const PIECES: [&str; 16] = [
            "a",
            "b",
            "#",
            "\\\"",
            "\\\\",
            "\\n",
            "\\u0041",
            "\\u00e9",
            "é",
            "\\/",
            "z",
            "\\ud83d\\ude00",
            "😀",
            "\\t",
            "\\u001f",
            " ",
        ];
        const NUMS: [&str; 6] = ["0", "-1", "1e5", "12345678901234567890", "-0.50", "3.0E-2"];
        fn string(r: &mut Rng) -> String {
            let n = r.below(4);
            let mut s = String::from("\"");
            for _ in 0..n {
                s.push_str(PIECES[r.below(PIECES.len() as u64) as usize]);
            }
            s.push('"');
            s
        }
        fn ws(r: &mut Rng) -> &'static str {
            ["", "", " ", "\n  "][r.below(4) as usize]
        }
        fn value(r: &mut Rng, depth: u32) -> String {
            match r.below(if depth > 3 { 4 } else { 6 }) {
                0 => NUMS[r.below(NUMS.len() as u64) as usize].to_string(),
                1 => string(r),
                2 => ["true", "false", "null"][r.below(3) as usize].to_string(),
                3 => string(r),
                4 => {
                    let n = r.below(4);
                    let items: Vec<String> = (0..n).map(|_| value(r, depth + 1)).collect();
                    format!("[{}{}]", ws(r), items.join(&format!(",{}", ws(r))))
                }
                _ => {
                    let n = r.below(5);
                    let mut seen = std::collections::HashSet::new();
                    let mut members = Vec::new();
                    for _ in 0..n {
                        let k = string(r);
                        // jsonb has unique keys: unique decoded keys here too
                        if seen.insert(reference::canonical_json(&k).unwrap()) {
                            members.push(format!("{k}{}:{}{}", ws(r), ws(r), value(r, depth + 1)));
                        }
                    }
                    format!("{{{}{}}}", ws(r), members.join(","))
                }
            }
        }
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let mut escaped_keys = 0;
        for i in 0..20_000 {
            let mut doc = value(&mut r, 0);
            if i % 10 == 0 {
                // malformed: cut short, or a stray byte
                let cut = r.below(doc.len() as u64 + 1) as usize;
                doc = if doc.is_char_boundary(cut) {
                    doc[..cut].to_string()
                } else {
                    doc + "}"
                };
            }
            if doc.contains('\\') {
                escaped_keys += 1;
            }
            match (canonical_json(&doc), reference::canonical_json(&doc)) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{doc}"),
                (Err(_), Err(_)) => {}
                (a, b) => panic!("{doc}: {a:?} vs {b:?}"),
            }
        }
        assert!(escaped_keys > 1_000, "the generator made too few escapes");
    }
}
