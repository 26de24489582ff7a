//! Rooms a connection subscribes to, who may join them, and which events they
//! carry. Every event is checked against the caller's scope before any room:
//! nothing of another organization matches, whatever the rooms say.

use std::fmt;

use sqlx::PgPool;

use super::Event;
use crate::auth::{Role, Scope};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Room {
    Organization(i64),
    Certification(i64),
    User(i64),
    /// Operator notices and service events (index rebuilds).
    Notices,
}

/// Why a room was refused; `code` is stable for clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub room: String,
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(room: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            room: room.to_owned(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Room::Organization(id) => write!(f, "org:{id}"),
            Room::Certification(id) => write!(f, "certification:{id}"),
            Room::User(id) => write!(f, "user:{id}"),
            Room::Notices => f.write_str("notices"),
        }
    }
}

const ROOM_FORMS: &str = "org, org:<id>, certification:<id>, user, user:<id> or notices";

impl Room {
    /// Parses a room name; `org` and `user` alone mean the caller's own.
    pub fn parse(name: &str, scope: &Scope) -> Result<Room, Refusal> {
        let unknown = || {
            Refusal::new(
                name,
                "unknown_room",
                format!("unknown room {name:?}: expected {ROOM_FORMS}"),
            )
        };
        let id = |s: &str| s.parse::<i64>().ok().filter(|&n| n > 0).ok_or_else(unknown);
        match name.split_once(':') {
            None => match name {
                "org" | "organization" => Ok(Room::Organization(scope.org_id)),
                "user" => Ok(Room::User(scope.user_id)),
                "notices" => Ok(Room::Notices),
                _ => Err(unknown()),
            },
            Some(("org" | "organization", n)) => Ok(Room::Organization(id(n)?)),
            Some(("certification", n)) => Ok(Room::Certification(id(n)?)),
            Some(("user", n)) => Ok(Room::User(id(n)?)),
            Some(_) => Err(unknown()),
        }
    }

    /// Whether `scope` may join: its own organization (not for auditors), a
    /// certification of its organization it may see, itself, or the notices.
    pub async fn authorize(&self, scope: &Scope, pool: &PgPool) -> Result<(), Refusal> {
        let name = self.to_string();
        match *self {
            Room::Organization(id) if id != scope.org_id => Err(Refusal::new(
                &name,
                "forbidden",
                format!("room {name} belongs to another organization"),
            )),
            Room::Organization(_) if scope.role == Role::Auditor => Err(Refusal::new(
                &name,
                "forbidden",
                "auditors follow the rooms of their assigned certifications, not the whole organization",
            )),
            Room::Certification(id) => {
                let exists: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM certifications WHERE id = $1 AND organization_id = $2",
                )
                .bind(id)
                .bind(scope.org_id)
                .fetch_optional(pool)
                .await
                .map_err(|e| {
                    tracing::error!(error = %e, "room authorization query failed");
                    Refusal::new(&name, "unavailable", "could not check the room; try again")
                })?;
                if exists.is_none() {
                    // another organization's certification looks like a missing one
                    Err(Refusal::new(
                        &name,
                        "not_found",
                        format!("there is no certification {id} in your organization"),
                    ))
                } else if !scope.sees_certification(id) {
                    Err(Refusal::new(
                        &name,
                        "forbidden",
                        format!("certification {id} is not assigned to this auditor"),
                    ))
                } else {
                    Ok(())
                }
            }
            Room::User(id) if id != scope.user_id => Err(Refusal::new(
                &name,
                "forbidden",
                format!("room {name} is another user's"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether this room carries `event` (visibility is checked separately).
    pub fn carries(&self, event: &Event) -> bool {
        match *self {
            Room::Organization(id) => event.organization_id == Some(id),
            Room::Certification(id) => event.certifications.contains(&id),
            Room::User(id) => event.user_ids.contains(&id),
            Room::Notices => event.notice,
        }
    }
}

/// Whether `scope` may see `event` at all: global events, or its own
/// organization's; for auditors only those that concern one of their
/// certifications (a risk: through a linked one, as in search), and notices.
pub fn visible(scope: &Scope, event: &Event) -> bool {
    match event.organization_id {
        None => true,
        Some(org) if org != scope.org_id => false,
        Some(_) if scope.certifications.is_none() || event.notice => true,
        Some(_) => event
            .certifications
            .iter()
            .any(|&c| scope.sees_certification(c)),
    }
}

/// The fields of a subscribe or unsubscribe request, read the same way for
/// every protocol that carries one (WebSocket messages, socket.io events), so
/// a client is told the same thing whichever it speaks.
pub(crate) mod request {
    use serde_json::{Map, Value};

    /// Refuses a field not in `allowed`, naming it and what is allowed.
    pub(crate) fn only_fields(
        map: &Map<String, Value>,
        allowed: &[&str],
        what: &str,
    ) -> Result<(), String> {
        match map.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(field) => Err(format!(
                "unknown field `{field}` in a {what} (allowed: {})",
                allowed.join(", ")
            )),
            None => Ok(()),
        }
    }

    /// `rooms` (a list of names) and `room` (one name), as sent; a null
    /// `room` counts as absent.
    pub(crate) fn room_names(
        map: &Map<String, Value>,
    ) -> Result<(Vec<&str>, Option<&str>), String> {
        const LIST: &str = "`rooms` must be a list of room names";
        let list = match map.get("rooms") {
            None => Vec::new(),
            Some(v) => v
                .as_array()
                .ok_or(LIST)?
                .iter()
                .map(|r| r.as_str().ok_or(LIST))
                .collect::<Result<_, _>>()?,
        };
        let one = match map.get("room") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str().ok_or("`room` must be a room name")?),
        };
        Ok((list, one))
    }

    /// `last_event_id`: absent, null, or a non-negative integer.
    pub(crate) fn last_event_id(map: &Map<String, Value>) -> Result<Option<i64>, String> {
        match map.get("last_event_id") {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .filter(|&n| n >= 0)
                .map(Some)
                .ok_or_else(|| "`last_event_id` must be a non-negative integer".into()),
        }
    }
}
