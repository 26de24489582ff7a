//! Live events against the running service: real WebSocket and SSE clients, real
//! SQL changes, the deriver and the hub as `certscope serve` runs them.
//!
//! A test that writes (so events flow), counts connections or changes the
//! service's settings starts its own service; tests of the protocol that only
//! connect, subscribe and get refused share the binary's service, where no
//! event ever flows.

mod backpressure;
mod client;
mod delivery;
mod isolation;
mod protocol;
mod resume;

use std::time::Duration;

use certscope_indexer::events as event_log;
use certscope_query_api::testing::TestApp;
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(10);

/// The first requirement of `org` whose status is not `not_status`:
/// (id, certification, status).
async fn requirement(s: &TestApp, org: i64, not_status: &str) -> (i64, i64, String) {
    sqlx::query_as(
        "SELECT id, certification_id, status FROM requirements \
         WHERE organization_id = $1 AND status <> $2 ORDER BY id LIMIT 1",
    )
    .bind(org)
    .bind(not_status)
    .fetch_one(&s.pool)
    .await
    .unwrap()
}

/// Appends an operator notice (to `org`, or to everyone); returns its id.
async fn notice(s: &TestApp, org: Option<i64>, message: &str) -> i64 {
    let ids = event_log::append(&s.pool, &[event_log::notice(org, "info", message, None)])
        .await
        .unwrap();
    ids[0]
}

fn is_event(kind: &str) -> impl Fn(&Value) -> bool + '_ {
    move |m| m["type"] == "event" && m["kind"] == kind
}

/// Waits until the server holds no more than `n` connections.
async fn connections_at_most(s: &TestApp, n: usize, what: &str) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while s.state.events.figures().1 > n {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the hub has fed events up to `id`.
async fn fed_through(s: &TestApp, id: i64, what: &str) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while s.state.events.last_id() < id {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
