//! The shapes of answers that handlers build as JSON maps (search hits from
//! stored fields, details from `to_jsonb` rows, report sections with their
//! `meta`), written once as types for the API document. They are the
//! contract: the tests validate every response they receive against the
//! document, and the document closes every object (`additionalProperties:
//! false`), so a field added in a handler and not here fails a test.

use std::collections::BTreeMap;

use certscope_domain::{
    CertificationStatus, ControlStatus, EvidenceStatus, Kind, RequirementStatus, RiskLevel,
    RiskStatus,
};
use certscope_reports::model::{
    CertificationMatrix, Forecast, Heatmap, Kpi, Meta, Overdue, Posture, Summary, Trends,
};
use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{BAD_REQUEST_CODES, STATUS_CODES};

/// An error: a stable machine `code` and a message saying what was wrong.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "bad_parameter", "message": "`limit` must be between 1 and 100, not 0"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// Lowercase, says what was wrong and where; generic for 500.
    pub message: String,
}

/// Every machine code an error can carry (400s by cause; one per other status).
#[derive(Serialize)]
pub struct ErrorCode;

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut codes: Vec<&str> = BAD_REQUEST_CODES.to_vec();
        for (_, code) in STATUS_CODES {
            if !codes.contains(code) {
                codes.push(code);
            }
        }
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(codes))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// A string that has one value: the kind tag of a hit (so `oneOf` is
/// exact), the `type` of a message.
macro_rules! const_string {
    ($name:ident, $text:literal) => {
        #[derive(Debug, Clone, Copy)]
        pub struct $name;

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($text)
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$text]))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use const_string;

const_string!(ControlKind, "control");
const_string!(CertificationKind, "certification");
const_string!(RequirementKind, "requirement");
const_string!(EvidenceKind, "evidence");
const_string!(RiskKind, "risk");

/// One search hit: its kind decides which stored fields it carries.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum SearchHit {
    Control(ControlHit),
    Certification(CertificationHit),
    Requirement(RequirementHit),
    Evidence(EvidenceHit),
    Risk(RiskHit),
}

/// A catalogue control (shared by every organization).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"kind": "control", "id": 372, "title": "Access Enforcement", "snippet": "Enforce approved authorizations for logical <b>access</b> to information and system resources…", "score": 7.2, "status": "active", "control": "AC-3", "control_title": "Access Enforcement", "family": "ac", "family_title": "Access Control", "framework": "nist-800-53-r5-privacy", "framework_name": "NIST Special Publication 800-53 Revision 5.1.1 PRIVACY BASELINE", "updated_at": "2026-11-30T15:12:16Z"}))]
pub struct ControlHit {
    pub kind: ControlKind,
    pub id: u64,
    pub title: String,
    /// HTML: the best fragment with matches in `<b>`, the rest escaped.
    pub snippet: String,
    /// BM25 score when sorted by relevance, else null.
    pub score: Option<f64>,
    pub status: ControlStatus,
    pub control: String,
    pub control_title: String,
    pub family: String,
    pub family_title: String,
    pub framework: String,
    pub framework_name: String,
    /// RFC 3339 time (a date when it falls on midnight UTC).
    pub updated_at: String,
    /// With `collapse=control`: the other matching documents of this control.
    pub collapsed: Option<CollapsedControl>,
}

/// What `collapse=control` folded into a control or requirement hit.
#[derive(Serialize, ToSchema)]
pub struct CollapsedControl {
    /// The control's id, as the catalogue displays it.
    pub control: String,
    /// Matching documents this hit stands for, itself included.
    pub documents: u64,
    /// The others, best first (at most 50): the requirements of each
    /// certification in scope of the control, the control in another catalogue.
    pub related: Vec<RelatedDocument>,
}

#[derive(Serialize, ToSchema)]
pub struct RelatedDocument {
    pub kind: Kind,
    pub id: u64,
    pub status: Option<String>,
    pub certification_id: Option<u64>,
    /// The certification's name.
    pub certification: Option<String>,
    pub framework: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"kind": "certification", "id": 1, "title": "NIST 800-53 High: Patient Portal 2026", "snippet": "Northwind Health certification programme for the Patient Portal authorization boundary.", "score": null, "status": "in_progress", "certification_id": 1, "certification": "NIST 800-53 High: Patient Portal 2026", "framework": "nist-800-53-r5-high", "framework_name": "NIST Special Publication 800-53 Revision 5.1.1 HIGH IMPACT BASELINE", "owner": "Aisha Okafor", "owner_id": 7, "target_date": "2027-04-09", "due_date": "2027-04-09", "updated_at": "2026-11-30T15:12:16Z"}))]
pub struct CertificationHit {
    pub kind: CertificationKind,
    pub id: u64,
    pub title: String,
    pub snippet: String,
    pub score: Option<f64>,
    pub status: CertificationStatus,
    pub certification_id: u64,
    pub certification: String,
    pub framework: String,
    pub framework_name: String,
    pub owner: Option<String>,
    pub owner_id: Option<u64>,
    pub target_date: NaiveDate,
    pub due_date: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct RequirementHit {
    pub kind: RequirementKind,
    pub id: u64,
    pub title: String,
    pub snippet: String,
    pub score: Option<f64>,
    pub status: RequirementStatus,
    pub control: String,
    pub control_title: String,
    pub family: String,
    pub family_title: String,
    pub framework: String,
    pub framework_name: String,
    pub certification_id: u64,
    pub certification: String,
    pub owner: Option<String>,
    pub owner_id: Option<u64>,
    pub due_date: Option<NaiveDate>,
    pub updated_at: String,
    /// With `collapse=control`: the other matching documents of this control.
    pub collapsed: Option<CollapsedControl>,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"kind": "evidence", "id": 2, "title": "Patient Portal audit log extract 2026-07-14", "snippet": "Audit log extract from Patient Portal exported through Okta on 2026-07-14: 136446 events over 24 hours…", "score": null, "status": "accepted", "control": "AC-2(1)", "control_title": "Automated System Account Management", "family": "ac", "family_title": "Access Control", "framework": "nist-800-53-r5-high", "framework_name": "NIST Special Publication 800-53 Revision 5.1.1 HIGH IMPACT BASELINE", "certification_id": 1, "certification": "NIST 800-53 High: Patient Portal 2026", "requirement_id": 3, "owner": "Amelia Okafor", "owner_id": 1, "media_type": "text/plain", "file_name": "audit-log-patient-portal-2026-07-14.log", "sha256": "f6362a0cd67551092cfa4079284c4ecc1ab3b3269c805f43b13ea57f361a2d02", "collected_on": "2026-07-14", "expires_on": "2027-07-14", "due_date": "2027-07-14", "updated_at": "2026-11-30T15:12:16Z"}))]
pub struct EvidenceHit {
    pub kind: EvidenceKind,
    pub id: u64,
    pub title: String,
    pub snippet: String,
    pub score: Option<f64>,
    pub status: EvidenceStatus,
    pub control: String,
    pub control_title: String,
    pub family: String,
    pub family_title: String,
    pub framework: String,
    pub framework_name: String,
    pub certification_id: u64,
    pub certification: String,
    pub requirement_id: u64,
    /// The submitter.
    pub owner: Option<String>,
    pub owner_id: Option<u64>,
    pub media_type: String,
    pub file_name: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    pub collected_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    pub due_date: Option<NaiveDate>,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"kind": "risk", "id": 1, "title": "Ransomware encrypts production databases (Patient Portal)", "snippet": "Risk that ransomware encrypts production databases affects Patient Portal at Northwind Health.", "score": null, "status": "accepted", "category": "security", "treatment": "accept", "owner": "Liam Haddad", "owner_id": 8, "inherent_score": 1, "residual_score": 1, "risk_level": "low", "certification_id": [1], "control": ["CM-3(6)", "SA-3"], "due_date": "2027-01-03", "updated_at": "2026-11-30T15:12:16Z"}))]
pub struct RiskHit {
    pub kind: RiskKind,
    pub id: u64,
    pub title: String,
    pub snippet: String,
    pub score: Option<f64>,
    pub status: RiskStatus,
    pub category: String,
    pub treatment: String,
    pub owner: Option<String>,
    pub owner_id: Option<u64>,
    #[schema(minimum = 1, maximum = 25)]
    pub inherent_score: u8,
    #[schema(minimum = 1, maximum = 25)]
    pub residual_score: u8,
    /// The residual score's level.
    pub risk_level: RiskLevel,
    /// The certifications of the requirements the risk is linked to (an
    /// auditor sees only its own).
    pub certification_id: Option<Vec<u64>>,
    /// The controls of the linked requirements: one id, or a list when there
    /// are several (absent for an auditor who does not see them all).
    pub control: Option<OneOrMany>,
    pub due_date: Option<NaiveDate>,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Counts of one facet's values (each facet counted without its own selection).
#[derive(Serialize, ToSchema)]
pub struct Facets {
    pub kind: Option<Vec<crate::search::FacetValue>>,
    pub framework: Option<Vec<crate::search::FacetValue>>,
    pub family: Option<Vec<crate::search::FacetValue>>,
    pub status: Option<Vec<crate::search::FacetValue>>,
    pub owner: Option<Vec<crate::search::FacetValue>>,
    pub certification: Option<Vec<crate::search::FacetValue>>,
    pub risk_level: Option<Vec<crate::search::FacetValue>>,
    pub due: Option<Vec<crate::search::FacetValue>>,
}

/// `GET /v1/suggest`
#[derive(Serialize, ToSchema)]
pub struct Suggestions {
    pub suggestions: Vec<Suggestion>,
    /// The index position the answer reflects.
    pub position: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"kind": "requirement", "id": 3, "title": "AC-2(1) Automated System Account Management", "control": "AC-2(1)"}))]
pub struct Suggestion {
    pub kind: Kind,
    pub id: Option<u64>,
    pub title: String,
    pub control: Option<String>,
}

/// A bounded relation of a detail (`include=`): at most 50 items.
macro_rules! page {
    ($page:ident, $item:ty) => {
        #[derive(Serialize, ToSchema)]
        pub struct $page {
            pub items: Vec<$item>,
            /// Related records in all, beyond the page too.
            pub total: i64,
            /// Whether `items` stops short of `total`.
            pub truncated: bool,
        }
    };
}
page!(HistoryPage, HistoryEntry);
page!(CertificationRequirementsPage, CertificationRequirement);
page!(CertificationEvidencePage, CertificationEvidence);
page!(LinkedRisksPage, LinkedRisk);
page!(RequirementEvidencePage, RequirementEvidence);
page!(RiskRequirementsPage, RiskRequirement);

/// One status change (`include=history`), newest first.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"from_status": "pending", "to_status": "accepted", "changed_at": "2026-07-16T09:30:00+00:00", "changed_by": 1, "changed_by_name": "Amelia Okafor"}))]
pub struct HistoryEntry {
    /// Null for the row's first status.
    pub from_status: Option<String>,
    pub to_status: String,
    #[schema(format = DateTime)]
    pub changed_at: String,
    pub changed_by: Option<i64>,
    pub changed_by_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CertificationRequirement {
    pub id: i64,
    pub control: String,
    pub title: String,
    pub status: RequirementStatus,
    pub due_date: Option<NaiveDate>,
    pub owner: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CertificationEvidence {
    pub id: i64,
    pub title: String,
    pub status: EvidenceStatus,
    pub collected_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    pub requirement_id: i64,
    pub control: String,
}

#[derive(Serialize, ToSchema)]
pub struct LinkedRisk {
    pub id: i64,
    pub title: String,
    pub status: RiskStatus,
    pub treatment: String,
    #[schema(minimum = 1, maximum = 25)]
    pub inherent_score: i64,
    #[schema(minimum = 1, maximum = 25)]
    pub residual_score: i64,
}

#[derive(Serialize, ToSchema)]
pub struct RequirementEvidence {
    pub id: i64,
    pub title: String,
    pub status: EvidenceStatus,
    pub file_name: String,
    pub collected_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct RiskRequirement {
    pub id: i64,
    pub control: String,
    pub title: String,
    pub status: RequirementStatus,
    pub certification_id: i64,
}

/// `GET /v1/certifications/{id}` (relations with `include=`).
#[derive(Serialize, ToSchema)]
pub struct CertificationDetail {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub status: CertificationStatus,
    pub started_on: NaiveDate,
    pub target_date: NaiveDate,
    pub certified_on: Option<NaiveDate>,
    pub expires_on: Option<NaiveDate>,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub framework: String,
    pub framework_name: String,
    pub version: i64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// How many requirements are in scope; with `include=requirements`, the
    /// requirements themselves.
    pub requirements: CountOrRequirements,
    pub requirements_by_status: BTreeMap<RequirementStatus, i64>,
    /// Implemented among applicable requirements, percent.
    #[schema(minimum = 0, maximum = 100)]
    pub completion_pct: Option<f64>,
    pub evidence: Option<CertificationEvidencePage>,
    pub risks: Option<LinkedRisksPage>,
    pub history: Option<HistoryPage>,
}

#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum CountOrRequirements {
    Count(i64),
    Requirements(CertificationRequirementsPage),
}

/// `GET /v1/requirements/{id}` (relations with `include=`).
#[derive(Serialize, ToSchema)]
pub struct RequirementDetail {
    pub id: i64,
    pub status: RequirementStatus,
    pub due_date: Option<NaiveDate>,
    pub notes: String,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub version: i64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub certification_id: i64,
    pub certification: String,
    pub control: String,
    pub control_key: String,
    pub control_title: String,
    pub statement: String,
    pub guidance: String,
    pub family: String,
    pub family_title: String,
    pub framework: String,
    pub framework_name: String,
    pub evidence: Option<RequirementEvidencePage>,
    pub risks: Option<LinkedRisksPage>,
    pub history: Option<HistoryPage>,
}

/// `GET /v1/evidence/{id}` (`include=history`).
#[derive(Serialize, ToSchema)]
pub struct EvidenceDetail {
    pub id: i64,
    pub title: String,
    pub description: String,
    /// Text extracted from the file.
    pub content: String,
    pub file_name: String,
    pub media_type: String,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    pub status: EvidenceStatus,
    pub collected_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    pub submitted_by: Option<i64>,
    pub submitter: Option<String>,
    pub version: i64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub requirement_id: i64,
    pub certification_id: i64,
    pub certification: String,
    pub control: String,
    pub control_title: String,
    pub framework: String,
    pub history: Option<HistoryPage>,
}

/// `GET /v1/risks/{id}` (relations with `include=`).
#[derive(Serialize, ToSchema)]
pub struct RiskDetail {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    pub status: RiskStatus,
    pub treatment: String,
    pub due_date: Option<NaiveDate>,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    #[schema(minimum = 1, maximum = 5)]
    pub inherent_likelihood: i64,
    #[schema(minimum = 1, maximum = 5)]
    pub inherent_impact: i64,
    #[schema(minimum = 1, maximum = 5)]
    pub residual_likelihood: i64,
    #[schema(minimum = 1, maximum = 5)]
    pub residual_impact: i64,
    #[schema(minimum = 1, maximum = 25)]
    pub inherent_score: i64,
    #[schema(minimum = 1, maximum = 25)]
    pub residual_score: i64,
    pub version: i64,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Certifications of the linked requirements (an auditor sees only its own).
    pub certification_ids: Vec<i64>,
    pub requirements: Option<RiskRequirementsPage>,
    pub history: Option<HistoryPage>,
}

/// One report section as JSON: what it describes (`meta`) and the section.
macro_rules! section {
    ($name:ident, $field:ident, $ty:ty) => {
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            pub meta: Meta,
            pub $field: $ty,
        }
    };
}
section!(SummarySection, summary, Summary);
section!(PostureSection, posture, Posture);
section!(HeatmapSection, heatmap, Heatmap);
section!(MatrixSection, matrix, Vec<CertificationMatrix>);
section!(TrendsSection, trends, Trends);
section!(ForecastSection, forecast, Forecast);
section!(OverdueSection, overdue, Overdue);
section!(KpisSection, kpis, Vec<Kpi>);

/// A PDF file (binary).
pub struct PdfDocument;

impl utoipa::PartialSchema for PdfDocument {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                utoipa::openapi::schema::KnownFormat::Binary,
            )))
            .content_media_type("application/pdf")
            .into()
    }
}

impl ToSchema for PdfDocument {}

/// One Server-Sent Event of `/v1/events/stream` as a client reads it: `event`
/// names the protocol message (`subscribed`, `snapshot`, `resync`, `error`) or
/// the compliance event's kind, `data` is its JSON (every one is described in
/// `/asyncapi.json`), and `id`, on events only, is the event id that
/// `Last-Event-ID` resumes after.
#[derive(Serialize, ToSchema)]
pub struct SseEvent {
    pub event: String,
    /// JSON text.
    pub data: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}
