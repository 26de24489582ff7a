//! The AsyncAPI document of the live events against what the service really
//! sends and accepts: Server-Sent Events replayed from the retained events,
//! and WebSocket messages in both directions, each validated against its
//! message's payload schema.

use std::collections::BTreeSet;

use certscope_query_api::paths;
use certscope_query_api::testing::{Params, TestApp};
use serde_json::Value;

async fn officer() -> (TestApp, String) {
    let s = TestApp::shared().await;
    let (a, _) = s.orgs().await;
    let t = s.officer(&a).await;
    (s, t)
}

/// Validates `value` against the payload of the AsyncAPI message `name`.
fn check_message(name: &str, value: &Value) -> Result<(), String> {
    let doc = certscope_query_api::asyncapi_document();
    let payload = &doc["components"]["messages"][name]["payload"];
    assert!(payload.is_object(), "no message {name}");
    let mut root = payload.clone();
    root["components"] = doc["components"].clone();
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&root)
        .map_err(|e| format!("{name}: not a schema: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}: {}", errors.join("; ")))
    }
}

#[tokio::test]
async fn the_asyncapi_document_describes_what_the_event_stream_sends() {
    let (s, t) = officer().await;
    let r = s.get_anonymous(paths::ASYNCAPI).await;
    assert_eq!(r.status(), 200);
    let served: Value = r.json().await.unwrap();
    assert_eq!(&served, certscope_query_api::asyncapi_document());
    assert_eq!(served["asyncapi"], "3.0.0");
    for kind in certscope_indexer::events::EventKind::ALL {
        let key = kind.as_str().replace('.', "_");
        assert!(served["components"]["messages"][&key].is_object(), "{key}");
    }
    // the shared service's opening rebuild is retained in the notices room
    let mut r = s
        .events_stream(Some(&t), &Params::new().with("rooms", "notices"), Some("0"))
        .await;
    assert_eq!(r.status(), 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains("event: index.rebuilt") || !text.contains("\n\n") {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("the stream sent the retained events in time")
            .unwrap()
            .expect("the stream is open");
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.matches("\n\n").count() >= 2 && text.contains("event: index.rebuilt") {
            break;
        }
    }
    let mut seen = BTreeSet::new();
    for block in text.split("\n\n").filter(|b| b.contains("data:")) {
        let event = block
            .lines()
            .find_map(|l| l.strip_prefix("event:"))
            .map(str::trim)
            .unwrap_or("message");
        let data: String = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        let value: Value = serde_json::from_str(&data).unwrap();
        let name = match event {
            "subscribed" | "resync" | "snapshot" | "error" => format!("stream_{event}"),
            kind => kind.replace('.', "_"),
        };
        check_message(&name, &value).unwrap();
        seen.insert(name);
    }
    assert!(
        seen.contains("stream_subscribed") && seen.contains("index_rebuilt"),
        "{seen:?}"
    );
    // a payload the document does not describe fails
    let mut wrong: Value = serde_json::json!({"rooms": ["notices"], "last_event_id": 1});
    check_message("stream_subscribed", &wrong).unwrap();
    wrong["extra"] = 1.into();
    assert!(check_message("stream_subscribed", &wrong).is_err());
}

#[tokio::test]
async fn what_the_websocket_says_and_hears_is_in_the_asyncapi_document() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let (s, t) = officer().await;
    let mut request = s.events_ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {t}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // what the client sends is described too
    let commands = [
        serde_json::json!({"type": "subscribe", "rooms": ["notices", "org"], "last_event_id": 0}),
        serde_json::json!({"type": "ping"}),
        serde_json::json!({"type": "unsubscribe", "rooms": ["org"]}),
    ];
    for c in &commands {
        check_message(c["type"].as_str().unwrap(), c).unwrap();
        ws.send(Message::text(c.to_string())).await.unwrap();
    }
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(seen.contains("pong") && seen.contains("unsubscribed")) {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the server answered in time")
            .expect("the socket is open")
            .unwrap();
        let Message::Text(text) = message else {
            continue;
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        let name = match v["type"].as_str().unwrap() {
            "event" => v["kind"].as_str().unwrap().replace('.', "_"),
            other => other.to_owned(),
        };
        check_message(&name, &v).unwrap();
        seen.insert(name);
    }
    for name in ["welcome", "subscribed", "index_rebuilt"] {
        assert!(seen.contains(name), "{name} not seen: {seen:?}");
    }
}
