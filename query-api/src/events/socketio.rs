//! `/socket.io/`: live events over socket.io v4 (Engine.IO v4: WebSocket,
//! HTTP long-polling and the upgrade between them), for the real-time clients
//! written for the application Certscope grows out of. The same hub, the same
//! authentication and the same rooms as the WebSocket and SSE transports; only
//! the vocabulary differs (README.md, "socket.io").
//!
//! Every socket runs one session task that alone emits to it, so that a
//! subscription's acknowledgement, snapshots and replayed events can never be
//! overtaken by live events (the hub's no-gap, no-duplicate guarantee holds
//! only for messages written in the order it hands them out).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde_json::{Map, Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Event as EventName, SocketRef, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::socket::DisconnectReason;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::rooms::request;
use super::{Connection, Dropped, Event, EventHub, Kick, Room};
use crate::AppState;
use crate::error::ApiError;

/// Where the service is mounted (socket.io's default path).
pub const PATH: &str = "/socket.io/";

/// The event names the original application emitted, by Certscope kind: each
/// event is emitted under its kind and, where the original had one, under
/// that name too.
pub const ORIGINAL_NAMES: &[(&str, &str)] = &[
    (
        "certification.status_changed",
        "certification-status-changed",
    ),
    ("requirement.status_changed", "requirement-status-changed"),
    ("evidence.submitted", "evidence-submitted"),
    ("evidence.reviewed", "evidence-reviewed"),
    ("evidence.expired", "evidence-expired"),
    ("risk.created", "risk-created"),
    ("risk.changed", "risk-updated"),
    ("notice", "notification"),
];

fn original_name(kind: &str) -> Option<&'static str> {
    ORIGINAL_NAMES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, name)| *name)
}

/// Engine.IO packets buffered per socket before emits wait: a burst of events
/// (two packets each) fits; a reader that stops makes the hub's own bounded
/// queue fill behind it, and the hub drops it as a slow consumer.
const SOCKET_BUFFER: usize = 1024;

/// Client messages waiting for the session at most; more are refused.
const PENDING_MESSAGES: usize = 64;

/// Hub events emitted per turn of the session loop at most.
const BATCH: usize = 64;

/// The socket.io service on `/socket.io/`, for the API router (behind the
/// same rate limits and request logging as every route: the logging layer
/// records the matched route, never the query string that may hold a token).
pub fn routes(state: &AppState) -> Router<AppState> {
    let config = &state.events.config;
    let (service, io) = SocketIo::builder()
        .req_path(PATH.trim_end_matches('/'))
        .ping_interval(config.heartbeat)
        .ping_timeout(config.heartbeat)
        .connect_timeout(config.auth_timeout)
        .max_buffer_size(SOCKET_BUFFER)
        .max_payload(config.max_frame_bytes as u64)
        .ws_max_message_size(config.max_frame_bytes)
        .ws_max_frame_size(config.max_frame_bytes)
        .ws_read_buffer_size(8 << 10)
        .build_svc();
    let on_connect = {
        let state = state.clone();
        move |socket: SocketRef| connected(state, socket)
    };
    let admit = {
        let state = state.clone();
        move |socket: SocketRef, TryData(auth): TryData<Value>| admit(state, socket, auth.ok())
    };
    io.ns("/", on_connect.with(admit));
    Router::new().route_service(PATH, service)
}

/// What the admission middleware hands the connect handler: the hub's
/// connection and the client messages received meanwhile.
#[derive(Clone)]
struct Admitted(Arc<Mutex<Option<Pending>>>);

struct Pending {
    connection: Connection,
    last_event_id: Option<i64>,
    incoming: mpsc::Receiver<Incoming>,
    gone: CancellationToken,
}

/// A refused connection: socket.io sends its text to the client as the
/// `connect_error` message.
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused(e.to_string())
    }
}

/// What the handshake carries: `auth: {token | ticket, last_event_id}` (socket.io
/// v4's way) or, for the original clients, the query string (`token`,
/// `ticket`, `last_event_id`; its `userId` and `clientId` are ignored: who
/// connects is the token's business alone).
#[derive(Default)]
struct Handshake {
    token: Option<String>,
    ticket: Option<String>,
    last_event_id: Option<i64>,
}

fn event_id(value: &Value, from: &str) -> Result<Option<i64>, Refused> {
    let id = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    id.filter(|&n| n >= 0).map(Some).ok_or_else(|| {
        Refused(format!(
            "{from} `last_event_id` must be a non-negative event id"
        ))
    })
}

impl Handshake {
    fn read(auth: Option<&Value>, query: Option<&str>) -> Result<Handshake, Refused> {
        let mut h = Handshake::default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| Refused("the query string is not valid".into()))?;
        for (key, value) in pairs {
            match key.as_str() {
                "token" => h.token = Some(value),
                "ticket" => h.ticket = Some(value),
                "last_event_id" => h.last_event_id = event_id(&Value::String(value), "query")?,
                // Engine.IO's own (EIO, transport, sid, t) and the original
                // clients' identity claims: not ours to act on
                _ => {}
            }
        }
        match auth {
            None | Some(Value::Null) => {}
            Some(Value::Object(auth)) => {
                let text = |key: &str| -> Result<Option<String>, Refused> {
                    match auth.get(key) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s.clone())),
                        Some(_) => Err(Refused(format!("auth `{key}` must be a string"))),
                    }
                };
                if let Some(token) = text("token")? {
                    h.token = Some(token);
                }
                if let Some(ticket) = text("ticket")? {
                    h.ticket = Some(ticket);
                }
                if let Some(id) = auth.get("last_event_id")
                    && let Some(id) = event_id(id, "auth")?
                {
                    h.last_event_id = Some(id);
                }
            }
            Some(_) => {
                return Err(Refused(
                    "`auth` must be an object: {token} or {ticket}, and last_event_id".into(),
                ));
            }
        }
        Ok(h)
    }
}

/// The admission middleware: authenticates the socket (token or ticket, from
/// `auth`, the query or the Authorization header) and registers it with the
/// hub within the per-token limit; a refusal is the client's `connect_error`.
async fn admit(state: AppState, socket: SocketRef, auth: Option<Value>) -> Result<(), Refused> {
    let parts = socket.req_parts();
    let handshake = Handshake::read(auth.as_ref(), parts.uri.query())?;
    let caller = match &handshake.token {
        Some(token) => Some(super::Caller::authenticate(&state, token).await?),
        None => super::caller_of(&state, &parts.headers, handshake.ticket.as_deref()).await?,
    };
    let caller = caller.ok_or_else(|| {
        Refused(
            "authentication required: connect with `auth: {token}` (or a `ticket` from \
             POST /v1/events/tickets)"
                .into(),
        )
    })?;
    let connection = state.events.connect(caller).await?;
    // the handlers go in before the client hears it is connected: socketioxide
    // runs the connect handler on a task of its own, and a client that emits
    // at once on `connect` must not find nobody listening
    let (incoming, gone) = listen(&state, &socket);
    socket
        .extensions
        .insert(Admitted(Arc::new(Mutex::new(Some(Pending {
            connection,
            last_event_id: handshake.last_event_id,
            incoming,
            gone,
        })))));
    Ok(())
}

/// A client message, handed from socketioxide's handlers to the session.
struct Incoming {
    name: String,
    data: Option<Value>,
    ack: AckSender,
}

/// Hands every client message to the session (in order, up to a bound) and
/// says when the socket is gone.
fn listen(state: &AppState, socket: &SocketRef) -> (mpsc::Receiver<Incoming>, CancellationToken) {
    let (tx, rx) = mpsc::channel::<Incoming>(PENDING_MESSAGES);
    let gone = CancellationToken::new();
    let hub = state.events.clone();
    socket.on_fallback(
        move |socket: SocketRef,
              EventName(name): EventName,
              TryData(data): TryData<Value>,
              ack: AckSender| async move {
            let message = Incoming {
                name,
                data: data.ok(),
                ack,
            };
            if tx.try_send(message).is_err() {
                hub.metrics
                    .bad_messages
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = socket.emit(
                    "error",
                    &error(
                        "too_many_messages",
                        format!(
                            "more than {PENDING_MESSAGES} messages are waiting: wait for the answers"
                        ),
                    ),
                );
            }
        },
    );
    {
        let gone = gone.clone();
        socket.on_disconnect(move |_: DisconnectReason| async move { gone.cancel() });
    }
    (rx, gone)
}

async fn connected(state: AppState, socket: SocketRef) {
    let admitted = socket
        .extensions
        .remove::<Admitted>()
        .and_then(|a| a.0.lock().unwrap_or_else(|e| e.into_inner()).take());
    let Some(pending) = admitted else {
        // the middleware admits every socket that gets here
        let _ = socket.disconnect();
        return;
    };
    let session = Session {
        socket,
        state,
        connection: pending.connection,
        last_event_id: pending.last_event_id,
        incoming: pending.incoming,
        gone: pending.gone,
    };
    session.run().await;
}

/// Why a session ended.
enum End {
    /// The client went away (or its socket is full past the deadline).
    Gone,
    /// Say why with an `error` event, then disconnect.
    Close(Dropped),
}

struct Session {
    socket: SocketRef,
    state: AppState,
    connection: Connection,
    /// Where the client's `auth` or query said it left off: replayed from on
    /// each subscribe that names none of its own.
    last_event_id: Option<i64>,
    incoming: mpsc::Receiver<Incoming>,
    gone: CancellationToken,
}

fn error(code: &str, message: impl Into<String>) -> Value {
    json!({"code": code, "message": message.into()})
}

enum Step {
    Gone,
    Dropped(Dropped),
    Incoming(Option<Incoming>),
    Event(Option<Arc<Event>>),
}

impl Session {
    fn hub(&self) -> &EventHub {
        &self.state.events
    }

    async fn run(mut self) {
        let end = self.serve().await;
        if let End::Close(dropped) = end {
            let grace = self.hub().config.close_grace;
            let kick = Kick::default();
            let message = error(dropped.code, dropped.message);
            let _ = tokio::time::timeout(grace, self.emit("error", &message, &kick)).await;
            let _ = self.socket.clone().disconnect();
        }
        // dropping the session drops the connection: the hub forgets it
    }

    async fn serve(&mut self) -> End {
        let kick = self.connection.kick.clone();
        let hub = self.state.events.clone();
        let hello = json!({
            "user_id": self.connection.scope.user_id,
            "organization_id": self.connection.scope.org_id,
            "last_event_id": hub.last_id(),
            "limits": {
                "rooms": hub.config.max_rooms_per_connection,
                "queue": hub.config.queue,
                "message_bytes": hub.config.max_message_bytes,
            },
        });
        if let Err(end) = self.emit("connected", &hello, &kick).await {
            return end;
        }
        let expires = self.connection.expires;
        loop {
            let step = tokio::select! {
                biased;
                () = self.gone.cancelled() => Step::Gone,
                dropped = kick.kicked() => Step::Dropped(dropped),
                dropped = super::expiry(expires) => Step::Dropped(dropped),
                incoming = self.incoming.recv() => Step::Incoming(incoming),
                event = self.connection.rx.recv() => Step::Event(event),
            };
            let result = match step {
                Step::Gone | Step::Incoming(None) => Err(End::Gone),
                Step::Dropped(dropped) => Err(End::Close(dropped)),
                // the hub let go of the connection: its kick says why
                Step::Event(None) => Err(End::Close(kick.kicked().await)),
                Step::Event(Some(event)) => self.send_events(event, &kick).await,
                Step::Incoming(Some(message)) => self.incoming(message, &kick).await,
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Emits one event; while the socket's buffer is full, waits (a client
    /// that reads nothing for two heartbeats is gone) unless the hub drops
    /// the connection meanwhile.
    async fn emit<T: serde::Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
        kick: &Kick,
    ) -> Result<(), End> {
        use socketioxide::SendError;
        use socketioxide::SocketError;
        let deadline = tokio::time::Instant::now() + self.hub().config.heartbeat * 2;
        loop {
            match self.socket.emit(name, data) {
                Ok(()) => return Ok(()),
                Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                    if tokio::time::Instant::now() >= deadline {
                        self.hub()
                            .metrics
                            .dropped_dead
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        return Err(End::Gone);
                    }
                    tokio::select! {
                        biased;
                        dropped = kick.kicked() => return Err(End::Close(dropped)),
                        () = self.gone.cancelled() => return Err(End::Gone),
                        () = tokio::time::sleep(Duration::from_millis(5)) => {}
                    }
                }
                Err(SendError::Socket(_)) => return Err(End::Gone),
                Err(SendError::Serialize(e)) => {
                    tracing::error!(error = %e, "encoding a socket.io event failed");
                    return Ok(());
                }
            }
        }
    }

    /// Emits a hub event under its kind and, where there is one, under the
    /// original application's name for it.
    async fn emit_event(&self, event: &Event, kick: &Kick) -> Result<(), End> {
        let data = event.raw();
        self.emit(&event.kind, data, kick).await?;
        if let Some(name) = original_name(&event.kind) {
            self.emit(name, data, kick).await?;
        }
        Ok(())
    }

    /// `first` and whatever else is already queued, up to a bound.
    async fn send_events(&mut self, first: Arc<Event>, kick: &Kick) -> Result<(), End> {
        self.emit_event(&first, kick).await?;
        for _ in 0..BATCH {
            let Ok(event) = self.connection.rx.try_recv() else {
                break;
            };
            self.emit_event(&event, kick).await?;
        }
        Ok(())
    }

    /// Answers a client message: by ack when the client asked for one, and by
    /// the event the original clients listen for.
    async fn reply(&self, ack: AckSender, name: &str, data: Value, kick: &Kick) -> Result<(), End> {
        let _ = ack.send(&data);
        self.emit(name, &data, kick).await
    }

    async fn bad(
        &self,
        ack: AckSender,
        code: &str,
        message: String,
        kick: &Kick,
    ) -> Result<(), End> {
        self.hub()
            .metrics
            .bad_messages
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.reply(ack, "error", error(code, message), kick).await
    }

    async fn incoming(&mut self, message: Incoming, kick: &Kick) -> Result<(), End> {
        let Incoming { name, data, ack } = message;
        let size = data.as_ref().map_or(0, |d| d.to_string().len());
        let max = self.hub().config.max_message_bytes;
        if size > max {
            let m = format!("a message of {size} bytes is larger than the {max} allowed");
            return self.bad(ack, "too_large", m, kick).await;
        }
        match name.as_str() {
            "ping" => {
                let now = chrono::Utc::now().timestamp_millis();
                self.reply(ack, "pong", json!({ "time": now }), kick).await
            }
            "get-rooms" => {
                let rooms: Vec<String> = self
                    .hub()
                    .rooms(&self.connection)
                    .iter()
                    .map(Room::to_string)
                    .collect();
                self.reply(ack, "rooms", json!({ "rooms": rooms }), kick)
                    .await
            }
            "subscribe" => match RoomRequest::parse(data.as_ref(), "subscribe") {
                Ok(request) => self.subscribe(request, ack, kick).await,
                Err(m) => self.bad(ack, "bad_message", m, kick).await,
            },
            "unsubscribe" => match RoomRequest::parse(data.as_ref(), "unsubscribe") {
                Ok(request) => {
                    let scope = &self.connection.scope;
                    let rooms: Vec<Room> = request
                        .names
                        .iter()
                        .filter_map(|n| Room::parse(n, scope).ok())
                        .collect();
                    let removed = self.hub().unsubscribe(&self.connection, &rooms);
                    let removed: Vec<String> = removed.iter().map(Room::to_string).collect();
                    let mut m = request.echo();
                    m.insert("rooms".into(), json!(removed));
                    self.reply(ack, "unsubscribed", Value::Object(m), kick)
                        .await
                }
                Err(m) => self.bad(ack, "bad_message", m, kick).await,
            },
            other => {
                let m = format!(
                    "unknown event {other:?}: expected subscribe, unsubscribe, get-rooms or ping"
                );
                self.bad(ack, "bad_message", m, kick).await
            }
        }
    }

    async fn subscribe(
        &mut self,
        request: RoomRequest,
        ack: AckSender,
        kick: &Kick,
    ) -> Result<(), End> {
        let last_event_id = request.last_event_id.or(self.last_event_id);
        let outcome =
            super::subscribe_rooms(&self.state, &self.connection, &request.names, last_event_id)
                .await;
        let mut refusals = Vec::new();
        for r in outcome.refused {
            let mut m = request.echo();
            m.insert("code".into(), json!(r.code));
            m.insert("reason".into(), json!(r.message));
            m.insert("room_name".into(), json!(r.room));
            refusals.push(Value::Object(m));
        }
        let granted = match outcome.granted {
            Ok(g) => g,
            Err(message) => {
                let mut m = request.echo();
                m.insert("code".into(), json!("too_many_rooms"));
                m.insert("reason".into(), json!(message));
                refusals.push(Value::Object(m));
                // the ack carries the first answer; events carry them all
                let _ = ack.send(&refusals[0]);
                for r in &refusals {
                    self.emit("subscription-error", r, kick).await?;
                }
                return Ok(());
            }
        };
        let subscribed = granted.subscribed;
        let names: Vec<String> = granted.rooms.iter().map(Room::to_string).collect();
        let answer = if names.is_empty() {
            refusals.first().cloned().unwrap_or_else(|| json!({}))
        } else {
            let mut m = request.echo();
            m.insert("rooms".into(), json!(names));
            m.insert("last_event_id".into(), json!(subscribed.last_id));
            Value::Object(m)
        };
        let _ = ack.send(&answer);
        for r in &refusals {
            self.emit("subscription-error", r, kick).await?;
        }
        if !names.is_empty() {
            self.emit("subscribed", &answer, kick).await?;
        }
        if let Some(reason) = &subscribed.resync {
            let m = json!({"reason": reason, "last_event_id": subscribed.last_id});
            self.emit("resync", &m, kick).await?;
        }
        for (room, certification) in granted.snapshots {
            let m = match certification {
                Some(certification) => json!({
                    "room": room.to_string(),
                    "certification": certification,
                    "last_event_id": subscribed.last_id,
                }),
                None => {
                    let m = error(
                        "unavailable",
                        format!("the snapshot of {room} failed; resubscribe"),
                    );
                    self.emit("error", &m, kick).await?;
                    continue;
                }
            };
            self.emit("snapshot", &m, kick).await?;
        }
        for event in subscribed.replay {
            self.emit_event(&event, kick).await?;
        }
        Ok(())
    }
}

/// A `subscribe` or `unsubscribe` payload in either vocabulary: the original
/// `{room: "organization" | "certification" | "user" | "global",
/// certificationId}`, ours (`{room: "org" | "certification:<id>" | "user" |
/// "notices"}` or `{rooms: [...]}`), or a bare room name.
pub(crate) struct RoomRequest {
    /// Our room names, for the hub's parser and authorization.
    pub(crate) names: Vec<String>,
    /// The client's own words, echoed in the answer so it can match it.
    room: Option<Value>,
    certification_id: Option<Value>,
    last_event_id: Option<i64>,
}

impl RoomRequest {
    pub(crate) fn parse(data: Option<&Value>, kind: &str) -> Result<RoomRequest, String> {
        let map = match data {
            Some(Value::String(name)) => {
                let mut m = Map::new();
                m.insert("room".into(), Value::String(name.clone()));
                m
            }
            Some(Value::Object(map)) => map.clone(),
            _ => {
                return Err(format!(
                    "a {kind} needs {{room}} (and certificationId for a certification), \
                     {{rooms: [...]}} or a room name"
                ));
            }
        };
        const ALLOWED: [&str; 5] = [
            "room",
            "rooms",
            "certificationId",
            "certification_id",
            "last_event_id",
        ];
        request::only_fields(&map, &ALLOWED, kind)?;
        let certification_id = map
            .get("certificationId")
            .or_else(|| map.get("certification_id"))
            .filter(|v| !v.is_null())
            .cloned();
        let certification = match &certification_id {
            None => None,
            Some(Value::Number(n)) => n.as_i64().map(|n| n.to_string()),
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(_) => None,
        };
        if certification_id.is_some() && certification.is_none() {
            return Err("`certificationId` must be a certification id".into());
        }
        let (list, one) = request::room_names(&map)?;
        let mut names = list
            .into_iter()
            .map(|r| translate(r, None))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(r) = one {
            names.push(translate(r, certification.as_deref())?);
        }
        if names.is_empty() {
            return Err(format!("a {kind} needs `room` or `rooms`"));
        }
        let room = one.map(|r| Value::String(r.to_owned()));
        let last_event_id = request::last_event_id(&map)?;
        Ok(RoomRequest {
            names,
            room,
            certification_id,
            last_event_id,
        })
    }

    /// `{room, certificationId}` as the client sent them.
    fn echo(&self) -> Map<String, Value> {
        let mut m = Map::new();
        if let Some(room) = &self.room {
            m.insert("room".into(), room.clone());
        }
        if let Some(id) = &self.certification_id {
            m.insert("certificationId".into(), id.clone());
        }
        m
    }
}

/// The original vocabulary's room names in ours; ours pass through (the hub's
/// parser then names what is wrong with them).
fn translate(room: &str, certification: Option<&str>) -> Result<String, String> {
    match (room, certification) {
        ("certification", Some(id)) => Ok(format!("certification:{id}")),
        ("certification", None) => {
            Err("room `certification` needs `certificationId` (or use `certification:<id>`)".into())
        }
        ("global", None) => Ok("notices".into()),
        (other, None) => Ok(other.to_owned()),
        (other, Some(_)) => Err(format!(
            "`certificationId` goes with room `certification`, not {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: Value) -> Result<Vec<String>, String> {
        RoomRequest::parse(Some(&v), "subscribe").map(|r| r.names)
    }

    #[test]
    fn the_original_room_names_map_onto_ours() {
        assert_eq!(
            names(json!({"room": "organization"})),
            Ok(vec!["organization".into()])
        );
        assert_eq!(
            names(json!({"room": "certification", "certificationId": 12})),
            Ok(vec!["certification:12".into()])
        );
        assert_eq!(
            names(json!({"room": "certification", "certificationId": "12"})),
            Ok(vec!["certification:12".into()])
        );
        assert_eq!(names(json!({"room": "global"})), Ok(vec!["notices".into()]));
        assert_eq!(names(json!({"room": "user"})), Ok(vec!["user".into()]));
        assert_eq!(
            names(json!({"rooms": ["org", "certification:3"]})),
            Ok(vec!["org".into(), "certification:3".into()])
        );
        assert_eq!(names(json!("notices")), Ok(vec!["notices".into()]));
    }

    #[test]
    fn malformed_room_requests_say_what_is_wrong() {
        assert!(
            names(json!({"room": "certification"}))
                .unwrap_err()
                .contains("certificationId")
        );
        assert!(names(json!({"room": "org", "certificationId": 1})).is_err());
        assert!(names(json!({"room": 5})).unwrap_err().contains("room name"));
        assert!(names(json!({"rooms": "org"})).unwrap_err().contains("list"));
        assert!(
            names(json!({"room": "org", "userId": 3}))
                .unwrap_err()
                .contains("userId")
        );
        assert!(names(json!({})).unwrap_err().contains("needs"));
        assert!(RoomRequest::parse(None, "subscribe").is_err());
        assert!(names(json!({"room": "org", "last_event_id": -1})).is_err());
    }

    #[test]
    fn the_handshake_reads_auth_first_then_the_query() {
        let h = Handshake::read(
            Some(&json!({"token": "a", "last_event_id": "7"})),
            Some("EIO=4&transport=polling&token=b&userId=9"),
        )
        .ok()
        .unwrap();
        assert_eq!(h.token.as_deref(), Some("a"));
        assert_eq!(h.last_event_id, Some(7));
        let h = Handshake::read(None, Some("token=b&clientId=x"))
            .ok()
            .unwrap();
        assert_eq!(h.token.as_deref(), Some("b"));
        assert!(Handshake::read(Some(&json!("tok")), None).is_err());
        assert!(Handshake::read(Some(&json!({"last_event_id": -3})), None).is_err());
        assert!(Handshake::read(Some(&json!({"token": 5})), None).is_err());
    }
}
