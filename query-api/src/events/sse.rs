//! `GET /v1/events/stream`: live events as Server-Sent Events. Rooms come as a
//! parameter; `Last-Event-ID` (sent by EventSource on reconnect) resumes.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::json;

use super::{Connection, Event, Room};
use crate::AppState;
use crate::error::ApiError;

struct Params {
    rooms: Vec<String>,
    ticket: Option<String>,
    last_event_id: Option<i64>,
}

fn last_event_id(text: &str, from: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse::<i64>()
        .ok()
        .filter(|&n| n >= 0)
        .ok_or_else(|| {
            ApiError::bad(
                "bad_last_event_id",
                format!("{from} must be a non-negative event id, not {text:?}"),
            )
        })
}

/// Whether the query names a ticket (read leniently: a malformed query is
/// reported after authentication).
fn has_ticket(query: Option<&str>) -> bool {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
        .is_ok_and(|pairs| pairs.iter().any(|(k, v)| k == "ticket" && !v.is_empty()))
}

fn params(query: Option<&str>, headers: &HeaderMap) -> Result<Params, ApiError> {
    let mut p = Params {
        rooms: Vec::new(),
        ticket: None,
        last_event_id: None,
    };
    for (key, value) in serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
        .map_err(|_| ApiError::bad("bad_query", "the query string is not valid"))?
    {
        match key.as_str() {
            "rooms" => p.rooms.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            ),
            "ticket" => p.ticket = Some(value),
            "last_event_id" => p.last_event_id = Some(last_event_id(&value, "last_event_id")?),
            other => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!(
                        "unknown parameter `{other}`: /v1/events/stream takes rooms, ticket and last_event_id"
                    ),
                ));
            }
        }
    }
    // EventSource resends the last id it saw as a header: it wins
    if let Some(h) = headers.get("last-event-id") {
        let text = h
            .to_str()
            .map_err(|_| ApiError::bad("bad_last_event_id", "Last-Event-ID is not valid text"))?;
        if !text.trim().is_empty() {
            p.last_event_id = Some(last_event_id(text, "Last-Event-ID")?);
        }
    }
    Ok(p)
}

fn message(kind: &str, data: serde_json::Value) -> SseEvent {
    SseEvent::default().event(kind).data(data.to_string())
}

fn event(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.id.to_string())
        .event(e.kind.as_str())
        .data(e.json.as_str())
}

struct Live {
    first: VecDeque<SseEvent>,
    connection: Connection,
    done: bool,
}

/// Live events as Server-Sent Events: `id:` is the event id, `event:` its
/// kind; also `subscribed`, `snapshot`, `resync` and `error` messages (see
/// `/asyncapi.json`). Resume with the `Last-Event-ID` header.
#[utoipa::path(get, path = crate::paths::EVENTS_SSE, tag = "events",
    params(crate::openapi::params::StreamQuery,
        ("last-event-id" = Option<i64>, Header, description = "Resume after this event id")),
    responses((status = 200, description = "An event stream: each event as described (see /asyncapi.json for every `data`)", content_type = "text/event-stream", body = crate::openapi::schemas::SseEvent)))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let unauthorized = || {
        ApiError::Unauthorized(
            "send `Authorization: Bearer <token>`, or a ticket from POST /v1/events/tickets".into(),
        )
    };
    // who is asking comes first, as on every route: no credentials or a bad
    // token is 401 whatever else is wrong; then what is asked. A ticket is
    // spent only once the request is known to be well-formed.
    let bearer = super::caller_of(&state, &headers, None).await?;
    if bearer.is_none() && !has_ticket(query.as_deref()) {
        return Err(unauthorized());
    }
    let p = params(query.as_deref(), &headers)?;
    let hub = state.events.clone();
    let caller = match bearer {
        Some(caller) => caller,
        None => super::caller_of(&state, &headers, p.ticket.as_deref())
            .await?
            .ok_or_else(unauthorized)?,
    };
    if p.rooms.is_empty() {
        return Err(ApiError::bad(
            "missing_rooms",
            "`rooms` is required: a comma-separated list such as rooms=org,notices",
        ));
    }
    if p.rooms.len() > hub.config.max_rooms_per_connection {
        return Err(ApiError::bad(
            "too_many_rooms",
            format!(
                "at most {} rooms per stream",
                hub.config.max_rooms_per_connection
            ),
        ));
    }
    // a malformed room name makes the request malformed; a refused one is
    // reported in the stream, which goes on with the others
    for name in &p.rooms {
        Room::parse(name, &caller.scope)
            .map_err(|r| ApiError::bad(r.code, format!("`rooms`: {}", r.message)))?;
    }
    let connection = hub.connect(caller).await?;
    let (accepted, refused) =
        super::authorize_rooms(&p.rooms, &connection.scope, &state.pool, &hub.metrics).await;
    let mut first = VecDeque::new();
    for r in refused {
        first.push_back(message(
            "error",
            json!({"code": r.code, "room": r.room, "message": r.message}),
        ));
    }
    let subscribed = hub
        .subscribe(&connection, &accepted, p.last_event_id)
        .map_err(|m| ApiError::bad("too_many_rooms", m))?;
    let names: Vec<String> = accepted.iter().map(Room::to_string).collect();
    first.push_back(message(
        "subscribed",
        json!({"rooms": names, "last_event_id": subscribed.last_id}),
    ));
    if let Some(reason) = &subscribed.resync {
        first.push_back(message(
            "resync",
            json!({"reason": reason, "last_event_id": subscribed.last_id}),
        ));
    }
    for room in &accepted {
        if let Room::Certification(id) = *room {
            let certification = hub
                .certification_snapshot(&state.pool, &connection.scope, id, subscribed.last_id)
                .await?;
            first.push_back(message(
                "snapshot",
                json!({"room": room.to_string(), "certification": certification,
                       "last_event_id": subscribed.last_id}),
            ));
        }
    }
    first.extend(subscribed.replay.iter().map(|e| event(e)));
    let live = Live {
        first,
        connection,
        done: false,
    };
    let events = stream::unfold(live, |mut live| async move {
        if live.done {
            return None;
        }
        if let Some(e) = live.first.pop_front() {
            return Some((Ok::<_, Infallible>(e), live));
        }
        let kick: Arc<super::Kick> = live.connection.kick.clone();
        let next = tokio::select! {
            biased;
            dropped = kick.kicked() => Err(dropped),
            dropped = super::expiry(live.connection.expires) => Err(dropped),
            e = live.connection.rx.recv() => match e {
                Some(e) => Ok(e),
                None => Err(kick.kicked().await),
            },
        };
        match next {
            Ok(e) => Some((Ok(event(&e)), live)),
            Err(dropped) => {
                live.done = true;
                let m = message(
                    "error",
                    json!({"code": dropped.code, "message": dropped.message}),
                );
                Some((Ok(m), live))
            }
        }
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(hub.config.heartbeat))
        .into_response())
}
