//! `GET /openapi.json` (OpenAPI 3.1) and `GET /docs`, a self-contained page that
//! renders it (no download from a CDN).

use axum::Json;
use axum::response::Html;
use serde_json::{Value, json};

use certscope_reports::section::Section;

use certscope_domain::DueBucket;

use crate::search::collect::Facet;
use crate::search::params::{MAX_LIMIT, MAX_QUERY_CHARS, SORTS};
use crate::search::parser::QUERY_FIELDS;

fn param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn string() -> Value {
    json!({"type": "string"})
}

fn search_params(listing: bool) -> Vec<Value> {
    let mut p = vec![
        param(
            "q",
            &format!(
                "Query: words (all must match), \"phrases\", -exclusion, prefix*, (a OR b), field:value with fields {}. At most {MAX_QUERY_CHARS} characters.",
                QUERY_FIELDS.join(", ")
            ),
            string(),
        ),
        param(
            "sort",
            &format!("One of {} ; prefix `-` for descending.", SORTS.join(", ")),
            string(),
        ),
        param(
            "limit",
            &format!("Page size, 1..{MAX_LIMIT} (default 20)."),
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        ),
        param(
            "cursor",
            "`next_cursor` of the previous page; same other parameters.",
            string(),
        ),
        param(
            "facets",
            "Facets to count, comma-separated, or `none`.",
            string(),
        ),
        param(
            "facet_size",
            "Values per facet (default 10, max 100).",
            json!({"type": "integer"}),
        ),
        param(
            "min_position",
            "Wait until the index reflects this position (also header X-Certscope-Min-Position); 503 with Retry-After if it does not in time.",
            string(),
        ),
    ];
    for f in Facet::ALL {
        if listing && f == Facet::Kind {
            continue;
        }
        let desc = if f == Facet::Due {
            format!(
                "Filter (OR within, AND across facets): {}",
                DueBucket::ALL.map(DueBucket::as_str).join(", ")
            )
        } else {
            "Filter (OR within, AND across facets); repeat or comma-separate values.".to_owned()
        };
        p.push(param(f.name(), &desc, string()));
    }
    for d in ["due", "expires", "collected", "target", "updated"] {
        p.push(param(
            &format!("{d}_after"),
            "Date YYYY-MM-DD, inclusive.",
            json!({"type": "string", "format": "date"}),
        ));
        p.push(param(
            &format!("{d}_before"),
            "Date YYYY-MM-DD, exclusive.",
            json!({"type": "string", "format": "date"}),
        ));
    }
    p
}

fn errors() -> Value {
    let e = json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({"400": e, "401": e, "403": e, "404": e, "429": e, "503": e})
}

fn op(summary: &str, params: Vec<Value>, schema: &str, secured: bool) -> Value {
    let mut responses = if secured { errors() } else { json!({}) };
    responses["200"] = json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    let mut o = json!({"summary": summary, "parameters": params, "responses": responses});
    if !secured {
        o["security"] = json!([]);
    }
    json!({"get": o})
}

fn detail(kind: &str, includes: &[&str]) -> Value {
    op(
        &format!(
            "One {kind} with related records (include={})",
            includes.join(",")
        ),
        vec![
            json!({"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}),
            param(
                "include",
                &format!("Comma-separated: {}", includes.join(", ")),
                string(),
            ),
        ],
        "Object",
        true,
    )
}

pub fn spec() -> Value {
    let mut spec = json!({
        "openapi": "3.1.0",
        "info": {"title": "Certscope API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Search, listings, details, metrics and board reports of compliance data, scoped to the caller's organization."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (HS256)"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"}}}}},
                "SearchResponse": {"type": "object", "required": ["total", "hits", "facets", "position"], "properties": {
                    "total": {"type": "integer"},
                    "hits": {"type": "array", "items": {"type": "object", "properties": {
                        "kind": {"type": "string"}, "id": {"type": "integer"}, "title": {"type": "string"},
                        "snippet": {"type": "string", "description": "HTML; matches in <b>"}, "score": {"type": ["number", "null"]}}}},
                    "facets": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object", "properties": {
                        "value": {"type": "string"}, "count": {"type": "integer"}, "label": {"type": "string"}, "selected": {"type": "boolean"}}}}},
                    "next_cursor": {"type": ["string", "null"]},
                    "position": {"type": "string"}}},
                "Suggestions": {"type": "object", "properties": {"suggestions": {"type": "array", "items": {"type": "object"}}}},
                "Object": {"type": "object"},
                "Text": {"type": "string"}
            }
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": op("Liveness", vec![], "Object", false),
            "/readyz": op("Readiness: database, index and lag (ok / degraded / unavailable)", vec![], "Object", false),
            "/metrics": op("Prometheus metrics", vec![], "Text", false),
            "/openapi.json": op("This document", vec![], "Object", false),
            "/docs": op("Browsable API documentation", vec![], "Text", false),
            "/v1/search": op("Faceted full-text search", search_params(false), "SearchResponse", true),
            "/v1/suggest": op("Autocomplete on titles and control ids", vec![
                param("q", "What was typed so far (at most 100 characters).", string()),
                param("limit", "1..20 (default 8)", json!({"type": "integer"})),
                param("min_position", "As for search.", string())], "Suggestions", true),
            "/v1/certifications": op("Certifications listing (from the index)", search_params(true), "SearchResponse", true),
            "/v1/requirements": op("Requirements listing (from the index)", search_params(true), "SearchResponse", true),
            "/v1/certifications/{id}": detail("certification", &["requirements", "evidence", "risks", "history"]),
            "/v1/requirements/{id}": detail("requirement", &["evidence", "risks", "history"]),
            "/v1/evidence/{id}": detail("evidence", &["history"]),
            "/v1/risks/{id}": detail("risk", &["requirements", "history"]),
        }
    });
    for section in Section::ALL {
        let name = section.as_str();
        spec["paths"][format!("/v1/metrics/{name}")] = op(
            &format!(
                "Report section `{name}` as JSON (default) or CSV (`format=csv` or `Accept: text/csv`); ETag and If-None-Match"
            ),
            report_params(false),
            "Object",
            true,
        );
    }
    spec["paths"]["/v1/events"] = op(
        "Live events over WebSocket (101 Switching Protocols). Authenticate with the Authorization header, a `ticket`, or a first message {\"type\":\"auth\",\"token\":…}; then {\"type\":\"subscribe\",\"rooms\":[…],\"last_event_id\":n}, unsubscribe, ping. Rooms: org, certification:<id>, user, notices. See README, Live events.",
        vec![param(
            "ticket",
            "A single-use ticket from POST /v1/events/tickets (browsers).",
            string(),
        )],
        "Object",
        true,
    );
    spec["paths"]["/v1/events/stream"] = op(
        "Live events as Server-Sent Events (text/event-stream): `id:` is the event id, `event:` its kind; also subscribed, snapshot, resync and error messages. Resume with the Last-Event-ID header.",
        vec![
            param(
                "rooms",
                "Comma-separated rooms (required): org, certification:<id>, user, notices.",
                string(),
            ),
            param(
                "ticket",
                "A single-use ticket from POST /v1/events/tickets (EventSource cannot send headers).",
                string(),
            ),
            param(
                "last_event_id",
                "Resume after this event id (the Last-Event-ID header wins).",
                json!({"type": "integer"}),
            ),
        ],
        "Object",
        true,
    );
    let mut ticket = op(
        "A single-use ticket (valid about a minute) standing for the caller's token, for /v1/events and /v1/events/stream in browsers",
        Vec::new(),
        "Object",
        true,
    );
    ticket["post"] = ticket["get"].take();
    ticket.as_object_mut().map(|o| o.remove("get"));
    spec["paths"]["/v1/events/tickets"] = ticket;
    spec["paths"]["/v1/reports/board.pdf"] = op(
        "The board PDF (application/pdf) of the same report model",
        report_params(true),
        "Object",
        true,
    );
    spec
}

fn report_params(pdf: bool) -> Vec<Value> {
    let date = json!({"type": "string", "format": "date"});
    let int = json!({"type": "integer"});
    let mut p = vec![
        param(
            "framework",
            "Framework slug to limit the report to (400 if unknown).",
            string(),
        ),
        param(
            "certification",
            "Certification ids (repeat or comma-separate); auditors only theirs (403).",
            string(),
        ),
        param(
            "as_of",
            "The day the numbers describe (default today; not in the future). Alias: `to`.",
            date.clone(),
        ),
        param(
            "from",
            "First day of the trend period (default 12 intervals before as_of).",
            date.clone(),
        ),
        param("to", "Alias of as_of.", date),
        param(
            "interval",
            "Trend points: month (default) or week.",
            string(),
        ),
        param(
            "appetite",
            "Residual score above which a risk is outside appetite, 1..25 (default 12).",
            int.clone(),
        ),
        param(
            "horizon_days",
            "Days ahead that count as upcoming, 1..365 (default 30).",
            int.clone(),
        ),
        param(
            "target.<kpi>",
            "Replace a KPI's target (e.g. target.readiness=95).",
            int.clone(),
        ),
        param(
            "warning.<kpi>",
            "Replace a KPI's warning threshold.",
            int.clone(),
        ),
        param(
            "min_position",
            "As for search: wait until the index reflects this position.",
            string(),
        ),
    ];
    if pdf {
        p.push(param("size", "a4 (default) or letter.", string()));
    } else {
        p.push(param(
            "limit",
            "Overdue and upcoming items listed, 1..1000 (default 100).",
            int,
        ));
        p.push(param("format", "json (default) or csv.", string()));
    }
    p
}

pub async fn document() -> Json<Value> {
    Json(spec())
}

const DOCS: &str = r#"<!doctype html><html><head><meta charset="utf-8"><title>Certscope API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}
h2{border-top:1px solid #ccc;padding-top:.6em}code{background:#f3f3f3;padding:0 .2em}
td{vertical-align:top;padding:.1em .6em}</style></head><body><h1>Certscope API</h1>
<p>Send <code>Authorization: Bearer &lt;token&gt;</code> (see <code>certscope token</code>). Raw document: <a href="/openapi.json">/openapi.json</a>.</p>
<div id="doc">Loading…</div><script>
fetch('/openapi.json').then(r=>r.json()).then(s=>{const d=document.getElementById('doc');d.textContent='';
for(const [path,ops] of Object.entries(s.paths)){for(const [m,o] of Object.entries(ops)){
const h=document.createElement('h2');h.textContent=m.toUpperCase()+' '+path;d.appendChild(h);
const p=document.createElement('p');p.textContent=o.summary;d.appendChild(p);
if(o.parameters&&o.parameters.length){const t=document.createElement('table');
for(const x of o.parameters){const r=t.insertRow();r.insertCell().innerHTML='<code></code>';r.cells[0].firstChild.textContent=x.name;
r.insertCell().textContent=x.description||'';}d.appendChild(t);}}}});
</script></body></html>"#;

pub async fn docs_page() -> Html<&'static str> {
    Html(DOCS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_exactly_the_routes_the_router_serves() {
        let spec = super::spec();
        let table = crate::route_table();
        for (method, path) in &table {
            assert!(
                spec["paths"][path][method].is_object(),
                "{method} {path} missing from openapi.json"
            );
        }
        let documented: usize = spec["paths"]
            .as_object()
            .map(|p| {
                p.values()
                    .map(|ops| ops.as_object().map_or(0, |o| o.len()))
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(
            documented,
            table.len(),
            "openapi.json documents routes the router does not serve"
        );
    }
}
