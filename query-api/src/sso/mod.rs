//! Single sign-on: bearer tokens signed by an organization's identity provider
//! (OpenID Connect), verified against the provider's published keys, and their
//! claims mapped onto a Certscope [`Scope`].
//!
//! A token's header decides nothing it should not: HS256 tokens go to
//! Certscope's own secret (`certscope token`, service accounts) and never to a
//! provider's keys; any other token is looked up by its issuer among the
//! configured providers, its key by `kid`, and is verified with the algorithm
//! of that key (`none`, HS/RS confusion and keys the provider did not publish
//! are refused). Issuer, audience, `exp` and `nbf` (with the usual skew) are
//! checked.

pub mod config;
pub mod jwks;
pub mod mapping;

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;
use sqlx::PgPool;

pub use config::{ClaimMapping, ProviderConfig};
use jwks::{KeyError, KeySet};

use crate::auth::{LEEWAY_SECS, Scope};
use crate::error::ApiError;

/// Bound on every request to a provider.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);

/// One configured provider and its keys.
pub struct Provider {
    pub config: ProviderConfig,
    pub keys: KeySet,
}

/// The providers Certscope trusts.
#[derive(Default, Clone)]
pub struct Providers {
    all: Arc<Vec<Provider>>,
    /// Bounded client for discovery, keys and token exchanges.
    http: reqwest::Client,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.all.iter().map(|p| &p.config.name))
            .finish()
    }
}

fn unauthorized(why: impl std::fmt::Display) -> ApiError {
    ApiError::Unauthorized(format!("invalid bearer token: {why}"))
}

impl Providers {
    pub fn new(configs: Vec<ProviderConfig>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .connect_timeout(PROVIDER_TIMEOUT)
            .build()
            .unwrap_or_default();
        let all = configs
            .into_iter()
            .map(|config| Provider {
                keys: KeySet::new(
                    &config.issuer,
                    http.clone(),
                    Duration::from_secs(config.min_refetch_secs),
                ),
                config,
            })
            .collect();
        Self {
            all: Arc::new(all),
            http,
        }
    }

    /// The client for requests to providers (bounded timeouts).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Provider> {
        self.all.iter()
    }

    pub fn by_name(&self, name: &str) -> Option<&Provider> {
        self.all.iter().find(|p| p.config.name == name)
    }

    fn by_issuer(&self, issuer: &str) -> Option<&Provider> {
        let issuer = issuer.trim_end_matches('/');
        self.all
            .iter()
            .find(|p| p.config.issuer.trim_end_matches('/') == issuer)
    }

    /// Fetches every provider's discovery and keys (at start, in the
    /// background); failures show in `/readyz` and are retried on demand.
    pub async fn warm_up(&self) {
        for p in self.all.iter() {
            let _ = p.keys.refresh(true).await;
        }
    }

    /// Verifies a provider-signed token; the scope and `exp`.
    pub async fn verify(&self, token: &str, pool: &PgPool) -> Result<(Scope, u64), ApiError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| unauthorized("the token is malformed"))?;
        // which provider: the unverified issuer picks it; its keys then verify
        let unverified: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
            .map(|d| d.claims)
            .map_err(|_| unauthorized("the token's claims are not JSON"))?;
        let issuer = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| unauthorized("the token has no `iss` claim"))?;
        let provider = self
            .by_issuer(issuer)
            .ok_or_else(|| unauthorized(format!("issuer {issuer:?} is not trusted")))?;
        provider.verify(token, &header, pool).await
    }
}

impl Provider {
    async fn verify(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        pool: &PgPool,
    ) -> Result<(Scope, u64), ApiError> {
        let claims = self
            .decode(token, header, &self.config.audience, unauthorized)
            .await?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_u64)
            .ok_or_else(|| unauthorized("the token's `exp` is not a number"))?;
        let scope = mapping::scope(&claims, &self.config.claims, pool).await?;
        Ok((scope, exp))
    }

    /// The claims of an ID token from this provider's token endpoint (browser
    /// sign-in): verified like an access token, for the audience of our OAuth
    /// client, and carrying the `nonce` this sign-in sent.
    pub async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<Value, ApiError> {
        let refuse = |why: &dyn std::fmt::Display| {
            ApiError::Unauthorized(format!(
                "the identity provider's ID token is not valid: {why}"
            ))
        };
        let client = self
            .config
            .client_id
            .as_deref()
            .ok_or_else(|| refuse(&"no OAuth client is configured"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse(&"it is malformed"))?;
        let claims = self.decode(token, &header, client, |w| refuse(&w)).await?;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(refuse(&"its nonce is not this sign-in's"));
        }
        Ok(claims)
    }

    /// Verifies `token`'s signature with this provider's key for its `kid`
    /// (with that key's algorithm, never the header's), its issuer, `audience`,
    /// `exp` and `nbf`; the claims.
    async fn decode(
        &self,
        token: &str,
        header: &jsonwebtoken::Header,
        audience: &str,
        refuse: impl Fn(String) -> ApiError,
    ) -> Result<Value, ApiError> {
        let key = self
            .keys
            .key(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyError::Unavailable(_) => ApiError::Unavailable {
                    message: format!(
                        "identity provider {:?} cannot be reached to verify the token",
                        self.config.name
                    ),
                    retry_after: Duration::from_secs(5),
                },
                other => refuse(other.to_string()),
            })?;
        let mut validation = Validation::new(key.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data =
            jsonwebtoken::decode::<Value>(token, &key.decoding, &validation).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                refuse(match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                    ErrorKind::ImmatureSignature => "the token is not valid yet".to_owned(),
                    ErrorKind::InvalidAlgorithm => {
                        format!("the token's algorithm is not its key's ({:?})", key.alg)
                    }
                    ErrorKind::InvalidSignature => {
                        "the token's signature does not verify".to_owned()
                    }
                    ErrorKind::InvalidAudience => {
                        format!("the token's audience is not {audience:?}")
                    }
                    ErrorKind::InvalidIssuer => "the token's issuer does not match".to_owned(),
                    ErrorKind::MissingRequiredClaim(c) => {
                        format!("the token has no `{c}` claim")
                    }
                    _ => "the token is malformed".to_owned(),
                })
            })?;
        Ok(data.claims)
    }
}

/// Whether a token's header asks for Certscope's own secret (HS256): those
/// never reach a provider's keys, and provider tokens never reach the secret.
pub fn is_own_token(token: &str) -> Result<bool, ApiError> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| unauthorized("the token is malformed"))?;
    Ok(header.alg == Algorithm::HS256)
}
