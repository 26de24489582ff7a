//! What an attack review found, each pinned by a test that failed before its
//! fix: absurd token expiries, tokens of organizations that do not exist,
//! `If-None-Match: *` before the scope check, the PDF cache key, an auditor's
//! view of relevance statistics, cursor pins one tenant could exhaust for
//! another, unauthenticated sockets held without limit, tickets outliving their
//! token, silent subscribes, and an open `/metrics`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use certscope_query_api::auth::Claims;
use certscope_query_api::testing::{Params, SECRET, TestApp, hits};
use certscope_query_api::{Keys, Role};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(claims: &Claims) -> String {
    Keys::new(SECRET).issue(claims).unwrap()
}

fn claims(user: i64, org: i64, role: Role, exp: u64) -> Claims {
    Claims {
        sub: user,
        org,
        role,
        certs: (role == Role::Auditor).then(Vec::new),
        iat: now(),
        exp,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(s: &TestApp, token: Option<&str>) -> Result<Socket, u16> {
    let mut request = format!("{}/v1/events", s.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    if let Some(t) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("websocket: {e}"),
    }
}

async fn next(socket: &mut Socket) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("readable");
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Close(f) => return json!({"type": "closed", "frame": format!("{f:?}")}),
            _ => {}
        }
    }
}

async fn error_of(r: reqwest::Response) -> (u16, Value) {
    let (status, _, body) = refusal_of(r).await;
    (status, body)
}

/// The status, `Retry-After` and JSON body of an answer.
async fn refusal_of(r: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

#[tokio::test]
async fn a_validly_signed_token_that_expires_in_the_year_584_billion_gets_a_live_connection() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let user: i64 = sqlx::query_scalar("SELECT id FROM users WHERE organization_id = $1 LIMIT 1")
        .bind(org)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let t = token(&claims(user, org, Role::Officer, u64::MAX));
    let mut socket = ws(&s, Some(&t)).await.expect("upgraded");
    assert_eq!(next(&mut socket).await["type"], "welcome");
    socket
        .send(Message::Text(
            json!({"type": "subscribe", "rooms": ["org"]})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await["type"], "subscribed");
    // SSE and tickets with the same token
    let r = s.get(&t, "/v1/events/stream?rooms=org").await;
    assert_eq!(r.status(), 200);
    s.events_ticket(&t).await;
}

#[tokio::test]
async fn a_signed_token_of_an_organization_that_does_not_exist_is_refused_on_every_route() {
    let s = TestApp::start().await;
    // an organization that existed when its token was signed, then deleted
    let gone: i64 = sqlx::query_scalar(
        "INSERT INTO organizations (slug, name) VALUES ('gone-co', 'Gone Co') RETURNING id",
    )
    .fetch_one(&s.pool)
    .await
    .unwrap();
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(gone)
        .execute(&s.pool)
        .await
        .unwrap();
    let exp = now() + 3600;
    for org in [gone, 0, -7, 987_654_321] {
        let t = token(&claims(1, org, Role::Officer, exp));
        for (method, path) in certscope_query_api::route_table() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let path = path.replace("{id}", "1");
            let url = format!("{}{path}", s.base);
            let request = match method {
                "post" => s.http.post(&url),
                _ => s.http.get(&url),
            };
            let (status, body) = error_of(request.bearer_auth(&t).send().await.unwrap()).await;
            assert_eq!(
                status, 403,
                "{method} {path} for organization {org}: {body}"
            );
            assert_eq!(body["error"]["code"], "forbidden", "{path}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("does not exist"),
                "{path}: {body}"
            );
        }
        // and by WebSocket message
        let mut socket = ws(&s, None).await.expect("upgraded");
        socket
            .send(Message::Text(
                json!({"type": "auth", "token": t}).to_string().into(),
            ))
            .await
            .unwrap();
        let m = next(&mut socket).await;
        assert!(m.to_string().contains("does not exist"), "{m}");
    }
}

#[tokio::test]
async fn if_none_match_star_never_confirms_a_certification_the_caller_cannot_see() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let officer = s.officer(&a).await;
    let theirs: i64 = s.certification_ids(s.org_id(&b).await).await[0];
    let ours: Vec<i64> = s.certification_ids(s.org_id(&a).await).await;
    let auditor = s.token(&a, Role::Auditor, Some(vec![ours[0]])).await;
    let star = |token: &str, cert: i64, pdf: bool| {
        let path = if pdf {
            format!("/v1/reports/board.pdf?certification={cert}")
        } else {
            format!("/v1/metrics/posture?certification={cert}")
        };
        s.http
            .get(format!("{}{path}", s.base))
            .bearer_auth(token)
            .header("if-none-match", "*")
            .send()
    };
    for pdf in [false, true] {
        assert_eq!(star(&officer, theirs, pdf).await.unwrap().status(), 404);
        assert_eq!(
            star(&officer, 999_999_999, pdf).await.unwrap().status(),
            404
        );
        assert_eq!(star(&auditor, ours[1], pdf).await.unwrap().status(), 403);
        assert_eq!(star(&officer, ours[0], pdf).await.unwrap().status(), 304);
    }
}

#[tokio::test]
async fn an_auditors_scores_do_not_move_when_an_unassigned_certification_learns_a_word() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let certs: Vec<i64> = s.certification_ids(org).await;
    let (mine, other) = (certs[0], certs[1]);
    let requirement = |cert: i64| {
        sqlx::query_scalar::<_, i64>(
            "SELECT id FROM requirements WHERE certification_id = $1 ORDER BY id LIMIT 1",
        )
        .bind(cert)
        .fetch_one(&s.pool)
    };
    let (visible_req, hidden_req) = (
        requirement(mine).await.unwrap(),
        requirement(other).await.unwrap(),
    );
    let add = |req: i64, n: i64| {
        sqlx::query(
            "INSERT INTO evidence (organization_id, requirement_id, title, content, file_name, media_type, \
             sha256, status, collected_on) \
             SELECT $1, $2, 'quokkaglyph ledger ' || g, 'quokkaglyph appears here', 'q.txt', 'text/plain', \
                    md5(g::text || $2::text) || md5($2::text || g::text), 'accepted', current_date \
             FROM generate_series(1, $3) g",
        )
        .bind(org)
        .bind(req)
        .bind(n)
        .execute(&s.pool)
    };
    add(visible_req, 2).await.unwrap();
    s.caught_up().await;
    let auditor = s.token(&a, Role::Auditor, Some(vec![mine])).await;
    let scores = async || -> Vec<f64> {
        let v = s.search(&auditor, &Params::q("quokkaglyph")).await;
        hits(&v)
            .iter()
            .map(|h| h["score"].as_f64().unwrap())
            .collect()
    };
    let before = scores().await;
    assert_eq!(before.len(), 2);
    // a typo of a word the auditor's scope knows only twice is corrected
    let typo = s.search(&auditor, &Params::q("quokkaglyps")).await;
    let typo_before = hits(&typo).len();
    add(hidden_req, 80).await.unwrap();
    s.caught_up().await;
    assert_eq!(
        scores().await,
        before,
        "scores moved with documents the auditor cannot see"
    );
    let typo = s.search(&auditor, &Params::q("quokkaglyps")).await;
    assert_eq!(
        hits(&typo).len(),
        typo_before,
        "typo tolerance moved with hidden documents"
    );
}

#[tokio::test]
async fn another_tenants_commits_and_cursors_never_expire_my_cursor() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let mine = s.officer(&a).await;
    let theirs = s.officer(&b).await;
    let first = s
        .search(
            &mine,
            &Params::new().with("kind", "requirement").with("limit", 5),
        )
        .await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let org_b = s.org_id(&b).await;
    // many new index states, each pinned by B's own paged searches
    for i in 0..70 {
        sqlx::query(
            "UPDATE risks SET title = title || '.' WHERE id = \
             (SELECT id FROM risks WHERE organization_id = $1 ORDER BY id OFFSET $2 LIMIT 1)",
        )
        .bind(org_b)
        .bind(i % 20)
        .execute(&s.pool)
        .await
        .unwrap();
        s.caught_up().await;
        s.search(
            &theirs,
            &Params::new().with("kind", "risk").with("limit", 2),
        )
        .await;
    }
    let next = s
        .search_response(
            &mine,
            &Params::new()
                .with("kind", "requirement")
                .with("limit", 5)
                .with("cursor", &cursor),
        )
        .await;
    assert_eq!(next.status(), 200, "{}", next.text().await.unwrap());
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_a_few_unauthenticated_sockets() {
    let s = TestApp::start().await;
    let mut held = Vec::new();
    for _ in 0..certscope_query_api::events::EventConfig::DEFAULT_UNAUTHENTICATED_PER_ADDRESS {
        held.push(ws(&s, None).await.expect("a slot"));
    }
    assert_eq!(ws(&s, None).await.err(), Some(429));
    // a slot comes back when a socket authenticates
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    let first = &mut held[0];
    first
        .send(Message::Text(
            json!({"type": "auth", "token": t}).to_string().into(),
        ))
        .await
        .unwrap();
    assert_eq!(next(first).await["type"], "welcome");
    assert!(ws(&s, None).await.is_ok());
}

#[tokio::test]
async fn a_ticket_is_worth_no_more_than_its_token_and_every_subscribe_is_answered() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let org = s.org_id(&a).await;
    let user: i64 = sqlx::query_scalar("SELECT id FROM users WHERE organization_id = $1 LIMIT 1")
        .bind(org)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let exp = now() + 1;
    let short = token(&claims(user, org, Role::Officer, exp));
    let ticket = s.events_ticket(&short).await;
    // the token's expiry passes (the ticket itself would live 60 s)
    while now() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = s
        .http
        .get(format!(
            "{}/v1/events/stream?rooms=org&ticket={ticket}",
            s.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // a subscribe whose every room is refused is still answered
    let t = s.officer(&a).await;
    let theirs = s.org_id(&b).await;
    let mut socket = ws(&s, Some(&t)).await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "welcome");
    socket
        .send(Message::Text(
            json!({"type": "subscribe", "rooms": [format!("org:{theirs}")]})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let mut ack = next(&mut socket).await;
    while ack["type"] == "error" {
        ack = next(&mut socket).await;
    }
    assert_eq!(ack["type"], "subscribed", "{ack}");
    assert_eq!(ack["rooms"], json!([]));
    assert_eq!(ack["refused"], json!([format!("org:{theirs}")]));
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let s = TestApp::start_with(|c| c.metrics_token = Some("scrape-me-0123456789".into())).await;
    let scrape = |token: Option<&'static str>| {
        let r = s.http.get(format!("{}/metrics", s.base));
        match token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
        .send()
    };
    assert_eq!(scrape(None).await.unwrap().status(), 401);
    assert_eq!(
        scrape(Some("scrape-me-0123456789x"))
            .await
            .unwrap()
            .status(),
        401
    );
    let r = scrape(Some("scrape-me-0123456789")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("certscope_search_pinned_searchers")
    );
}

/// Load shedding: with one search at a time and nobody allowed to wait, a
/// burst of different searches is answered at once: each either runs (200) or
/// is refused with 503, `Retry-After` and a reason, never queued, never 500;
/// `/metrics` counts the refusals; and the server answers normally after.
#[tokio::test]
async fn at_capacity_searches_are_refused_at_once_with_retry_after_and_counted() {
    let s = TestApp::start_with(|c| {
        c.search_limits = certscope_query_api::admission::Limits {
            concurrency: 1,
            queue: 0,
            max_wait: Duration::ZERO,
            late_after: Duration::ZERO,
            ..certscope_query_api::admission::Limits::for_this_machine()
        };
    })
    .await;
    let (a, _) = s.orgs().await;
    let officer = s.officer(&a).await;
    // different questions, so no answer comes from the cache or is shared
    let words = [
        "access",
        "audit",
        "control",
        "incident",
        "policy",
        "account",
        "training",
        "risk",
        "system",
        "information",
        "security",
        "response",
        "plan",
        "review",
        "monitoring",
        "configuration",
        "identification",
        "authentication",
        "media",
        "physical",
        "personnel",
        "assessment",
        "maintenance",
        "contingency",
        "awareness",
        "protection",
        "integrity",
        "supply",
        "privacy",
        "program",
    ];
    let burst = words.iter().map(|w| {
        let (s, officer) = (&s, &officer);
        async move {
            let started = std::time::Instant::now();
            let r = s.get(officer, &format!("/v1/search?q={w}&limit=20")).await;
            let (status, retry, body) = refusal_of(r).await;
            (status, retry, body, started.elapsed())
        }
    });
    let answers = futures_util::future::join_all(burst).await;
    let refused: Vec<_> = answers.iter().filter(|a| a.0 == 503).collect();
    for (status, retry, body, took) in &answers {
        assert!(
            *status == 200 || *status == 503,
            "only answers or refusals: {status} {body}"
        );
        if *status == 503 {
            assert_eq!(retry.as_deref(), Some("1"), "{body}");
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.contains("at capacity"), "{message}");
            assert!(
                *took < Duration::from_secs(2),
                "refused quickly, not after {took:?}"
            );
        }
    }
    assert!(
        !refused.is_empty() && refused.len() < answers.len(),
        "a burst of {} searches with one turn: some run, some are refused ({} refused)",
        answers.len(),
        refused.len()
    );
    let metrics = s.prometheus().await;
    assert!(
        metrics.contains(&format!("certscope_searches_shed {}", refused.len())),
        "the refusals are counted: {}",
        metrics
            .lines()
            .filter(|l| l.contains("shed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // once the burst is over, searches run again
    for w in words.iter().take(3) {
        let r = s.get(&officer, &format!("/v1/search?q={w}+{w}")).await;
        assert_eq!(r.status(), 200);
    }
}

/// A database with no free connection is "unavailable, try again" (503 with
/// `Retry-After` and the reason), not a 500 and not a hang; once connections
/// are free again the same request is answered.
#[tokio::test]
async fn an_exhausted_database_pool_answers_503_with_retry_after_not_500() {
    let s = TestApp::start_with_read_pool(2).await;
    let (a, _) = s.orgs().await;
    let officer = s.officer(&a).await;
    let cert: i64 = s.certification_ids(s.org_id(&a).await).await[0];
    let path = format!("/v1/certifications/{cert}?include=history");
    assert_eq!(s.get(&officer, &path).await.status(), 200);
    // hold every connection the service reads through that it does not
    // hold itself (its event listener keeps one): take until none is left
    let mut held = Vec::new();
    loop {
        match s.state.pool.acquire().await {
            Ok(c) => held.push(c),
            Err(sqlx::Error::PoolTimedOut) => break,
            Err(e) => panic!("taking a connection: {e}"),
        }
    }
    assert!(
        !held.is_empty(),
        "the read pool had no free connection to take"
    );
    let started = std::time::Instant::now();
    let r = s.get(&officer, &path).await;
    let took = started.elapsed();
    let (status, retry, body) = refusal_of(r).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(body["error"]["code"], "unavailable");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("database is busy"), "{message}");
    assert!(
        took < Duration::from_secs(10),
        "answered after the one-second acquire timeout, not hung: {took:?}"
    );
    drop(held);
    assert_eq!(s.get(&officer, &path).await.status(), 200);

    // a statement cancelled by statement_timeout reads the same way
    let mut c = s.pool.acquire().await.unwrap();
    sqlx::query("SET statement_timeout = 20")
        .execute(&mut *c)
        .await
        .unwrap();
    let cancelled = sqlx::query("SELECT pg_sleep(2)")
        .execute(&mut *c)
        .await
        .expect_err("cancelled by the statement timeout");
    let e = certscope_query_api::error::ApiError::internal("reading a record", cancelled);
    assert_eq!(e.status(), 503);
    assert!(e.public_message().contains("statement timeout"), "{e}");
}

/// A small filesystem of the test's own for the index: a tmpfs (mounting one
/// needs root, which CI and sessions have), lazily unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs for the index failed (the disk-full test runs as root)"
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Takes every byte left with one file; returns it.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0u8; 1 << 20];
        loop {
            match file.write_all(&chunk).and_then(|()| file.sync_all()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // what a partial write left
        while file.write_all(&[0u8; 512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

async fn readiness(s: &TestApp) -> (u16, Value) {
    let r = s.get_anonymous("/readyz").await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("readyz body"))
}

fn index_check(readyz: &Value) -> &Value {
    readyz["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "index"))
        .expect("an index check")
}

/// Polls `/readyz` until `pred` holds for its index check, or panics after `secs`.
async fn until_index(s: &TestApp, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, body) = readiness(s).await;
        if pred(index_check(&body)) {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} within {secs} s; last /readyz: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn failed_requirements() -> Params {
    Params::new()
        .with("kind", "requirement")
        .with("status", "failed")
        .with("limit", 1)
}

/// Requirements of organization `org` not failed yet.
async fn unfailed_requirements(s: &TestApp, org: i64, n: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT id FROM requirements WHERE organization_id = $1 AND status <> 'failed' ORDER BY id LIMIT $2",
    )
    .bind(org)
    .bind(n)
    .fetch_all(&s.pool)
    .await
    .expect("requirements")
}

#[tokio::test]
async fn a_full_disk_under_the_index_stops_commits_says_why_and_loses_nothing() {
    let disk = SmallDisk::mount(256);
    let s = TestApp::start_with_index_dir(disk.path().join("index")).await;
    let (a, _) = s.orgs().await;
    let officer = s.officer(&a).await;
    let before =
        certscope_query_api::testing::total(&s.search(&officer, &failed_requirements()).await);
    assert_eq!(readiness(&s).await.0, 200);

    let filler = disk.fill();
    let changed = unfailed_requirements(&s, s.org_id(&a).await, 3).await;
    for &id in &changed {
        s.set_requirement_status(id, "failed").await;
    }
    // the commit is refused: ready but degraded, saying why
    let body = until_index(&s, 30, "the full disk is reported", |c| {
        c["status"] == "degraded"
    })
    .await;
    let reason = index_check(&body)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(reason.contains("disk under the index is full"), "{body}");
    // searches answer from the last commit meanwhile, without the new changes
    for _ in 0..5 {
        let r = s.search_response(&officer, &failed_requirements()).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(certscope_query_api::testing::total(&v), before, "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // space returns: the indexer resumes by itself and nothing was lost
    std::fs::remove_file(&filler).expect("remove the filler");
    until_index(&s, 30, "the index advances again", |c| c["status"] == "ok").await;
    s.assert_index_equals_database().await;
    let after =
        certscope_query_api::testing::total(&s.search(&officer, &failed_requirements()).await);
    assert_eq!(after, before + changed.len() as u64);
    let errors = counter(&s.prometheus().await, "certscope_index_errors_total");
    assert!(errors > 0, "the refused commits are counted");
}

/// The value of a counter in the Prometheus text.
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Waits until the server counts `n` index rebuilds and is ready again.
async fn rebuilt(s: &TestApp, n: u64, after: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while counter(&s.prometheus().await, "certscope_index_rebuilds_total") < n {
        assert!(
            std::time::Instant::now() < deadline,
            "no rebuild within 60 s of {after}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until_index(s, 30, "ready after the rebuild", |c| c["status"] == "ok").await;
}

#[tokio::test]
async fn an_index_deleted_or_damaged_under_the_server_is_rebuilt_while_searches_answer() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("index");
    let s = std::sync::Arc::new(TestApp::start_with_index_dir(dir.clone()).await);
    let (a, _) = s.orgs().await;
    let officer = s.officer(&a).await;
    let org = s.org_id(&a).await;
    let everything = Params::new().with("limit", 1).with("collapse", "none");
    let total = certscope_query_api::testing::total(&s.search(&officer, &everything).await);
    assert!(total > 0);

    // a reader that searches all along and records any answer that is not the
    // same 200
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = {
        let (s, officer, everything, stop) =
            (s.clone(), officer.clone(), everything.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut searches, mut wrong) = (0u64, Vec::new());
            while !stop.is_cancelled() {
                let r = s.search_response(&officer, &everything).await;
                let status = r.status().as_u16();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if status != 200 || certscope_query_api::testing::total(&v) != total {
                    wrong.push(format!("{status}: {v}"));
                }
                searches += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (searches, wrong)
        })
    };

    let rebuilds = counter(&s.prometheus().await, "certscope_index_rebuilds_total");
    // 1. the whole directory deleted: moved out of the way at once, then
    // removed (a removal file by file could be caught halfway by the check
    // and set aside as damaged, which is a different case)
    let trash = tempfile::tempdir().unwrap();
    std::fs::rename(&dir, trash.path().join("index")).expect("move the index away");
    std::fs::remove_dir_all(trash.path().join("index")).expect("delete the index");
    rebuilt(&s, rebuilds + 1, "the deletion").await;
    assert!(dir.join("meta.json").is_file(), "rebuilt in place");

    // 2. meta.json overwritten: set aside (kept for inspection) and rebuilt
    std::fs::write(dir.join("meta.json"), b"{ not json").unwrap();
    rebuilt(&s, rebuilds + 2, "the damage").await;
    let aside: Vec<String> = std::fs::read_dir(root.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("index.broken-"))
        .collect();
    assert_eq!(aside.len(), 1, "the damaged index is set aside: {aside:?}");

    stop.cancel();
    let (searches, wrong) = watcher.await.unwrap();
    assert!(searches > 10, "the reader ran ({searches} searches)");
    assert!(
        wrong.is_empty(),
        "{} of {searches} searches went wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(3)]
    );

    // and the rebuilt index follows changes again
    let changed = unfailed_requirements(&s, org, 2).await;
    for &id in &changed {
        s.set_requirement_status(id, "failed").await;
    }
    s.assert_index_equals_database().await;
}
