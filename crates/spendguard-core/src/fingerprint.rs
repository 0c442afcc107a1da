//! The request fingerprint stored with every event that carries an
//! `event_id`: a replay with the same fingerprint returns the recorded
//! result, a different fingerprint is SG004 (SPEC §1 Idempotency).
//!
//! The encoding is length-prefixed, so no separator or quoting rule can make
//! two different requests collide, and it depends on nothing that may change
//! between Rust versions (fingerprints are stored and compared for ever).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Starts a fingerprint for one request kind (the event kind).
    pub fn new(kind: &str) -> Self {
        let mut f = Fingerprint(String::with_capacity(96));
        f.text(Some(kind));
        f
    }

    pub fn text(&mut self, v: Option<&str>) -> &mut Self {
        match v {
            Some(s) => {
                self.0.push_str(&format!("s{}:", s.len()));
                self.0.push_str(s);
            }
            None => self.0.push('n'),
        }
        self
    }

    pub fn int(&mut self, v: Option<i64>) -> &mut Self {
        match v {
            Some(i) => self.0.push_str(&format!("i{i};")),
            None => self.0.push('n'),
        }
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinguishes_what_separators_would_not() {
        let a = Fingerprint::new("k")
            .text(Some("a:b"))
            .text(Some("c"))
            .clone();
        let b = Fingerprint::new("k")
            .text(Some("a"))
            .text(Some("b:c"))
            .clone();
        assert_ne!(a, b);
        let n = Fingerprint::new("k").text(None).int(Some(1)).clone();
        let e = Fingerprint::new("k").text(Some("")).int(Some(1)).clone();
        assert_ne!(n, e);
        assert_eq!(
            Fingerprint::new("k").int(Some(-3)).int(None).as_str(),
            "s1:ki-3;n"
        );
    }
}
