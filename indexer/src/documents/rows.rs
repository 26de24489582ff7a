//! The row type of each kind: its SQL, and how it renders into a document.

use certscope_domain::deadline::Dates;
use certscope_domain::{
    CertificationStatus, ControlStatus, EvidenceStatus, Kind, RequirementStatus, RiskRating,
    RiskStatus,
};
use chrono::{DateTime, NaiveDate, Utc};

use super::builder::{ControlIdentity, DocBuilder};
use super::{DocumentRow, Rendered, signature};
use crate::schema::Fields;

const CONTROL_SQL: &str = "SELECT c.id, c.version, c.display_id, c.control_key, c.title, c.statement, c.guidance, \
    c.family_key, c.family_title, c.withdrawn, c.updated_at, f.slug AS framework, f.name AS framework_name, \
    p.display_id AS parent_display_id \
    FROM controls c JOIN frameworks f ON f.id = c.framework_id LEFT JOIN controls p ON p.id = c.parent_id";

const CERTIFICATION_SQL: &str = "SELECT x.id, x.organization_id, x.version, x.name, x.description, x.status, \
    x.owner_id, u.display_name AS owner, x.started_on, x.target_date, x.certified_on, x.expires_on, x.updated_at, \
    f.slug AS framework, f.name AS framework_name \
    FROM certifications x JOIN frameworks f ON f.id = x.framework_id LEFT JOIN users u ON u.id = x.owner_id";

const REQUIREMENT_SQL: &str = "SELECT r.id, r.organization_id, r.version, r.status, r.owner_id, \
    u.display_name AS owner, r.due_date, r.notes, r.updated_at, r.certification_id, x.name AS certification, \
    c.display_id, c.control_key, c.title AS control_title, c.statement, c.family_key, c.family_title, \
    f.slug AS framework, f.name AS framework_name \
    FROM requirements r JOIN certifications x ON x.id = r.certification_id JOIN controls c ON c.id = r.control_id \
    JOIN frameworks f ON f.id = c.framework_id LEFT JOIN users u ON u.id = r.owner_id";

const EVIDENCE_SQL: &str = "SELECT e.id, e.organization_id, e.version, e.title, e.description, e.content, \
    e.file_name, e.media_type, e.sha256, e.status, e.collected_on, e.expires_on, e.submitted_by, \
    u.display_name AS submitter, e.updated_at, e.requirement_id, r.certification_id, x.name AS certification, \
    c.display_id, c.control_key, c.title AS control_title, c.family_key, c.family_title, \
    f.slug AS framework, f.name AS framework_name \
    FROM evidence e JOIN requirements r ON r.id = e.requirement_id JOIN certifications x ON x.id = r.certification_id \
    JOIN controls c ON c.id = r.control_id JOIN frameworks f ON f.id = c.framework_id \
    LEFT JOIN users u ON u.id = e.submitted_by";

const RISK_SQL: &str = "SELECT k.id, k.organization_id, k.version, k.title, k.description, k.category, k.owner_id, \
    u.display_name AS owner, k.inherent_likelihood, k.inherent_impact, k.residual_likelihood, k.residual_impact, \
    k.treatment, k.status, k.due_date, k.updated_at, \
    COALESCE(ARRAY(SELECT DISTINCT r.certification_id FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id \
                   WHERE rr.risk_id = k.id ORDER BY 1), '{}') AS certification_ids, \
    COALESCE(ARRAY(SELECT DISTINCT c.display_id FROM risk_requirements rr JOIN requirements r ON r.id = rr.requirement_id \
                   JOIN controls c ON c.id = r.control_id WHERE rr.risk_id = k.id ORDER BY 1), '{}') AS controls \
    FROM risks k LEFT JOIN users u ON u.id = k.owner_id";

#[derive(Debug, sqlx::FromRow)]
pub struct ControlRow {
    pub id: i64,
    pub version: i64,
    pub display_id: String,
    pub control_key: String,
    pub title: String,
    pub statement: String,
    pub guidance: String,
    pub family_key: String,
    pub family_title: String,
    pub withdrawn: bool,
    pub updated_at: DateTime<Utc>,
    pub framework: String,
    pub framework_name: String,
    pub parent_display_id: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
pub struct CertificationRow {
    pub id: i64,
    pub organization_id: i64,
    pub version: i64,
    pub name: String,
    pub description: String,
    #[sqlx(try_from = "String")]
    pub status: CertificationStatus,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub started_on: NaiveDate,
    pub target_date: NaiveDate,
    pub certified_on: Option<NaiveDate>,
    pub expires_on: Option<NaiveDate>,
    pub updated_at: DateTime<Utc>,
    pub framework: String,
    pub framework_name: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct RequirementRow {
    pub id: i64,
    pub organization_id: i64,
    pub version: i64,
    #[sqlx(try_from = "String")]
    pub status: RequirementStatus,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub due_date: Option<NaiveDate>,
    pub notes: String,
    pub updated_at: DateTime<Utc>,
    pub certification_id: i64,
    pub certification: String,
    pub display_id: String,
    pub control_key: String,
    pub control_title: String,
    pub statement: String,
    pub family_key: String,
    pub family_title: String,
    pub framework: String,
    pub framework_name: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct EvidenceRow {
    pub id: i64,
    pub organization_id: i64,
    pub version: i64,
    pub title: String,
    pub description: String,
    pub content: String,
    pub file_name: String,
    pub media_type: String,
    pub sha256: String,
    #[sqlx(try_from = "String")]
    pub status: EvidenceStatus,
    pub collected_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    pub submitted_by: Option<i64>,
    pub submitter: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub requirement_id: i64,
    pub certification_id: i64,
    pub certification: String,
    pub display_id: String,
    pub control_key: String,
    pub control_title: String,
    pub family_key: String,
    pub family_title: String,
    pub framework: String,
    pub framework_name: String,
}

#[derive(Debug, sqlx::FromRow)]
pub struct RiskRow {
    pub id: i64,
    pub organization_id: i64,
    pub version: i64,
    pub title: String,
    pub description: String,
    pub category: String,
    pub owner_id: Option<i64>,
    pub owner: Option<String>,
    pub inherent_likelihood: i16,
    pub inherent_impact: i16,
    pub residual_likelihood: i16,
    pub residual_impact: i16,
    pub treatment: String,
    #[sqlx(try_from = "String")]
    pub status: RiskStatus,
    pub due_date: Option<NaiveDate>,
    pub updated_at: DateTime<Utc>,
    pub certification_ids: Vec<i64>,
    pub controls: Vec<String>,
}

impl ControlRow {
    fn identity(&self) -> ControlIdentity<'_> {
        ControlIdentity {
            display_id: &self.display_id,
            control_key: &self.control_key,
            title: &self.title,
            family_key: &self.family_key,
            family_title: &self.family_title,
            framework: &self.framework,
            framework_name: &self.framework_name,
        }
    }
}

impl DocumentRow for ControlRow {
    const KIND: Kind = Kind::Control;
    const SQL: &'static str = CONTROL_SQL;
    const ID: &'static str = "c.id";

    fn render(&self, f: &Fields) -> Rendered {
        let control = self.identity();
        let sig = signature(&control.signature_parts());
        let mut b = DocBuilder::new(f, Self::KIND, self.id, 0, self.version, sig);
        let status = if self.withdrawn {
            ControlStatus::Withdrawn
        } else {
            ControlStatus::Active
        };
        b.control(&control)
            .text(f.title, &self.title)
            .text(f.body, &self.statement)
            .text(f.detail, &self.guidance)
            .status(status, Dates::default())
            .updated_at(self.updated_at);
        if let Some(parent) = &self.parent_display_id {
            b.text(f.context, parent);
        }
        Rendered {
            kind: Self::KIND,
            id: self.id,
            doc: b.finish(),
            embed_sig: sig,
        }
    }
}

impl DocumentRow for CertificationRow {
    const KIND: Kind = Kind::Certification;
    const SQL: &'static str = CERTIFICATION_SQL;
    const ID: &'static str = "x.id";

    fn render(&self, f: &Fields) -> Rendered {
        let sig = signature(&[&self.name, &self.framework, &self.framework_name]);
        let mut b = DocBuilder::new(
            f,
            Self::KIND,
            self.id,
            self.organization_id,
            self.version,
            sig,
        );
        b.text(f.title, &self.name)
            .text(f.body, &self.description)
            .status(
                self.status,
                Dates {
                    target_date: Some(self.target_date),
                    expires_on: self.expires_on,
                    ..Dates::default()
                },
            )
            .text(f.certification, &self.name)
            .u64(f.certification_id, self.id as u64)
            .text(f.framework, &self.framework)
            .text(f.framework_name, &self.framework_name)
            .text(f.context, &self.framework_name)
            .owner(self.owner_id, self.owner.as_deref())
            .date(f.target_date, Some(self.target_date))
            .date(f.due_date, Some(self.target_date))
            .date(f.expires_on, self.expires_on)
            .updated_at(self.updated_at);
        Rendered {
            kind: Self::KIND,
            id: self.id,
            doc: b.finish(),
            embed_sig: sig,
        }
    }
}

impl RequirementRow {
    fn identity(&self) -> ControlIdentity<'_> {
        ControlIdentity {
            display_id: &self.display_id,
            control_key: &self.control_key,
            title: &self.control_title,
            family_key: &self.family_key,
            family_title: &self.family_title,
            framework: &self.framework,
            framework_name: &self.framework_name,
        }
    }
}

impl DocumentRow for RequirementRow {
    const KIND: Kind = Kind::Requirement;
    const SQL: &'static str = REQUIREMENT_SQL;
    const ID: &'static str = "r.id";

    fn render(&self, f: &Fields) -> Rendered {
        let control = self.identity();
        let cert = self.certification_id.to_string();
        let mut parts = vec![cert.as_str(), self.certification.as_str()];
        parts.extend(control.signature_parts());
        let sig = signature(&parts);
        let mut b = DocBuilder::new(
            f,
            Self::KIND,
            self.id,
            self.organization_id,
            self.version,
            sig,
        );
        b.control(&control)
            .text(
                f.title,
                &format!("{} {}", self.display_id, self.control_title),
            )
            .text(f.body, &self.statement)
            .text(f.detail, &self.notes)
            .status(
                self.status,
                Dates {
                    due_date: self.due_date,
                    ..Dates::default()
                },
            )
            .text(f.certification, &self.certification)
            .text(f.context, &self.certification)
            .u64(f.certification_id, self.certification_id as u64)
            .owner(self.owner_id, self.owner.as_deref())
            .date(f.due_date, self.due_date)
            .updated_at(self.updated_at);
        Rendered {
            kind: Self::KIND,
            id: self.id,
            doc: b.finish(),
            embed_sig: sig,
        }
    }
}

impl DocumentRow for EvidenceRow {
    const KIND: Kind = Kind::Evidence;
    const SQL: &'static str = EVIDENCE_SQL;
    const ID: &'static str = "e.id";

    fn render(&self, f: &Fields) -> Rendered {
        let control = ControlIdentity {
            display_id: &self.display_id,
            control_key: &self.control_key,
            title: &self.control_title,
            family_key: &self.family_key,
            family_title: &self.family_title,
            framework: &self.framework,
            framework_name: &self.framework_name,
        };
        let mut b = DocBuilder::new(
            f,
            Self::KIND,
            self.id,
            self.organization_id,
            self.version,
            0,
        );
        b.control(&control)
            .text(f.title, &self.title)
            .text(f.body, &self.content)
            .text(f.detail, &self.description)
            .status(
                self.status,
                Dates {
                    expires_on: self.expires_on,
                    ..Dates::default()
                },
            )
            .text(f.certification, &self.certification)
            .text(f.context, &self.certification)
            .text(f.context, &self.control_title)
            .u64(f.certification_id, self.certification_id as u64)
            .u64(f.requirement_id, self.requirement_id as u64)
            .owner(self.submitted_by, self.submitter.as_deref())
            .text(f.media_type, &self.media_type)
            .text(f.file_name, &self.file_name)
            .text(f.sha256, &self.sha256)
            .ident(&self.file_name)
            .date(f.collected_on, Some(self.collected_on))
            .date(f.expires_on, self.expires_on)
            .date(f.due_date, self.expires_on)
            .updated_at(self.updated_at);
        Rendered {
            kind: Self::KIND,
            id: self.id,
            doc: b.finish(),
            embed_sig: 0,
        }
    }
}

impl DocumentRow for RiskRow {
    const KIND: Kind = Kind::Risk;
    const SQL: &'static str = RISK_SQL;
    const ID: &'static str = "k.id";

    fn render(&self, f: &Fields) -> Rendered {
        let inherent =
            RiskRating::new(self.inherent_likelihood.into(), self.inherent_impact.into());
        let residual =
            RiskRating::new(self.residual_likelihood.into(), self.residual_impact.into());
        let mut b = DocBuilder::new(
            f,
            Self::KIND,
            self.id,
            self.organization_id,
            self.version,
            0,
        );
        b.text(f.title, &self.title)
            .text(f.body, &self.description)
            .status(
                self.status,
                Dates {
                    due_date: self.due_date,
                    ..Dates::default()
                },
            )
            .text(f.category, &self.category)
            .text(f.treatment, &self.treatment)
            .owner(self.owner_id, self.owner.as_deref())
            .u64(f.inherent_likelihood, inherent.likelihood.into())
            .u64(f.inherent_impact, inherent.impact.into())
            .u64(f.residual_likelihood, residual.likelihood.into())
            .u64(f.residual_impact, residual.impact.into())
            .u64(f.inherent_score, inherent.score.into())
            .u64(f.residual_score, residual.score.into())
            .text(f.risk_level, residual.level.as_str())
            .date(f.due_date, self.due_date)
            .updated_at(self.updated_at);
        for cert in &self.certification_ids {
            b.u64(f.certification_id, *cert as u64);
        }
        for control in &self.controls {
            b.ident(control);
            b.text(f.control, control);
        }
        Rendered {
            kind: Self::KIND,
            id: self.id,
            doc: b.finish(),
            embed_sig: 0,
        }
    }
}
