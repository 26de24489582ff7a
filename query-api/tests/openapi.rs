//! The API contract: the document served at `/openapi.json` against the
//! router that serves it, and against real answers of the running service
//! (JSON bodies validated with a JSON Schema validator, media types,
//! statuses); every documented bound, enum and format of a parameter refused
//! with a 400 that names the parameter. The live events' AsyncAPI document is
//! checked in `asyncapi.rs`.

use std::collections::BTreeSet;

use certscope_domain::Kind;
use certscope_query_api::testing::contract::contract;
use certscope_query_api::testing::{Params, TestApp, content_type, hits};
use certscope_query_api::{Role, paths, route_table};
use certscope_reports::section::Section;
use serde_json::Value;

async fn officer() -> (TestApp, String) {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    (s, t)
}

/// Every (method, path) of the document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = contract().document();
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for method in ops.as_object().expect("path item").keys() {
            out.insert((method.clone(), path.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_served_document_is_the_one_built_from_the_route_registry() {
    let s = TestApp::shared().await;
    let r = s.get_anonymous(paths::OPENAPI).await;
    assert_eq!(r.status(), 200);
    assert_eq!(content_type(&r), "application/json");
    let served: Value = r.json().await.unwrap();
    assert_eq!(&served, contract().document());
    assert_eq!(served["openapi"], "3.1.0");
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_router_serves() {
    let table: BTreeSet<(String, String)> = route_table()
        .into_iter()
        .map(|(m, p)| (m.to_owned(), p))
        .collect();
    assert_eq!(table, documented());
    // and the router answers each of them (with 401 for want of a token, or
    // the answer itself), never with its own "no such route"
    let s = TestApp::shared().await;
    for (method, path) in documented() {
        let url = path
            .replace("{id}", "1")
            .replace("{file}", "swagger-ui.css");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = s
            .request(method.clone(), &url, &Params::new())
            .send()
            .await
            .unwrap();
        assert!(
            ![404, 405].contains(&r.status().as_u16()),
            "{method} {url}: {} from the router",
            r.status()
        );
    }
    // a route not in the document is not served
    let r = s.get_anonymous("/v1/widgets").await;
    assert_eq!(r.status(), 404);
}

#[test]
fn every_named_path_and_every_report_section_is_routed() {
    let table: BTreeSet<String> = route_table().into_iter().map(|(_, p)| p).collect();
    for p in [
        paths::HEALTHZ,
        paths::READYZ,
        paths::PROMETHEUS,
        paths::OPENAPI,
        paths::DOCS,
        paths::DOCS_ASSET,
        paths::ASYNCAPI,
        paths::SEARCH,
        paths::SUGGEST,
        paths::CERTIFICATIONS,
        paths::REQUIREMENTS,
        paths::CERTIFICATION,
        paths::REQUIREMENT,
        paths::EVIDENCE,
        paths::RISK,
        paths::BOARD_PDF,
        paths::EVENTS_WS,
        paths::EVENTS_SSE,
        paths::EVENT_TICKETS,
    ] {
        assert!(table.contains(p), "{p}");
    }
    for section in Section::ALL {
        assert!(table.contains(&paths::metric(section)), "{section:?}");
    }
}

/// The answer of `GET path` with `params` as `token`, checked against the
/// document (whatever its status); returns status and body.
async fn conforming(
    s: &TestApp,
    token: Option<&str>,
    path: &str,
    params: &Params,
) -> (u16, Vec<u8>) {
    let mut request = s.request(reqwest::Method::GET, path, params);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = content_type(&r);
    let body = r.bytes().await.unwrap().to_vec();
    if let Err(e) = contract().check("get", path, status, &ct, &body) {
        panic!("{e}\nbody: {}", String::from_utf8_lossy(&body));
    }
    (status, body)
}

#[tokio::test]
async fn search_hits_of_every_kind_and_their_facets_conform() {
    let (s, t) = officer().await;
    for kind in Kind::ALL {
        let v = s
            .search(
                &t,
                &Params::new().with("kind", kind.as_str()).with("limit", 100),
            )
            .await;
        assert!(!hits(&v).is_empty(), "no {kind} hits to check");
        assert!(
            v["facets"]["status"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        );
    }
    // relevance scores, snippets, selections, cursors
    let v = s
        .search(
            &t,
            &Params::q("access")
                .with("status", "implemented")
                .with("limit", 5),
        )
        .await;
    assert!(v["next_cursor"].is_string());
    let next = s
        .search(
            &t,
            &Params::q("access")
                .with("status", "implemented")
                .with("limit", 5)
                .with("cursor", v["next_cursor"].as_str().unwrap()),
        )
        .await;
    assert!(!hits(&next).is_empty());
    s.listing(
        &t,
        Kind::Certification,
        &Params::new().with("facets", "status,owner"),
    )
    .await;
    s.listing(&t, Kind::Requirement, &Params::new().with("facets", "due"))
        .await;
    assert!(!s.suggest(&t, "acc", 8).await.is_empty());
}

#[tokio::test]
async fn an_auditors_risk_hits_conform() {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let cert: i64 = sqlx::query_scalar(
        "SELECT r.certification_id FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id \
         WHERE rr.organization_id = $1 LIMIT 1",
    )
    .bind(org)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let t = s.token(&a, Role::Auditor, Some(vec![cert])).await;
    let v = s.search(&t, &Params::new().with("kind", "risk")).await;
    assert!(!hits(&v).is_empty());
}

#[tokio::test]
async fn details_with_every_relation_conform() {
    let (s, t) = officer().await;
    for (kind, includes) in [
        (
            Kind::Certification,
            &["requirements", "evidence", "risks", "history"][..],
        ),
        (Kind::Requirement, &["evidence", "risks", "history"][..]),
        (Kind::Evidence, &["history"][..]),
        (Kind::Risk, &["requirements", "history"][..]),
    ] {
        let v = s
            .search(
                &t,
                &Params::new().with("kind", kind.as_str()).with("limit", 3),
            )
            .await;
        for hit in hits(&v) {
            let id = hit["id"].as_i64().unwrap();
            s.detail_json(&t, kind, id, &[]).await;
            let full = s.detail_json(&t, kind, id, includes).await;
            for rel in includes {
                assert!(full[rel].is_object(), "{kind} {id}: {rel}");
            }
        }
    }
}

#[tokio::test]
async fn every_report_section_conforms_as_json_and_csv() {
    let (s, t) = officer().await;
    for section in Section::ALL {
        let path = paths::metric(section);
        let (status, _) = conforming(&s, Some(&t), &path, &Params::new()).await;
        assert_eq!(status, 200, "{path}");
        let (status, body) =
            conforming(&s, Some(&t), &path, &Params::new().with("format", "csv")).await;
        assert_eq!(status, 200, "{path} csv");
        assert!(!body.is_empty());
        // with every parameter set
        let v = s
            .metric(
                &t,
                section,
                &Params::new()
                    .with("interval", "week")
                    .with("appetite", 9)
                    .with("horizon_days", 60)
                    .with("limit", 5),
            )
            .await;
        assert!(v["meta"].is_object());
    }
    let (status, body) = conforming(&s, Some(&t), paths::BOARD_PDF, &Params::new()).await;
    assert_eq!(status, 200);
    assert!(body.starts_with(b"%PDF"));
}

#[tokio::test]
async fn errors_and_operational_answers_conform() {
    let (s, t) = officer().await;
    for (token, path, params, expected) in [
        (None, paths::SEARCH, Params::new(), 401),
        (
            Some(&t),
            paths::SEARCH,
            Params::new().with("colour", "red"),
            400,
        ),
        (Some(&t), "/v1/certifications/999999999", Params::new(), 404),
        (Some(&t), paths::SUGGEST, Params::new(), 400),
        (
            Some(&t),
            &paths::metric(Section::Posture),
            Params::new().with("as_of", "2999-01-01"),
            400,
        ),
        (None, paths::HEALTHZ, Params::new(), 200),
        (None, paths::READYZ, Params::new(), 200),
        (None, paths::OPENAPI, Params::new(), 200),
    ] {
        let (status, body) = conforming(&s, token.map(String::as_str), path, &params).await;
        assert_eq!(
            status,
            expected,
            "{path}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let r = s
        .request(reqwest::Method::POST, paths::EVENT_TICKETS, &Params::new())
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let ct = content_type(&r);
    let body = r.bytes().await.unwrap();
    contract()
        .check("post", paths::EVENT_TICKETS, status, &ct, &body)
        .unwrap();
}

#[tokio::test]
async fn an_answer_with_a_field_the_contract_lacks_fails_the_check() {
    let (s, t) = officer().await;
    let r = s
        .get_at(&t, paths::SEARCH, &Params::new().with("kind", "evidence"))
        .await;
    let ct = content_type(&r);
    let mut v: Value = r.json().await.unwrap();
    let ok = serde_json::to_vec(&v).unwrap();
    let check = |answer: &Value| {
        contract().check(
            "get",
            paths::SEARCH,
            200,
            &ct,
            &serde_json::to_vec(answer).unwrap(),
        )
    };
    check(&v).unwrap();
    v["hits"][0]["reviewer"] = "someone".into();
    let err = check(&v).unwrap_err();
    assert!(err.contains("/hits/0"), "{err}");
    // a missing required field, a wrong type, an undocumented status
    let mut v2: Value = serde_json::from_slice(&ok).unwrap();
    v2.as_object_mut().unwrap().remove("total");
    assert!(check(&v2).is_err());
    let mut v3: Value = serde_json::from_slice(&ok).unwrap();
    v3["hits"][0]["collected_on"] = "yesterday".into();
    assert!(check(&v3).is_err());
    assert!(
        contract()
            .check("get", paths::SEARCH, 418, &ct, &ok)
            .is_err()
    );
}

/// Values outside what a parameter's schema admits: below its minimum, above
/// its maximum, longer than its maximum length, not in its enum, not of its
/// format or pattern (for a list, one such item).
fn violations(schema: &Value) -> Vec<String> {
    let schema = if schema["type"] == "array" {
        &schema["items"]
    } else {
        schema
    };
    let mut out = Vec::new();
    if let Some(min) = schema["minimum"].as_i64() {
        out.push((min as i128 - 1).to_string());
    }
    if let Some(max) = schema["maximum"].as_i64()
        && max < i64::MAX
    {
        out.push((max as i128 + 1).to_string());
    }
    if let Some(max) = schema["maxLength"].as_u64() {
        out.push("x".repeat(max as usize + 1));
    }
    if schema["enum"].is_array() {
        out.push("no-such-value".into());
    }
    if schema["format"] == "date" {
        out.push("2026-13-45".into());
    }
    if schema["pattern"].is_string() {
        out.push("!!".into());
    }
    out
}

/// Valid values of the parameters a route requires, so that only the
/// parameter under test is wrong.
fn required_values(path: &str) -> Params {
    match path {
        p if p == paths::SUGGEST => Params::q("access"),
        p if p == paths::EVENTS_SSE => Params::new().with("rooms", "org"),
        _ => Params::new(),
    }
}

#[tokio::test]
async fn every_parameter_outside_its_documented_range_gets_a_400_naming_it() {
    // a few hundred requests in a burst: a service of its own, without rate limits
    let s = TestApp::start_with(|c| {
        c.rate_per_token = 1e6;
        c.burst_per_token = 1e6;
        c.rate_per_ip = 1e6;
        c.burst_per_ip = 1e6;
    })
    .await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    let doc = contract().document();
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let Some(op) = ops.get("get") else { continue };
        if path == paths::EVENTS_WS {
            // the WebSocket's only parameter is an opaque ticket
            continue;
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["name"].as_str().unwrap();
            if param["in"] == "header" {
                continue;
            }
            for bad in violations(&param["schema"]) {
                let (url, params) = if param["in"] == "path" {
                    (path.replace(&format!("{{{name}}}"), &bad), Params::new())
                } else {
                    let mut p = required_values(path);
                    if name == "q" || name == "rooms" {
                        p = Params::new();
                    }
                    (path.clone(), p.with(name, &bad))
                };
                let url = url.replace("{id}", "1");
                let r = s.get_at(&t, &url, &params).await;
                let status = r.status().as_u16();
                let ct = content_type(&r);
                let body = r.bytes().await.unwrap();
                let text = String::from_utf8_lossy(&body);
                let shown: String = bad.chars().take(20).collect();
                assert_eq!(status, 400, "{path} {name}={shown}: {text}");
                contract().check("get", &url, status, &ct, &body).unwrap();
                let message: Value = serde_json::from_slice(&body).unwrap();
                let message = message["error"]["message"].as_str().unwrap();
                assert!(
                    message.contains(name),
                    "{path} {name}={shown}: the message does not name `{name}`: {message}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "only {checked} bad values tried");
}

#[tokio::test]
async fn the_docs_page_is_swagger_ui_served_by_this_binary() {
    let s = TestApp::shared().await;
    let r = s.get_anonymous(paths::DOCS).await;
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("script-src 'unsafe-inline'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains(paths::ASYNCAPI) && html.contains(paths::OPENAPI));
    // every script and style comes from this server, and is there
    let assets: Vec<&str> = html
        .split(['"', '\''])
        .filter(|p| p.starts_with("/docs/"))
        .collect();
    assert!(assets.len() >= 4, "{assets:?}");
    assert!(
        !html.contains("https://"),
        "the page loads something from elsewhere"
    );
    for asset in assets {
        let r = s.get_anonymous(asset).await;
        assert_eq!(r.status(), 200, "{asset}");
        let body = r.text().await.unwrap();
        assert!(!body.is_empty(), "{asset}");
        if asset.ends_with("swagger-initializer.js") {
            // Swagger UI is pointed at this server's document
            assert!(body.contains(paths::OPENAPI), "{body}");
        }
    }
}

#[tokio::test]
async fn docs_files_go_gzipped_to_a_browser_and_plain_to_a_client_without_gzip() {
    let s = TestApp::shared().await;
    let path = "/docs/swagger-ui-bundle.js";
    let with_encoding = |accept: &'static str| {
        s.request(reqwest::Method::GET, path, &Params::new())
            .header("accept-encoding", accept)
            .send()
    };
    let plain = s.get_anonymous(path).await;
    assert_eq!(plain.status(), 200);
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.bytes().await.unwrap();
    assert!(plain.len() > 500_000, "{} bytes", plain.len());

    let zipped = with_encoding("br;q=1.0, gzip;q=0.8").await.unwrap();
    assert_eq!(zipped.status(), 200);
    assert_eq!(zipped.headers()["content-encoding"], "gzip");
    assert_eq!(zipped.headers()["vary"], "accept-encoding");
    let zipped = zipped.bytes().await.unwrap();
    assert!(zipped.len() < plain.len() / 2, "{} bytes", zipped.len());
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped[..]),
        &mut inflated,
    )
    .unwrap();
    assert!(inflated == plain, "the gzipped file is another file");

    // gzip refused with q=0: plain again
    let refused = with_encoding("gzip;q=0, identity").await.unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
}

/// What is wrong with `example` against `schema`, resolved in the document's
/// components.
fn example_errors(doc: &Value, schema: Value, example: &Value) -> Vec<String> {
    let root = serde_json::json!({"allOf": [schema], "components": doc["components"]});
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap();
    validator
        .iter_errors(example)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[test]
fn every_example_in_the_document_is_valid_against_its_schema() {
    let doc = contract().document();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut checked = 0;
    for (name, schema) in schemas {
        let Some(example) = schema.get("example") else {
            continue;
        };
        let schema = serde_json::json!({"$ref": format!("#/components/schemas/{name}")});
        let errors = example_errors(doc, schema, example);
        assert!(errors.is_empty(), "the example of {name}: {errors:?}");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} examples");

    // the answers' examples (every report section has one)
    let mut answered = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(responses) = item.pointer("/get/responses").and_then(Value::as_object) else {
            continue;
        };
        for (status, response) in responses {
            let Some(content) = response["content"].as_object() else {
                continue;
            };
            for (media, body) in content {
                let Some(example) = body.get("example") else {
                    continue;
                };
                let errors = example_errors(doc, body["schema"].clone(), example);
                assert!(
                    errors.is_empty(),
                    "the example of GET {path} {status} {media}: {errors:?}"
                );
                answered.push(path.clone());
            }
        }
    }
    for section in Section::ALL {
        let path = format!("/v1/metrics/{}", section.as_str());
        assert!(answered.contains(&path), "no example answer for {path}");
    }
}
