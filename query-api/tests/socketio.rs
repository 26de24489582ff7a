//! The socket.io endpoint against the official `socket.io-client` (v4, from
//! the npm registry, pinned by `tests/socketio/package-lock.json`), run by
//! Node and driven line by line from here: the original clients' code shape,
//! refusals, long-polling and the upgrade, resume, and socket.io clients beside
//! WebSocket clients. Changes are made by SQL and flow through the deriver and
//! the hub as `certscope serve` runs them.
//!
//! Needs Node.js; the pinned client is installed with `npm ci` on first use.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::time::Duration;

use certscope_query_api::Role;
use certscope_query_api::testing::TestApp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const DEADLINE: Duration = Duration::from_secs(15);

/// socket.io-client sockets in one Node process.
struct Node {
    _child: Child,
    stdin: ChildStdin,
    reports: mpsc::UnboundedReceiver<Value>,
    inbox: HashMap<String, VecDeque<Value>>,
}

impl Node {
    async fn start() -> Node {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/socketio");
        certscope_query_api::testing::npm_ci("socketio", &["socket.io-client"]);
        let mut child = Command::new("node")
            .arg("driver.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node ({e}): `apt-get install -y nodejs npm`"));
        let stdin = child.stdin.take().expect("driver stdin");
        let stdout = child.stdout.take().expect("driver stdout");
        let (tx, reports) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let v: Value = serde_json::from_str(&line).expect("driver report is JSON");
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut node = Node {
            _child: child,
            stdin,
            reports,
            inbox: HashMap::new(),
        };
        let ready = node.next_report().await;
        assert_eq!(ready["event"], "$ready", "{ready}");
        node
    }

    async fn next_report(&mut self) -> Value {
        tokio::time::timeout(DEADLINE, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("the driver said nothing within {DEADLINE:?}"))
            .expect("the driver stopped")
    }

    async fn send(&mut self, command: Value) {
        let mut line = command.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn connect(&mut self, client: &str, url: &str, opts: Value) {
        self.send(json!({"cmd": "connect", "client": client, "url": url, "opts": opts}))
            .await;
    }

    async fn emit(&mut self, client: &str, event: &str, data: Value) {
        self.send(json!({"cmd": "emit", "client": client, "event": event, "data": data}))
            .await;
    }

    /// The next report for `client`: `{event, data}`.
    async fn next(&mut self, client: &str) -> Value {
        self.try_next(client, DEADLINE)
            .await
            .unwrap_or_else(|| panic!("{client}: nothing within {DEADLINE:?}"))
    }

    async fn try_next(&mut self, client: &str, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(v) = self.inbox.get_mut(client).and_then(VecDeque::pop_front) {
                return Some(v);
            }
            let v = tokio::time::timeout_at(deadline, self.reports.recv())
                .await
                .ok()?
                .expect("the driver stopped");
            assert_ne!(v["event"], "$driver_error", "{v}");
            let to = v["client"].as_str().unwrap_or_default().to_owned();
            self.inbox.entry(to).or_default().push_back(v);
        }
    }

    /// Reports for `client` until one named `event` (returned, with those
    /// before it).
    async fn until(&mut self, client: &str, event: &str) -> (Value, Vec<Value>) {
        let mut before = Vec::new();
        loop {
            let v = self.next(client).await;
            if v["event"] == event {
                return (v, before);
            }
            before.push(v);
        }
    }

    /// Connected (the server said `connected`), with `opts`.
    async fn connected(&mut self, client: &str, url: &str, opts: Value) -> Value {
        self.connect(client, url, opts).await;
        let (hello, before) = self.until(client, "connected").await;
        assert!(
            before.iter().all(|v| v["event"] == "$open"
                || v["event"] == "$connect"
                || v["event"] == "$upgrade"),
            "{client}: {before:?}"
        );
        hello["data"].clone()
    }
}

/// The `connect_error` of a refused client (which never connected).
async fn refused(node: &mut Node, client: &str) -> Value {
    let (e, before) = node.until(client, "$connect_error").await;
    assert!(
        before
            .iter()
            .all(|v| v["event"] == "$open" || v["event"] == "$upgrade"),
        "{client}: {before:?}"
    );
    e
}

/// The server's socket.io URL.
fn url(s: &TestApp) -> String {
    s.base.clone()
}

/// Requirements of `org`, `n` of them, not in `status`: (id, certification).
async fn requirements(s: &TestApp, org: i64, status: &str, n: i64) -> Vec<(i64, i64)> {
    sqlx::query_as(
        "SELECT id, certification_id FROM requirements \
         WHERE organization_id = $1 AND status <> $2 ORDER BY id LIMIT $3",
    )
    .bind(org)
    .bind(status)
    .bind(n)
    .fetch_all(&s.pool)
    .await
    .unwrap()
}

async fn fed_through(s: &TestApp, id: i64) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while s.state.events.last_id() < id {
        assert!(
            std::time::Instant::now() < deadline,
            "the hub did not reach event {id}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The newest event id of the log.
async fn newest_event(s: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
        .fetch_one(&s.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_original_client_code_shape_receives_a_status_change_made_by_sql() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let (requirement, certification) = requirements(&s, org, "failed", 1).await[0];
    let mut node = Node::start().await;
    // exactly as the original clients connect: everything in the query
    let opts = json!({
        "query": {"token": token, "userId": "999999", "clientId": "dashboard-1"},
        "withCredentials": true,
    });
    let hello = node.connected("a", &url(&s), opts).await;
    assert_eq!(hello["organization_id"], org, "{hello}");
    node.emit("a", "subscribe", json!({"room": "organization"}))
        .await;
    let (ok, _) = node.until("a", "subscribed").await;
    assert_eq!(ok["data"]["room"], "organization");
    assert_eq!(ok["data"]["rooms"], json!([format!("org:{org}")]));
    node.emit(
        "a",
        "subscribe",
        json!({"room": "certification", "certificationId": certification}),
    )
    .await;
    let (ok, _) = node.until("a", "subscribed").await;
    assert_eq!(ok["data"]["certificationId"], certification);
    let (snapshot, _) = node.until("a", "snapshot").await;
    assert_eq!(snapshot["data"]["certification"]["id"], certification);
    node.emit("a", "get-rooms", json!({})).await;
    let (rooms, _) = node.until("a", "rooms").await;
    assert_eq!(
        rooms["data"]["rooms"],
        json!([
            format!("org:{org}"),
            format!("certification:{certification}")
        ])
    );
    node.emit("a", "ping", json!({})).await;
    node.until("a", "pong").await;

    s.set_requirement_status(requirement, "failed").await;
    let (ours, before) = node.until("a", "requirement.status_changed").await;
    assert_eq!(
        ours["data"]["data"]["requirement_id"], requirement,
        "{ours}"
    );
    assert_eq!(ours["data"]["data"]["status"], "failed");
    assert_eq!(ours["data"]["organization_id"], org);
    // the same event under the original's name, right behind
    let original = node.next("a").await;
    assert_eq!(original["event"], "requirement-status-changed");
    assert_eq!(original["data"], ours["data"]);
    // both rooms carry it, and it arrives once
    let more = node.try_next("a", Duration::from_millis(500)).await;
    assert!(
        !before
            .iter()
            .chain(more.iter())
            .any(|v| v["event"] == "requirement.status_changed" || v["event"] == "user-online"),
        "{before:?} {more:?}"
    );
}

#[tokio::test]
async fn another_organizations_room_and_an_unassigned_certification_are_refused() {
    let s = TestApp::shared().await;
    let (a, b) = s.orgs().await;
    let org_b = s.org_id(&b).await;
    let org_a = s.org_id(&a).await;
    let cert_b: i64 = s.certification_ids(org_b).await[0];
    let certs_a: Vec<i64> = s.certification_ids(org_a).await;
    let mut node = Node::start().await;

    let officer = s.officer(&a).await;
    node.connected("o", &url(&s), json!({"auth": {"token": officer}}))
        .await;
    node.emit("o", "subscribe", json!({"room": format!("org:{org_b}")}))
        .await;
    let (e, _) = node.until("o", "subscription-error").await;
    assert_eq!(e["data"]["code"], "forbidden", "{e}");
    assert!(
        e["data"]["reason"]
            .as_str()
            .unwrap()
            .contains("another organization")
    );
    node.emit(
        "o",
        "subscribe",
        json!({"room": "certification", "certificationId": cert_b}),
    )
    .await;
    let (e, _) = node.until("o", "subscription-error").await;
    assert_eq!(e["data"]["code"], "not_found", "{e}");
    assert_eq!(e["data"]["certificationId"], cert_b);
    // bad input gets an error event, and the socket carries on
    node.emit("o", "subscribe", json!({"room": 5})).await;
    let (e, _) = node.until("o", "error").await;
    assert_eq!(e["data"]["code"], "bad_message", "{e}");
    node.emit("o", "launch", json!({})).await;
    let (e, _) = node.until("o", "error").await;
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown event")
    );
    node.emit("o", "subscribe", json!({"room": "org"})).await;
    let (ok, _) = node.until("o", "subscribed").await;
    assert_eq!(ok["data"]["rooms"], json!([format!("org:{org_a}")]));

    let auditor = s.token(&a, Role::Auditor, Some(vec![certs_a[0]])).await;
    node.connected("u", &url(&s), json!({"auth": {"token": auditor}}))
        .await;
    node.emit(
        "u",
        "subscribe",
        json!({"room": "certification", "certificationId": certs_a[1]}),
    )
    .await;
    let (e, _) = node.until("u", "subscription-error").await;
    assert_eq!(e["data"]["code"], "forbidden", "{e}");
    node.emit("u", "subscribe", json!({"room": "organization"}))
        .await;
    let (e, _) = node.until("u", "subscription-error").await;
    assert_eq!(e["data"]["code"], "forbidden", "{e}");
    node.emit(
        "u",
        "subscribe",
        json!({"room": "certification", "certificationId": certs_a[0]}),
    )
    .await;
    let (ok, _) = node.until("u", "subscribed").await;
    assert_eq!(
        ok["data"]["rooms"],
        json!([format!("certification:{}", certs_a[0])])
    );
    node.emit("u", "get-rooms", json!(null)).await;
    let (rooms, _) = node.until("u", "rooms").await;
    assert_eq!(
        rooms["data"]["rooms"],
        json!([format!("certification:{}", certs_a[0])])
    );
}

#[tokio::test]
async fn a_socket_without_a_valid_token_is_refused_at_connect() {
    let s = TestApp::shared().await;
    let mut node = Node::start().await;
    node.connect("none", &url(&s), json!({})).await;
    let e = refused(&mut node, "none").await;
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("authentication required")
    );
    node.connect("bad", &url(&s), json!({"auth": {"token": "not-a-token"}}))
        .await;
    let e = refused(&mut node, "bad").await;
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid bearer token"),
        "{e}"
    );
    // a ticket works, once
    let (a, _) = s.orgs().await;
    let ticket = s.events_ticket(&s.officer(&a).await).await;
    node.connected("t", &url(&s), json!({"auth": {"ticket": ticket}}))
        .await;
    node.connect("t2", &url(&s), json!({"query": {"ticket": ticket}}))
        .await;
    let e = refused(&mut node, "t2").await;
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{e}"
    );
}

#[tokio::test]
async fn long_polling_alone_works_and_the_upgrade_to_websocket_works() {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut node = Node::start().await;

    node.connect(
        "poll",
        &url(&s),
        json!({"auth": {"token": token}, "transports": ["polling"]}),
    )
    .await;
    let (c, _) = node.until("poll", "$connect").await;
    assert_eq!(c["data"]["transport"], "polling", "{c}");
    node.until("poll", "connected").await;
    node.emit("poll", "subscribe", json!({"room": "global"}))
        .await;
    let (ok, _) = node.until("poll", "subscribed").await;
    assert_eq!(ok["data"]["rooms"], json!(["notices"]));
    node.emit("poll", "ping", json!({})).await;
    node.until("poll", "pong").await;

    node.connect("up", &url(&s), json!({"auth": {"token": token}}))
        .await;
    let c = node.next("up").await;
    assert_eq!(c["event"], "$open", "{c}");
    assert_eq!(c["data"]["transport"], "polling", "{c}");
    let (u, _) = node.until("up", "$upgrade").await;
    assert_eq!(u["data"]["transport"], "websocket");
    node.emit("up", "ping", json!({})).await;
    node.until("up", "pong").await;
    // the polling one never upgraded, and is still served
    node.emit("poll", "get-rooms", json!({})).await;
    let (rooms, before) = node.until("poll", "rooms").await;
    assert!(
        !before.iter().any(|v| v["event"] == "$upgrade"),
        "{before:?}"
    );
    assert_eq!(rooms["data"]["rooms"], json!(["notices"]));
}

#[tokio::test]
async fn disconnect_three_changes_reconnect_exactly_those_three_arrive_in_order_once() {
    let s = TestApp::start().await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let changed = requirements(&s, org, "implemented", 3).await;
    let mut node = Node::start().await;
    // over long-polling: events travel in poll responses too
    let opts = json!({"auth": {"token": token}, "transports": ["polling"]});
    let hello = node.connected("r", &url(&s), opts).await;
    let seen = hello["last_event_id"].as_i64().unwrap();
    node.emit("r", "subscribe", json!({"room": "organization"}))
        .await;
    node.until("r", "subscribed").await;
    node.send(json!({"cmd": "disconnect", "client": "r"})).await;
    node.until("r", "$disconnect").await;

    for (id, _) in &changed {
        s.set_requirement_status(*id, "implemented").await;
    }
    // all three are in the log and the hub before the client comes back
    let deadline = std::time::Instant::now() + DEADLINE;
    let missed: Vec<(i64, String)> = loop {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, kind FROM events WHERE id > $1 AND organization_id = $2 ORDER BY id",
        )
        .bind(seen)
        .bind(org)
        .fetch_all(&s.pool)
        .await
        .unwrap();
        let requirements = rows
            .iter()
            .filter(|(_, k)| k == "requirement.status_changed")
            .count();
        if requirements == 3 {
            break rows;
        }
        assert!(std::time::Instant::now() < deadline, "events not derived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    fed_through(&s, missed.last().unwrap().0).await;

    node.send(json!({"cmd": "reconnect", "client": "r",
                     "auth": {"token": token, "last_event_id": seen}}))
        .await;
    node.until("r", "connected").await;
    node.emit("r", "subscribe", json!({"room": "organization"}))
        .await;
    node.until("r", "subscribed").await;
    let mut got = Vec::new();
    while got.len() < missed.len() {
        let v = node.next("r").await;
        let kind = v["event"].as_str().unwrap_or_default();
        if kind.contains('.') {
            got.push((v["data"]["id"].as_i64().unwrap(), kind.to_owned()));
        }
    }
    assert_eq!(got, missed, "the missed events, in order, once");
    let changed_ids: Vec<i64> = changed.iter().map(|c| c.0).collect();
    assert_eq!(
        got.iter()
            .filter(|(_, k)| k == "requirement.status_changed")
            .count(),
        3
    );
    // nothing more: no duplicate arrives later
    while let Some(v) = node.try_next("r", Duration::from_millis(700)).await {
        assert!(
            !v["event"].as_str().unwrap_or_default().contains('.'),
            "a duplicate or stray event: {v} (changed {changed_ids:?})"
        );
    }

    // out of retention: a resync says so
    node.send(json!({"cmd": "disconnect", "client": "r"})).await;
    node.until("r", "$disconnect").await;
    node.send(json!({"cmd": "reconnect", "client": "r",
                     "auth": {"token": token, "last_event_id": newest_event(&s).await + 1000}}))
        .await;
    node.until("r", "connected").await;
    node.emit("r", "subscribe", json!({"room": "organization"}))
        .await;
    let (resync, _) = node.until("r", "resync").await;
    assert!(
        resync["data"]["reason"].as_str().unwrap().contains("newer"),
        "{resync}"
    );
}

/// A WebSocket client of `/v1/events`, subscribed to `org`.
async fn ws_client(
    s: &TestApp,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut request = s.events_ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "subscribe", "rooms": ["org"]})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    loop {
        let m = ws_next(&mut ws).await;
        if m["type"] == "subscribed" {
            return ws;
        }
    }
}

async fn ws_next(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let m = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("a WebSocket message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test]
async fn two_hundred_socketio_clients_beside_two_hundred_websocket_clients_get_the_same_events() {
    const N: usize = 200;
    let s = TestApp::start_with(|c| {
        c.events.max_connections_per_token = 2 * N;
        c.rate_per_ip = 1e6;
        c.burst_per_ip = 1e6;
        c.rate_per_token = 1e6;
        c.burst_per_token = 1e6;
    })
    .await;
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let changed = requirements(&s, org, "in_progress", 3).await;
    let mut node = Node::start().await;
    let opts = json!({"auth": {"token": token}, "transports": ["websocket"]});
    for i in 0..N {
        node.connect(&format!("c{i}"), &url(&s), opts.clone()).await;
    }
    for i in 0..N {
        let client = format!("c{i}");
        node.until(&client, "connected").await;
        node.emit(&client, "subscribe", json!({"room": "org"}))
            .await;
    }
    for i in 0..N {
        node.until(&format!("c{i}"), "subscribed").await;
    }
    let mut sockets = Vec::new();
    for _ in 0..N {
        sockets.push(ws_client(&s, &token).await);
    }

    for (id, _) in &changed {
        s.set_requirement_status(*id, "in_progress").await;
    }
    // what the WebSocket clients get: the reference
    let mut reference: Option<Vec<i64>> = None;
    for ws in &mut sockets {
        let mut got = Vec::new();
        let mut requirements = 0;
        while requirements < 3 {
            let m = ws_next(ws).await;
            if m["type"] == "event" {
                requirements += usize::from(m["kind"] == "requirement.status_changed");
                got.push(m["id"].as_i64().unwrap());
            }
        }
        match &reference {
            None => reference = Some(got),
            Some(r) => assert_eq!(&got, r, "every WebSocket client gets the same"),
        }
    }
    let reference = reference.unwrap();
    for i in 0..N {
        let client = format!("c{i}");
        let mut got = Vec::new();
        while got.len() < reference.len() {
            let v = node.next(&client).await;
            if v["event"].as_str().unwrap_or_default().contains('.') {
                got.push(v["data"]["id"].as_i64().unwrap());
            }
        }
        assert_eq!(
            got, reference,
            "{client} gets what the WebSocket clients get"
        );
    }
}

#[tokio::test]
async fn the_limits_of_the_other_transports_hold_on_socket_io() {
    let s = TestApp::start_with(|c| {
        c.events.max_connections_per_token = 2;
        c.events.max_rooms_per_connection = 2;
        c.events.queue = 16;
    })
    .await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut node = Node::start().await;
    let auth = json!({"auth": {"token": token}, "transports": ["websocket"]});
    node.connected("one", &url(&s), auth.clone()).await;
    // rooms per connection
    node.emit(
        "one",
        "subscribe",
        json!({"rooms": ["org", "user", "notices"]}),
    )
    .await;
    let (e, _) = node.until("one", "subscription-error").await;
    assert_eq!(e["data"]["code"], "too_many_rooms", "{e}");

    // a reader that stops: a raw Engine.IO long-polling client that
    // subscribes, then never polls again
    let slow = Polling::open(&s, &token).await;
    slow.post(r#"42["subscribe","notices"]"#).await;
    slow.poll_until("\"subscribed\"").await;
    // connections per token: this token now holds two
    node.connect("three", &url(&s), auth).await;
    let e = refused(&mut node, "three").await;
    assert!(
        e["data"]["message"]
            .as_str()
            .unwrap()
            .contains("already has 2"),
        "{e}"
    );

    // more notices than the socket's buffer and the hub's queue hold
    let notices: Vec<_> = (0..1200)
        .map(|i| certscope_indexer::events::notice(None, "info", &format!("notice {i}"), None))
        .collect();
    let ids = certscope_indexer::events::append(&s.pool, &notices)
        .await
        .unwrap();
    fed_through(&s, *ids.last().unwrap()).await;
    let hub = &s.state.events;
    let deadline = std::time::Instant::now() + DEADLINE;
    while hub
        .metrics
        .dropped_slow
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
        || hub.figures().1 > 1
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow socket.io reader was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // the one that reads is unaffected
    node.emit("one", "ping", json!({})).await;
    node.until("one", "pong").await;
}

/// A socket.io client over raw Engine.IO long-polling (HTTP requests written
/// here), to stop reading at will.
struct Polling {
    http: reqwest::Client,
    url: String,
}

impl Polling {
    async fn open(s: &TestApp, token: &str) -> Polling {
        let http = reqwest::Client::new();
        let base = format!("{}/socket.io/?EIO=4&transport=polling", s.base);
        let open = http.get(&base).send().await.unwrap().text().await.unwrap();
        let handshake: Value = serde_json::from_str(open.strip_prefix('0').expect("open packet"))
            .expect("open payload");
        let sid = handshake["sid"].as_str().unwrap();
        let p = Polling {
            http,
            url: format!("{base}&sid={sid}"),
        };
        p.post(&format!("40{}", json!({ "token": token }))).await;
        p.poll_until("\"connected\"").await;
        p
    }

    async fn post(&self, packet: &str) {
        let r = self
            .http
            .post(&self.url)
            .body(packet.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// Polls until a packet contains `needle`.
    async fn poll_until(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let body = tokio::time::timeout_at(deadline, async {
                self.http.get(&self.url).send().await?.text().await
            })
            .await
            .unwrap_or_else(|_| panic!("no {needle} in time"))
            .unwrap();
            if body.split('\u{1e}').any(|p| p.contains(needle)) {
                return;
            }
        }
    }
}
