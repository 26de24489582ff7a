//! Tiny hand-built datasets for the sections' unit tests: a few
//! certifications, requirements and risks with their status histories, every
//! date an offset in days from one as-of day, so that a test can state the
//! numbers it expects.

use chrono::{Days, NaiveDate};
use polars::prelude::*;

use crate::load::{Assessment, CertificationRow, Dataset, EvidenceRow, RiskRatings, RiskRow, day};
use crate::model::{Organization, Rating};
use crate::params::{RawParams, ReportParams};

/// The report date of every sample.
pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 6, 30).expect("a date")
}

/// The day `offset` days from the as-of day.
pub fn on(offset: i64) -> NaiveDate {
    if offset >= 0 {
        as_of() + Days::new(offset as u64)
    } else {
        as_of() - Days::new(offset.unsigned_abs())
    }
}

/// Report parameters for the as-of day, adjusted by `edit`.
pub fn params(edit: impl FnOnce(&mut RawParams)) -> ReportParams {
    let mut raw = RawParams {
        as_of: Some(as_of()),
        ..RawParams::default()
    };
    edit(&mut raw);
    ReportParams::new(raw, as_of()).expect("valid sample parameters")
}

/// A path of statuses: `(offset, status)` steps in order.
pub type Path = Vec<(i64, &'static str)>;

/// (likelihood, impact) of a rating.
pub type Scale = (i16, i16);

/// A certification and its status history.
pub struct Cert {
    pub id: i64,
    pub framework: &'static str,
    pub started: i64,
    pub target: i64,
    pub expires: Option<i64>,
    pub history: Path,
}

impl Cert {
    /// In progress since `started`, due at `target`.
    pub fn new(id: i64, started: i64, target: i64) -> Self {
        Self {
            id,
            framework: "nist-high",
            started,
            target,
            expires: None,
            history: vec![(started, "in_progress")],
        }
    }

    pub fn framework(mut self, slug: &'static str) -> Self {
        self.framework = slug;
        self
    }

    pub fn history(mut self, history: Path) -> Self {
        self.history = history;
        self
    }

    pub fn expires(mut self, offset: i64) -> Self {
        self.expires = Some(offset);
        self
    }
}

/// A requirement, its evidence aggregate and its status history.
pub struct Req {
    pub id: i64,
    pub cert: i64,
    pub framework: &'static str,
    pub family: &'static str,
    pub due: Option<i64>,
    pub evidenced: bool,
    pub evidenced_prev: bool,
    pub newest_evidence: Option<i64>,
    pub covered_until: Option<i64>,
    pub history: Path,
}

impl Req {
    pub fn new(id: i64, cert: i64, history: Path) -> Self {
        Self {
            id,
            cert,
            framework: "nist-high",
            family: "ac",
            due: None,
            evidenced: false,
            evidenced_prev: false,
            newest_evidence: None,
            covered_until: None,
            history,
        }
    }

    pub fn family(mut self, framework: &'static str, family: &'static str) -> Self {
        self.framework = framework;
        self.family = family;
        self
    }

    pub fn due(mut self, offset: i64) -> Self {
        self.due = Some(offset);
        self
    }

    /// Covered on the as-of day by evidence collected at `newest`.
    pub fn evidenced(mut self, newest: i64) -> Self {
        self.evidenced = true;
        self.newest_evidence = Some(newest);
        self
    }

    /// Covered one interval before the as-of day.
    pub fn evidenced_before(mut self) -> Self {
        self.evidenced_prev = true;
        self
    }

    /// Accepted evidence covers it through `offset` (and not later).
    pub fn covered_until(mut self, offset: i64) -> Self {
        self.covered_until = Some(offset);
        self
    }
}

/// A risk's ratings and its status history.
pub struct Risk {
    pub id: i64,
    pub inherent: (i16, i16),
    pub residual: (i16, i16),
    pub history: Path,
    /// Treatment due, days from the report date.
    pub due: Option<i64>,
    /// Reassessed to `inherent`/`residual` on this day (days from the report
    /// date), from these ratings held since the risk was identified.
    pub moved: Option<(i64, Scale, Scale)>,
}

impl Risk {
    pub fn new(id: i64, inherent: (i16, i16), residual: (i16, i16), history: Path) -> Self {
        Self {
            id,
            inherent,
            residual,
            history,
            due: None,
            moved: None,
        }
    }

    pub fn due(mut self, offset: i64) -> Self {
        self.due = Some(offset);
        self
    }

    /// The risk sat at `inherent`/`residual` from its first status until it
    /// was reassessed to its current ratings on day `offset`.
    pub fn moved_on(mut self, offset: i64, inherent: Scale, residual: Scale) -> Self {
        self.moved = Some((offset, inherent, residual));
        self
    }

    /// Its assessments: none unless it moved (the loader's fallback to the
    /// row's own ratings is then what reports use).
    fn assessments(&self) -> Vec<(i64, Assessment)> {
        let rated = |offset: i64, (il, ii): Scale, (rl, ri): Scale| {
            (
                self.id,
                Assessment {
                    day: day(on(offset)),
                    inherent: Rating::new(il.into(), ii.into()),
                    residual: Rating::new(rl.into(), ri.into()),
                },
            )
        };
        match (self.moved, self.history.first()) {
            (Some((offset, inherent, residual)), Some(&(identified, _))) => vec![
                rated(identified, inherent, residual),
                rated(offset, self.inherent, self.residual),
            ],
            _ => Vec::new(),
        }
    }
}

fn history(rows: impl IntoIterator<Item = (i64, Path)>) -> DataFrame {
    let (mut ids, mut days, mut statuses) = (Vec::new(), Vec::new(), Vec::new());
    for (id, path) in rows {
        for (offset, status) in path {
            ids.push(id);
            days.push(day(on(offset)));
            statuses.push(status);
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("entity_id".into(), ids),
        Column::new("day".into(), days),
        Column::new("status".into(), statuses),
    ])
    .expect("history frame")
}

/// The dataset the loader would have read for these rows.
pub fn dataset(
    certs: Vec<Cert>,
    reqs: Vec<Req>,
    risks: Vec<Risk>,
    lapsing_evidence: Vec<EvidenceRow>,
) -> Dataset {
    let at = |o: Option<i64>| o.map(|o| day(on(o)));
    let requirements = DataFrame::new_infer_height(vec![
        Column::new("id".into(), reqs.iter().map(|r| r.id).collect::<Vec<_>>()),
        Column::new(
            "certification_id".into(),
            reqs.iter().map(|r| r.cert).collect::<Vec<_>>(),
        ),
        Column::new(
            "framework".into(),
            reqs.iter().map(|r| r.framework).collect::<Vec<_>>(),
        ),
        Column::new(
            "family_key".into(),
            reqs.iter().map(|r| r.family).collect::<Vec<_>>(),
        ),
        Column::new(
            "family_title".into(),
            reqs.iter()
                .map(|r| format!("Family {}", r.family.to_uppercase()))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "control".into(),
            reqs.iter()
                .map(|r| format!("{}-{}", r.family.to_uppercase(), r.id))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "title".into(),
            reqs.iter()
                .map(|r| format!("Requirement {}", r.id))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "owner".into(),
            reqs.iter().map(|_| Some("Ada Owner")).collect::<Vec<_>>(),
        ),
        Column::new(
            "due".into(),
            reqs.iter().map(|r| at(r.due)).collect::<Vec<_>>(),
        ),
        Column::new(
            "evidenced".into(),
            reqs.iter().map(|r| r.evidenced).collect::<Vec<_>>(),
        ),
        Column::new(
            "evidenced_prev".into(),
            reqs.iter().map(|r| r.evidenced_prev).collect::<Vec<_>>(),
        ),
        Column::new(
            "newest_evidence".into(),
            reqs.iter()
                .map(|r| at(r.newest_evidence))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "covered_until".into(),
            reqs.iter().map(|r| at(r.covered_until)).collect::<Vec<_>>(),
        ),
    ])
    .expect("requirement frame");
    let requirement_history = history(reqs.into_iter().map(|r| (r.id, r.history)));
    let certification_history = history(certs.iter().map(|c| (c.id, c.history.clone())));
    let risk_history = history(risks.iter().map(|r| (r.id, r.history.clone())));
    let risk_ratings = RiskRatings::new(risks.iter().flat_map(Risk::assessments));
    Dataset {
        organization: Organization {
            id: 1,
            slug: "sample".into(),
            name: "Sample Org".into(),
        },
        position: "1:1:".into(),
        certifications: certs
            .into_iter()
            .map(|c| CertificationRow {
                id: c.id,
                name: format!("Certification {}", c.id),
                framework: c.framework.to_owned(),
                status: c.history.last().map_or("planned", |s| s.1).to_owned(),
                owner: Some("Ada Owner".into()),
                started_on: on(c.started),
                target_date: on(c.target),
                expires_on: c.expires.map(on),
            })
            .collect(),
        certification_history,
        requirements,
        requirement_history,
        risks: risks
            .into_iter()
            .map(|r| RiskRow {
                id: r.id,
                title: format!("Risk {}", r.id),
                category: "security".into(),
                owner: None,
                inherent_likelihood: r.inherent.0,
                inherent_impact: r.inherent.1,
                residual_likelihood: r.residual.0,
                residual_impact: r.residual.1,
                treatment: "mitigate".into(),
                due_date: r.due.map(on),
            })
            .collect(),
        risk_history,
        risk_ratings,
        lapsing_evidence,
        framework_names: std::collections::HashMap::from([(
            "nist-high".to_owned(),
            "NIST SP 800-53 Rev. 5 High".to_owned(),
        )]),
    }
}

/// The accepted evidence that last covered requirement `requirement`.
pub fn lapsing(id: i64, requirement: i64, expires: i64) -> EvidenceRow {
    EvidenceRow {
        id,
        requirement_id: requirement,
        title: format!("Evidence {id}"),
        expires_on: Some(on(expires)),
    }
}
