//! The API's contract: `GET /openapi.json` (OpenAPI 3.1) derived from the code,
//! `GET /asyncapi.json` for the live events, and `GET /docs`, Swagger UI served
//! from this binary (no CDN).
//!
//! The document is assembled from the route registry that builds the router
//! (`crate::Routes`): each route registers its handler and its
//! `#[utoipa::path]` operation in one call, so the router and the document
//! cannot list different routes. Parameters come from the decoders' own
//! constants (`params`), answers from the response types and the report model
//! (`schemas`, `certscope_reports::model` with its `openapi` feature).

pub mod asyncapi;
pub mod params;
pub mod schemas;

use std::sync::{Arc, OnceLock};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};

use certscope_reports::section::Section;

use crate::error::{ApiError, BAD_REQUEST_CODES, STATUS_CODES};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Certscope API",
        description = "Search, listings, details, metrics and board reports of compliance data, strictly scoped to the caller's organization (and, for an auditor, its certifications). Send `Authorization: Bearer <token>` (`certscope token`, or a token of your identity provider). Live events: see `/asyncapi.json`.",
    ),
    modifiers(&Bearer),
    components(schemas(schemas::ErrorBody)),
    security(("bearer" = [])),
    tags(
        (name = "search", description = "Full-text search, suggestions and listings, from the index"),
        (name = "details", description = "One record from PostgreSQL with related records on request"),
        (name = "metrics", description = "Report sections (JSON or CSV) and the board PDF, one report model"),
        (name = "events", description = "Live events over WebSocket and Server-Sent Events (see /asyncapi.json)"),
        (name = "operations", description = "Health, readiness, Prometheus metrics and this documentation"),
    )
)]
struct ApiDoc;

struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A Certscope token (HS256, `certscope token`) or an identity provider's token",
                    ))
                    .build(),
            ),
        );
    }
}

/// The error responses of an authenticated route, each naming its codes.
pub(crate) fn add_error_responses(op: &mut Operation) {
    let error = |description: String| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let responses = &mut op.responses.responses;
    responses.entry("400".into()).or_insert_with(|| {
        error(format!(
            "Bad input; `error.code` is one of {}, and the message names the parameter",
            BAD_REQUEST_CODES.join(", ")
        ))
        .into()
    });
    for (status, code) in STATUS_CODES {
        // 406 and 413 belong to the routes that negotiate a format or take a
        // body; any URI can be too long
        if matches!(status, 406 | 413) {
            continue;
        }
        responses
            .entry(status.to_string())
            .or_insert_with(|| error(format!("`error.code` is `{code}`")).into());
    }
}

/// The document, assembled once from the route registry.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let registry = crate::registry();
        let mut doc = ApiDoc::openapi();
        doc.paths = registry.paths;
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, schema) in registry.schemas {
            components.schemas.entry(name).or_insert(schema);
        }
        let mut value = serde_json::to_value(&doc).unwrap_or_default();
        if let Some(schemas) = value.pointer_mut("/components/schemas") {
            close_objects(schemas);
        }
        add_section_examples(&mut value);
        value
    })
}

/// An answer of each report section from the demo data (`certscope demo`,
/// Northwind Health, lists cut to their first rows), shown by the docs page
/// and checked against the section's schema by the tests.
const SECTION_EXAMPLES: [(Section, &str); 8] = [
    (Section::Summary, include_str!("examples/summary.json")),
    (Section::Posture, include_str!("examples/posture.json")),
    (Section::Heatmap, include_str!("examples/heatmap.json")),
    (Section::Matrix, include_str!("examples/matrix.json")),
    (Section::Trends, include_str!("examples/trends.json")),
    (Section::Forecast, include_str!("examples/forecast.json")),
    (Section::Overdue, include_str!("examples/overdue.json")),
    (Section::Kpis, include_str!("examples/kpis.json")),
];

fn add_section_examples(doc: &mut Value) {
    for (section, text) in SECTION_EXAMPLES {
        let pointer = format!(
            "/paths/~1v1~1metrics~1{}/get/responses/200/content/application~1json",
            section.as_str()
        );
        if let (Some(Value::Object(media)), Ok(example)) = (
            doc.pointer_mut(&pointer),
            serde_json::from_str::<Value>(text),
        ) {
            media.insert("example".into(), example);
        }
    }
}

/// Every object with listed properties admits no others: a field a handler
/// adds without adding it here is a contract break, caught by the tests that
/// validate responses against the document.
pub(crate) fn close_objects(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if map.contains_key("properties") && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for child in map.values_mut() {
                close_objects(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// This document.
#[utoipa::path(get, path = crate::paths::OPENAPI, tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = serde_json::Value)))]
pub async fn document() -> Response {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    let body = BODY.get_or_init(|| json_bytes(spec())).clone();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The AsyncAPI 3.0 document of the live events.
#[utoipa::path(get, path = crate::paths::ASYNCAPI, tag = "operations",
    responses((status = 200, description = "The AsyncAPI 3.0 document of /v1/events and /v1/events/stream", content_type = "application/json", body = serde_json::Value)))]
pub async fn asyncapi_document() -> Response {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    let body = BODY.get_or_init(|| json_bytes(asyncapi::spec())).clone();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The docs page: Swagger UI's assets from this binary (vendored at build
/// time by `utoipa-swagger-ui`), links to both documents. "Authorize" takes a
/// pasted bearer token for "Try it out"; it is kept in the page only.
const DOCS: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Certscope API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/swagger-ui.css"><link rel="stylesheet" href="/docs/index.css">
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png"></head>
<body><nav style="font:14px sans-serif;padding:.6em 1em;background:#1b1b1b;color:#eee">Certscope API:
<a style="color:#9cf" href="/openapi.json">OpenAPI 3.1 document</a> ·
<a style="color:#9cf" href="/asyncapi.json">AsyncAPI 3.0 document of the live events</a> ·
use "Authorize" to paste a bearer token (<code>certscope token</code>) for "Try it out"</nav>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
<script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
<script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
</body></html>"#;

fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    static CONFIG: OnceLock<Arc<utoipa_swagger_ui::Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                utoipa_swagger_ui::Config::new([crate::paths::OPENAPI])
                    .try_it_out_enabled(true)
                    .persist_authorization(false),
            )
        })
        .clone()
}

/// Browsable documentation of this API (Swagger UI, no CDN), with "try it"
/// using a pasted token.
#[utoipa::path(get, path = crate::paths::DOCS, tag = "operations",
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String)))]
pub async fn docs_page() -> Html<&'static str> {
    Html(DOCS)
}

/// The docs page's scripts, styles and icons. Swagger UI's files are
/// embedded gzipped: sent as they are to a client that accepts gzip (every
/// browser), inflated for one that does not.
#[utoipa::path(get, path = crate::paths::DOCS_ASSET, tag = "operations",
    params(("file" = String, Path, description = "A Swagger UI file such as `swagger-ui.css`")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream", body = String),
        (status = 404, description = "No such file")))]
pub async fn docs_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    if file == "index.html" {
        return Html(DOCS).into_response();
    }
    let f = match utoipa_swagger_ui::serve(&file, swagger_config()) {
        Ok(Some(f)) => f,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => return ApiError::internal("serving the docs", e.to_string()).into_response(),
    };
    let content_type = [(header::CONTENT_TYPE, f.content_type)];
    let vary = [(header::VARY, "accept-encoding")];
    if !f.gzpipped {
        return (content_type, vary, f.bytes.into_owned()).into_response();
    }
    if accepts_gzip(&headers) {
        let encoding = [(header::CONTENT_ENCODING, "gzip")];
        return (content_type, vary, encoding, f.bytes.into_owned()).into_response();
    }
    let mut plain = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&*f.bytes), &mut plain) {
        Ok(_) => (content_type, vary, plain).into_response(),
        Err(e) => ApiError::internal("inflating a docs file", e.to_string()).into_response(),
    }
}

/// Whether `Accept-Encoding` takes gzip (`gzip` or `*`, not with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}
