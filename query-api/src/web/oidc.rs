//! Browser sign-in at an identity provider (OpenID Connect authorization-code
//! flow with PKCE, `state` and `nonce`), ending in the same web session a
//! sign-in link opens ([`session::open`]).
//!
//! `/signin/sso/{provider}` stores a pending sign-in (state digest, nonce,
//! PKCE verifier, where to return) and binds it to the browser with a cookie,
//! then redirects to the provider. The callback refuses a `state` that is not
//! this browser's or was already spent, exchanges the code with the verifier,
//! verifies the ID token with the provider's published keys (issuer, our
//! client as audience, expiry, the nonce), maps its claims like an access
//! token's, and opens the session.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::session;
use super::{PageError, paths};
use crate::AppState;
use crate::error::ApiError;
use crate::sso::Provider;

/// The cookie binding a pending sign-in to the browser that started it.
const STATE_COOKIE: &str = "certscope_oidc";
/// How long a sign-in at the provider may take.
const PENDING_SECS: f64 = 600.0;

fn refuse(why: impl Into<String>) -> PageError {
    PageError::Api(ApiError::Unauthorized(why.into()))
}

/// The provider named in the path, if it signs people in (has an OAuth client).
fn browser_provider<'a>(state: &'a AppState, name: &str) -> Result<&'a Provider, PageError> {
    state
        .api
        .providers
        .by_name(name)
        .filter(|p| p.config.client_id.is_some())
        .ok_or_else(|| {
            PageError::Api(ApiError::NotFound(format!(
                "no identity provider {name:?} signs people in here"
            )))
        })
}

/// This server as the browser reached it: `scheme://host` from `Host` (or a
/// proxy's `X-Forwarded-Host` and `X-Forwarded-Proto`).
fn public_base(headers: &HeaderMap) -> Option<String> {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok())?;
    let scheme = if session::over_tls(headers) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

/// Where the provider sends the browser back (the address must be registered
/// with the provider, so a forged `Host` only gets a refusal there).
fn callback_url(headers: &HeaderMap, name: &str) -> Result<String, PageError> {
    let base = public_base(headers)
        .ok_or_else(|| PageError::Api(ApiError::bad("bad_parameter", "the request has no Host")))?;
    Ok(format!(
        "{base}/signin/sso/{}/callback",
        crate::encode_query_value(name)
    ))
}

/// A local page to return to (never another site: `//evil` and `/\evil` are refused).
fn local_path(p: &str) -> Option<&str> {
    (p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\")).then_some(p)
}

pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let provider = browser_provider(&state, &name)?;
    let discovery = provider.keys.discovery().await.map_err(|_| {
        PageError::Api(ApiError::Unavailable {
            message: format!("identity provider {name:?} cannot be reached; try again shortly"),
            retry_after: std::time::Duration::from_secs(5),
        })
    })?;
    let authorize = discovery.authorization_endpoint.ok_or_else(|| {
        refuse(format!(
            "identity provider {name:?} publishes no authorization endpoint"
        ))
    })?;
    let return_to = crate::routes::pairs(raw)?
        .into_iter()
        .find(|(k, _)| k == "return_to")
        .and_then(|(_, v)| local_path(&v).map(str::to_owned))
        .unwrap_or_else(|| paths::SEARCH.to_owned());
    let pending = session::random_token("");
    let nonce = session::random_token("");
    let verifier = session::random_token("");
    sqlx::query(
        "INSERT INTO web_oidc_logins (state_hash, provider, nonce, code_verifier, return_to, expires_at) \
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
    )
    .bind(session::digest(&pending))
    .bind(&name)
    .bind(&nonce)
    .bind(&verifier)
    .bind(&return_to)
    .bind(PENDING_SECS)
    .execute(&state.pool)
    .await
    .map_err(ApiError::from)?;
    use base64::Engine;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let client_id = provider.config.client_id.as_deref().unwrap_or_default();
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", &callback_url(&headers, &name)?),
        ("scope", "openid email profile"),
        ("state", &pending),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap_or_default();
    let sep = if authorize.contains('?') { '&' } else { '?' };
    let mut r = Redirect::to(&format!("{authorize}{sep}{query}")).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={pending}; Path=/signin/sso; HttpOnly; SameSite=Lax; Max-Age={}{}",
        PENDING_SECS as u64,
        if session::over_tls(&headers) {
            "; Secure"
        } else {
            ""
        }
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

fn state_cookie(headers: &HeaderMap) -> Option<&str> {
    session::cookie_named(headers, STATE_COOKIE)
}

pub async fn callback(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let provider = browser_provider(&state, &name)?;
    let params = crate::routes::pairs(raw)?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if let Some(error) = get("error") {
        return Err(refuse(format!(
            "identity provider {name:?} did not sign you in: {error}{}",
            get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        )));
    }
    let (Some(code), Some(pending)) = (get("code"), get("state")) else {
        return Err(refuse(
            "the identity provider's answer has no code or state; start again",
        ));
    };
    // the state must be the one this browser was sent off with
    if state_cookie(&headers) != Some(pending) {
        return Err(refuse(
            "this sign-in was not started in this browser (its state does not match); start again",
        ));
    }
    let row: Option<(String, String, String)> = sqlx::query_as(
        "UPDATE web_oidc_logins SET used_at = now() \
         WHERE state_hash = $1 AND provider = $2 AND used_at IS NULL AND expires_at > now() \
         RETURNING nonce, code_verifier, return_to",
    )
    .bind(session::digest(pending))
    .bind(&name)
    .fetch_optional(&state.pool)
    .await
    .map_err(ApiError::from)?;
    let Some((nonce, verifier, return_to)) = row else {
        return Err(refuse(
            "this sign-in attempt is unknown, expired or already used; start again",
        ));
    };
    let discovery = provider
        .keys
        .discovery()
        .await
        .map_err(|_| refuse(format!("identity provider {name:?} cannot be reached")))?;
    let token_endpoint = discovery
        .token_endpoint
        .ok_or_else(|| refuse(format!("identity provider {name:?} has no token endpoint")))?;
    let redirect_uri = callback_url(&headers, &name)?;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    if let Some(id) = provider.config.client_id.as_deref() {
        form.push(("client_id", id));
    }
    if let Some(secret) = provider.config.client_secret.as_deref() {
        form.push(("client_secret", secret));
    }
    let answer = state
        .api
        .providers
        .http()
        .post(&token_endpoint)
        .form(&form)
        .send()
        .await
        .map_err(|_| refuse(format!("identity provider {name:?} cannot be reached")))?;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        // the provider's own words (a replayed or expired code says so)
        let why = body
            .get("error_description")
            .or_else(|| body.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        return Err(refuse(format!(
            "identity provider {name:?} refused the sign-in code: {why}"
        )));
    }
    let id_token = body
        .get("id_token")
        .and_then(Value::as_str)
        .ok_or_else(|| refuse(format!("identity provider {name:?} sent no ID token")))?;
    let claims = provider.verify_id_token(id_token, &nonce).await?;
    let scope = crate::sso::mapping::scope(&claims, &provider.config.claims, &state.pool).await?;
    state.api.organizations.admit(&state.pool, &scope).await?;
    let opened = session::open(&state.pool, &scope, &name).await?;
    let mut r = Redirect::to(local_path(&return_to).unwrap_or(paths::SEARCH)).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&opened.id, &headers)) {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}=; Path=/signin/sso; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        h.append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Where the browser goes after sign-out from a session `method` opened: the
/// provider's end-session endpoint (RP-initiated logout) when it has one,
/// coming back to our sign-in page.
pub async fn logout_url(state: &AppState, method: &str, headers: &HeaderMap) -> Option<String> {
    let provider = state.api.providers.by_name(method)?;
    let client_id = provider.config.client_id.as_deref()?;
    let end = provider.keys.discovery().await.ok()?.end_session_endpoint?;
    let back = format!("{}{}", public_base(headers)?, paths::SIGNIN);
    let query = serde_urlencoded::to_string([
        ("client_id", client_id),
        ("post_logout_redirect_uri", &back),
    ])
    .ok()?;
    let sep = if end.contains('?') { '&' } else { '?' };
    Some(format!("{end}{sep}{query}"))
}
