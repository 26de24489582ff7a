//! Browser sessions: single-use sign-in links, the session cookie, and the
//! CSRF token every state-changing request carries.
//!
//! A session is opened by [`open`] from a verified [`Scope`], whatever proved
//! it: a sign-in link today, an identity provider's callback next. Pages only
//! ever see the [`Session`] extractor, so a new way in changes no page.
//!
//! Only SHA-256 digests of link tokens and session ids are stored; the secrets
//! exist in the link and the cookie alone, and are never logged.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::{ApiError, ApiResult};
use crate::{AppState, Role, Scope};

/// The cookie holding the session id.
pub const COOKIE_NAME: &str = "certscope_session";
/// How long a sign-in link may wait before it is used.
pub const LINK_TTL: Duration = Duration::from_secs(10 * 60);
/// A session ends after this long without a request...
pub const IDLE: Duration = Duration::from_secs(2 * 3600);
/// ...and this long after it was opened, however busy.
pub const ABSOLUTE: Duration = Duration::from_secs(12 * 3600);
/// `last_seen_at` is written at most this often (not on every request).
const TOUCH_EVERY_SECS: f64 = 60.0;
/// The form field and the header a state-changing request carries its token in.
pub const CSRF_FIELD: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub(crate) fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    use base64::Engine;
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub(crate) fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

fn certifications_of(scope: &Scope) -> Option<Vec<i64>> {
    scope
        .certifications
        .as_ref()
        .map(|c| c.iter().copied().collect())
}

/// Stores a sign-in link for `scope`, valid for [`LINK_TTL`], and returns its
/// secret token (the last part of the link's path).
pub async fn create_link(pool: &PgPool, scope: &Scope) -> sqlx::Result<String> {
    let token = random_token("sl_");
    sqlx::query(
        "INSERT INTO web_signin_links (token_hash, organization_id, user_id, role, certifications, expires_at) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(digest(&token))
    .bind(scope.org_id)
    .bind(scope.user_id)
    .bind(scope.role.as_str())
    .bind(certifications_of(scope))
    .bind(LINK_TTL.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(token)
}

/// Who a link signs in, and whether it still can, without spending it (the
/// confirmation page shows this before the button that spends it).
#[derive(Debug)]
pub struct LinkInfo {
    pub organization: String,
    pub user: String,
    pub role: Role,
}

fn link_refusal(used: bool) -> ApiError {
    ApiError::Unauthorized(if used {
        "this sign-in link has already been used; ask for a new one".into()
    } else {
        "this sign-in link has expired (links last 10 minutes); ask for a new one".into()
    })
}

/// The link's person and organization, or 401 saying why it cannot be used.
pub async fn peek_link(pool: &PgPool, token: &str) -> ApiResult<LinkInfo> {
    let row: Option<(String, String, String, bool, bool)> = sqlx::query_as(
        "SELECT o.name, u.display_name, l.role, l.used_at IS NOT NULL, l.expires_at <= now() \
         FROM web_signin_links l JOIN organizations o ON o.id = l.organization_id \
         JOIN users u ON u.organization_id = l.organization_id AND u.id = l.user_id \
         WHERE l.token_hash = $1",
    )
    .bind(digest(token))
    .fetch_optional(pool)
    .await
    .map_err(|e| ApiError::internal("reading a sign-in link", e))?;
    let Some((organization, user, role, used, expired)) = row else {
        return Err(ApiError::Unauthorized(
            "this sign-in link is not valid; check it was copied whole, or ask for a new one"
                .into(),
        ));
    };
    if used || expired {
        return Err(link_refusal(used));
    }
    Ok(LinkInfo {
        organization,
        user,
        role: Role::parse(&role).unwrap_or(Role::Officer),
    })
}

/// Spends a link (once: concurrent redemptions race on one UPDATE and only
/// one wins) and returns the scope it stands for.
pub async fn redeem_link(pool: &PgPool, token: &str) -> ApiResult<Scope> {
    let row: Option<(i64, i64, String, Option<Vec<i64>>)> = sqlx::query_as(
        "UPDATE web_signin_links SET used_at = now() \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now() \
         RETURNING organization_id, user_id, role, certifications",
    )
    .bind(digest(token))
    .fetch_optional(pool)
    .await
    .map_err(|e| ApiError::internal("spending a sign-in link", e))?;
    match row {
        Some((org_id, user_id, role, certifications)) => {
            Ok(scope_of(org_id, user_id, &role, certifications)?)
        }
        // why not: said precisely, from the same row
        None => Err(peek_link(pool, token).await.err().unwrap_or_else(|| {
            ApiError::Unauthorized("this sign-in link cannot be used; ask for a new one".into())
        })),
    }
}

fn scope_of(
    org_id: i64,
    user_id: i64,
    role: &str,
    certifications: Option<Vec<i64>>,
) -> ApiResult<Scope> {
    let role = Role::parse(role)
        .ok_or_else(|| ApiError::internal("reading a session", format!("role {role:?}")))?;
    Ok(Scope {
        user_id,
        org_id,
        role,
        certifications: certifications.map(|c| c.into_iter().collect::<BTreeSet<i64>>()),
    })
}

/// A new session's cookie value and CSRF token.
#[derive(Debug)]
pub struct Opened {
    pub id: String,
    pub csrf: String,
}

/// Opens a session for `scope`; `method` says how it was proved ("link", or
/// an identity provider's name).
pub async fn open(pool: &PgPool, scope: &Scope, method: &str) -> ApiResult<Opened> {
    let id = random_token("ss_");
    let csrf = random_token("");
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, organization_id, user_id, role, certifications, method, csrf_token, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))",
    )
    .bind(digest(&id))
    .bind(scope.org_id)
    .bind(scope.user_id)
    .bind(scope.role.as_str())
    .bind(certifications_of(scope))
    .bind(method)
    .bind(&csrf)
    .bind(ABSOLUTE.as_secs_f64())
    .execute(pool)
    .await
    .map_err(|e| ApiError::internal("opening a session", e))?;
    tracing::info!(
        organization = scope.org_id,
        user = scope.user_id,
        role = scope.role.as_str(),
        method,
        "web session opened"
    );
    Ok(Opened { id, csrf })
}

/// Ends the session (sign-out): its cookie opens nothing from now on.
pub async fn end(pool: &PgPool, session: &Session) -> ApiResult<()> {
    sqlx::query("UPDATE web_sessions SET ended_at = now() WHERE id_hash = $1")
        .bind(&session.id_hash)
        .execute(pool)
        .await
        .map_err(|e| ApiError::internal("ending a session", e))?;
    tracing::info!(
        organization = session.scope.org_id,
        user = session.scope.user_id,
        "web session ended"
    );
    Ok(())
}

/// The signed-in person of a page request.
#[derive(Debug, Clone)]
pub struct Session {
    pub scope: Scope,
    pub csrf: String,
    pub user_name: String,
    pub organization: String,
    /// How it was opened: `link`, or the identity provider's name.
    pub method: String,
    /// Seconds since the epoch when the session ends at the latest.
    pub expires: u64,
    id_hash: Vec<u8>,
}

impl Session {
    /// A key standing for this session in per-caller limits (never the id).
    pub fn key(&self) -> u64 {
        crate::http::key_of("session", &self.id_hash)
    }

    /// Refuses a state-changing request whose CSRF token (form field or
    /// header) is missing or not this session's.
    pub fn check_csrf(&self, sent: Option<&str>) -> ApiResult<()> {
        let sent = sent.unwrap_or_default().as_bytes();
        let mine = self.csrf.as_bytes();
        // constant time over equal lengths
        let same = sent.len() == mine.len()
            && sent.iter().zip(mine).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if same {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this form is missing its security token or it has expired; reload the page and try again"
                    .into(),
            ))
        }
    }
}

/// Refuses a state-changing request made by another site's page: when the
/// browser says where a request comes from (`Origin`, sent with every POST),
/// it must be this server (the `Host`, or the `X-Forwarded-Host` of a proxy).
/// With the CSRF token this also stops "login CSRF": another site posting its
/// own sign-in link to sign a visitor in as someone else.
pub fn check_origin(headers: &HeaderMap) -> ApiResult<()> {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
    let ours = [HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|h| headers.get(h).and_then(|v| v.to_str().ok()))
        .any(|host| host.eq_ignore_ascii_case(authority));
    if ours {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this request came from another site's page; open Certscope directly".into(),
        ))
    }
}

/// The session cookie's value in `headers`, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    cookie_named(headers, COOKIE_NAME)
}

/// The value of cookie `name` in `headers`, if any.
pub fn cookie_named<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

/// Whether the request reached us over TLS (directly, or through a proxy
/// that says so): the cookie is then `Secure`.
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(id: &str, headers: &HeaderMap) -> String {
    format!(
        "{COOKIE_NAME}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        ABSOLUTE.as_secs(),
        if over_tls(headers) { "; Secure" } else { "" }
    )
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(headers: &HeaderMap) -> String {
    format!(
        "{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if over_tls(headers) { "; Secure" } else { "" }
    )
}

/// Why a page request has no session.
#[derive(Debug)]
pub enum NoSession {
    /// No cookie, or one that opens nothing (ended, expired, idle, unknown).
    SignedOut,
    Failed(ApiError),
}

/// The live session named by the request's cookie.
pub async fn lookup(state: &AppState, headers: &HeaderMap) -> Result<Session, NoSession> {
    let id = cookie_value(headers).ok_or(NoSession::SignedOut)?;
    let id_hash = digest(id);
    type Row = (
        i64,
        i64,
        String,
        Option<Vec<i64>>,
        String,
        String,
        String,
        String,
        f64,
        f64,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT s.organization_id, s.user_id, s.role, s.certifications, s.csrf_token, \
                u.display_name, o.name, s.method, \
                extract(epoch FROM s.expires_at)::float8, \
                extract(epoch FROM now() - s.last_seen_at)::float8 \
         FROM web_sessions s JOIN organizations o ON o.id = s.organization_id \
         JOIN users u ON u.organization_id = s.organization_id AND u.id = s.user_id \
         WHERE s.id_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now() \
           AND s.last_seen_at > now() - make_interval(secs => $2)",
    )
    .bind(&id_hash)
    .bind(IDLE.as_secs_f64())
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| NoSession::Failed(ApiError::internal("reading a session", e)))?;
    let (org, user, role, certs, csrf, user_name, organization, method, expires, idle) =
        row.ok_or(NoSession::SignedOut)?;
    if idle > TOUCH_EVERY_SECS {
        sqlx::query("UPDATE web_sessions SET last_seen_at = now() WHERE id_hash = $1")
            .bind(&id_hash)
            .execute(&state.pool)
            .await
            .map_err(|e| NoSession::Failed(ApiError::internal("refreshing a session", e)))?;
    }
    let scope = scope_of(org, user, &role, certs).map_err(NoSession::Failed)?;
    Ok(Session {
        scope,
        csrf,
        user_name,
        organization,
        method,
        expires: expires.max(0.0) as u64,
        id_hash,
    })
}

impl FromRequestParts<AppState> for Session {
    type Rejection = super::pages::PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(s) = parts.extensions.get::<Session>() {
            return Ok(s.clone());
        }
        match lookup(state, &parts.headers).await {
            Ok(s) => {
                parts.extensions.insert(s.clone());
                Ok(s)
            }
            Err(NoSession::SignedOut) => Err(super::pages::PageError::SignedOut {
                providers: super::sign_in_providers(state),
                back_to: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
            }),
            Err(NoSession::Failed(e)) => Err(super::pages::PageError::Api(e)),
        }
    }
}
