//! Liveness and readiness probes for orchestrators.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

use crate::{AppState, PROBE_TIMEOUT};

/// Behind by more than this, the index is degraded (still serving).
const DEGRADED_BEHIND_MS: u64 = 5_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Alive: the process answers. Never touches dependencies.
#[utoipa::path(get, path = crate::paths::HEALTHZ, tag = "operations",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    status: &'static str,
    checks: Vec<Check>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Check {
    name: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<String>,
}

fn check(name: &'static str, status: &'static str, reason: Option<String>) -> Check {
    Check {
        name,
        status,
        reason,
        position: None,
    }
}

/// Ready: the database answers and the index is open. A lagging index, or one
/// the indexer cannot write right now, is "degraded" (200, still serving from
/// its last commit); no index or no database is "unavailable" (503).
#[utoipa::path(get, path = crate::paths::READYZ, tag = "operations",
    responses((status = 200, description = "Ready (`ok`) or lagging (`degraded`)", body = Readiness),
        (status = 503, description = "Not ready (`unavailable`)", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db =
        tokio::time::timeout(PROBE_TIMEOUT, sqlx::query("SELECT 1").execute(&state.pool)).await;
    let database = match db {
        Ok(Ok(_)) => check("database", "ok", None),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database check failed");
            check(
                "database",
                "unavailable",
                Some("database query failed".into()),
            )
        }
        Err(_) => check(
            "database",
            "unavailable",
            Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
        ),
    };
    let view = state.views.borrow().clone();
    let mut index = match &view {
        None => check(
            "index",
            "unavailable",
            Some("index is being opened or built".into()),
        ),
        Some(view) => {
            let mut c = check("index", "ok", None);
            c.position = Some(view.position.snapshot.to_string());
            c
        }
    };
    if let (Some(metrics), Some(_)) = (&state.indexer, &view) {
        let behind = metrics.behind_millis.load(Ordering::Relaxed);
        if behind > DEGRADED_BEHIND_MS {
            index.status = "degraded";
            index.reason = Some(format!("index is {} s behind PostgreSQL", behind / 1000));
        }
    }
    // a fault the indexer is recovering from (a full disk, a directory deleted
    // under it) says why; with a view open, searches still answer from it
    if let Some(problem) = state.indexer.as_ref().and_then(|m| m.problem()) {
        if view.is_some() {
            index.status = "degraded";
        }
        index.reason = Some(problem);
    }
    let mut checks = vec![database, index];
    // an identity provider whose discovery or keys cannot be fetched degrades
    // sign-in (cached keys keep working) but never takes the API down
    for p in state.api.providers.iter() {
        let name = "identity_provider";
        checks.push(match p.keys.problem() {
            None => check(name, "ok", Some(p.config.name.clone())),
            Some((why, cached)) => check(
                name,
                "degraded",
                Some(format!(
                    "{}: {why}{}",
                    p.config.name,
                    if cached {
                        "; cached keys still verify tokens"
                    } else {
                        "; its tokens are refused until its keys can be fetched"
                    }
                )),
            ),
        });
    }
    let status = if checks.iter().any(|c| c.status == "unavailable") {
        "unavailable"
    } else if checks.iter().any(|c| c.status == "degraded") {
        "degraded"
    } else {
        "ok"
    };
    let code = if status == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(Readiness { status, checks }))
}
