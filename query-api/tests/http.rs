//! HTTP behaviour over real connections: precise 4xx for bad input and bad
//! tokens, compression, CORS, security headers, rate limits, coalescing of
//! identical requests, and the operational routes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use certscope_query_api::testing::{TestApp, enc};
use certscope_query_api::{Keys, Role, auth};
use serde_json::Value;

#[tokio::test]
async fn bad_input_gets_a_precise_4xx_never_a_5xx() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    let long = "a".repeat(600);
    let deep = format!("{}a{}", "(".repeat(30), ")".repeat(30));
    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("/v1/search?q={}", enc("\"unclosed")),
            400,
            "unterminated",
        ),
        (format!("/v1/search?q={}", enc("(a b")), 400, "never closed"),
        (
            format!("/v1/search?q={}", enc("colour:red")),
            400,
            "unknown field `colour`",
        ),
        (
            format!("/v1/search?q={}", enc("kind:widget")),
            400,
            "unknown kind",
        ),
        ("/v1/search?facets=colour".into(), 400, "unknown facet"),
        ("/v1/search?colour=red".into(), 400, "unknown parameter"),
        ("/v1/search?due_before=2026-02-30".into(), 400, "not a date"),
        (
            "/v1/search?due_after=2026-06-01&due_before=2026-01-01".into(),
            400,
            "inverted",
        ),
        ("/v1/search?limit=100000".into(), 400, "between 1 and 100"),
        ("/v1/search?limit=-1".into(), 400, "between 1 and 100"),
        ("/v1/search?limit=0".into(), 400, "between 1 and 100"),
        (format!("/v1/search?q={long}"), 400, "longer than 512"),
        (format!("/v1/search?q={}", enc(&deep)), 400, "nested deeper"),
        ("/v1/search?cursor=bm90LWEtY3Vyc29y".into(), 400, "cursor"),
        ("/v1/search?sort=colour".into(), 400, "unknown sort"),
        (
            "/v1/search?min_position=yesterday".into(),
            400,
            "index position",
        ),
        ("/v1/search?risk_level=extreme".into(), 400, "unknown value"),
        ("/v1/suggest".into(), 400, "`q` is required"),
        ("/v1/suggest?q=a&limit=500".into(), 400, "between 1 and 20"),
        (
            "/v1/certifications?kind=risk".into(),
            400,
            "fixed by this listing",
        ),
        (
            "/v1/certifications/abc".into(),
            400,
            "positive whole number",
        ),
        ("/v1/certifications/-4".into(), 400, "positive whole number"),
        (
            "/v1/certifications/1?include=colour".into(),
            400,
            "cannot include",
        ),
        (
            "/v1/evidence/1?include=requirements".into(),
            400,
            "cannot include",
        ),
        ("/v1/nothing".into(), 404, ""),
        (
            "/v1/search?due_before=3000-01-01".into(),
            400,
            "outside the years",
        ),
        (
            "/v1/search?certification=9223372036854775808".into(),
            400,
            "positive whole numbers",
        ),
        ("/v1/search?framework=%00".into(), 400, "control characters"),
    ];
    for (path, status, needle) in &cases {
        let r = s.get(&t, path).await;
        let got = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(got, *status, "{path}: {body}");
        assert!(body.contains(needle), "{path}: {body}");
        if *status == 400 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert!(v["error"]["code"].is_string() && v["error"]["message"].is_string());
        }
    }
    // a cursor from another query is refused
    let first: Value = s
        .json(&t, "/v1/search?kind=evidence&limit=2&facets=none")
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let r = s
        .get(
            &t,
            &format!("/v1/search?kind=risk&limit=2&facets=none&cursor={cursor}"),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("another request"));
    // an oversize URI
    let r = s
        .get(&t, &format!("/v1/search?q=a&x={}", "b".repeat(10_000)))
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
async fn tokens_are_checked_strictly() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let path = "/v1/search?q=access";
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
        let mut req = s.http.get(format!("{}{path}", s.base));
        if let Some(h) = &header {
            req = req.header("authorization", h);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{header:?}");
        assert!(r.headers().contains_key("www-authenticate"));
        let body = r.text().await.unwrap();
        assert!(body.contains(needle), "{header:?}: {body}");
    }
    // an auditor token without certifications, and a non-auditor with some
    for claims in [
        serde_json::json!({"sub": 1, "org": org, "role": "auditor", "iat": now, "exp": now + 600}),
        serde_json::json!({"sub": 1, "org": org, "role": "officer", "certs": [1], "iat": now, "exp": now + 600}),
        serde_json::json!({"sub": 1, "org": org, "role": "superuser", "iat": now, "exp": now + 600}),
    ] {
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(certscope_query_api::testing::SECRET),
        )
        .unwrap();
        assert_eq!(s.get(&token, path).await.status(), 401, "{claims}");
    }
}

#[tokio::test]
async fn http_behaves_as_clients_expect() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    let url = format!("{}/v1/search?q=access&limit=20", s.base);
    for encoding in ["gzip", "br", "zstd"] {
        let r = s
            .http
            .get(&url)
            .bearer_auth(&t)
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-encoding"], encoding);
    }
    // small bodies are not compressed
    let r = s
        .http
        .get(format!("{}/healthz", s.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("content-encoding"));
    // security headers and no caching of private answers
    let r = s.http.get(&url).bearer_auth(&t).send().await.unwrap();
    let h = r.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h.contains_key("content-security-policy"));
    assert!(h.contains_key("x-certscope-position"));
    // CORS: the allowlisted origin only
    let r = s
        .http
        .request(reqwest::Method::OPTIONS, &url)
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
        .http
        .get(&url)
        .bearer_auth(&t)
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));

    // identical concurrent requests are computed once, then served from the cache
    let before = s.state.api.search.executed.load(Ordering::Relaxed);
    let path = "/v1/search?q=incident%20response%20training&limit=50&facet_size=50";
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (http, url, t) = (s.http.clone(), format!("{}{path}", s.base), t.clone());
        tasks.push(tokio::spawn(async move {
            http.get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }));
    }
    let mut bodies = Vec::new();
    for task in tasks {
        bodies.push(task.await.unwrap());
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        s.state.api.search.executed.load(Ordering::Relaxed) - before,
        1
    );
    // another organization never gets that cached answer
    let (_, b) = s.orgs().await;
    let tb = s.officer(&b).await;
    let other = s
        .http
        .get(format!("{}{path}", s.base))
        .bearer_auth(&tb)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_ne!(other, bodies[0]);
    assert_eq!(
        s.state.api.search.executed.load(Ordering::Relaxed) - before,
        2
    );

    // operations
    let spec: Value = s
        .http
        .get(format!("{}/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    for (method, path) in certscope_query_api::route_table() {
        assert!(spec["paths"][&path][method].is_object(), "{path}");
    }
    let docs = s.http.get(format!("{}/docs", s.base)).send().await.unwrap();
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let metrics = s.prometheus().await;
    assert!(
        metrics.contains("certscope_http_request_seconds_bucket{route=\"/v1/search\""),
        "{metrics}"
    );
    assert!(metrics.contains("certscope_search_seconds_count"));
    let ready: Value = s
        .http
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ok");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let s = TestApp::start_with(|c| {
        c.rate_per_token = 2.0;
        c.burst_per_token = 5.0;
    })
    .await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = s.get(&t, "/v1/search?q=access").await;
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
    let (_, b) = s.orgs().await;
    assert_eq!(
        s.get(&s.officer(&b).await, "/v1/search?q=access")
            .await
            .status(),
        200
    );
}
