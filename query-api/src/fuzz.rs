//! Fuzz targets: every decoder of untrusted input, driven from arbitrary bytes
//! the way its route drives it, with the properties each must keep. A panic
//! here is a finding.
//!
//! Two harnesses call them: `fuzz/` (cargo-fuzz, coverage-guided on nightly,
//! `cargo +nightly fuzz run <target>`), and `query-api/tests/fuzz.rs` on stable,
//! which replays the committed corpus and mutates it for a bounded time in CI.
//! The targets are plain functions so that both run exactly the same code.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::auth::{Role, Scope};
use crate::events::rooms::Room;
use crate::search::cursor::Cursor;
use crate::search::params::{self, MAX_FACET_SIZE, MAX_LIMIT, MAX_QUERY_CHARS, Route};
use crate::search::parser::{self, MAX_CLAUSES, MAX_TREE_DEPTH};
use certscope_domain::Kind;

/// A fuzz target: takes any bytes, panics only on a broken property.
pub type Target = fn(&[u8]);

/// Every target by name (the names of `fuzz/fuzz_targets/*.rs` and of the
/// corpus directories under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("search_query", search_query),
    ("search_params", search_params),
    ("cursor", cursor),
    ("live_message", live_message),
    ("report_params", report_params),
    ("oscal_catalog", oscal_catalog),
];

fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// The `q` language: parses or says why, within the depth and clause bounds.
pub fn search_query(data: &[u8]) {
    let q = text(data);
    match parser::parse(&q) {
        Ok(Some(node)) => {
            assert!(node.depth() <= MAX_TREE_DEPTH, "too deep: {q:?}");
            assert!(node.leaves() <= MAX_CLAUSES, "too many clauses: {q:?}");
        }
        Ok(None) => {}
        Err(e) => assert!(!e.message.is_empty(), "an error without a message: {q:?}"),
    }
}

/// The search and listing query strings: filters, facets, dates, sorts, limits,
/// cursors, positions. Accepted requests are within every bound; refusals are
/// 4xx with a message.
pub fn search_params(data: &[u8]) {
    let raw = text(data).into_owned();
    let pairs = match crate::routes::pairs(Some(raw)) {
        Ok(p) => p,
        Err(e) => return refusal(&e),
    };
    for route in [
        Route::Search,
        Route::Listing(Kind::Certification),
        Route::Listing(Kind::Requirement),
    ] {
        match params::parse(&pairs, route) {
            Ok(p) => {
                assert!(p.q.chars().count() <= MAX_QUERY_CHARS, "{pairs:?}");
                assert!((1..=MAX_LIMIT).contains(&p.limit), "{pairs:?}");
                assert!(p.facet_size <= MAX_FACET_SIZE, "{pairs:?}");
                if let Some(node) = &p.node {
                    assert!(node.depth() <= MAX_TREE_DEPTH, "{pairs:?}");
                }
            }
            Err(e) => refusal(&e),
        }
    }
}

fn refusal(e: &crate::error::ApiError) {
    assert!(e.status().is_client_error(), "not a 4xx: {e:?}");
    assert!(!e.public_message().is_empty(), "a refusal without a reason");
}

/// Cursors come back from clients: decoded or refused, and a decoded cursor
/// encodes to one that decodes to itself.
pub fn cursor(data: &[u8]) {
    match Cursor::decode(&text(data)) {
        Ok(c) => {
            let again = Cursor::decode(&c.encode()).expect("an encoded cursor decodes");
            assert_eq!(again, c);
        }
        Err(e) => refusal(&e),
    }
}

/// Live-event messages (WebSocket and socket.io) and the room names in them:
/// every room a message names either parses or is refused, and a bare `org` or
/// `user` is always the caller's own.
pub fn live_message(data: &[u8]) {
    let scope = Scope {
        user_id: 7,
        org_id: 3,
        role: Role::Auditor,
        certifications: Some(BTreeSet::from([11])),
    };
    let message = text(data);
    let mut names = Vec::new();
    if let Ok(crate::events::ws::Request::Subscribe { rooms, .. }) =
        crate::events::ws::Request::parse(&message)
    {
        names.extend(rooms);
    }
    // socket.io carries the payload as JSON, or a bare room name
    let value = serde_json::from_str::<Value>(&message)
        .unwrap_or_else(|_| Value::String(message.clone().into_owned()));
    for kind in ["subscribe", "unsubscribe"] {
        if let Ok(r) = crate::events::socketio::RoomRequest::parse(Some(&value), kind) {
            names.extend(r.names);
        }
    }
    for name in names {
        match Room::parse(&name, &scope) {
            Ok(Room::Organization(id)) if name == "org" || name == "organization" => {
                assert_eq!(id, scope.org_id, "{name:?}")
            }
            Ok(Room::User(id)) if name == "user" => assert_eq!(id, scope.user_id),
            Ok(Room::Organization(id) | Room::Certification(id) | Room::User(id)) => {
                assert!(id > 0, "{name:?} names room id {id}")
            }
            Ok(Room::Notices) => {}
            Err(r) => assert!(!r.message.is_empty()),
        }
    }
}

/// The report and board-pack query strings: accepted or refused with a 4xx.
pub fn report_params(data: &[u8]) {
    let raw = text(data).into_owned();
    for pdf in [false, true] {
        if let Err(e) = crate::metrics_routes::parse(Some(raw.clone()), pdf) {
            refusal(&e);
        }
    }
}

/// The OSCAL catalog importer (operators import catalogs from files): parses
/// or says why; a parsed catalog has controls, each with an id, and every
/// enhancement's parent is a control of the same catalog.
pub fn oscal_catalog(data: &[u8]) {
    let Ok(catalog) = certscope_store::oscal::parse_catalog(data) else {
        return;
    };
    assert!(!catalog.controls.is_empty(), "a catalog without controls");
    assert!(catalog.family_count() <= catalog.controls.len());
    let keys: BTreeSet<&str> = catalog
        .controls
        .iter()
        .map(|c| c.control_key.as_str())
        .collect();
    for control in &catalog.controls {
        assert!(
            !control.control_key.trim().is_empty(),
            "a control without an id"
        );
        if let Some(parent) = &control.parent_key {
            assert!(
                keys.contains(parent.as_str()),
                "parent {parent:?} is not in the catalog"
            );
        }
    }
}
