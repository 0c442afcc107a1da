//! Index keys of ids (SPEC §0: ids are up to 1,024 bytes). An index entry
//! holding the tenant and two or three such ids of incompressible bytes is
//! larger than PostgreSQL allows (about 2,700 bytes), so the indexes that
//! would hold several ids hold this digest of them instead: SHA-256 over
//! each id's length (8 bytes, big-endian) and bytes, so no two different
//! lists of ids give the same input. 32 bytes, whatever the ids.

use sha2::{Digest, Sha256};

pub fn id_key(ids: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for id in ids {
        h.update((id.len() as u64).to_be_bytes());
        h.update(id.as_bytes());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_prefixed_so_boundaries_matter() {
        assert_ne!(id_key(&["ab", "c"]), id_key(&["a", "bc"]));
        assert_ne!(id_key(&["a", ""]), id_key(&["a"]));
        assert_eq!(id_key(&["u", "g"]), id_key(&["u", "g"]));
        // fixed test vector: SHA-256 of 00..01 'u' 00..01 'g'
        let hex: String = id_key(&["u", "g"])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let mut h = Sha256::new();
        h.update([0, 0, 0, 0, 0, 0, 0, 1, b'u', 0, 0, 0, 0, 0, 0, 0, 1, b'g']);
        let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want);
    }
}
