//! `GET /v1/events`: live events over WebSocket. JSON text messages both ways;
//! see README.md, "Live events", for the protocol.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use super::rooms::request;
use super::{Connection, Dropped, Kick, Room};
use crate::AppState;
use crate::error::ApiError;

/// The caller of an upgrade request: from its Authorization header or a ticket,
/// or none yet (it must then authenticate by its first message).
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Connection>, ApiError> {
    let mut ticket = None;
    for (key, value) in serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
        .map_err(|_| ApiError::bad("bad_query", "the query string is not valid"))?
    {
        match key.as_str() {
            "ticket" => ticket = Some(value),
            other => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!("unknown parameter `{other}`: /v1/events takes only `ticket`"),
                ));
            }
        }
    }
    match super::caller_of(state, headers, ticket.as_deref()).await? {
        Some(caller) => Ok(Some(state.events.connect(caller).await?)),
        None => Ok(None),
    }
}

/// Live events over WebSocket (101 Switching Protocols): authenticate with
/// the Authorization header, a `ticket`, or a first message `{"type":"auth","token":…}`;
/// then subscribe to rooms. The protocol is described in `/asyncapi.json`.
#[utoipa::path(get, path = crate::paths::EVENTS_WS, tag = "events",
    params(crate::openapi::params::WebSocketQuery),
    responses((status = 101, description = "Switched to the WebSocket protocol (see /asyncapi.json)")))]
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    // who is asking comes first, as on every route; then the protocol
    let connection = caller(&state, &headers, query.as_deref()).await?;
    let ws = ws.map_err(|e| {
        ApiError::bad(
            "websocket_required",
            format!("/v1/events is a WebSocket: {e} (use /v1/events/stream for SSE)"),
        )
    })?;
    // a connection that will authenticate by message holds one of its
    // address's few slots until it does
    let pending = match connection {
        Some(_) => None,
        None => Some(state.events.hold_unauthenticated(peer.ip())?),
    };
    let max = state.events.config.max_frame_bytes;
    // clients send a few small messages: small read buffers keep a thousand
    // idle connections cheap; writes flush in batches of up to 64 KiB
    Ok(ws
        .read_buffer_size(8 << 10)
        .write_buffer_size(64 << 10)
        .max_write_buffer_size(max + (1 << 20))
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            let (sink, stream) = socket.split();
            let mut session = Session {
                sink,
                stream,
                state,
                last_seen: Instant::now(),
            };
            session.run(connection, pending).await;
        }))
}

/// Why a session ended.
enum End {
    /// The peer went away or the socket failed: nothing more can be sent.
    Gone,
    /// Close with this frame, after an error message saying why.
    Close(Dropped),
}

/// Runs a socket write unless the hub drops the connection meanwhile; a peer
/// that accepts nothing for two heartbeats is gone (counted as dead).
async fn guarded(
    hub: &super::EventHub,
    kick: &Kick,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> Result<(), End> {
    tokio::select! {
        biased;
        dropped = kick.kicked() => Err(End::Close(dropped)),
        sent = tokio::time::timeout(hub.config.heartbeat * 2, write) => match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(End::Gone),
            Err(_) => {
                hub.metrics.dropped_dead.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Err(End::Gone)
            }
        },
    }
}

/// Queued events written per flush at most.
const BATCH: usize = 64;

enum Step {
    Dropped(Dropped),
    Incoming(Option<Result<Message, axum::Error>>),
    Event(Option<Arc<super::Event>>),
    Heartbeat,
}

struct Session {
    sink: SplitSink<WebSocket, Message>,
    stream: SplitStream<WebSocket>,
    state: AppState,
    last_seen: Instant,
}

fn error(code: &str, message: impl Into<String>) -> Value {
    json!({"type": "error", "code": code, "message": message.into()})
}

impl Session {
    async fn run(
        &mut self,
        connection: Option<Connection>,
        pending: Option<super::Unauthenticated>,
    ) {
        let connection = match connection {
            Some(c) => Ok(c),
            None => self.authenticate().await,
        };
        drop(pending);
        let end = match connection {
            Ok(mut connection) => self.serve(&mut connection).await,
            Err(end) => end,
        };
        let End::Close(dropped) = end else {
            // the peer closed (or vanished): answer its close frame if it can
            // still take one, without waiting on a dead socket
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(1), self.sink.close()).await;
            return;
        };
        let grace = self.state.events.config.close_grace;
        let frame = CloseFrame {
            code: dropped.close,
            reason: truncate(&dropped.message, 120).to_owned().into(),
        };
        let message = error(dropped.code, dropped.message);
        let _ = tokio::time::timeout(grace, async {
            self.sink
                .send(Message::Text(message.to_string().into()))
                .await?;
            self.sink.send(Message::Close(Some(frame))).await
        })
        .await;
        // the closing handshake: read (within the grace) until the peer's close
        // frame, so that closing the connection while the peer's pongs or its
        // close are still arriving cannot reset it before it has read ours
        let handshake = grace.min(std::time::Duration::from_secs(2));
        let _ = tokio::time::timeout(handshake, async {
            while let Some(Ok(message)) = self.stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }

    /// The first message must be `{"type":"auth","token":…}`.
    async fn authenticate(&mut self) -> Result<Connection, End> {
        let config = &self.state.events.config;
        let refuse = |message: String| {
            End::Close(Dropped {
                code: "unauthorized",
                close: 4001,
                message,
            })
        };
        let first = tokio::time::timeout(config.auth_timeout, self.stream.next()).await;
        let text = match first {
            Err(_) => {
                return Err(refuse(format!(
                    "no authentication within {} s: send {{\"type\":\"auth\",\"token\":…}} first",
                    config.auth_timeout.as_secs()
                )));
            }
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(_))) => {
                return Err(refuse(
                    "the first message must be {\"type\":\"auth\",\"token\":…} as JSON text".into(),
                ));
            }
            Ok(_) => return Err(End::Gone),
        };
        let token = serde_json::from_str::<Value>(&text)
            .ok()
            .filter(|v| v["type"] == "auth")
            .and_then(|v| v["token"].as_str().map(str::to_owned));
        let Some(token) = token else {
            return Err(refuse(
                "the first message must be {\"type\":\"auth\",\"token\":…}".into(),
            ));
        };
        let caller = super::Caller::authenticate(&self.state, &token)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        self.state.events.connect(caller).await.map_err(|e| {
            End::Close(Dropped {
                code: "too_many_connections",
                close: 4029,
                message: e.to_string(),
            })
        })
    }

    async fn send(&mut self, value: &Value, kick: &Kick) -> Result<(), End> {
        self.send_text(value.to_string().into(), kick).await
    }

    /// Sends one message (see `guarded`).
    async fn send_text(
        &mut self,
        text: axum::extract::ws::Utf8Bytes,
        kick: &Kick,
    ) -> Result<(), End> {
        let write = self.sink.send(Message::Text(text));
        guarded(&self.state.events, kick, write).await
    }

    /// Writes `first` and whatever else is already queued (up to a bound) with
    /// one flush: a burst costs one write, not one per event.
    async fn send_events(
        &mut self,
        first: Arc<super::Event>,
        rx: &mut tokio::sync::mpsc::Receiver<Arc<super::Event>>,
        kick: &Kick,
    ) -> Result<(), End> {
        let sink = &mut self.sink;
        let write = async move {
            sink.feed(Message::Text(first.json.clone())).await?;
            for _ in 0..BATCH {
                let Ok(event) = rx.try_recv() else { break };
                sink.feed(Message::Text(event.json.clone())).await?;
            }
            sink.flush().await
        };
        guarded(&self.state.events, kick, write).await
    }

    async fn serve(&mut self, connection: &mut Connection) -> End {
        let kick = connection.kick.clone();
        let hello = json!({
            "type": "welcome",
            "user_id": connection.scope.user_id,
            "organization_id": connection.scope.org_id,
            "last_event_id": self.state.events.last_id(),
            "limits": {
                "rooms": self.state.events.config.max_rooms_per_connection,
                "queue": self.state.events.config.queue,
                "message_bytes": self.state.events.config.max_message_bytes,
            },
        });
        if let Err(end) = self.send(&hello, &kick).await {
            return end;
        }
        let heartbeat = self.state.events.config.heartbeat;
        let mut ticks =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        loop {
            let step = tokio::select! {
                biased;
                dropped = kick.kicked() => Step::Dropped(dropped),
                dropped = super::expiry(connection.expires) => Step::Dropped(dropped),
                incoming = self.stream.next() => Step::Incoming(incoming),
                event = connection.rx.recv() => Step::Event(event),
                _ = ticks.tick() => Step::Heartbeat,
            };
            let result = match step {
                Step::Dropped(dropped) => Err(End::Close(dropped)),
                Step::Event(Some(event)) => {
                    self.send_events(event, &mut connection.rx, &kick).await
                }
                // the hub let go of the connection: its kick says why
                Step::Event(None) => Err(End::Close(kick.kicked().await)),
                Step::Incoming(incoming) => {
                    self.last_seen = Instant::now();
                    self.incoming(incoming, connection, &kick).await
                }
                Step::Heartbeat => {
                    if self.last_seen.elapsed() > heartbeat * 2 {
                        self.state
                            .events
                            .metrics
                            .dropped_dead
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        Err(End::Close(Dropped {
                            code: "heartbeat_timeout",
                            close: 4000,
                            message: format!(
                                "nothing heard for {} s (pings unanswered)",
                                self.last_seen.elapsed().as_secs()
                            ),
                        }))
                    } else {
                        let ping = tokio::time::timeout(
                            heartbeat,
                            self.sink.send(Message::Ping(Vec::new().into())),
                        )
                        .await;
                        match ping {
                            Ok(Ok(())) => Ok(()),
                            _ => Err(End::Gone),
                        }
                    }
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    async fn incoming(
        &mut self,
        incoming: Option<Result<Message, axum::Error>>,
        connection: &Connection,
        kick: &Kick,
    ) -> Result<(), End> {
        let hub = self.state.events.clone();
        let config = &hub.config;
        let bad = |code: &str, message: String| {
            hub.metrics
                .bad_messages
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            error(code, message)
        };
        let text = match incoming {
            None => return Err(End::Gone),
            Some(Err(e)) => {
                // tungstenite refuses frames over the transport limit
                let too_big = e.to_string().to_ascii_lowercase().contains("too long")
                    || e.to_string().to_ascii_lowercase().contains("space limit");
                return Err(if too_big {
                    End::Close(Dropped {
                        code: "too_large",
                        close: 1009,
                        message: format!(
                            "a frame was larger than {} bytes",
                            config.max_frame_bytes
                        ),
                    })
                } else {
                    End::Gone
                });
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                let e = bad(
                    "bad_message",
                    "binary frames are not understood: send JSON text".into(),
                );
                return self.send(&e, kick).await;
            }
            Some(Ok(Message::Close(_))) => return Err(End::Gone),
            Some(Ok(_)) => return Ok(()),
        };
        if text.len() > config.max_message_bytes {
            let e = bad(
                "too_large",
                format!(
                    "a message of {} bytes is larger than the {} allowed",
                    text.len(),
                    config.max_message_bytes
                ),
            );
            return self.send(&e, kick).await;
        }
        let request = match Request::parse(&text) {
            Ok(r) => r,
            Err(message) => {
                let e = bad("bad_message", message);
                return self.send(&e, kick).await;
            }
        };
        match request {
            Request::Ping => self.send(&json!({"type": "pong"}), kick).await,
            Request::Auth => {
                let e = bad(
                    "bad_message",
                    "this connection is already authenticated".into(),
                );
                self.send(&e, kick).await
            }
            Request::Unsubscribe(names) => {
                let rooms: Vec<Room> = names
                    .iter()
                    .filter_map(|n| Room::parse(n, &connection.scope).ok())
                    .collect();
                let removed = self.state.events.unsubscribe(connection, &rooms);
                let removed: Vec<String> = removed.iter().map(Room::to_string).collect();
                self.send(&json!({"type": "unsubscribed", "rooms": removed}), kick)
                    .await
            }
            Request::Subscribe {
                rooms,
                last_event_id,
            } => {
                self.subscribe(&rooms, last_event_id, connection, kick)
                    .await
            }
        }
    }

    async fn subscribe(
        &mut self,
        names: &[String],
        last_event_id: Option<i64>,
        connection: &Connection,
        kick: &Kick,
    ) -> Result<(), End> {
        let outcome = super::subscribe_rooms(&self.state, connection, names, last_event_id).await;
        let refused_names: Vec<String> = outcome.refused.iter().map(|r| r.room.clone()).collect();
        for r in outcome.refused {
            let e = json!({"type": "error", "code": r.code, "room": r.room, "message": r.message});
            self.send(&e, kick).await?;
        }
        let granted = match outcome.granted {
            Ok(g) => g,
            Err(message) => return self.send(&error("too_many_rooms", message), kick).await,
        };
        // every subscribe is answered, even when nothing was granted
        let subscribed = granted.subscribed;
        let names: Vec<String> = granted.rooms.iter().map(Room::to_string).collect();
        let ack = json!({"type": "subscribed", "rooms": names, "refused": refused_names,
                         "last_event_id": subscribed.last_id});
        self.send(&ack, kick).await?;
        if let Some(reason) = &subscribed.resync {
            let m =
                json!({"type": "resync", "reason": reason, "last_event_id": subscribed.last_id});
            self.send(&m, kick).await?;
        }
        for (room, certification) in granted.snapshots {
            let m = match certification {
                Some(certification) => json!({
                    "type": "snapshot",
                    "room": room.to_string(),
                    "certification": certification,
                    "last_event_id": subscribed.last_id,
                }),
                None => error(
                    "unavailable",
                    format!("the snapshot of {room} failed; resubscribe"),
                ),
            };
            self.send(&m, kick).await?;
        }
        for event in subscribed.replay {
            self.send_text(event.json.clone(), kick).await?;
        }
        Ok(())
    }
}

/// What a client may ask.
pub(crate) enum Request {
    Auth,
    Ping,
    Subscribe {
        rooms: Vec<String>,
        last_event_id: Option<i64>,
    },
    Unsubscribe(Vec<String>),
}

impl Request {
    /// Parses a client message, naming what is wrong.
    pub(crate) fn parse(text: &str) -> Result<Request, String> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| format!("the message is not valid JSON: {e}"))?;
        let Value::Object(map) = value else {
            return Err("a message must be a JSON object with a `type`".into());
        };
        let kind = map
            .get("type")
            .and_then(Value::as_str)
            .ok_or("a message needs a string `type`: subscribe, unsubscribe or ping")?;
        let allowed: &[&str] = match kind {
            "subscribe" => &["type", "rooms", "room", "last_event_id"],
            "unsubscribe" => &["type", "rooms", "room"],
            "ping" | "auth" => &["type", "token"],
            other => {
                return Err(format!(
                    "unknown message type {other:?}: expected subscribe, unsubscribe or ping"
                ));
            }
        };
        request::only_fields(&map, allowed, &format!("{kind} message"))?;
        let rooms = || -> Result<Vec<String>, String> {
            let (list, one) = request::room_names(&map)?;
            let rooms: Vec<String> = list.into_iter().chain(one).map(str::to_owned).collect();
            if rooms.is_empty() {
                return Err(format!("a {kind} message needs `rooms` (a list) or `room`"));
            }
            Ok(rooms)
        };
        match kind {
            "subscribe" => Ok(Request::Subscribe {
                rooms: rooms()?,
                last_event_id: request::last_event_id(&map)?,
            }),
            "unsubscribe" => Ok(Request::Unsubscribe(rooms()?)),
            "auth" => Ok(Request::Auth),
            _ => Ok(Request::Ping),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
