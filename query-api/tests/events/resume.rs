//! Resuming after a disconnect: what was missed comes exactly once, in order,
//! from the event log (not the process); a resume the log cannot serve is told
//! to resync, never left with a silent gap.

use std::time::Duration;

use certscope_query_api::testing::TestApp;
use serde_json::json;

use crate::client::{Sse, Ws, rooms};
use crate::{fed_through, is_event, notice};

/// A client of the first organization that saw one event and went away
/// while three more happened (one statement each), all three fed to the hub.
struct Away {
    token: String,
    org: i64,
    /// Five requirements of the organization that had not failed.
    reqs: Vec<i64>,
    /// The last event the client saw.
    last_seen: i64,
    /// The requirements whose changes it missed, in order.
    missed: Vec<i64>,
}

async fn away(s: &TestApp) -> Away {
    let (a, _) = s.orgs().await;
    let org = s.org_id(&a).await;
    let token = s.officer(&a).await;
    let reqs: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM requirements WHERE organization_id = $1 AND status <> 'failed' ORDER BY id LIMIT 5",
    )
    .bind(org)
    .fetch_all(&s.pool)
    .await
    .unwrap();

    let mut ws = Ws::subscribed(s, &token, &["org"], None).await;
    s.set_requirement_status(reqs[0], "failed").await;
    let (first, _) = ws.until(is_event("requirement.status_changed")).await;
    let last_seen = first["id"].as_i64().unwrap();
    drop(ws);

    // missed while away, one statement each
    for id in &reqs[1..4] {
        s.set_requirement_status(*id, "failed").await;
    }
    // wait until the server has them, so the resume must come from retention
    fed_through(s, last_seen + 3, "events were not derived").await;
    Away {
        token,
        org,
        missed: reqs[1..4].to_vec(),
        reqs,
        last_seen,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_after_a_disconnect_exactly_once_in_order_over_websocket_and_sse() {
    let s = TestApp::start().await;
    let w = away(&s).await;
    let mut ws = Ws::subscribed(&s, &w.token, &["org"], Some(w.last_seen)).await;
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = ws.next().await;
        assert_eq!(m["type"], "event", "{m}");
        got.push(m);
    }
    let ids: Vec<i64> = got.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids[0] > w.last_seen);
    let reqs_got: Vec<i64> = got
        .iter()
        .map(|m| m["data"]["requirement_id"].as_i64().unwrap())
        .collect();
    assert_eq!(reqs_got, w.missed);
    // then live, and nothing twice
    s.set_requirement_status(w.reqs[4], "failed").await;
    let m = ws.next().await;
    assert_eq!(m["data"]["requirement_id"], w.reqs[4], "{m}");
    assert!(ws.try_next(Duration::from_millis(500)).await.is_none());

    // SSE resumes from Last-Event-ID the same way
    let mut sse = Sse::connect(&s, &w.token, &rooms(&["org"]), Some(w.last_seen)).await;
    let mut sse_reqs = Vec::new();
    while sse_reqs.len() < 4 {
        let m = sse.next().await;
        assert_eq!(m.event, "requirement.status_changed");
        sse_reqs.push(m.data["data"]["requirement_id"].as_i64().unwrap());
    }
    assert_eq!(sse_reqs[..3], w.missed[..]);
}

/// A restarted server (a new hub, loading the event log from PostgreSQL)
/// resumes the same way: the log, not the process, holds the events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resumes_a_client_from_the_event_log() {
    let s = TestApp::start().await;
    let w = away(&s).await;
    s.set_requirement_status(w.reqs[4], "failed").await;
    fed_through(&s, w.last_seen + 4, "events were not derived").await;

    let mut config =
        certscope_query_api::ApiConfig::new(certscope_query_api::testing::SECRET.to_vec());
    config.events.retain_events = 40;
    let restarted =
        certscope_query_api::AppState::new(s.pool.clone(), s.state.views.clone(), None, config);
    let stop = tokio_util::sync::CancellationToken::new();
    restarted.start_events(s.pool.clone(), stop.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "ws://{}{}",
        listener.local_addr().unwrap(),
        certscope_query_api::paths::EVENTS_WS
    );
    let server_stop = stop.clone();
    tokio::spawn(certscope_query_api::serve(
        listener,
        restarted,
        async move {
            server_stop.cancelled().await;
        },
    ));
    let mut other = Ws::open_url(&url, Some(&w.token)).await;
    assert_eq!(other.next().await["type"], "welcome");
    other
        .send(json!({"type": "subscribe", "rooms": ["org"], "last_event_id": w.last_seen}))
        .await;
    assert_eq!(other.next().await["type"], "subscribed");
    let mut again = Vec::new();
    while again.len() < 4 {
        let m = other.next().await;
        assert_eq!(m["type"], "event", "{m}");
        again.push(m["data"]["requirement_id"].as_i64().unwrap());
    }
    assert_eq!(again[..3], w.missed[..]);
    stop.cancel();
}

/// Past the retention window (40 events): resync, never a silent gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_before_the_retained_events_is_told_to_resync() {
    let s = TestApp::start_with(|c| c.events.retain_events = 40).await;
    let w = away(&s).await;
    for i in 0..45 {
        notice(&s, Some(w.org), &format!("notice {i}")).await;
    }
    fed_through(&s, w.last_seen + 3 + 45, "notices were not fed").await;
    let mut ws = Ws::open(&s, Some(&w.token)).await;
    ws.next().await;
    ws.send(json!({"type": "subscribe", "rooms": ["org"], "last_event_id": w.last_seen}))
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
}

/// An id from the future (a reset log) also resyncs; nothing is written, so
/// the shared service serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_from_an_id_the_log_never_had_is_told_to_resync() {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut sse = Sse::connect(&s, &token, &rooms(&["org"]), Some(i64::MAX / 2)).await;
    assert_eq!(sse.next().await.event, "resync");
}
