//! The `data` of each event kind, typed: the deriver, the expiry sweep,
//! notices and rebuilds serialize these, and (feature `openapi`) the AsyncAPI
//! document of the live events takes their JSON Schemas from the same types.

use certscope_domain::RiskRating;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// `certification.status_changed`
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificationStatusChanged {
    pub certification_id: i64,
    pub name: String,
    /// Null when the certification was created.
    pub previous: Option<String>,
    pub status: Option<String>,
    /// Implemented among applicable requirements, percent.
    pub completion_pct: Option<f64>,
}

/// `requirement.status_changed`
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequirementStatusChanged {
    pub requirement_id: i64,
    /// The control's display id, e.g. `AC-2(1)`.
    pub control: String,
    pub title: String,
    pub previous: Option<String>,
    pub status: Option<String>,
    /// The certification's completion after the change, percent.
    pub certification_completion_pct: Option<f64>,
}

/// `evidence.submitted` and `evidence.reviewed`
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceStatusChanged {
    pub evidence_id: i64,
    pub requirement_id: i64,
    pub title: String,
    /// Null when submitted.
    pub previous: Option<String>,
    pub status: Option<String>,
}

/// `evidence.expired`: the evidence's validity ended.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EvidenceExpired {
    pub evidence_id: i64,
    pub requirement_id: i64,
    pub title: String,
    pub expires_on: NaiveDate,
}

/// `risk.created` and `risk.changed`: the risk before (null when created)
/// and after.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskChanged {
    pub risk_id: i64,
    pub title: String,
    pub previous: Option<RiskState>,
    pub current: Option<RiskState>,
}

/// A risk's status and ratings as events show them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskState {
    pub status: Option<String>,
    pub inherent: Option<RiskRating>,
    pub residual: Option<RiskRating>,
}

/// `notice`: an operator's message.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notice {
    /// For example `info`, `warning`.
    pub severity: String,
    pub message: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// `index.rebuilt`: the index was rebuilt from PostgreSQL.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IndexRebuilt {
    pub documents: u64,
    pub seconds: f64,
}

/// The payload as the `data` of an event.
pub fn data(payload: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(payload).unwrap_or_default()
}
