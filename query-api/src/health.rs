//! Liveness and readiness probes for orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::{AppState, PROBE_TIMEOUT};

#[derive(Debug, Serialize)]
pub struct Health {
    status: &'static str,
}

/// Alive: the process answers. Never touches dependencies.
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize)]
pub struct Readiness {
    status: &'static str,
    checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    name: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Ready: the database answers within the probe timeout.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db =
        tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool)).await;
    let check = match db {
        Ok(Ok(_)) => Check {
            name: "database",
            status: "ok",
            reason: None,
        },
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            Check {
                name: "database",
                status: "unavailable",
                reason: Some("database query failed".into()),
            }
        }
        Err(_) => Check {
            name: "database",
            status: "unavailable",
            reason: Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        },
    };
    let ok = check.status == "ok";
    let body = Readiness {
        status: if ok { "ok" } else { "unavailable" },
        checks: vec![check],
    };
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(body),
    )
}
