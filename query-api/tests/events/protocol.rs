//! The events protocol under bad input: malformed messages, unknown rooms,
//! oversize messages and frames, missing or forged credentials, bad stream
//! requests each get an error that says what was wrong, and never a crash.

use certscope_query_api::paths;
use certscope_query_api::testing::{Params, TestApp};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{Sse, Ws, rooms};
use crate::connections_at_most;

/// An officer of the first organization on the shared service, connected
/// and welcomed.
async fn welcomed() -> (TestApp, String, Ws) {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut ws = Ws::open(&s, Some(&token)).await;
    assert_eq!(ws.next().await["type"], "welcome");
    (s, token, ws)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_or_unknown_room_gets_an_error_naming_the_mistake() {
    let (s, _, mut ws) = welcomed().await;
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
    // still usable after all that
    ws.send(json!({"type": "subscribe", "rooms": ["org"]}))
        .await;
    assert_eq!(ws.next().await["type"], "subscribed");
    ws.send(json!({"type": "unsubscribe", "rooms": ["org"]}))
        .await;
    let (a, _) = s.orgs().await;
    assert_eq!(
        ws.next().await["rooms"],
        json!(["org:".to_owned() + &s.org_id(&a).await.to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_rooms_at_once_are_refused_and_the_connection_goes_on() {
    let (_s, _, mut ws) = welcomed().await;
    let too_many: Vec<String> = (0..65)
        .map(|i| format!("certification:{}", i + 1))
        .collect();
    ws.send(json!({"type": "subscribe", "rooms": too_many}))
        .await;
    assert_eq!(ws.next().await["code"], "too_many_rooms");
    ws.send(json!({"type": "subscribe", "rooms": ["org"]}))
        .await;
    assert_eq!(ws.next().await["type"], "subscribed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_message_gets_an_error_and_the_connection_goes_on() {
    let (_s, _, mut ws) = welcomed().await;
    ws.send(json!({"type": "ping", "pad": "z".repeat(300 << 10)}))
        .await;
    let e = ws.next().await;
    assert_eq!(e["code"], "too_large", "{e}");
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.next().await["type"], "pong");
}

/// A frame over the transport limit (1 MiB) ends this connection: a close
/// frame 1009 when the client is still reading, a reset if it is still
/// sending; the server is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_the_transport_limit_ends_that_connection_only() {
    let (s, _, mut ws) = welcomed().await;
    let huge = "z".repeat(2 << 20);
    let _ = ws.socket.send(Message::Text(huge.into())).await;
    let (end, _) = ws
        .until(|m| m["type"] == "closed" || m["type"] == "reset")
        .await;
    if end["type"] == "closed" {
        assert_eq!(end["code"], 1009, "{end}");
    }
    assert_eq!(s.get_anonymous(paths::HEALTHZ).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_may_authenticate_with_its_first_message() {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut anon = Ws::open(&s, None).await;
    anon.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(anon.next().await["type"], "welcome");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_before_authentication_or_a_forged_token_is_unauthorized() {
    let s = TestApp::shared().await;
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
}

/// Counts the server's connections, so it needs a service of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_gets_no_more_connections_than_its_limit() {
    let s = TestApp::start_with(|c| c.events.max_connections_per_token = 3).await;
    let (a, _) = s.orgs().await;
    let token = s.officer(&a).await;
    let mut anon = Ws::open(&s, None).await;
    anon.send(json!({"type": "auth", "token": token})).await;
    assert_eq!(anon.next().await["type"], "welcome");
    let mut bad = Ws::open(&s, None).await;
    bad.send(json!({"type": "subscribe", "rooms": ["org"]}))
        .await;
    assert_eq!(bad.next().await["code"], "unauthorized");
    // once only `anon` is left open, two more fit and the next is refused
    // before the upgrade
    connections_at_most(&s, 1, "closed connections were not released").await;
    let _second = Ws::open(&s, Some(&token)).await;
    let _third = Ws::open(&s, Some(&token)).await;
    match Ws::connect(&s.events_ws_url(), Some(&token)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|r| r.1.status())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_stream_request_gets_a_4xx_saying_what_is_wrong() {
    let s = TestApp::shared().await;
    let other = s.officer(&s.orgs().await.1).await;
    for (params, status, says) in [
        (Params::new(), 400, "`rooms` is required"),
        (rooms(&["bogus"]), 400, "unknown room"),
        (
            rooms(&["org"]).with("colour", "red"),
            400,
            "unknown parameter `colour`",
        ),
        (
            rooms(&["org"]).with("last_event_id", -4),
            400,
            "non-negative",
        ),
    ] {
        let what = params.query_string();
        let r = Sse::open(&s, &other, &params, None).await;
        assert_eq!(r.status(), status, "{what}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(says),
            "{what}: {body}"
        );
    }
    let r = s
        .events_stream(Some(&other), &rooms(&["org"]), Some("yesterday"))
        .await;
    assert_eq!(r.status(), 400);
    let r = s.events_stream(None, &rooms(&["org"]), None).await;
    assert_eq!(r.status(), 401);
}

/// Tickets are for browsers, which cannot set headers on an event stream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_ticket_is_single_use() {
    let s = TestApp::shared().await;
    let other = s.officer(&s.orgs().await.1).await;
    let ticket = s.events_ticket(&other).await;
    let with_ticket = rooms(&["org"]).with("ticket", &ticket);
    let first = s.events_stream(None, &with_ticket, None).await;
    assert_eq!(first.status(), 200);
    assert_eq!(
        s.events_stream(None, &with_ticket, None).await.status(),
        401
    );
}
