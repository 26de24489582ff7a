//! Opaque cursors: the pinned searcher a listing started on, the request it belongs
//! to, and the sort key of the last hit returned. The next page is everything
//! strictly after that key on the same searcher, so pages never repeat or skip
//! a hit while writes happen.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::collect::{Primary, SortKey};
use crate::error::ApiError;

const MAX_CURSOR_CHARS: usize = 600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Pinned searcher id (see `PinnedSearchers`).
    pub s: u64,
    /// Hash of the canonical request.
    pub h: u64,
    /// Primary sort value: a number (its f64 bits, so that it survives JSON
    /// exactly), a string, or null when missing.
    pub p: Option<PrimaryValue>,
    pub k: u8,
    pub i: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PrimaryValue {
    Bits(u64),
    Str(String),
}

fn invalid() -> ApiError {
    ApiError::bad(
        "bad_cursor",
        "`cursor` is not a cursor this API returned; start again without it",
    )
}

impl Cursor {
    pub fn new(searcher: u64, request: u64, key: &SortKey) -> Self {
        Self {
            s: searcher,
            h: request,
            p: match &key.primary {
                Primary::Num(n) => Some(PrimaryValue::Bits(n.to_bits())),
                Primary::Str(s) => Some(PrimaryValue::Str(s.clone())),
                Primary::Missing => None,
            },
            k: key.kind,
            i: key.id,
        }
    }

    pub fn key(&self) -> SortKey {
        SortKey {
            primary: match &self.p {
                Some(PrimaryValue::Bits(n)) => Primary::Num(f64::from_bits(*n)),
                Some(PrimaryValue::Str(s)) => Primary::Str(s.clone()),
                None => Primary::Missing,
            },
            kind: self.k,
            id: self.i,
        }
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    pub fn decode(text: &str) -> Result<Self, ApiError> {
        if text.len() > MAX_CURSOR_CHARS {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }
}

/// FNV-1a of a string, for request hashes.
pub fn hash(text: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = fnv::FnvHasher::default();
    h.write(text.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let key = SortKey {
            primary: Primary::Str("access control policy".into()),
            kind: 3,
            id: 42,
        };
        let c = Cursor::new(9, 7, &key);
        let back = Cursor::decode(&c.encode()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.key(), key);
        // scores survive exactly (a JSON float may not)
        for score in [
            29.615_993_499_755_86_f64,
            0.1 + 0.2,
            f64::from(1.234_567_9_f32),
        ] {
            let key = SortKey {
                primary: Primary::Num(score),
                kind: 1,
                id: 2,
            };
            let back = Cursor::decode(&Cursor::new(1, 1, &key).encode()).unwrap();
            assert_eq!(back.key(), key);
        }
        for bad in ["", "!!", "eyJ4IjoxfQ", &"A".repeat(700)] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
