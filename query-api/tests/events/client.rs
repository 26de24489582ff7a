//! The two clients of the events protocol: a WebSocket client and a
//! Server-Sent Events client over a plain HTTP response.

use std::pin::Pin;
use std::time::Duration;

use certscope_query_api::testing::{Params, TestApp};
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::DEADLINE;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `rooms=a,b,...`
pub fn rooms(rooms: &[&str]) -> Params {
    Params::new().with("rooms", rooms.join(","))
}

/// A WebSocket client speaking the events protocol.
pub struct Ws {
    pub socket: Socket,
}

impl Ws {
    /// Connects to the service's events endpoint (with `token` in the
    /// Authorization header, or none).
    pub async fn open(s: &TestApp, token: Option<&str>) -> Ws {
        Ws::open_url(&s.events_ws_url(), token).await
    }

    /// Connects to `url`; the upgrade must succeed.
    pub async fn open_url(url: &str, token: Option<&str>) -> Ws {
        let (socket, response) = Ws::connect(url, token).await.expect("websocket connect");
        assert_eq!(response.status(), 101);
        Ws { socket }
    }

    /// Tries to connect to `url`: the upgrade, or why it was refused.
    pub async fn connect(
        url: &str,
        token: Option<&str>,
    ) -> Result<
        (
            Socket,
            tokio_tungstenite::tungstenite::handshake::client::Response,
        ),
        tokio_tungstenite::tungstenite::Error,
    > {
        let mut request = url.into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        tokio_tungstenite::connect_async(request).await
    }

    /// Connected, welcomed, and subscribed to `rooms` (every one accepted).
    pub async fn subscribed(s: &TestApp, token: &str, rooms: &[&str], last: Option<i64>) -> Ws {
        let mut ws = Ws::open(s, Some(token)).await;
        assert_eq!(ws.next().await["type"], "welcome");
        ws.send(json!({"type": "subscribe", "rooms": rooms, "last_event_id": last}))
            .await;
        let ack = ws.next().await;
        assert_eq!(ack["type"], "subscribed", "{ack}");
        assert_eq!(ack["rooms"].as_array().map(Vec::len), Some(rooms.len()));
        ws
    }

    pub async fn send(&mut self, v: Value) {
        self.socket
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON message (pings and pongs skipped); panics at the deadline.
    pub async fn next(&mut self) -> Value {
        self.try_next(DEADLINE)
            .await
            .unwrap_or_else(|| panic!("no message within {DEADLINE:?}"))
    }

    /// The next JSON message within `wait`, a `closed` message for a close
    /// frame, a `reset` one for a broken connection.
    pub async fn try_next(&mut self, wait: Duration) -> Option<Value> {
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
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> (Value, Vec<Value>) {
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
pub struct Sse {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

#[derive(Debug)]
pub struct SseMessage {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

impl Sse {
    /// `GET /v1/events/stream` as `token`, resuming after `last`, any status.
    pub async fn open(
        s: &TestApp,
        token: &str,
        params: &Params,
        last: Option<i64>,
    ) -> reqwest::Response {
        let last = last.map(|l| l.to_string());
        s.events_stream(Some(token), params, last.as_deref()).await
    }

    /// Reads the stream of a response.
    pub fn reading(r: reqwest::Response) -> Sse {
        Sse {
            body: Box::pin(r.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// An open stream whose subscription was accepted.
    pub async fn connect(s: &TestApp, token: &str, params: &Params, last: Option<i64>) -> Sse {
        let r = Sse::open(s, token, params, last).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        let mut sse = Sse::reading(r);
        assert_eq!(sse.next().await.event, "subscribed");
        sse
    }

    pub async fn next(&mut self) -> SseMessage {
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
