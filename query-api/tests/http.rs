//! HTTP behaviour over real connections: precise 4xx for bad input and bad
//! tokens, compression, CORS, security headers, rate limits, coalescing of
//! identical requests, and the operational routes.
//!
//! Tests that only read share the binary's service; those that count the
//! server's work or change its settings start their own.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use certscope_domain::Kind;
use certscope_query_api::testing::{Params, SECRET, TestApp};
use certscope_query_api::{Keys, Role, auth, paths};
use reqwest::Method;
use serde_json::Value;

/// Asserts a refusal: `status`, a body that says `needle`, and for a 400 the
/// API's error shape (a code and a message).
async fn assert_refused(r: reqwest::Response, status: u16, needle: &str, what: &str) {
    let got = r.status().as_u16();
    let body = r.text().await.unwrap();
    assert_eq!(got, status, "{what}: {body}");
    assert!(body.contains(needle), "{what}: {body}");
    if status == 400 {
        let v: Value = serde_json::from_str(&body).unwrap();
        assert!(
            v["error"]["code"].is_string() && v["error"]["message"].is_string(),
            "{what}: {body}"
        );
    }
}

/// An officer of the first organization on the shared service.
async fn officer() -> (TestApp, String) {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    (s, t)
}

#[tokio::test]
async fn a_malformed_search_query_gets_a_400_saying_what_is_wrong() {
    let (s, t) = officer().await;
    let long = "a".repeat(600);
    let deep = format!("{}a{}", "(".repeat(30), ")".repeat(30));
    for (q, needle) in [
        ("\"unclosed", "unterminated"),
        ("(a b", "never closed"),
        // any other `name:` is text (a pasted title); a known field's bad value is not
        ("risk_level:severe", "unknown value `severe`"),
        ("kind:widget", "unknown value `widget`"),
        (long.as_str(), "longer than 512"),
        (deep.as_str(), "nested deeper"),
    ] {
        let r = s.search_response(&t, &Params::q(q)).await;
        assert_refused(r, 400, needle, q).await;
    }
}

#[tokio::test]
async fn an_invalid_search_parameter_gets_a_400_naming_what_is_wrong() {
    let (s, t) = officer().await;
    for (name, value, needle) in [
        ("facets", "colour", "unknown facet"),
        ("colour", "red", "unknown parameter"),
        ("due_before", "2026-02-30", "not a date"),
        ("limit", "100000", "between 1 and 100"),
        ("limit", "-1", "between 1 and 100"),
        ("limit", "0", "between 1 and 100"),
        ("cursor", "bm90LWEtY3Vyc29y", "cursor"),
        ("sort", "colour", "unknown sort"),
        ("min_position", "yesterday", "index position"),
        ("risk_level", "extreme", "unknown value"),
        ("due_before", "3000-01-01", "outside the years"),
        (
            "certification",
            "9223372036854775808",
            "positive whole numbers",
        ),
        ("framework", "\0", "control characters"),
    ] {
        let params = Params::new().with(name, value);
        let r = s.search_response(&t, &params).await;
        assert_refused(r, 400, needle, &params.query_string()).await;
    }
    let inverted = Params::new()
        .with("due_after", "2026-06-01")
        .with("due_before", "2026-01-01");
    let r = s.search_response(&t, &inverted).await;
    assert_refused(r, 400, "inverted", &inverted.query_string()).await;
}

#[tokio::test]
async fn invalid_suggest_and_listing_parameters_get_a_400_naming_what_is_wrong() {
    let (s, t) = officer().await;
    for (path, params, needle) in [
        (paths::SUGGEST, Params::new(), "`q` is required"),
        (
            paths::SUGGEST,
            Params::q("a").with("limit", 500),
            "between 1 and 20",
        ),
        (
            paths::CERTIFICATIONS,
            Params::new().with("kind", "risk"),
            "fixed by this listing",
        ),
    ] {
        let what = format!("{path}{}", params.query_string());
        let r = s.get(&t, &what).await;
        assert_refused(r, 400, needle, &what).await;
    }
}

#[tokio::test]
async fn a_detail_with_a_bad_id_or_include_gets_a_400_naming_what_is_wrong() {
    let (s, t) = officer().await;
    for (kind, id, include, needle) in [
        (Kind::Certification, "abc", &[][..], "positive whole number"),
        (Kind::Certification, "-4", &[][..], "positive whole number"),
        (Kind::Certification, "1", &["colour"][..], "cannot include"),
        (Kind::Evidence, "1", &["requirements"][..], "cannot include"),
    ] {
        let r = s.detail(&t, kind, id, include).await;
        assert_refused(r, 400, needle, &format!("{kind} {id} {include:?}")).await;
    }
}

#[tokio::test]
async fn an_unknown_route_gets_a_404() {
    let (s, t) = officer().await;
    let r = s.get(&t, "/v1/nothing").await;
    assert_refused(r, 404, "", "/v1/nothing").await;
}

#[tokio::test]
async fn a_cursor_from_another_request_is_refused() {
    let (s, t) = officer().await;
    let page = |kind: &str| {
        Params::new()
            .with("kind", kind)
            .with("limit", 2)
            .with("facets", "none")
    };
    let first = s.search(&t, &page("evidence")).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let r = s
        .search_response(&t, &page("risk").with("cursor", cursor))
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("another request"));
}

#[tokio::test]
async fn an_oversize_uri_gets_a_414() {
    let (s, t) = officer().await;
    let r = s
        .search_response(&t, &Params::q("a").with("x", "b".repeat(10_000)))
        .await;
    assert_eq!(r.status(), 414);
}

fn forged(header: &str, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test]
async fn a_missing_malformed_forged_or_expired_token_gets_a_401_saying_why() {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let now = chrono::Utc::now().timestamp();
    let claims =
        serde_json::json!({"sub": 1, "org": org, "role": "officer", "iat": now, "exp": now + 600});
    let wrong_secret = Keys::new(b"not-the-server-secret-at-all")
        .issue(&auth::claims(
            1,
            org,
            Role::Officer,
            None,
            Duration::from_secs(600),
        ))
        .unwrap();
    let mut expired = auth::claims(1, org, Role::Officer, None, Duration::from_secs(1));
    expired.exp = (now - 3600) as u64;
    let expired = s.keys.issue(&expired).unwrap();
    let no_exp = forged(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &serde_json::json!({"sub": 1, "org": org, "role": "officer"}),
        "x",
    );
    let cases = [
        (None, "missing"),
        (
            Some("Basic dXNlcjpwYXNz".to_owned()),
            "scheme must be Bearer",
        ),
        (Some("Bearer not.a.token".to_owned()), "malformed"),
        (
            Some(format!(
                "Bearer {}",
                forged(r#"{"alg":"none","typ":"JWT"}"#, &claims, "")
            )),
            "invalid bearer token",
        ),
        (
            Some(format!(
                "Bearer {}",
                forged(r#"{"alg":"HS512","typ":"JWT"}"#, &claims, "abc")
            )),
            "not HS256",
        ),
        (Some(format!("Bearer {wrong_secret}")), "signature"),
        (Some(format!("Bearer {expired}")), "expired"),
        (Some(format!("Bearer {no_exp}")), "invalid bearer token"),
    ];
    for (header, needle) in cases {
        let mut req = s.request(Method::GET, paths::SEARCH, &Params::q("access"));
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{header:?}");
        assert!(r.headers().contains_key("www-authenticate"));
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{header:?}: {body}");
    }
}

#[tokio::test]
async fn a_token_whose_claims_contradict_its_role_gets_a_401() {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let now = chrono::Utc::now().timestamp();
    // an auditor token without certifications, a non-auditor with some, an unknown role
    for claims in [
        serde_json::json!({"sub": 1, "org": org, "role": "auditor", "iat": now, "exp": now + 600}),
        serde_json::json!({"sub": 1, "org": org, "role": "officer", "certs": [1], "iat": now, "exp": now + 600}),
        serde_json::json!({"sub": 1, "org": org, "role": "superuser", "iat": now, "exp": now + 600}),
    ] {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let r = s.search_response(&token, &Params::q("access")).await;
        assert_eq!(r.status(), 401, "{claims}");
    }
}

/// The search every header test reads: large enough to be compressed.
fn access() -> Params {
    Params::q("access").with("limit", 20)
}

#[tokio::test]
async fn large_answers_are_compressed_with_the_encoding_the_client_asks_for() {
    let (s, t) = officer().await;
    for encoding in ["gzip", "br", "zstd"] {
        let r = s
            .request(Method::GET, paths::SEARCH, &access())
            .bearer_auth(&t)
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-encoding"], encoding);
    }
}

#[tokio::test]
async fn small_answers_are_not_compressed() {
    let s = TestApp::shared().await;
    let r = s
        .request(Method::GET, paths::HEALTHZ, &Params::new())
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("content-encoding"));
}

#[tokio::test]
async fn private_answers_carry_security_headers_and_are_never_cached() {
    let (s, t) = officer().await;
    let r = s.search_response(&t, &access()).await;
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.contains_key("content-security-policy"));
    assert!(h.contains_key("x-certscope-position"));
}

#[tokio::test]
async fn cross_origin_requests_are_allowed_from_the_allowlisted_origin_only() {
    let (s, t) = officer().await;
    let r = s
        .request(Method::OPTIONS, paths::SEARCH, &access())
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let r = s
        .request(Method::GET, paths::SEARCH, &access())
        .bearer_auth(&t)
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

/// Counts searches the service executed, so it needs a service of its own.
#[tokio::test]
async fn identical_concurrent_requests_are_computed_once_and_cached_per_organization() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let t = s.officer(&a).await;
    let executed = || s.state.api.search.executed.load(Ordering::Relaxed);
    let before = executed();
    let params = Params::q("incident response training")
        .with("limit", 50)
        .with("facet_size", 50);
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let request = s
            .request(Method::GET, paths::SEARCH, &params)
            .bearer_auth(&t);
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().text().await.unwrap()
        }));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        bodies.push(task.await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(executed() - before, 1);
    // another organization never gets that cached answer
    let tb = s.officer(&b).await;
    let other = s.search_response(&tb, &params).await.text().await.unwrap();
    assert_ne!(other, bodies[0]);
    assert_eq!(executed() - before, 2);
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_the_router_serves() {
    let s = TestApp::shared().await;
    let spec: Value = s.get_anonymous(paths::OPENAPI).await.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    for (method, path) in certscope_query_api::route_table() {
        assert!(spec["paths"][&path][method].is_object(), "{path}");
    }
}

#[tokio::test]
async fn the_api_docs_are_an_html_page() {
    let s = TestApp::shared().await;
    let docs = s.get_anonymous(paths::DOCS).await;
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn prometheus_exposes_request_and_search_timings() {
    let (s, t) = officer().await;
    s.search(&t, &access()).await;
    let metrics = s.prometheus().await;
    assert!(
        metrics.contains("certscope_http_request_seconds_bucket{route=\"/v1/search\""),
        "{metrics}"
    );
    assert!(metrics.contains("certscope_search_seconds_count"));
}

#[tokio::test]
async fn readiness_says_ok_once_the_service_is_up() {
    let s = TestApp::shared().await;
    let ready: Value = s.get_anonymous(paths::READYZ).await.json().await.unwrap();
    assert_eq!(ready["status"], "ok");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after_per_token() {
    let s = TestApp::start_with(|c| {
        c.rate_per_token = 2.0;
        c.burst_per_token = 5.0;
    })
    .await;
    let (a, b) = s.orgs().await;
    let t = s.officer(&a).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = s.search_response(&t, &Params::q("access")).await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&wait));
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // another token is not affected
    let tb = s.officer(&b).await;
    assert_eq!(
        s.search_response(&tb, &Params::q("access")).await.status(),
        200
    );
}
