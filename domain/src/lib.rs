//! Certscope's business rules, each written once.
//!
//! The indexer, search, reports, live events and the web pages all ask this crate
//! what a status means, whether an item is closed or applicable, how readiness is
//! computed, which level a risk score has, when an item is due, and whether
//! evidence covers a requirement. Where PostgreSQL must apply a rule itself (the
//! event deriver's completion, the reports' coverage aggregate), it calls one SQL
//! function from migration `0005_domain_rules.sql`, and this crate's tests prove
//! the SQL and the Rust agree on generated cases.
//!
//! The crate has no I/O and almost no dependencies, so every other crate can use
//! it without pulling in a database driver, tantivy or polars.

pub mod deadline;
pub mod evidence;
pub mod kind;
pub mod readiness;
pub mod risk;
pub mod role;
pub mod status;

pub use deadline::{Deadline, DueBucket};
pub use kind::{Entity, Kind};
pub use readiness::{Completion, pct, round1};
pub use risk::{RiskLevel, RiskRating};
pub use role::Role;
pub use status::{
    CertificationStatus, ControlStatus, EvidenceStatus, RequirementStatus, RiskStatus, Status,
    Tone, UnknownStatus,
};
