//! Rows of PostgreSQL rendered into index documents. Each kind has one SQL query
//! that joins everything its document embeds (control, family, framework,
//! certification, owner), used both for a rebuild (all rows, streamed) and for
//! incremental work (`WHERE id = ANY($1)`), so both paths render identically.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{AssertSqlSafe, PgConnection};
use tantivy::{DateTime as TvDate, TantivyDocument};

use crate::schema::{Fields, Kind, doc_key, normalize_ident, risk_level, title_sort_key};

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

fn base_sql(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Control => (CONTROL_SQL, "c.id"),
        Kind::Certification => (CERTIFICATION_SQL, "x.id"),
        Kind::Requirement => (REQUIREMENT_SQL, "r.id"),
        Kind::Evidence => (EVIDENCE_SQL, "e.id"),
        Kind::Risk => (RISK_SQL, "k.id"),
    }
}

/// SQL for all rows of a kind (unordered: sorting a million joined rows would
/// spill to disk for nothing, the index does not care about order).
pub fn all_rows_sql(kind: Kind) -> String {
    base_sql(kind).0.to_owned()
}

/// SQL for the rows whose id is in `$1`.
pub fn rows_by_id_sql(kind: Kind) -> String {
    let (sql, id) = base_sql(kind);
    format!("{sql} WHERE {id} = ANY($1)")
}

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
    pub status: String,
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
    pub status: String,
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
    pub status: String,
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
    pub status: String,
    pub due_date: Option<NaiveDate>,
    pub updated_at: DateTime<Utc>,
    pub certification_ids: Vec<i64>,
    pub controls: Vec<String>,
}

/// A rendered document and what the change feed needs to know about it.
#[derive(Debug)]
pub struct Rendered {
    pub kind: Kind,
    pub id: i64,
    pub doc: TantivyDocument,
    /// Signature of the fields children copy (0 for kinds without children).
    pub embed_sig: u64,
}

/// A stable 64-bit FNV-1a over the parts, separated so that ("ab","c") != ("a","bc").
pub fn signature(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

fn date(d: NaiveDate) -> TvDate {
    TvDate::from_timestamp_secs(
        d.and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp()),
    )
}

fn ts(t: DateTime<Utc>) -> TvDate {
    TvDate::from_timestamp_secs(t.timestamp())
}

/// Builds documents with the shared fields filled in.
struct DocBuilder<'f> {
    f: &'f Fields,
    doc: TantivyDocument,
}

impl<'f> DocBuilder<'f> {
    fn new(f: &'f Fields, kind: Kind, id: i64, org_id: i64, version: i64, sig: u64) -> Self {
        let mut doc = TantivyDocument::default();
        doc.add_text(f.key, doc_key(kind, id));
        doc.add_text(f.kind, kind.as_str());
        doc.add_u64(f.id, id as u64);
        doc.add_u64(f.org_id, org_id as u64);
        doc.add_u64(f.version, version as u64);
        doc.add_u64(f.embed_sig, sig);
        Self { f, doc }
    }

    fn text(&mut self, field: tantivy::schema::Field, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.doc.add_text(field, value);
            if field == self.f.title {
                self.doc.add_text(self.f.title_sort, title_sort_key(value));
                self.doc.add_text(self.f.title_words, value);
            }
        }
        self
    }

    fn ident(&mut self, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.doc.add_text(self.f.ident, normalize_ident(value));
        }
        self
    }

    fn u64(&mut self, field: tantivy::schema::Field, value: u64) -> &mut Self {
        self.doc.add_u64(field, value);
        self
    }

    fn date(&mut self, field: tantivy::schema::Field, value: Option<NaiveDate>) -> &mut Self {
        if let Some(d) = value {
            self.doc.add_date(field, date(d));
        }
        self
    }

    fn owner(&mut self, id: Option<i64>, name: Option<&str>) -> &mut Self {
        if let Some(id) = id {
            self.doc.add_u64(self.f.owner_id, id as u64);
        }
        if let Some(name) = name {
            self.doc.add_text(self.f.owner, name);
            self.doc.add_text(self.f.context, name);
        }
        self
    }

    /// Control identity shared by controls, requirements and evidence.
    #[allow(clippy::too_many_arguments)]
    fn control(
        &mut self,
        display_id: &str,
        control_key: &str,
        title: &str,
        family_key: &str,
        family_title: &str,
        framework: &str,
        framework_name: &str,
    ) -> &mut Self {
        let f = self.f;
        self.ident(display_id).ident(control_key);
        self.doc.add_text(f.control, display_id);
        self.doc.add_text(f.control_title, title);
        self.doc.add_text(f.family, family_key);
        self.doc.add_text(f.family_title, family_title);
        self.doc.add_text(f.framework, framework);
        self.doc.add_text(f.framework_name, framework_name);
        self.doc.add_text(f.context, family_title);
        self.doc.add_text(f.context, framework_name);
        self
    }

    fn finish(self) -> TantivyDocument {
        self.doc
    }
}

pub fn render_control(f: &Fields, r: &ControlRow) -> Rendered {
    let sig = signature(&[
        &r.display_id,
        &r.control_key,
        &r.title,
        &r.family_key,
        &r.family_title,
        &r.framework,
        &r.framework_name,
    ]);
    let mut b = DocBuilder::new(f, Kind::Control, r.id, 0, r.version, sig);
    b.control(
        &r.display_id,
        &r.control_key,
        &r.title,
        &r.family_key,
        &r.family_title,
        &r.framework,
        &r.framework_name,
    )
    .text(f.title, &r.title)
    .text(f.body, &r.statement)
    .text(f.detail, &r.guidance)
    .text(f.status, if r.withdrawn { "withdrawn" } else { "active" });
    if let Some(parent) = &r.parent_display_id {
        b.text(f.context, parent);
    }
    b.doc.add_date(f.updated_at, ts(r.updated_at));
    Rendered {
        kind: Kind::Control,
        id: r.id,
        doc: b.finish(),
        embed_sig: sig,
    }
}

pub fn render_certification(f: &Fields, r: &CertificationRow) -> Rendered {
    let sig = signature(&[&r.name, &r.framework, &r.framework_name]);
    let mut b = DocBuilder::new(
        f,
        Kind::Certification,
        r.id,
        r.organization_id,
        r.version,
        sig,
    );
    b.text(f.title, &r.name)
        .text(f.body, &r.description)
        .text(f.status, &r.status)
        .text(f.certification, &r.name)
        .u64(f.certification_id, r.id as u64)
        .text(f.framework, &r.framework)
        .text(f.framework_name, &r.framework_name)
        .text(f.context, &r.framework_name)
        .owner(r.owner_id, r.owner.as_deref())
        .date(f.target_date, Some(r.target_date))
        .date(f.due_date, Some(r.target_date))
        .date(f.expires_on, r.expires_on);
    b.doc.add_date(f.updated_at, ts(r.updated_at));
    Rendered {
        kind: Kind::Certification,
        id: r.id,
        doc: b.finish(),
        embed_sig: sig,
    }
}

pub fn render_requirement(f: &Fields, r: &RequirementRow) -> Rendered {
    let cert = r.certification_id.to_string();
    let sig = signature(&[
        &cert,
        &r.certification,
        &r.display_id,
        &r.control_key,
        &r.control_title,
        &r.family_key,
        &r.family_title,
        &r.framework,
        &r.framework_name,
    ]);
    let mut b = DocBuilder::new(
        f,
        Kind::Requirement,
        r.id,
        r.organization_id,
        r.version,
        sig,
    );
    b.control(
        &r.display_id,
        &r.control_key,
        &r.control_title,
        &r.family_key,
        &r.family_title,
        &r.framework,
        &r.framework_name,
    )
    .text(f.title, &format!("{} {}", r.display_id, r.control_title))
    .text(f.body, &r.statement)
    .text(f.detail, &r.notes)
    .text(f.status, &r.status)
    .text(f.certification, &r.certification)
    .text(f.context, &r.certification)
    .u64(f.certification_id, r.certification_id as u64)
    .owner(r.owner_id, r.owner.as_deref())
    .date(f.due_date, r.due_date);
    b.doc.add_date(f.updated_at, ts(r.updated_at));
    Rendered {
        kind: Kind::Requirement,
        id: r.id,
        doc: b.finish(),
        embed_sig: sig,
    }
}

pub fn render_evidence(f: &Fields, r: &EvidenceRow) -> Rendered {
    let mut b = DocBuilder::new(f, Kind::Evidence, r.id, r.organization_id, r.version, 0);
    b.control(
        &r.display_id,
        &r.control_key,
        &r.control_title,
        &r.family_key,
        &r.family_title,
        &r.framework,
        &r.framework_name,
    )
    .text(f.title, &r.title)
    .text(f.body, &r.content)
    .text(f.detail, &r.description)
    .text(f.status, &r.status)
    .text(f.certification, &r.certification)
    .text(f.context, &r.certification)
    .text(f.context, &r.control_title)
    .u64(f.certification_id, r.certification_id as u64)
    .u64(f.requirement_id, r.requirement_id as u64)
    .owner(r.submitted_by, r.submitter.as_deref())
    .text(f.media_type, &r.media_type)
    .text(f.file_name, &r.file_name)
    .text(f.sha256, &r.sha256)
    .ident(&r.sha256)
    .ident(&r.file_name)
    .date(f.collected_on, Some(r.collected_on))
    .date(f.expires_on, r.expires_on)
    .date(f.due_date, r.expires_on);
    b.doc.add_date(f.updated_at, ts(r.updated_at));
    Rendered {
        kind: Kind::Evidence,
        id: r.id,
        doc: b.finish(),
        embed_sig: 0,
    }
}

pub fn render_risk(f: &Fields, r: &RiskRow) -> Rendered {
    let inherent = (r.inherent_likelihood * r.inherent_impact) as u64;
    let residual = (r.residual_likelihood * r.residual_impact) as u64;
    let mut b = DocBuilder::new(f, Kind::Risk, r.id, r.organization_id, r.version, 0);
    b.text(f.title, &r.title)
        .text(f.body, &r.description)
        .text(f.status, &r.status)
        .text(f.category, &r.category)
        .text(f.treatment, &r.treatment)
        .owner(r.owner_id, r.owner.as_deref())
        .u64(f.inherent_likelihood, r.inherent_likelihood as u64)
        .u64(f.inherent_impact, r.inherent_impact as u64)
        .u64(f.residual_likelihood, r.residual_likelihood as u64)
        .u64(f.residual_impact, r.residual_impact as u64)
        .u64(f.inherent_score, inherent)
        .u64(f.residual_score, residual)
        .text(f.risk_level, risk_level(residual))
        .date(f.due_date, r.due_date);
    for cert in &r.certification_ids {
        b.u64(f.certification_id, *cert as u64);
    }
    for control in &r.controls {
        b.ident(control);
        b.text(f.control, control);
    }
    b.doc.add_date(f.updated_at, ts(r.updated_at));
    Rendered {
        kind: Kind::Risk,
        id: r.id,
        doc: b.finish(),
        embed_sig: 0,
    }
}

/// Renders the current rows of `kind` with the given ids; ids without a row are
/// absent from the result (deleted).
pub async fn render_ids(
    conn: &mut PgConnection,
    f: &Fields,
    kind: Kind,
    ids: &[i64],
) -> Result<Vec<Rendered>, sqlx::Error> {
    let sql = rows_by_id_sql(kind);
    let q = AssertSqlSafe(sql);
    Ok(match kind {
        Kind::Control => sqlx::query_as::<_, ControlRow>(q)
            .bind(ids)
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| render_control(f, r))
            .collect(),
        Kind::Certification => sqlx::query_as::<_, CertificationRow>(q)
            .bind(ids)
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| render_certification(f, r))
            .collect(),
        Kind::Requirement => sqlx::query_as::<_, RequirementRow>(q)
            .bind(ids)
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| render_requirement(f, r))
            .collect(),
        Kind::Evidence => sqlx::query_as::<_, EvidenceRow>(q)
            .bind(ids)
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| render_evidence(f, r))
            .collect(),
        Kind::Risk => sqlx::query_as::<_, RiskRow>(q)
            .bind(ids)
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| render_risk(f, r))
            .collect(),
    })
}

/// Counts rows of every kind, for progress bars.
pub async fn count_rows(db: impl sqlx::PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM controls) + (SELECT count(*) FROM certifications) + \
         (SELECT count(*) FROM requirements) + (SELECT count(*) FROM evidence) + (SELECT count(*) FROM risks)",
    )
    .fetch_one(db)
    .await?;
    Ok(n as u64)
}
