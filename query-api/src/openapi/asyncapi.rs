//! `GET /asyncapi.json`: the live events as an AsyncAPI 3.0 document. The
//! WebSocket (`/v1/events`) and Server-Sent Events (`/v1/events/stream`)
//! channels, every message of the protocol, and for every event kind its
//! `data`, whose schemas come from the payload types the indexer serializes
//! (`certscope_indexer::events::payload`) and the envelope the hub sends
//! (`events::EventMessage`).

use std::sync::OnceLock;

use certscope_indexer::events::EventKind;
use certscope_indexer::events::payload;
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::schemas::const_string;

const_string!(WelcomeType, "welcome");
const_string!(SubscribedType, "subscribed");
const_string!(UnsubscribedType, "unsubscribed");
const_string!(ResyncType, "resync");
const_string!(SnapshotType, "snapshot");
const_string!(ErrorType, "error");
const_string!(PongType, "pong");
const_string!(AuthType, "auth");
const_string!(SubscribeType, "subscribe");
const_string!(UnsubscribeType, "unsubscribe");
const_string!(PingType, "ping");

/// First message of a WebSocket connection once authenticated.
#[derive(Serialize, ToSchema)]
pub struct Welcome {
    pub r#type: WelcomeType,
    pub user_id: i64,
    pub organization_id: i64,
    /// The newest event id retained: resume from here to miss nothing.
    pub last_event_id: i64,
    pub limits: Limits,
}

#[derive(Serialize, ToSchema)]
pub struct Limits {
    /// Rooms one connection may follow.
    pub rooms: u64,
    /// Events queued for a slow reader before it is dropped.
    pub queue: u64,
    /// Largest client message handled.
    pub message_bytes: u64,
}

/// The answer to every `subscribe`.
#[derive(Serialize, ToSchema)]
pub struct Subscribed {
    pub r#type: SubscribedType,
    pub rooms: Vec<String>,
    /// Rooms refused (each also answered with an `error`).
    pub refused: Vec<String>,
    pub last_event_id: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Unsubscribed {
    pub r#type: UnsubscribedType,
    pub rooms: Vec<String>,
}

/// The events after `last_event_id` are no longer all retained: reload
/// state, then follow live events.
#[derive(Serialize, ToSchema)]
pub struct Resync {
    pub r#type: ResyncType,
    pub reason: String,
    pub last_event_id: i64,
}

/// The current state of a certification, sent when its room is joined.
#[derive(Serialize, ToSchema)]
pub struct Snapshot {
    pub r#type: SnapshotType,
    pub room: String,
    /// id, name, status, dates, completion_pct, requirement and evidence counts.
    pub certification: serde_json::Value,
    pub last_event_id: i64,
}

/// A refusal (a room, a malformed message) or the reason for a drop.
#[derive(Serialize, ToSchema)]
pub struct ErrorMessage {
    pub r#type: ErrorType,
    pub code: String,
    pub message: String,
    pub room: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Pong {
    pub r#type: PongType,
}

/// Authenticate by message (the first message, when the upgrade carried no
/// token or ticket).
#[derive(Serialize, ToSchema)]
pub struct Auth {
    pub r#type: AuthType,
    pub token: String,
}

/// Follow rooms; resume after `last_event_id`.
#[derive(Serialize, ToSchema)]
pub struct Subscribe {
    pub r#type: SubscribeType,
    pub rooms: Option<Vec<String>>,
    pub room: Option<String>,
    #[schema(minimum = 0)]
    pub last_event_id: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct Unsubscribe {
    pub r#type: UnsubscribeType,
    pub rooms: Option<Vec<String>>,
    pub room: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Ping {
    pub r#type: PingType,
}

/// Server-Sent Events: the `subscribed` event.
#[derive(Serialize, ToSchema)]
pub struct StreamSubscribed {
    pub rooms: Vec<String>,
    pub last_event_id: i64,
}

/// Server-Sent Events: the `resync` event.
#[derive(Serialize, ToSchema)]
pub struct StreamResync {
    pub reason: String,
    pub last_event_id: i64,
}

/// Server-Sent Events: the `snapshot` event.
#[derive(Serialize, ToSchema)]
pub struct StreamSnapshot {
    pub room: String,
    pub certification: serde_json::Value,
    pub last_event_id: i64,
}

/// Server-Sent Events: the `error` event (a refused room, or why the stream
/// ends).
#[derive(Serialize, ToSchema)]
pub struct StreamError {
    pub code: String,
    pub message: String,
    pub room: Option<String>,
}

/// The schema of the `data` of each event kind.
fn payload_schema(kind: EventKind) -> String {
    match kind {
        EventKind::CertificationStatusChanged => payload::CertificationStatusChanged::name(),
        EventKind::RequirementStatusChanged => payload::RequirementStatusChanged::name(),
        EventKind::EvidenceSubmitted | EventKind::EvidenceReviewed => {
            payload::EvidenceStatusChanged::name()
        }
        EventKind::EvidenceExpired => payload::EvidenceExpired::name(),
        EventKind::RiskCreated | EventKind::RiskChanged => payload::RiskChanged::name(),
        EventKind::IndexRebuilt => payload::IndexRebuilt::name(),
        EventKind::Notice => payload::Notice::name(),
    }
    .into_owned()
}

fn describe(kind: EventKind) -> &'static str {
    match kind {
        EventKind::CertificationStatusChanged => {
            "A certification's status changed (or it was created)"
        }
        EventKind::RequirementStatusChanged => "A requirement's status changed (or it was added)",
        EventKind::EvidenceSubmitted => "Evidence was submitted",
        EventKind::EvidenceReviewed => "Evidence was accepted or rejected",
        EventKind::EvidenceExpired => "Evidence expired",
        EventKind::RiskCreated => "A risk was recorded",
        EventKind::RiskChanged => "A risk's status or ratings changed",
        EventKind::IndexRebuilt => "The search index was rebuilt (notices room)",
        EventKind::Notice => "An operator's notice (notices room)",
    }
}

/// A message name usable as a component key: `certification.status_changed`
/// → `certification_status_changed`.
fn key(kind: EventKind) -> String {
    kind.as_str().replace('.', "_")
}

fn add<T: ToSchema>(schemas: &mut Map<String, Value>) {
    let mut all = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut all);
    for (name, schema) in all {
        schemas
            .entry(name)
            .or_insert_with(|| serde_json::to_value(schema).unwrap_or_default());
    }
}

fn message(name: &str, title: &str, schema: Value) -> Value {
    json!({"name": name, "title": title, "contentType": "application/json", "payload": schema})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The AsyncAPI document, built once.
pub fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(build)
}

fn build() -> Value {
    let mut schemas = Map::new();
    add::<crate::events::EventMessage>(&mut schemas);
    add::<Welcome>(&mut schemas);
    add::<Subscribed>(&mut schemas);
    add::<Unsubscribed>(&mut schemas);
    add::<Resync>(&mut schemas);
    add::<Snapshot>(&mut schemas);
    add::<ErrorMessage>(&mut schemas);
    add::<Pong>(&mut schemas);
    add::<Auth>(&mut schemas);
    add::<Subscribe>(&mut schemas);
    add::<Unsubscribe>(&mut schemas);
    add::<Ping>(&mut schemas);
    add::<StreamSubscribed>(&mut schemas);
    add::<StreamResync>(&mut schemas);
    add::<StreamSnapshot>(&mut schemas);
    add::<StreamError>(&mut schemas);
    add::<payload::CertificationStatusChanged>(&mut schemas);
    add::<payload::RequirementStatusChanged>(&mut schemas);
    add::<payload::EvidenceStatusChanged>(&mut schemas);
    add::<payload::EvidenceExpired>(&mut schemas);
    add::<payload::RiskChanged>(&mut schemas);
    add::<payload::IndexRebuilt>(&mut schemas);
    add::<payload::Notice>(&mut schemas);

    let mut schemas = Value::Object(schemas);
    super::close_objects(&mut schemas);

    let mut messages = Map::new();
    let mut event_refs = Vec::new();
    for kind in EventKind::ALL {
        let name = key(kind);
        // the envelope, with this kind and its payload
        let schema = json!({
            "allOf": [
                schema_ref(&crate::events::EventMessage::name()),
                {"type": "object", "required": ["kind", "data"],
                 "properties": {"kind": {"const": kind.as_str()}, "data": schema_ref(&payload_schema(kind))}}
            ]
        });
        messages.insert(name.clone(), message(kind.as_str(), describe(kind), schema));
        event_refs.push(name);
    }
    let protocol = [
        ("welcome", "Welcome", "Sent once authenticated"),
        ("subscribed", "Subscribed", "The answer to a subscribe"),
        (
            "unsubscribed",
            "Unsubscribed",
            "The answer to an unsubscribe",
        ),
        (
            "resync",
            "Resync",
            "Events were missed: reload, then follow",
        ),
        (
            "snapshot",
            "Snapshot",
            "A certification's state, on joining its room",
        ),
        (
            "error",
            "ErrorMessage",
            "A refusal, or why the connection ends",
        ),
        ("pong", "Pong", "The answer to a ping"),
    ];
    let commands = [
        ("auth", "Auth", "Authenticate by message"),
        (
            "subscribe",
            "Subscribe",
            "Follow rooms, resuming after an event id",
        ),
        ("unsubscribe", "Unsubscribe", "Stop following rooms"),
        ("ping", "Ping", "Keep-alive; answered with pong"),
    ];
    let stream = [
        (
            "stream_subscribed",
            "subscribed",
            "StreamSubscribed",
            "The rooms followed (SSE event `subscribed`)",
        ),
        (
            "stream_resync",
            "resync",
            "StreamResync",
            "Events were missed (SSE event `resync`)",
        ),
        (
            "stream_snapshot",
            "snapshot",
            "StreamSnapshot",
            "A certification's state (SSE event `snapshot`)",
        ),
        (
            "stream_error",
            "error",
            "StreamError",
            "A refused room, or why the stream ends (SSE event `error`)",
        ),
    ];
    for (key, schema, title) in protocol.iter().chain(commands.iter()) {
        messages.insert((*key).into(), message(key, title, schema_ref(schema)));
    }
    for (key, name, schema, title) in stream {
        messages.insert(key.into(), message(name, title, schema_ref(schema)));
    }
    let refs = |names: &[String]| -> Value {
        names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    json!({"$ref": format!("#/components/messages/{n}")}),
                )
            })
            .collect::<Map<_, _>>()
            .into()
    };
    let ws_names: Vec<String> = event_refs
        .iter()
        .cloned()
        .chain(protocol.iter().map(|p| p.0.to_owned()))
        .chain(commands.iter().map(|c| c.0.to_owned()))
        .collect();
    let sse_names: Vec<String> = event_refs
        .iter()
        .cloned()
        .chain(stream.iter().map(|s| s.0.to_owned()))
        .collect();
    let op_messages = |channel: &str, names: &[String]| -> Value {
        names
            .iter()
            .map(|n| json!({"$ref": format!("#/channels/{channel}/messages/{n}")}))
            .collect()
    };
    let received: Vec<String> = event_refs
        .iter()
        .cloned()
        .chain(protocol.iter().map(|p| p.0.to_owned()))
        .collect();
    let sent: Vec<String> = commands.iter().map(|c| c.0.to_owned()).collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Certscope live events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Status changes, evidence, risks and notices as they commit, per room (org, org:<id>, certification:<id>, user, user:<id>, notices) and strictly within the caller's scope. Resume from the last event id seen; a `resync` says when events were missed. The HTTP API is described at /openapi.json.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "websocket": {
                "host": "{host}",
                "protocol": "ws",
                "description": "This server (wss behind TLS)",
                "variables": {"host": {"default": "localhost:8080", "description": "The API's host and port"}},
                "security": [{"$ref": "#/components/securitySchemes/bearer"}, {"$ref": "#/components/securitySchemes/ticket"}],
            },
            "sse": {
                "host": "{host}",
                "protocol": "http",
                "description": "This server, Server-Sent Events (https behind TLS)",
                "variables": {"host": {"default": "localhost:8080", "description": "The API's host and port"}},
                "security": [{"$ref": "#/components/securitySchemes/bearer"}, {"$ref": "#/components/securitySchemes/ticket"}],
            }
        },
        "channels": {
            "events": {
                "address": crate::paths::EVENTS_WS,
                "title": "WebSocket",
                "description": "One WebSocket per client: events of the rooms it subscribes to, and the protocol's answers.",
                "servers": [{"$ref": "#/servers/websocket"}],
                "messages": refs(&ws_names),
            },
            "stream": {
                "address": crate::paths::EVENTS_SSE,
                "title": "Server-Sent Events",
                "description": "`?rooms=org,notices`; each event's SSE `id` is its event id and its SSE `event` its kind (or subscribed, resync, snapshot, error). Resume with Last-Event-ID.",
                "servers": [{"$ref": "#/servers/sse"}],
                "messages": refs(&sse_names),
            }
        },
        "operations": {
            "receiveEvents": {
                "action": "receive",
                "title": "Events and answers over the WebSocket",
                "channel": {"$ref": "#/channels/events"},
                "messages": op_messages("events", &received),
            },
            "sendCommands": {
                "action": "send",
                "title": "Authenticate, subscribe, unsubscribe, ping",
                "channel": {"$ref": "#/channels/events"},
                "messages": op_messages("events", &sent),
            },
            "receiveStream": {
                "action": "receive",
                "title": "Events as Server-Sent Events",
                "channel": {"$ref": "#/channels/stream"},
                "messages": op_messages("stream", &sse_names),
            }
        },
        "components": {
            "schemas": schemas,
            "messages": messages,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                           "description": "Authorization: Bearer <token> on the upgrade or stream request"},
                "ticket": {"type": "httpApiKey", "name": "ticket", "in": "query",
                           "description": "A single-use ticket from POST /v1/events/tickets (browsers)"},
            }
        }
    })
}
