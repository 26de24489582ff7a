//! Clients that do not keep up: one that stops reading is dropped with a
//! reason while memory stays bounded, one that answers no ping is dropped as
//! dead; their neighbours are served throughout. Each counts the server's
//! connections, so each has a service of its own.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use certscope_indexer::events as event_log;
use certscope_query_api::testing::TestApp;
use serde_json::{Value, json};

use crate::client::{Sse, Ws, rooms};
use crate::{DEADLINE, connections_at_most, requirement};

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
    let mut sse = Sse::connect(&s, &token, &rooms(&["notices"]), None).await;
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
    while s.state.events.metrics.dropped_slow.load(Ordering::Relaxed) < 2 {
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
    connections_at_most(&s, 1, "the slow connection was not released").await;
    s.set_requirement_status(req, "failed").await;
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
async fn a_peer_that_answers_no_ping_is_dropped_as_dead() {
    let s = TestApp::start_with(|c| c.events.heartbeat = Duration::from_millis(400)).await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut live = Ws::subscribed(&s, &token, &["org"], None).await;
    let mut silent = Ws::subscribed(&s, &token, &["org"], None).await;
    // `silent` reads nothing, so its client never answers the pings; `live`
    // keeps reading (its client answers them) and stays
    let deadline = Instant::now() + DEADLINE;
    while s.state.events.metrics.dropped_dead.load(Ordering::Relaxed) == 0 {
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
