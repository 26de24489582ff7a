//! A provider's signing keys: discovery, the JWKS, and their caching.
//!
//! Keys are cached for as long as the JWKS response's `Cache-Control: max-age`
//! says (between one minute and a day; five minutes without one). A token with
//! a `kid` the cache does not hold triggers one refetch, at most once per
//! `min_refetch` per provider, so key rotation needs no restart and made-up key
//! ids cannot make Certscope hammer the provider. A provider that is down or
//! slow (bounded by a timeout) leaves the cached keys in use; `/readyz` says so.
//!
//! The algorithm of a token is the key's: RSA keys (2048 bits or more) verify
//! RS256/RS384/RS512/PS*, P-256 keys ES256, P-384 keys ES384, Ed25519 keys EdDSA.
//! Symmetric (`oct`) keys, unknown key types, encryption keys and weak RSA keys
//! are ignored; a `kid` published twice verifies nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// The provider's endpoints, from its discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// A verification key and the one algorithm it verifies.
#[derive(Clone)]
pub struct Key {
    pub alg: Algorithm,
    pub decoding: DecodingKey,
}

#[derive(Default)]
struct Cached {
    discovery: Option<Discovery>,
    keys: HashMap<String, Key>,
    /// Key ids published more than once: ambiguous, never used.
    ambiguous: Vec<String>,
    /// Keys without a `kid` (usable only when the set has exactly one).
    anonymous: Vec<Key>,
    expires: Option<Instant>,
    last_fetch: Option<Instant>,
    last_error: Option<String>,
    fetched_ok: Option<Instant>,
}

/// Why no key verifies a token.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the identity provider's keys cannot be fetched: {0}")]
    Unavailable(String),
    #[error("the token's key id {0:?} is not among the identity provider's keys")]
    UnknownKid(String),
    #[error("the token's key id {0:?} is published more than once by the identity provider")]
    Ambiguous(String),
    #[error("the token names no key id and the identity provider has several keys")]
    NoKid,
}

/// The keys of one provider.
pub struct KeySet {
    issuer: String,
    http: reqwest::Client,
    min_refetch: Duration,
    cached: Mutex<Cached>,
    /// One fetch at a time; callers arriving meanwhile use its result.
    fetching: tokio::sync::Mutex<()>,
    /// JWKS fetches made, for tests and `/metrics`.
    pub fetches: std::sync::atomic::AtomicU64,
}

const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
const MIN_MAX_AGE: Duration = Duration::from_secs(60);
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

impl KeySet {
    pub fn new(issuer: &str, http: reqwest::Client, min_refetch: Duration) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            http,
            min_refetch,
            cached: Mutex::new(Cached::default()),
            fetching: tokio::sync::Mutex::new(()),
            fetches: Default::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The discovery document, fetched if it was never fetched.
    pub async fn discovery(&self) -> Result<Discovery, KeyError> {
        if let Some(d) = self.lock().discovery.clone() {
            return Ok(d);
        }
        self.refresh(true).await?;
        self.lock()
            .discovery
            .clone()
            .ok_or_else(|| KeyError::Unavailable("no discovery document".into()))
    }

    /// The key that verifies a token with `kid`.
    pub async fn key(&self, kid: Option<&str>) -> Result<Key, KeyError> {
        let (found, stale, may_refetch) = {
            let c = self.lock();
            let stale = c.expires.is_none_or(|e| Instant::now() >= e);
            let may = c.last_fetch.is_none_or(|t| t.elapsed() >= self.min_refetch);
            (lookup(&c, kid), stale, may)
        };
        match found {
            Ok(key) if !stale => return Ok(key),
            Ok(key) => {
                // expired cache: refresh, but keep serving from it if that fails
                if self.refresh(false).await.is_err() {
                    return Ok(key);
                }
            }
            Err(KeyError::UnknownKid(_) | KeyError::NoKid) if may_refetch || stale => {
                self.refresh(false).await?;
            }
            Err(e) => {
                if self.lock().fetched_ok.is_none() {
                    // never fetched successfully, and not allowed to try again yet
                    let why = self.lock().last_error.clone().unwrap_or_default();
                    return Err(KeyError::Unavailable(why));
                }
                return Err(e);
            }
        }
        lookup(&self.lock(), kid)
    }

    /// Fetches discovery (when needed) and the JWKS. `force` ignores the
    /// refetch interval (start-up, readiness).
    pub async fn refresh(&self, force: bool) -> Result<(), KeyError> {
        let started = Instant::now();
        let _one = self.fetching.lock().await;
        {
            let c = self.lock();
            // someone else fetched while we waited
            if c.last_fetch.is_some_and(|t| t >= started) {
                return match &c.last_error {
                    Some(e) if c.fetched_ok.is_none() => Err(KeyError::Unavailable(e.clone())),
                    _ => Ok(()),
                };
            }
            if !force && c.last_fetch.is_some_and(|t| t.elapsed() < self.min_refetch) {
                return Ok(());
            }
        }
        self.lock().last_fetch = Some(Instant::now());
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.fetch().await {
            Ok((discovery, set, max_age)) => {
                let mut c = self.lock();
                let parsed = parse_set(&set);
                c.discovery = Some(discovery);
                c.keys = parsed.keys;
                c.ambiguous = parsed.ambiguous;
                c.anonymous = parsed.anonymous;
                c.expires = Some(Instant::now() + max_age);
                c.last_error = None;
                c.fetched_ok = Some(Instant::now());
                tracing::info!(issuer = %self.issuer, keys = c.keys.len(), ignored = parsed.ignored, "identity provider keys fetched");
                Ok(())
            }
            Err(why) => {
                tracing::warn!(issuer = %self.issuer, error = %why, "identity provider keys could not be fetched");
                let mut c = self.lock();
                c.last_error = Some(why.clone());
                Err(KeyError::Unavailable(why))
            }
        }
    }

    async fn fetch(&self) -> Result<(Discovery, JwkSet, Duration), String> {
        let known = self.lock().discovery.clone();
        let discovery = match known {
            Some(d) => d,
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.issuer);
                let d: Discovery = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("discovery: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("discovery document: {e}"))?;
                if d.issuer.trim_end_matches('/') != self.issuer {
                    return Err(format!(
                        "discovery names issuer {:?}, not the configured {:?}",
                        d.issuer, self.issuer
                    ));
                }
                d
            }
        };
        let response = self
            .http
            .get(&discovery.jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("JWKS: {e}"))?;
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        let set: JwkSet = response
            .json()
            .await
            .map_err(|e| format!("JWKS document: {e}"))?;
        Ok((discovery, set, max_age))
    }

    /// For `/readyz`: `None` when healthy, else why not (and whether cached
    /// keys still work).
    pub fn problem(&self) -> Option<(String, bool)> {
        let c = self.lock();
        c.last_error.clone().map(|e| (e, c.fetched_ok.is_some()))
    }
}

fn lookup(c: &Cached, kid: Option<&str>) -> Result<Key, KeyError> {
    match kid {
        Some(kid) if c.ambiguous.iter().any(|a| a == kid) => Err(KeyError::Ambiguous(kid.into())),
        Some(kid) => c
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| KeyError::UnknownKid(kid.into())),
        None => match (c.keys.len() + c.anonymous.len(), c.anonymous.first()) {
            (1, Some(k)) => Ok(k.clone()),
            (1, None) => Ok(c.keys.values().next().cloned().ok_or(KeyError::NoKid)?),
            _ => Err(KeyError::NoKid),
        },
    }
}

/// `max-age=N` of a Cache-Control header (`no-store`/`no-cache`: the minimum).
fn max_age(header: &str) -> Option<Duration> {
    let mut age = None;
    for part in header.split(',').map(str::trim) {
        if part.eq_ignore_ascii_case("no-store") || part.eq_ignore_ascii_case("no-cache") {
            return Some(Duration::ZERO);
        }
        if let Some(v) = part.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse().ok().map(Duration::from_secs);
        }
    }
    age
}

struct Parsed {
    keys: HashMap<String, Key>,
    ambiguous: Vec<String>,
    anonymous: Vec<Key>,
    ignored: usize,
}

/// The usable keys of a JWKS; see the module's notes for what is ignored.
fn parse_set(set: &JwkSet) -> Parsed {
    let mut out = Parsed {
        keys: HashMap::new(),
        ambiguous: Vec::new(),
        anonymous: Vec::new(),
        ignored: 0,
    };
    for jwk in &set.keys {
        let Some(key) = usable(jwk) else {
            out.ignored += 1;
            continue;
        };
        match &jwk.common.key_id {
            None => out.anonymous.push(key),
            Some(kid) if out.ambiguous.contains(kid) => {}
            Some(kid) => {
                if out.keys.insert(kid.clone(), key).is_some() {
                    out.keys.remove(kid);
                    out.ambiguous.push(kid.clone());
                }
            }
        }
    }
    out
}

fn usable(jwk: &Jwk) -> Option<Key> {
    use jsonwebtoken::jwk::PublicKeyUse;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let declared = jwk.common.key_algorithm;
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let bits = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.n.trim_end_matches('='))
                .ok()
                .map(|n| n.iter().skip_while(|b| **b == 0).count() * 8)?;
            if bits < 2048 {
                return None;
            }
            match declared {
                None | Some(KeyAlgorithm::RS256) => Algorithm::RS256,
                Some(KeyAlgorithm::RS384) => Algorithm::RS384,
                Some(KeyAlgorithm::RS512) => Algorithm::RS512,
                Some(KeyAlgorithm::PS256) => Algorithm::PS256,
                Some(KeyAlgorithm::PS384) => Algorithm::PS384,
                Some(KeyAlgorithm::PS512) => Algorithm::PS512,
                _ => return None,
            }
        }
        AlgorithmParameters::EllipticCurve(p) => match (&p.curve, declared) {
            (EllipticCurve::P256, None | Some(KeyAlgorithm::ES256)) => Algorithm::ES256,
            (EllipticCurve::P384, None | Some(KeyAlgorithm::ES384)) => Algorithm::ES384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) => match (&p.curve, declared) {
            (EllipticCurve::Ed25519, None | Some(KeyAlgorithm::EdDSA)) => Algorithm::EdDSA,
            _ => return None,
        },
        // symmetric keys would let anyone holding the JWKS sign tokens
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_) => return None,
        _ => return None,
    };
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { alg, decoding })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_keys_are_ignored_and_a_duplicate_kid_verifies_nothing() {
        // a 384-bit RSA key, an oct key, an unknown kty, an encryption key,
        // two keys under one kid, and one good P-256 key
        let n384 = "AQAB".repeat(16); // 48 bytes: a 384-bit modulus
        let n2048 = "AQAB".repeat(85) + "AQ"; // 255 + 1 bytes: 2048 bits
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "weak", "n": n384, "e": "AQAB"},
            {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
            {"kty": "XYZ", "kid": "odd"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n2048, "e": "AQAB"},
            {"kty": "RSA", "kid": "twice", "n": n2048, "e": "AQAB"},
            {"kty": "RSA", "kid": "twice", "n": n2048, "e": "AQAB"},
            {"kty": "EC", "kid": "ec", "crv": "P-256",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}))
        .unwrap();
        let p = parse_set(&set);
        assert_eq!(p.keys.keys().collect::<Vec<_>>(), vec!["ec"]);
        assert_eq!(p.keys["ec"].alg, Algorithm::ES256);
        assert_eq!(p.ambiguous, vec!["twice".to_owned()]);
        let c = Cached {
            keys: p.keys,
            ambiguous: p.ambiguous,
            ..Cached::default()
        };
        assert!(matches!(
            lookup(&c, Some("twice")),
            Err(KeyError::Ambiguous(_))
        ));
        assert!(matches!(
            lookup(&c, Some("weak")),
            Err(KeyError::UnknownKid(_))
        ));
    }

    #[test]
    fn cache_lifetimes_come_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("private"), None);
    }
}
