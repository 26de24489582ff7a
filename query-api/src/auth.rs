//! Bearer tokens (JWT, HS256 pinned, expiry required) and the caller's scope. The
//! scope comes only from a verified token; nothing in a request can widen it.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::ApiError;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 5;

pub use certscope_domain::Role;

/// What a token says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: i64,
    /// The organization's id.
    pub org: i64,
    pub role: Role,
    /// For auditors: the certifications they may see. Absent for other roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certs: Option<Vec<i64>>,
    pub iat: u64,
    pub exp: u64,
}

/// The verified caller: every query, count and lookup is filtered by this.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub user_id: i64,
    pub org_id: i64,
    pub role: Role,
    /// `Some` for auditors: only these certifications (and what hangs off them).
    pub certifications: Option<BTreeSet<i64>>,
}

impl Scope {
    /// Whether the caller may see certification `id` of its own organization.
    pub fn sees_certification(&self, id: i64) -> bool {
        self.certifications.as_ref().is_none_or(|c| c.contains(&id))
    }

    /// Drops the certification ids (JSON numbers) the caller may not see;
    /// returns whether any was dropped.
    pub fn retain_visible(&self, ids: &mut Vec<serde_json::Value>) -> bool {
        let before = ids.len();
        if self.certifications.is_some() {
            ids.retain(|v| v.as_i64().is_some_and(|id| self.sees_certification(id)));
        }
        ids.len() < before
    }

    /// A stable key for caches: two callers with the same key see the same data.
    pub fn cache_key(&self) -> String {
        match &self.certifications {
            None => format!("{}", self.org_id),
            Some(c) => {
                let ids: Vec<String> = c.iter().map(|i| i.to_string()).collect();
                format!("{}/a:{}", self.org_id, ids.join(","))
            }
        }
    }
}

/// Signing and verification keys for one shared secret.
#[derive(Clone)]
pub struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(..)")
    }
}

impl Keys {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Signs a token for `claims` (HS256).
    pub fn issue(&self, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// Verifies a token: signature, algorithm, expiry, and the claims' shape.
    pub fn verify(&self, token: &str) -> Result<Scope, ApiError> {
        self.verify_until(token).map(|(scope, _)| scope)
    }

    /// `verify`, and when the token expires (seconds since the epoch): long-lived
    /// connections end then.
    pub fn verify_until(&self, token: &str) -> Result<(Scope, u64), ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => "the token has expired".to_owned(),
                    ErrorKind::ImmatureSignature => "the token is not valid yet".to_owned(),
                    ErrorKind::InvalidAlgorithm => "the token's algorithm is not HS256".to_owned(),
                    ErrorKind::InvalidSignature => {
                        "the token's signature does not verify".to_owned()
                    }
                    ErrorKind::MissingRequiredClaim(c) => format!("the token has no `{c}` claim"),
                    ErrorKind::Json(_) => "the token's claims are not Certscope claims".to_owned(),
                    _ => "the token is malformed".to_owned(),
                };
                ApiError::Unauthorized(format!("invalid bearer token: {why}"))
            })?;
        let c = data.claims;
        let certifications = match (c.role, c.certs) {
            (Role::Auditor, Some(certs)) => Some(certs.into_iter().collect()),
            (Role::Auditor, None) => {
                return Err(ApiError::Unauthorized(
                    "invalid bearer token: an auditor's token must list its certifications".into(),
                ));
            }
            (_, Some(_)) => {
                return Err(ApiError::Unauthorized(
                    "invalid bearer token: only auditors' tokens list certifications".into(),
                ));
            }
            (_, None) => None,
        };
        Ok((
            Scope {
                user_id: c.sub,
                org_id: c.org,
                role: c.role,
                certifications,
            },
            c.exp,
        ))
    }
}

/// Claims valid for `ttl` from now.
pub fn claims(
    user_id: i64,
    org_id: i64,
    role: Role,
    certs: Option<Vec<i64>>,
    ttl: Duration,
) -> Claims {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    Claims {
        sub: user_id,
        org: org_id,
        role,
        certs,
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
    }
}

/// The bearer token of a request, if it has a well-formed Authorization header.
pub fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    bearer_from(&parts.headers)?.ok_or_else(|| {
        ApiError::Unauthorized("missing `Authorization: Bearer <token>` header".into())
    })
}

/// The bearer token in `headers`: `None` without an Authorization header, an
/// error when it is there but not a bearer token.
pub fn bearer_from(headers: &axum::http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is not valid text".into()))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::Unauthorized("the Authorization scheme must be Bearer".into()))?;
    Ok(Some(token.trim()))
}

/// Organizations a token may name: a validly signed token whose organization
/// does not exist (deleted, or never there) is refused on every route alike,
/// before any handler runs. Answers are cached briefly: a deleted
/// organization's tokens stop working within [`Organizations::TTL`].
pub struct Organizations {
    known: moka::future::Cache<i64, bool>,
}

impl Default for Organizations {
    fn default() -> Self {
        Self {
            known: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Self::TTL)
                .build(),
        }
    }
}

impl Organizations {
    pub const TTL: Duration = Duration::from_secs(30);

    /// Ok when `scope`'s organization exists; 403 saying so when it does not.
    pub async fn admit(&self, pool: &sqlx::PgPool, scope: &Scope) -> Result<(), ApiError> {
        let id = scope.org_id;
        let exists = id > 0
            && self
                .known
                .try_get_with(id, async {
                    sqlx::query_scalar::<_, bool>(
                        "SELECT EXISTS (SELECT 1 FROM organizations WHERE id = $1)",
                    )
                    .bind(id)
                    .fetch_one(pool)
                    .await
                })
                .await
                .map_err(|e| ApiError::internal("looking up the token's organization", e))?;
        if exists {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "the token names organization {id}, which does not exist"
            )))
        }
    }
}

/// Verifies a bearer token and admits its caller: the scope and when the token
/// expires. HS256 tokens are Certscope's own (`certscope token`); others must
/// come from a configured identity provider (see [`crate::sso`]).
pub async fn authenticate(state: &AppState, token: &str) -> Result<(Scope, u64), ApiError> {
    let providers = &state.api.providers;
    let (scope, exp) = if providers.is_empty() || crate::sso::is_own_token(token)? {
        state.api.keys.verify_until(token)?
    } else {
        providers.verify(token, &state.pool).await?
    };
    state.api.organizations.admit(&state.pool, &scope).await?;
    Ok((scope, exp))
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(scope) = parts.extensions.get::<Scope>() {
            return Ok(scope.clone());
        }
        let (scope, _) = authenticate(state, bearer(parts)?).await?;
        parts.extensions.insert(scope.clone());
        Ok(scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_tampering_is_refused() {
        let keys = Keys::new(b"a secret of some length");
        let token = keys
            .issue(&claims(
                7,
                3,
                Role::Auditor,
                Some(vec![11, 12]),
                Duration::from_secs(60),
            ))
            .unwrap();
        let scope = keys.verify(&token).unwrap();
        assert_eq!(
            (scope.user_id, scope.org_id, scope.role),
            (7, 3, Role::Auditor)
        );
        assert!(scope.sees_certification(11) && !scope.sees_certification(13));
        let other = Keys::new(b"another secret");
        assert!(matches!(
            other.verify(&token),
            Err(ApiError::Unauthorized(_))
        ));
        let expired = claims(7, 3, Role::Officer, None, Duration::ZERO);
        let mut expired = expired;
        expired.exp -= LEEWAY_SECS + 60;
        let token = keys.issue(&expired).unwrap();
        let err = keys.verify(&token).unwrap_err().to_string();
        assert!(err.contains("expired"), "{err}");
    }
}
