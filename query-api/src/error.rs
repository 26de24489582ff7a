//! One error type for every route: a status, a stable machine code and a message
//! that tells the caller what was wrong. User mistakes are 4xx; 5xx only for our
//! own failures. A 5xx body is generic; its cause travels in the response's
//! extensions and is logged once, inside the request's span, by the HTTP layer
//! (never with document text).

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: bad syntax, unknown parameter, bad value.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// Also the answer for ids that belong to another organization.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// None of the media types the client accepts can be produced.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    /// The index is not ready, or has not reached the position asked for.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Duration,
    },
    #[error("the request URI is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("request timed out")]
    Timeout,
    #[error("internal error while {}", .0.context)]
    Internal(Arc<InternalCause>),
}

/// What went wrong on our side, with its source chain: carried to the logging
/// layer in the response's extensions, never sent to the client.
#[derive(Debug)]
pub struct InternalCause {
    /// What the server was doing ("running a search", "rendering the PDF").
    pub context: &'static str,
    pub source: Box<dyn StdError + Send + Sync>,
}

impl std::fmt::Display for InternalCause {
    /// The context and every source in the chain: `context: error: cause: ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.context, self.source)?;
        let mut next = self.source.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// Every machine code a 400 carries. The API document lists them (the
/// contract), and [`ApiError::bad`] refuses any other in debug builds, so a new
/// code cannot reach clients undocumented.
pub const BAD_REQUEST_CODES: &[&str] = &[
    "bad_parameter",
    "unknown_parameter",
    "bad_query",
    "query_too_long",
    "bad_date",
    "bad_sort",
    "unknown_facet",
    "bad_cursor",
    "cursor_expired",
    "bad_position",
    "bad_id",
    "bad_include",
    "future_as_of",
    "inverted_period",
    "unknown_kpi",
    "unknown_framework",
    "unsupported_format",
    "missing_rooms",
    "too_many_rooms",
    "unknown_room",
    "forbidden",
    "not_found",
    "unavailable",
    "bad_last_event_id",
    "websocket_required",
];

/// The code of every other status an API route answers with.
pub const STATUS_CODES: &[(u16, &str)] = &[
    (401, "unauthorized"),
    (403, "forbidden"),
    (404, "not_found"),
    (406, "not_acceptable"),
    (413, "too_large"),
    (414, "uri_too_long"),
    (429, "rate_limited"),
    (500, "internal"),
    (503, "unavailable"),
    (504, "timeout"),
];

impl ApiError {
    pub fn bad(code: &'static str, message: impl Into<String>) -> Self {
        debug_assert!(
            BAD_REQUEST_CODES.contains(&code),
            "error code `{code}` is not in BAD_REQUEST_CODES (the API document)"
        );
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// Our failure while doing `context`, keeping `source` (and its chain).
    ///
    /// A database that is busy or away is not our bug and not the caller's:
    /// no free connection within the pool's acquire timeout, a statement
    /// cancelled by `statement_timeout`, or a lost connection anywhere in the
    /// chain answers 503 with `Retry-After` (and a warning in the log), so a
    /// client backs off instead of seeing a 500 or hanging.
    pub fn internal(
        context: &'static str,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Self {
        let source = source.into();
        if let Some(why) = database_unavailable(source.as_ref()) {
            tracing::warn!(context, why, "database unavailable: answering 503");
            return ApiError::Unavailable {
                message: format!("the database is {why}; try again in a moment"),
                retry_after: Duration::from_secs(1),
            };
        }
        ApiError::Internal(Arc::new(InternalCause { context, source }))
    }

    /// The HTTP status of the error.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// What the caller is told: the message, or for our own failures a
    /// generic line (the cause goes to the log only).
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Internal(_) => "internal error; the cause is in the server log".to_owned(),
            other => other.to_string(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "not_acceptable"),
            ApiError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal("querying the database", e)
    }
}

impl From<tantivy::TantivyError> for ApiError {
    fn from(e: tantivy::TantivyError) -> Self {
        ApiError::internal("reading the index", e)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = self.public_message();
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. }
            | ApiError::Unavailable { retry_after, .. } => Some(retry_after.as_secs().max(1)),
            _ => None,
        };
        let mut response = (
            status,
            Json(Body {
                error: Detail { code, message },
            }),
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if let ApiError::Internal(cause) = self {
            // logged once, in the request's span, by `http::observe`
            response.extensions_mut().insert(cause);
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"certscope\""),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Why the database cannot answer now, if that is what `error` (or an error
/// in its chain) says.
fn database_unavailable(error: &(dyn StdError + 'static)) -> Option<&'static str> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(sql) = e.downcast_ref::<sqlx::Error>() {
            match sql {
                sqlx::Error::PoolTimedOut => {
                    return Some("busy: no connection was free within the acquire timeout");
                }
                sqlx::Error::PoolClosed => return Some("shutting down"),
                sqlx::Error::Io(_) => return Some("unreachable: the connection was lost"),
                sqlx::Error::Database(d) if d.code().as_deref() == Some("57014") => {
                    return Some("too slow: the statement timeout cancelled the query");
                }
                // the server is shutting down or restarting (admin_shutdown,
                // crash_shutdown, cannot_connect_now)
                sqlx::Error::Database(d)
                    if matches!(d.code().as_deref(), Some("57P01" | "57P02" | "57P03")) =>
                {
                    return Some("restarting");
                }
                _ => {}
            }
        }
        next = e.source();
    }
    None
}
