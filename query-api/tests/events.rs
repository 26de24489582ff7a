//! Live events against the running service: real WebSocket and SSE clients, real
//! SQL changes, the deriver and the hub as `certscope serve` runs them.

use std::pin::Pin;
use std::time::{Duration, Instant};

use certscope_indexer::events as event_log;
use certscope_query_api::Role;
use certscope_query_api::testing::TestApp;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const DEADLINE: Duration = Duration::from_secs(10);

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking the events protocol.
struct Ws {
    socket: Socket,
}

impl Ws {
    async fn open(s: &TestApp, token: Option<&str>) -> Ws {
        let url = format!("{}/v1/events", s.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (socket, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connect");
        assert_eq!(response.status(), 101);
        Ws { socket }
    }

    /// Connected, welcomed, and subscribed to `rooms` (every one accepted).
    async fn subscribed(s: &TestApp, token: &str, rooms: &[&str], last: Option<i64>) -> Ws {
        let mut ws = Ws::open(s, Some(token)).await;
        assert_eq!(ws.next().await["type"], "welcome");
        ws.send(json!({"type": "subscribe", "rooms": rooms, "last_event_id": last}))
            .await;
        let ack = ws.next().await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        assert_eq!(ack["rooms"].as_array().map(Vec::len), Some(rooms.len()));
        ws
    }

    async fn send(&mut self, v: Value) {
        self.socket
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON message (pings and pongs skipped); panics at the deadline.
    async fn next(&mut self) -> Value {
        self.try_next(DEADLINE)
            .await
            .unwrap_or_else(|| panic!("no message within {DEADLINE:?}"))
    }

    async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            let msg = match msg {
                Ok(m) => m,
                Err(e) => return Some(json!({"type": "reset", "error": e.to_string()})),
            };
            match msg {
                Message::Text(t) => return Some(serde_json::from_str(&t).expect("json message")),
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or_default();
                    return Some(json!({"type": "closed", "code": code, "reason": reason}));
                }
                _ => {}
            }
        }
    }

    /// Messages until one satisfies `pred` (returned with those before it).
    async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let m = self.next().await;
            if pred(&m) {
                return (m, before);
            }
            before.push(m);
        }
    }
}

/// A Server-Sent Events client over a plain HTTP response.
struct Sse {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

#[derive(Debug)]
struct SseMessage {
    id: Option<i64>,
    event: String,
    data: Value,
}

impl Sse {
    async fn open(s: &TestApp, token: &str, query: &str, last: Option<i64>) -> reqwest::Response {
        let mut r = s
            .http
            .get(format!("{}/v1/events/stream?{query}", s.base))
            .bearer_auth(token);
        if let Some(last) = last {
            r = r.header("last-event-id", last.to_string());
        }
        r.send().await.expect("sse request")
    }

    async fn connect(s: &TestApp, token: &str, query: &str, last: Option<i64>) -> Sse {
        let r = Sse::open(s, token, query, last).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut sse = Sse {
            body: Box::pin(r.bytes_stream()),
            buffer: String::new(),
        };
        assert_eq!(sse.next().await.event, "subscribed");
        sse
    }

    async fn next(&mut self) -> SseMessage {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut m = SseMessage {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        m.id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        m.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                m.data = serde_json::from_str(&data).expect("sse json");
                return m;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("no SSE message in time")
                .expect("SSE stream ended")
                .expect("SSE body");
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// A requirement of `org` in `certification` (or any) whose status is not `status`.
async fn requirement(s: &TestApp, org: i64, not_status: &str) -> (i64, i64, String) {
    sqlx::query_as(
        "SELECT id, certification_id, status FROM requirements \
         WHERE organization_id = $1 AND status <> $2 ORDER BY id LIMIT 1",
    )
    .bind(org)
    .bind(not_status)
    .fetch_one(&s.pool)
    .await
    .unwrap()
}

async fn set_status(s: &TestApp, requirement: i64, status: &str) {
    sqlx::query("UPDATE requirements SET status = $2 WHERE id = $1")
        .bind(requirement)
        .bind(status)
        .execute(&s.pool)
        .await
        .unwrap();
}

async fn notice(s: &TestApp, org: Option<i64>, message: &str) -> i64 {
    let ids = event_log::append(&s.pool, &[event_log::notice(org, "info", message, None)])
        .await
        .unwrap();
    ids[0]
}

fn is_event(kind: &str) -> impl Fn(&Value) -> bool + '_ {
    move |m| m["type"] == "event" && m["kind"] == kind
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sql_status_change_reaches_websocket_and_sse_subscribers_with_both_statuses() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let (req, cert, before) = requirement(&s, org, "failed").await;
    let room = format!("certification:{cert}");

    let mut ws = Ws::open(&s, Some(&token)).await;
    let welcome = ws.next().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["organization_id"], org);
    ws.send(json!({"type": "subscribe", "room": room})).await;
    assert_eq!(ws.next().await["type"], "subscribed");
    // the certification's current state comes first
    let snapshot = ws.next().await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(snapshot["room"], room.as_str());
    assert_eq!(snapshot["certification"]["id"], cert);
    let total = snapshot["certification"]["requirements"]["total"]
        .as_i64()
        .unwrap();
    assert!(total > 0, "{snapshot}");
    assert!(snapshot["certification"]["completion_pct"].is_number());

    let mut sse = Sse::connect(&s, &token, &format!("rooms={room}"), None).await;
    let sse_snapshot = sse.next().await;
    assert_eq!(sse_snapshot.event, "snapshot");
    assert_eq!(sse_snapshot.data["certification"]["id"], cert);

    let started = Instant::now();
    set_status(&s, req, "failed").await;
    let (event, _) = ws.until(is_event("requirement.status_changed")).await;
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(event["data"]["requirement_id"], req);
    assert_eq!(event["data"]["previous"], before.as_str());
    assert_eq!(event["data"]["status"], "failed");
    assert_eq!(event["organization_id"], org);
    assert_eq!(event["certification_id"], cert);
    assert!(event["id"].as_i64().unwrap() > 0);
    assert!(event["position"].as_str().is_some_and(|p| p.contains(':')));
    assert!(event["occurred_at"].is_string());
    assert!(event["data"]["certification_completion_pct"].is_number());

    let m = sse.next().await;
    assert_eq!(m.event, "requirement.status_changed");
    assert_eq!(m.id, event["id"].as_i64());
    assert_eq!(m.data, event);

    // the event's position is a search position: asking for it never 503s
    let position = event["position"].as_str().unwrap();
    let r = s
        .get(
            &token,
            &format!(
                "/v1/requirements?min_position={}",
                certscope_query_api::testing::enc(position)
            ),
        )
        .await;
    assert_eq!(r.status(), 200);

    // the other event kinds: evidence submitted and reviewed, risk changed,
    // certification status with completion
    let evidence_req: i64 = sqlx::query_scalar(
        "SELECT id FROM requirements WHERE certification_id = $1 ORDER BY id LIMIT 1",
    )
    .bind(cert)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let evidence: i64 = sqlx::query_scalar(
        "INSERT INTO evidence (organization_id, requirement_id, title, file_name, media_type, sha256, status, collected_on) \
         VALUES ($1, $2, 'Quarterly access review', 'review.pdf', 'application/pdf', repeat('ab', 32), 'pending', current_date) \
         RETURNING id",
    )
    .bind(org)
    .bind(evidence_req)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    let (submitted, _) = ws.until(is_event("evidence.submitted")).await;
    assert_eq!(submitted["data"]["evidence_id"], evidence);
    assert_eq!(submitted["data"]["status"], "pending");
    sqlx::query("UPDATE evidence SET status = 'accepted' WHERE id = $1")
        .bind(evidence)
        .execute(&s.pool)
        .await
        .unwrap();
    let (reviewed, _) = ws.until(is_event("evidence.reviewed")).await;
    assert_eq!(reviewed["data"]["previous"], "pending");
    assert_eq!(reviewed["data"]["status"], "accepted");
    assert!(reviewed["id"].as_i64() > submitted["id"].as_i64());

    // expiry is a fact of time, not of a write: the daily sweep announces it once
    sqlx::query(
        "UPDATE evidence SET collected_on = current_date - 30, expires_on = current_date - 1 WHERE id = $1",
    )
    .bind(evidence)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE event_cursor SET expiry_swept_until = current_date - 2")
        .execute(&s.pool)
        .await
        .unwrap();
    assert!(event_log::sweep_expiry(&s.pool).await.unwrap() >= 1);
    assert_eq!(event_log::sweep_expiry(&s.pool).await.unwrap(), 0);
    let (expired, _) = ws
        .until(|m| m["kind"] == "evidence.expired" && m["data"]["evidence_id"] == evidence)
        .await;
    assert_eq!(expired["certification_id"], cert);

    let old_status: String = sqlx::query_scalar("SELECT status FROM certifications WHERE id = $1")
        .bind(cert)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    let new_status = if old_status == "under_audit" {
        "in_progress"
    } else {
        "under_audit"
    };
    sqlx::query("UPDATE certifications SET status = $2 WHERE id = $1")
        .bind(cert)
        .bind(new_status)
        .execute(&s.pool)
        .await
        .unwrap();
    let (changed, _) = ws.until(is_event("certification.status_changed")).await;
    assert_eq!(changed["data"]["previous"], old_status.as_str());
    assert_eq!(changed["data"]["status"], new_status);
    assert!(changed["data"]["completion_pct"].is_number());

    // risks: levels before and after, on the organization's room and on the
    // rooms of the certifications the risk is linked to, where an auditor of
    // that certification sees it too (as in search)
    let mut org_ws = Ws::subscribed(&s, &token, &["org"], None).await;
    let auditor = s.token(&a, Role::Auditor, Some(vec![cert])).await;
    let mut audit_ws = Ws::subscribed(&s, &auditor, &[&room], None).await;
    assert_eq!(audit_ws.next().await["type"], "snapshot");
    let (risk, il, ii, rl, ri): (i64, i16, i16, i16, i16) = sqlx::query_as(
        "SELECT k.id, k.inherent_likelihood, k.inherent_impact, k.residual_likelihood, k.residual_impact \
         FROM risks k WHERE k.organization_id = $1 AND k.residual_likelihood > 1 \
         AND EXISTS (SELECT 1 FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id \
                     WHERE rr.risk_id = k.id AND r.certification_id = $2) \
         ORDER BY k.id LIMIT 1",
    )
    .bind(org)
    .bind(cert)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE risks SET residual_likelihood = residual_likelihood - 1 WHERE id = $1")
        .bind(risk)
        .execute(&s.pool)
        .await
        .unwrap();
    let (r, _) = org_ws.until(is_event("risk.changed")).await;
    assert_eq!(r["data"]["risk_id"], risk);
    assert_eq!(r["data"]["previous"]["residual"]["likelihood"], rl);
    assert_eq!(r["data"]["current"]["residual"]["likelihood"], rl - 1);
    assert_eq!(r["data"]["current"]["residual"]["score"], (rl - 1) * ri);
    assert_eq!(r["data"]["current"]["inherent"]["score"], il * ii);
    // the risk's other certifications are not named (an auditor may not see them)
    assert!(r["data"].get("certification_ids").is_none(), "{r}");
    let (in_room, _) = ws.until(is_event("risk.changed")).await;
    assert_eq!(in_room, r);
    let (audited, _) = audit_ws.until(is_event("risk.changed")).await;
    assert_eq!(audited, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_of_another_organization_ever_reaches_a_client() {
    let s = TestApp::start().await;
    let (a, b) = s.orgs().await;
    let (org_a, org_b) = (s.org_id(&a).await, s.org_id(&b).await);
    let token_a = s.officer(&a).await;
    let cert_b: i64 =
        sqlx::query_scalar("SELECT id FROM certifications WHERE organization_id = $1 LIMIT 1")
            .bind(org_b)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    let certs_a: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM certifications WHERE organization_id = $1 ORDER BY id")
            .bind(org_a)
            .fetch_all(&s.pool)
            .await
            .unwrap();
    let user_b: i64 = sqlx::query_scalar("SELECT id FROM users WHERE organization_id = $1 LIMIT 1")
        .bind(org_b)
        .fetch_one(&s.pool)
        .await
        .unwrap();

    let mut rooms: Vec<String> = vec!["org".into(), "user".into(), "notices".into()];
    rooms.extend(certs_a.iter().map(|c| format!("certification:{c}")));
    let mut ws = Ws::open(&s, Some(&token_a)).await;
    ws.next().await;
    ws.send(json!({"type": "subscribe", "rooms": rooms})).await;
    ws.until(|m| m["type"] == "subscribed").await;
    for _ in &certs_a {
        assert_eq!(ws.next().await["type"], "snapshot");
    }
    // every refusal names the room and the reason; the connection stays usable
    for (room, code) in [
        (format!("org:{org_b}"), "forbidden"),
        (format!("certification:{cert_b}"), "not_found"),
        (format!("user:{user_b}"), "forbidden"),
    ] {
        ws.send(json!({"type": "subscribe", "room": room})).await;
        let e = ws.next().await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["code"], code, "{e}");
        assert_eq!(e["room"], room.as_str());
        assert!(e["message"].as_str().unwrap().len() > 10);
        // and the subscribe is still answered: nothing granted
        let ack = ws.next().await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        assert_eq!(ack["rooms"], json!([]));
        assert_eq!(ack["refused"], json!([room]));
    }
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");

    let all_a: String = rooms.join(",");
    let mut sse = Sse::connect(&s, &token_a, &format!("rooms={all_a}"), None).await;
    // an SSE refusal arrives in the stream, which goes on
    let r = Sse::open(
        &s,
        &token_a,
        &format!("rooms=org,certification:{cert_b}"),
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let mut refused = Sse {
        body: Box::pin(r.bytes_stream()),
        buffer: String::new(),
    };
    let e = refused.next().await;
    assert_eq!(e.event, "error");
    assert_eq!(e.data["room"], format!("certification:{cert_b}"));
    assert_eq!(refused.next().await.event, "subscribed");

    // an auditor of A: not the organization's room, not unassigned certifications
    let auditor = s.token(&a, Role::Auditor, Some(vec![certs_a[0]])).await;
    let mut aw = Ws::open(&s, Some(&auditor)).await;
    aw.next().await;
    aw.send(json!({"type": "subscribe", "rooms": ["org"]}))
        .await;
    assert_eq!(aw.next().await["code"], "forbidden");
    assert_eq!(aw.next().await["rooms"], json!([]));
    if let Some(other) = certs_a.get(1) {
        aw.send(json!({"type": "subscribe", "room": format!("certification:{other}")}))
            .await;
        assert_eq!(aw.next().await["code"], "forbidden");
        assert_eq!(aw.next().await["rooms"], json!([]));
    }

    // a burst of B's changes of every kind, then one canary change of A's
    sqlx::query(
        "UPDATE requirements SET status = CASE WHEN status = 'implemented' THEN 'in_progress' ELSE 'implemented' END \
         WHERE organization_id = $1",
    )
    .bind(org_b)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE evidence SET status = 'rejected' WHERE organization_id = $1 AND status = 'pending'",
    )
    .bind(org_b)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE risks SET status = 'treating' WHERE organization_id = $1 AND status = 'open'",
    )
    .bind(org_b)
    .execute(&s.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE certifications SET status = 'under_audit' WHERE organization_id = $1 AND status <> 'under_audit'")
        .bind(org_b)
        .execute(&s.pool)
        .await
        .unwrap();
    notice(&s, Some(org_b), "maintenance for B only").await;
    let (canary, _, _) = requirement(&s, org_a, "failed").await;
    set_status(&s, canary, "failed").await;

    let is_canary = |m: &Value| m["type"] == "event" && m["data"]["requirement_id"] == canary;
    let (_, before) = ws.until(is_canary).await;
    for m in &before {
        assert_ne!(m["organization_id"], org_b, "B's event reached A: {m}");
        assert!(!m.to_string().contains("maintenance for B"), "{m}");
    }
    loop {
        let m = sse.next().await;
        assert_ne!(
            m.data["organization_id"], org_b,
            "B's event reached A over SSE: {m:?}"
        );
        if m.data["data"]["requirement_id"] == canary {
            break;
        }
    }
    // and B's events did happen: B's own client replays them
    let token_b = s.officer(&b).await;
    let mut wb = Ws::subscribed(&s, &token_b, &["org", "notices"], Some(0)).await;
    let (m, _) = wb
        .until(|m| m["type"] == "event" && m["kind"] == "notice")
        .await;
    assert_eq!(m["organization_id"], org_b);
    let metrics = s.prometheus().await;
    assert!(metrics.contains("certscope_events_refused_rooms_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_after_a_disconnect_exactly_once_in_order_or_is_told_to_resync() {
    let s = TestApp::start_with(|c| c.events.retain_events = 40).await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let reqs: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, status FROM requirements WHERE organization_id = $1 AND status <> 'failed' ORDER BY id LIMIT 5",
    )
    .bind(org)
    .fetch_all(&s.pool)
    .await
    .unwrap();

    let mut ws = Ws::subscribed(&s, &token, &["org"], None).await;
    set_status(&s, reqs[0].0, "failed").await;
    let (first, _) = ws.until(is_event("requirement.status_changed")).await;
    let last_seen = first["id"].as_i64().unwrap();
    drop(ws);

    // missed while away, one statement each
    for (id, _) in &reqs[1..4] {
        set_status(&s, *id, "failed").await;
    }
    let missed: Vec<i64> = reqs[1..4].iter().map(|r| r.0).collect();
    // wait until the server has them, so the resume must come from retention
    let deadline = Instant::now() + DEADLINE;
    while s.state.events.last_id() < last_seen + 3 {
        assert!(Instant::now() < deadline, "events were not derived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut ws = Ws::subscribed(&s, &token, &["org"], Some(last_seen)).await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = ws.next().await;
        assert_eq!(m["type"], "event", "{m}");
        got.push(m);
    }
    let ids: Vec<i64> = got.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids[0] > last_seen);
    let reqs_got: Vec<i64> = got
        .iter()
        .map(|m| m["data"]["requirement_id"].as_i64().unwrap())
        .collect();
    assert_eq!(reqs_got, missed);
    // then live, and nothing twice
    set_status(&s, reqs[4].0, "failed").await;
    let m = ws.next().await;
    assert_eq!(m["data"]["requirement_id"], reqs[4].0, "{m}");
    assert!(ws.try_next(Duration::from_millis(500)).await.is_none());

    // SSE resumes from Last-Event-ID the same way
    let mut sse = Sse::connect(&s, &token, "rooms=org", Some(last_seen)).await;
    let mut sse_reqs = Vec::new();
    while sse_reqs.len() < 4 {
        let m = sse.next().await;
        assert_eq!(m.event, "requirement.status_changed");
        sse_reqs.push(m.data["data"]["requirement_id"].as_i64().unwrap());
    }
    assert_eq!(sse_reqs[..3], missed[..]);

    // a restarted server (a new hub, loading the event log from PostgreSQL)
    // resumes the same way: the log, not the process, holds the events
    let mut config =
        certscope_query_api::ApiConfig::new(certscope_query_api::testing::SECRET.to_vec());
    config.events.retain_events = 40;
    let restarted =
        certscope_query_api::AppState::new(s.pool.clone(), s.state.views.clone(), None, config);
    let stop = tokio_util::sync::CancellationToken::new();
    restarted.start_events(s.pool.clone(), stop.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/events", listener.local_addr().unwrap());
    let server_stop = stop.clone();
    tokio::spawn(certscope_query_api::serve(
        listener,
        restarted,
        async move {
            server_stop.cancelled().await;
        },
    ));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut other = Ws { socket };
    assert_eq!(other.next().await["type"], "welcome");
    other
        .send(json!({"type": "subscribe", "rooms": ["org"], "last_event_id": last_seen}))
        .await;
    assert_eq!(other.next().await["type"], "subscribed");
    let mut again = Vec::new();
    while again.len() < 4 {
        let m = other.next().await;
        assert_eq!(m["type"], "event", "{m}");
        again.push(m["data"]["requirement_id"].as_i64().unwrap());
    }
    assert_eq!(again[..3], missed[..]);
    stop.cancel();

    // past the retention window (40 events): resync, never a silent gap
    for i in 0..45 {
        notice(&s, Some(org), &format!("notice {i}")).await;
    }
    let deadline = Instant::now() + DEADLINE;
    while s.state.events.last_id() < last_seen + 49 {
        assert!(Instant::now() < deadline, "notices were not fed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ws = Ws::open(&s, Some(&token)).await;
    ws.next().await;
    ws.send(json!({"type": "subscribe", "rooms": ["org"], "last_event_id": last_seen}))
        .await;
    assert_eq!(ws.next().await["type"], "subscribed");
    let resync = ws.next().await;
    assert_eq!(resync["type"], "resync", "{resync}");
    assert!(
        resync["reason"]
            .as_str()
            .unwrap()
            .contains("older than the retained")
    );
    // an id from the future (a reset log) also resyncs
    let mut sse = Sse::connect(&s, &token, "rooms=org", Some(i64::MAX / 2)).await;
    assert_eq!(sse.next().await.event, "resync");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_dropped_with_a_reason_and_memory_stays_bounded() {
    let s = TestApp::start_with(|c| {
        c.events.queue = 16;
        c.events.retain_events = 500;
        c.events.close_grace = Duration::from_secs(20);
    })
    .await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let mut ws = Ws::subscribed(&s, &token, &["notices"], None).await;
    let mut sse = Sse::connect(&s, &token, "rooms=notices", None).await;
    // a healthy neighbour on the same server keeps receiving
    let (req, cert, _) = requirement(&s, org, "failed").await;
    let room = format!("certification:{cert}");
    let mut healthy = Ws::subscribed(&s, &token, &[&room], None).await;
    healthy.next().await; // its snapshot

    // the slow clients read nothing from here on: fill their sockets, then
    // their queues, in batches smaller than a queue, as a steady stream would
    let text = "x".repeat(4000);
    let mut pumped = 0;
    let mut max_queued = 0;
    while s
        .state
        .events
        .metrics
        .dropped_slow
        .load(std::sync::atomic::Ordering::Relaxed)
        < 2
    {
        assert!(pumped < 40_000, "the slow consumers were never dropped");
        let batch: Vec<_> = (0..8)
            .map(|_| event_log::notice(Some(org), "info", &text, None))
            .collect();
        event_log::append(&s.pool, &batch).await.unwrap();
        pumped += 8;
        tokio::time::sleep(Duration::from_millis(2)).await;
        max_queued = max_queued.max(s.state.events.figures().3);
    }
    assert!(
        pumped > 16,
        "dropped before its socket was full ({pumped} events)"
    );
    // never more queued than one queue per connection, however much was sent
    assert!(max_queued <= 3 * 16, "{max_queued} events queued");
    let (_, connections, _, queued) = s.state.events.figures();
    assert!(queued <= 3 * 16);
    assert!(connections <= 3);

    // now it reads: what was in flight, then the reason, then the close frame
    let mut last_text = Value::Null;
    let close = loop {
        let m = ws.next().await;
        if m["type"] == "closed" {
            break m;
        }
        last_text = m;
    };
    assert_eq!(last_text["type"], "error", "{last_text}");
    assert_eq!(last_text["code"], "slow_consumer");
    assert!(
        last_text["message"]
            .as_str()
            .unwrap()
            .contains("slow consumer")
    );
    assert_eq!(close["code"], 4008, "{close}");
    assert!(close["reason"].as_str().unwrap().contains("slow consumer"));
    // the SSE one: what was in flight, then an error event with the reason
    let error = loop {
        let m = sse.next().await;
        if m.event != "notice" {
            break m;
        }
    };
    assert_eq!(error.event, "error", "{error:?}");
    assert_eq!(error.data["code"], "slow_consumer");
    // the server lets go of them, and the healthy client still gets events
    let deadline = Instant::now() + DEADLINE;
    while s.state.events.figures().1 > 1 {
        assert!(
            Instant::now() < deadline,
            "the slow connection was not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    set_status(&s, req, "failed").await;
    healthy
        .until(|m| m["type"] == "event" && m["data"]["requirement_id"] == req)
        .await;
    let metrics = s.prometheus().await;
    assert!(
        metrics.contains("certscope_events_disconnects_total{reason=\"slow_consumer\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_unknown_rooms_and_oversize_frames_get_errors_never_a_crash() {
    let s = TestApp::start_with(|c| c.events.max_connections_per_token = 3).await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut ws = Ws::open(&s, Some(&token)).await;
    assert_eq!(ws.next().await["type"], "welcome");
    let cases: Vec<(Message, &str, &str)> = vec![
        (
            Message::Text("not json".into()),
            "bad_message",
            "not valid JSON",
        ),
        (Message::Text("[1,2]".into()), "bad_message", "JSON object"),
        (
            Message::Text(r#"{"type":"dance"}"#.into()),
            "bad_message",
            "unknown message type",
        ),
        (
            Message::Text(r#"{"type":"subscribe"}"#.into()),
            "bad_message",
            "needs `rooms`",
        ),
        (
            Message::Text(r#"{"type":"subscribe","rooms":["org"],"lastEventId":3}"#.into()),
            "bad_message",
            "unknown field `lastEventId`",
        ),
        (
            Message::Text(r#"{"type":"subscribe","rooms":["org"],"last_event_id":"x"}"#.into()),
            "bad_message",
            "last_event_id",
        ),
        (
            Message::Text(r#"{"type":"subscribe","rooms":["galaxy:7"]}"#.into()),
            "unknown_room",
            "galaxy:7",
        ),
        (
            Message::Text(r#"{"type":"subscribe","rooms":["certification:abc"]}"#.into()),
            "unknown_room",
            "certification:abc",
        ),
        (
            Message::Binary(vec![0, 1, 2].into()),
            "bad_message",
            "binary",
        ),
        (
            Message::Text(format!(r#"{{"type":"ping","pad":"{}"}}"#, "y".repeat(20_000)).into()),
            "too_large",
            "larger than",
        ),
    ];
    for (message, code, says) in cases {
        ws.socket.send(message).await.unwrap();
        let e = ws.next().await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["code"], code, "{e}");
        assert!(e["message"].as_str().unwrap().contains(says), "{e}");
        if code == "unknown_room" {
            // a refused room still gets its subscribe answered
            let ack = ws.next().await;
            assert_eq!(ack["type"], "subscribed", "{ack}");
            assert_eq!(ack["refused"], json!([says]));
        }
    }
    let too_many: Vec<String> = (0..65)
        .map(|i| format!("certification:{}", i + 1))
        .collect();
    ws.send(json!({"type": "subscribe", "rooms": too_many}))
        .await;
    assert_eq!(ws.next().await["code"], "too_many_rooms");
    // still usable after all that
    ws.send(json!({"type": "subscribe", "rooms": ["org"]}))
        .await;
    assert_eq!(ws.next().await["type"], "subscribed");
    ws.send(json!({"type": "unsubscribe", "rooms": ["org"]}))
        .await;
    assert_eq!(
        ws.next().await["rooms"],
        json!(["org:".to_owned() + &s.org_id(&a).await.to_string()])
    );

    // a large message gets an error and the connection goes on
    ws.send(json!({"type": "ping", "pad": "z".repeat(300 << 10)}))
        .await;
    let e = ws.next().await;
    assert_eq!(e["code"], "too_large", "{e}");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
    // a frame over the transport limit (1 MiB) ends this connection: a close
    // frame 1009 when the client is still reading, a reset if it is still sending
    let huge = "z".repeat(2 << 20);
    let _ = ws.socket.send(Message::Text(huge.into())).await;
    let (end, _) = ws
        .until(|m| m["type"] == "closed" || m["type"] == "reset")
        .await;
    if end["type"] == "closed" {
        assert_eq!(end["code"], 1009, "{end}");
    }

    // authentication by first message, and its failures
    let mut anon = Ws::open(&s, None).await;
    anon.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(anon.next().await["type"], "welcome");
    let mut bad = Ws::open(&s, None).await;
    bad.send(json!({"type": "subscribe", "rooms": ["org"]}))
        .await;
    let e = bad.next().await;
    assert_eq!(e["code"], "unauthorized", "{e}");
    let mut forged = Ws::open(&s, None).await;
    forged
        .send(json!({"type": "auth", "token": "eyJhbGciOiJIUzI1NiJ9.e30.x"}))
        .await;
    assert_eq!(forged.next().await["code"], "unauthorized");

    // per-token connection limit (3): once only `anon` is left open, two more
    // fit and the next is refused before the upgrade
    let deadline = Instant::now() + DEADLINE;
    while s.state.events.figures().1 > 1 {
        assert!(
            Instant::now() < deadline,
            "closed connections were not released"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _second = Ws::open(&s, Some(&token)).await;
    let _third = Ws::open(&s, Some(&token)).await;
    let url = format!("{}/v1/events", s.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|r| r.1.status())),
    }

    // SSE: bad requests are 4xx with a message
    let other = s.officer(&s.orgs().await.1).await;
    for (query, last, status, says) in [
        ("", None, 400, "`rooms` is required"),
        ("rooms=bogus", None, 400, "unknown room"),
        (
            "rooms=org&colour=red",
            None,
            400,
            "unknown parameter `colour`",
        ),
        ("rooms=org&last_event_id=-4", None, 400, "non-negative"),
    ] {
        let r = Sse::open(&s, &other, query, last).await;
        assert_eq!(r.status(), status, "{query}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{query}: {body}"
        );
    }
    let r = s
        .http
        .get(format!("{}/v1/events/stream?rooms=org", s.base))
        .header("last-event-id", "yesterday")
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .http
        .get(format!("{}/v1/events/stream?rooms=org", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // tickets for browsers: single use
    let ticket: Value = s
        .http
        .post(format!("{}/v1/events/tickets", s.base))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = ticket["ticket"].as_str().unwrap().to_owned();
    let stream = |t: String| {
        s.http
            .get(format!("{}/v1/events/stream?rooms=org&ticket={t}", s.base))
            .send()
    };
    let first = stream(ticket.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    assert_eq!(stream(ticket).await.unwrap().status(), 401);

    // and the server is fine
    let r = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_answers_no_ping_is_dropped_as_dead() {
    let s = TestApp::start_with(|c| c.events.heartbeat = Duration::from_millis(400)).await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut live = Ws::subscribed(&s, &token, &["org"], None).await;
    let mut silent = Ws::subscribed(&s, &token, &["org"], None).await;
    // `silent` reads nothing, so its client never answers the pings; `live`
    // keeps reading (its client answers them) and stays
    let deadline = Instant::now() + DEADLINE;
    while s
        .state
        .events
        .metrics
        .dropped_dead
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
    {
        assert!(Instant::now() < deadline, "the silent peer was not dropped");
        assert!(live.try_next(Duration::from_millis(50)).await.is_none());
    }
    let (end, before) = silent.until(|m| m["type"] == "closed").await;
    assert_eq!(end["code"], 4000, "{end}");
    assert_eq!(
        before.last().map(|m| m["code"].clone()),
        Some(json!("heartbeat_timeout"))
    );
    // the live one was pinged all along and is still served
    live.send(json!({"type": "ping"})).await;
    assert_eq!(live.next().await["type"], "pong");
    assert!(
        s.prometheus()
            .await
            .contains("certscope_events_disconnects_total{reason=\"dead_peer\"} 1")
    );
}
