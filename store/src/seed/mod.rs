//! Deterministic demo and benchmark data built on the imported (real) controls.
//!
//! Everything is derived from one ChaCha stream seeded by `--seed` and from the
//! `as_of` date, so the same seed, size and date give the same rows. Tables are
//! loaded with `COPY` inside one transaction per organization (a failed seed leaves
//! no half organization). The session sets `certscope.bulk_load` so the history
//! triggers skip their "created now" rows: the seed writes twelve months of
//! back-dated history itself. Change capture is never skipped.

mod copy;
pub mod text;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use sqlx::{Acquire, PgConnection, PgPool};

use copy::CsvCopy;
use text::{ControlRef, ORGS, OrgProfile, RISKS};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("no frameworks in the database: import a catalog first (certscope import-oscal)")]
    NoFrameworks,
    #[error("organization {0:?} already exists: seed into an empty database")]
    AlreadySeeded(String),
    #[error("invalid seed size: {0}")]
    BadSize(String),
    #[error("database error while seeding")]
    Db(#[from] sqlx::Error),
}

/// Sizes of a seeded data set.
#[derive(Debug, Clone)]
pub struct SeedConfig {
    pub seed: u64,
    /// The "today" of the data: dates are laid out relative to it.
    pub as_of: NaiveDate,
    pub organizations: usize,
    pub certifications_per_org: usize,
    pub users_per_org: usize,
    pub risks_per_org: usize,
    /// Average evidence items per requirement (started requirements get more).
    pub evidence_per_requirement: f64,
    /// When set, the first organization gets this many evidence rows (benchmarks).
    pub large_org_evidence: Option<u64>,
    /// Certifications of the large organization.
    pub large_org_certifications: usize,
    pub progress: bool,
}

/// Named sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Two organizations, a few thousand rows: tests.
    Small,
    /// Four organizations, every status present, ~20k evidence: the demo.
    Demo,
    /// The demo plus one organization holding at least 1,000,000 evidence rows.
    Bench,
}

impl SeedConfig {
    pub fn preset(preset: Preset, seed: u64, as_of: NaiveDate) -> Self {
        let base = Self {
            seed,
            as_of,
            organizations: 4,
            certifications_per_org: 3,
            users_per_org: 12,
            risks_per_org: 45,
            evidence_per_requirement: 2.0,
            large_org_evidence: None,
            large_org_certifications: 12,
            progress: false,
        };
        match preset {
            Preset::Small => Self {
                organizations: 2,
                certifications_per_org: 3,
                users_per_org: 8,
                risks_per_org: 30,
                evidence_per_requirement: 0.6,
                ..base
            },
            Preset::Demo => base,
            Preset::Bench => Self {
                large_org_evidence: Some(1_000_000),
                ..base
            },
        }
    }

    fn validate(&self) -> Result<(), SeedError> {
        if self.organizations == 0 || self.organizations > ORGS.len() {
            return Err(SeedError::BadSize(format!(
                "organizations must be 1..={}",
                ORGS.len()
            )));
        }
        if self.users_per_org < 4 {
            return Err(SeedError::BadSize(
                "users per organization must be at least 4".into(),
            ));
        }
        if !(0.0..=10_000.0).contains(&self.evidence_per_requirement) {
            return Err(SeedError::BadSize(
                "evidence per requirement must be 0..=10000".into(),
            ));
        }
        Ok(())
    }
}

/// What a seed wrote, and how fast.
#[derive(Debug, Clone, Default)]
pub struct SeedReport {
    pub organizations: u64,
    pub users: u64,
    pub certifications: u64,
    pub requirements: u64,
    pub evidence: u64,
    pub risks: u64,
    pub history: u64,
    pub elapsed: Duration,
}

impl SeedReport {
    pub fn total_rows(&self) -> u64 {
        self.organizations
            + self.users
            + self.certifications
            + self.requirements
            + self.evidence
            + self.risks
            + self.history
    }

    pub fn rows_per_second(&self) -> f64 {
        self.total_rows() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct ControlRow {
    id: i64,
    framework_id: i64,
    display_id: String,
    title: String,
    family_key: String,
    family_title: String,
    statement: String,
}

#[derive(Debug, Clone, sqlx::FromRow)]
struct FrameworkRow {
    id: i64,
    slug: String,
}

const CERT_STATUSES: [&str; 6] = [
    "in_progress",
    "certified",
    "planned",
    "under_audit",
    "expired",
    "withdrawn",
];

/// Seeds organizations and their data. Refuses to touch an organization that
/// already exists.
pub async fn seed(pool: &PgPool, config: &SeedConfig) -> Result<SeedReport, SeedError> {
    config.validate()?;
    let started = Instant::now();
    let frameworks: Vec<FrameworkRow> =
        sqlx::query_as("SELECT id, slug FROM frameworks ORDER BY id")
            .fetch_all(pool)
            .await?;
    if frameworks.is_empty() {
        return Err(SeedError::NoFrameworks);
    }
    let controls: Vec<ControlRow> = sqlx::query_as(
        "SELECT id, framework_id, display_id, title, family_key, family_title, statement \
         FROM controls WHERE NOT withdrawn ORDER BY framework_id, sort_key, id",
    )
    .fetch_all(pool)
    .await?;
    let mut by_framework: HashMap<i64, Vec<ControlRow>> = HashMap::new();
    for c in controls {
        by_framework.entry(c.framework_id).or_default().push(c);
    }
    let slugs: Vec<&str> = ORGS[..config.organizations]
        .iter()
        .map(|o| o.slug)
        .collect();
    if let Some(existing) = sqlx::query_scalar::<_, String>(
        "SELECT slug FROM organizations WHERE slug = ANY($1) LIMIT 1",
    )
    .bind(&slugs)
    .fetch_optional(pool)
    .await?
    {
        return Err(SeedError::AlreadySeeded(existing));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut report = SeedReport::default();
    let mut conn = pool.acquire().await?;
    sqlx::query("SET TimeZone = 'UTC'")
        .execute(&mut *conn)
        .await?;
    for (index, org) in ORGS[..config.organizations].iter().enumerate() {
        let large = index == 0 && config.large_org_evidence.is_some();
        let mut org_rng = ChaCha8Rng::seed_from_u64(rng.random());
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT set_config('certscope.bulk_load', 'on', true)")
            .execute(&mut *tx)
            .await?;
        seed_org(
            &mut tx,
            config,
            org,
            index,
            large,
            &frameworks,
            &by_framework,
            &mut org_rng,
            &mut report,
        )
        .await?;
        tx.commit().await?;
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

struct OrgIds {
    officers: Vec<(i64, String)>,
    auditors: Vec<i64>,
    executives: Vec<i64>,
}

#[allow(clippy::too_many_arguments)]
async fn seed_org(
    conn: &mut PgConnection,
    config: &SeedConfig,
    org: &OrgProfile,
    index: usize,
    large: bool,
    frameworks: &[FrameworkRow],
    controls: &HashMap<i64, Vec<ControlRow>>,
    rng: &mut ChaCha8Rng,
    report: &mut SeedReport,
) -> Result<(), SeedError> {
    let as_of = config.as_of;
    let org_id: i64 =
        sqlx::query_scalar("INSERT INTO organizations (slug, name) VALUES ($1, $2) RETURNING id")
            .bind(org.slug)
            .bind(org.name)
            .fetch_one(&mut *conn)
            .await?;
    report.organizations += 1;

    // people
    let user_ids = reserve_ids(conn, "users", config.users_per_org).await?;
    let mut ids = OrgIds {
        officers: Vec::new(),
        auditors: Vec::new(),
        executives: Vec::new(),
    };
    let mut users = CsvCopy::new(
        "users",
        &["id", "organization_id", "email", "display_name", "role"],
    );
    for (n, &id) in user_ids.iter().enumerate() {
        let role = match n {
            0 => "admin",
            1 | 2 => "executive",
            3 | 4 => "auditor",
            _ => "officer",
        };
        let role = if config.users_per_org < 6 && n >= 3 {
            "officer"
        } else {
            role
        };
        let name = format!(
            "{} {}",
            org.given[(n + index) % org.given.len()],
            org.family[(n * 7 + index) % org.family.len()]
        );
        users.row(|r| {
            r.int(id)
                .int(org_id)
                .text(&format!("user{}@{}.example", n + 1, org.slug))
                .text(&name)
                .text(role);
        });
        match role {
            "officer" | "admin" => ids.officers.push((id, name)),
            "auditor" => ids.auditors.push(id),
            "executive" => ids.executives.push(id),
            _ => {}
        }
    }
    report.users += users.finish(conn).await?;

    // certifications
    let cert_count = if large {
        config.large_org_certifications
    } else {
        config.certifications_per_org
    };
    let cert_ids = reserve_ids(conn, "certifications", cert_count).await?;
    let mut certs = CsvCopy::new(
        "certifications",
        &[
            "id",
            "organization_id",
            "framework_id",
            "name",
            "description",
            "status",
            "owner_id",
            "started_on",
            "target_date",
            "certified_on",
            "expires_on",
        ],
    );
    let mut history = CsvCopy::new(
        "status_history",
        &[
            "organization_id",
            "entity",
            "entity_id",
            "from_status",
            "to_status",
            "changed_by",
            "changed_at",
        ],
    );
    struct Cert {
        id: i64,
        framework_id: i64,
        status: &'static str,
        started: NaiveDate,
        target: NaiveDate,
        system: &'static str,
    }
    let mut cert_list = Vec::new();
    for (k, &id) in cert_ids.iter().enumerate() {
        let framework = &frameworks[k % frameworks.len()];
        let status = CERT_STATUSES[(index * 2 + k) % CERT_STATUSES.len()];
        let system = org.systems[k % org.systems.len()];
        let year = as_of.format("%Y");
        let kind = if framework.slug.contains("privacy") {
            "Privacy programme"
        } else {
            "NIST 800-53 High"
        };
        let name = if large && k >= org.systems.len() {
            format!(
                "{kind}: {system} {year} (scope {})",
                k / org.systems.len() + 1
            )
        } else {
            format!("{kind}: {system} {year}")
        };
        let months_ago: u64 = match status {
            "planned" => rng.random_range(1..3),
            "in_progress" => rng.random_range(8..12),
            "under_audit" | "withdrawn" => rng.random_range(9..13),
            _ => rng.random_range(12..16),
        };
        let started = as_of - Days::new(months_ago * 30);
        let target = match status {
            "certified" | "expired" => started + Days::new(300),
            // some in-flight programmes are behind their target date
            _ => {
                as_of + Days::new(rng.random_range(0..240)).max(Days::new(1))
                    - Days::new(if k % 3 == 2 { 120 } else { 0 })
            }
        };
        let target = target.max(started);
        let (certified_on, expires_on) = match status {
            "certified" => {
                let on = started + Days::new(280);
                (Some(on), Some(on + Days::new(365 * 3)))
            }
            "expired" => {
                let on = as_of - Days::new(400);
                (Some(on), Some(as_of - Days::new(rng.random_range(5..60))))
            }
            _ => (None, None),
        };
        let owner = ids.officers.choose(rng).map(|o| o.0);
        certs.row(|r| {
            r.int(id)
                .int(org_id)
                .int(framework.id)
                .text(&name)
                .text(&format!(
                    "{} certification programme for the {system} authorization boundary.",
                    org.name
                ))
                .text(status)
                .opt_int(owner)
                .date(started)
                .date(target)
                .opt_date(certified_on)
                .opt_date(expires_on);
        });
        let path: &[&str] = match status {
            "planned" => &["planned"],
            "in_progress" => &["planned", "in_progress"],
            "under_audit" => &["planned", "in_progress", "under_audit"],
            "certified" => &["planned", "in_progress", "under_audit", "certified"],
            "expired" => &[
                "planned",
                "in_progress",
                "under_audit",
                "certified",
                "expired",
            ],
            _ => &["planned", "in_progress", "withdrawn"],
        };
        let span = (as_of - started).num_days().max(1) as u64;
        let mut previous: Option<&str> = None;
        for (step, to) in path.iter().enumerate() {
            let day = started + Days::new(span * step as u64 / path.len() as u64);
            history.row(|r| {
                r.int(org_id)
                    .text("certification")
                    .int(id)
                    .opt_text(previous)
                    .text(to)
                    .opt_int(owner)
                    .ts(at(day, step));
            });
            previous = Some(to);
        }
        cert_list.push(Cert {
            id,
            framework_id: framework.id,
            status,
            started,
            target,
            system,
        });
    }
    report.certifications += certs.finish(conn).await?;
    if let (Some(&auditor), Some(first)) = (ids.auditors.first(), cert_list.first()) {
        sqlx::query("INSERT INTO auditor_assignments (organization_id, user_id, certification_id) VALUES ($1, $2, $3)")
            .bind(org_id)
            .bind(auditor)
            .bind(first.id)
            .execute(&mut *conn)
            .await?;
    }

    // requirements
    struct Req<'c> {
        id: i64,
        cert: usize,
        control: &'c ControlRow,
        status: &'static str,
        owner: (i64, String),
    }
    let total_reqs: usize = cert_list
        .iter()
        .map(|c| controls.get(&c.framework_id).map_or(0, Vec::len))
        .sum();
    let req_ids = reserve_ids(conn, "requirements", total_reqs).await?;
    let mut next_req = req_ids.iter();
    let mut reqs: Vec<Req> = Vec::with_capacity(total_reqs);
    let mut requirements = CsvCopy::new(
        "requirements",
        &[
            "id",
            "organization_id",
            "certification_id",
            "control_id",
            "status",
            "owner_id",
            "due_date",
            "notes",
        ],
    );
    for (ci, cert) in cert_list.iter().enumerate() {
        for control in controls.get(&cert.framework_id).into_iter().flatten() {
            let Some(&id) = next_req.next() else { break };
            let status = requirement_status(cert.status, rng);
            let owner = ids
                .officers
                .choose(rng)
                .cloned()
                .unwrap_or((0, String::new()));
            let due = cert.started
                + Days::new(
                    ((cert.target - cert.started).num_days().max(30) as u64)
                        * rng.random_range(40..100)
                        / 100,
                );
            requirements.row(|r| {
                r.int(id)
                    .int(org_id)
                    .int(cert.id)
                    .int(control.id)
                    .text(status)
                    .int(owner.0)
                    .date(due)
                    .text("");
            });
            // history: the burn-up; most work lands in the middle of the programme
            let span = (as_of - cert.started).num_days().max(2) as f64;
            let t_start =
                cert.started + Days::new((span * rng.random_range(0.05..0.5f64).powf(1.2)) as u64);
            let t_end = t_start
                + Days::new(
                    ((as_of - t_start).num_days().max(1) as f64 * rng.random_range(0.1..0.95f64))
                        as u64,
                );
            let path: Vec<(&str, NaiveDate)> = match status {
                "not_started" => vec![("not_started", cert.started)],
                "in_progress" => vec![("not_started", cert.started), ("in_progress", t_start)],
                "not_applicable" => {
                    vec![("not_started", cert.started), ("not_applicable", t_start)]
                }
                s => vec![
                    ("not_started", cert.started),
                    ("in_progress", t_start),
                    (s, t_end),
                ],
            };
            let mut previous: Option<&str> = None;
            for (step, (to, day)) in path.iter().enumerate() {
                history.row(|r| {
                    r.int(org_id)
                        .text("requirement")
                        .int(id)
                        .opt_text(previous)
                        .text(to)
                        .int(owner.0)
                        .ts(at(*day, step));
                });
                previous = Some(to);
            }
            reqs.push(Req {
                id,
                cert: ci,
                control,
                status,
                owner,
            });
        }
    }
    report.requirements += requirements.finish(conn).await?;

    // evidence, streamed
    let started_reqs: Vec<usize> = (0..reqs.len())
        .filter(|&i| reqs[i].status != "not_started")
        .collect();
    let target_evidence = match (large, config.large_org_evidence) {
        (true, Some(n)) => n,
        _ => (reqs.len() as f64 * config.evidence_per_requirement).round() as u64,
    };
    let per_req = target_evidence as f64 / started_reqs.len().max(1) as f64;
    let evidence_ids = reserve_ids(conn, "evidence", target_evidence as usize).await?;
    let bar = progress_bar(
        config.progress,
        target_evidence,
        &format!("evidence for {}", org.slug),
    );
    let mut evidence = CsvCopy::new(
        "evidence",
        &[
            "id",
            "organization_id",
            "requirement_id",
            "title",
            "description",
            "content",
            "file_name",
            "media_type",
            "sha256",
            "status",
            "collected_on",
            "expires_on",
            "submitted_by",
        ],
    );
    let mut sink = evidence.open(conn).await?;
    let mut written = 0u64;
    let mut carry = 0.0f64;
    for (n, &ri) in started_reqs.iter().enumerate() {
        let req = &reqs[ri];
        carry += per_req;
        let mut count = carry.floor() as u64;
        if n + 1 == started_reqs.len() {
            count = target_evidence - written;
        }
        carry -= count as f64;
        let count = count.min(target_evidence - written);
        let cert = &cert_list[req.cert];
        for _ in 0..count {
            let id = evidence_ids[written as usize];
            let age = rng.random_range(0..400u64);
            let collected = as_of - Days::new(age);
            let validity = [90u64, 180, 365, 365, 730]
                .choose(rng)
                .copied()
                .unwrap_or(365);
            let expires = (rng.random_range(0..10) != 0).then(|| collected + Days::new(validity));
            let status = if age < 5 {
                "pending"
            } else {
                match rng.random_range(0..100) {
                    0..82 => "accepted",
                    82..90 => "pending",
                    _ => "rejected",
                }
            };
            let control = ControlRef {
                display_id: &req.control.display_id,
                title: &req.control.title,
                family_key: &req.control.family_key,
                family_title: &req.control.family_title,
                statement: &req.control.statement,
            };
            let art = text::artefact(
                rng,
                org,
                cert.system,
                control,
                &req.owner.1,
                collected,
                id as u64,
            );
            let sha = hex::encode(Sha256::digest(format!(
                "{}\n{}",
                art.file_name, art.content
            )));
            evidence.row(|r| {
                r.int(id)
                    .int(org_id)
                    .int(req.id)
                    .text(&art.title)
                    .text(&art.description)
                    .text(&art.content)
                    .text(&art.file_name)
                    .text(art.media_type)
                    .text(&sha)
                    .text(status)
                    .date(collected)
                    .opt_date(expires)
                    .int(req.owner.0);
            });
            written += 1;
            if written.is_multiple_of(4096) {
                evidence.send_if_full(&mut sink).await?;
                bar.set_position(written);
            }
        }
    }
    report.evidence += evidence.finish_stream(sink).await?;
    bar.finish_and_clear();
    // evidence history in one statement: submitted as pending, reviewed a few days later
    let evidence_history = sqlx::query(
        "INSERT INTO status_history (organization_id, entity, entity_id, from_status, to_status, changed_by, changed_at) \
         SELECT organization_id, 'evidence', id, NULL, 'pending', submitted_by, \
                (collected_on + time '09:00' + (id % 480) * interval '1 minute') AT TIME ZONE 'UTC' \
           FROM evidence WHERE organization_id = $1 \
         UNION ALL \
         SELECT organization_id, 'evidence', id, 'pending', status, $2, \
                LEAST((collected_on + time '14:00' + (1 + id % 4) * interval '1 day') AT TIME ZONE 'UTC', \
                      ($3::date + time '08:00') AT TIME ZONE 'UTC') \
           FROM evidence WHERE organization_id = $1 AND status <> 'pending'",
    )
    .bind(org_id)
    .bind(ids.officers.first().map(|o| o.0))
    .bind(as_of)
    .execute(&mut *conn)
    .await?;
    report.history += evidence_history.rows_affected();

    // risks
    let risk_count = if large {
        config.risks_per_org.max(600)
    } else {
        config.risks_per_org
    };
    let risk_ids = reserve_ids(conn, "risks", risk_count).await?;
    let mut risks = CsvCopy::new(
        "risks",
        &[
            "id",
            "organization_id",
            "title",
            "description",
            "category",
            "owner_id",
            "inherent_likelihood",
            "inherent_impact",
            "residual_likelihood",
            "residual_impact",
            "treatment",
            "status",
            "due_date",
        ],
    );
    let mut links = CsvCopy::new(
        "risk_requirements",
        &["organization_id", "risk_id", "requirement_id"],
    );
    for (n, &id) in risk_ids.iter().enumerate() {
        let (title, category) = RISKS[n % RISKS.len()];
        let system = org.systems[n % org.systems.len()];
        // the first 25 cover the whole grid; the rest lean to the middle
        let (li, ii) = if n < 25 {
            ((n % 5) as i16 + 1, (n / 5) as i16 + 1)
        } else {
            (rng.random_range(1..=5), rng.random_range(2..=5))
        };
        let treatment = match rng.random_range(0..100) {
            0..55 => "mitigate",
            55..70 => "transfer",
            70..80 => "avoid",
            _ => "accept",
        };
        let (lr, ir) = if treatment == "accept" {
            (li, ii)
        } else {
            (
                (li - rng.random_range(0..=2)).max(1),
                (ii - rng.random_range(0..=1)).max(1),
            )
        };
        let status = match treatment {
            "accept" => "accepted",
            _ => ["open", "treating", "treating", "closed"]
                .choose(rng)
                .copied()
                .unwrap_or("open"),
        };
        let owner = ids.officers.choose(rng).map(|o| o.0);
        let due = as_of + Days::new(rng.random_range(0..200)) - Days::new(60);
        risks.row(|r| {
            r.int(id)
                .int(org_id)
                .text(&format!("{title} ({system})"))
                .text(&format!(
                    "Risk that {} affects {system} at {}.",
                    title.to_lowercase(),
                    org.name
                ))
                .text(category)
                .opt_int(owner)
                .int(li.into())
                .int(ii.into())
                .int(lr.into())
                .int(ir.into())
                .text(treatment)
                .text(status)
                .date(due);
        });
        let identified = as_of - Days::new(rng.random_range(30..360));
        let path: &[&str] = match status {
            "open" => &["open"],
            "treating" => &["open", "treating"],
            "accepted" => &["open", "accepted"],
            _ => &["open", "treating", "closed"],
        };
        let span = (as_of - identified).num_days().max(1) as u64;
        let mut previous: Option<&str> = None;
        for (step, to) in path.iter().enumerate() {
            let day = identified + Days::new(span * step as u64 / path.len() as u64);
            history.row(|r| {
                r.int(org_id)
                    .text("risk")
                    .int(id)
                    .opt_text(previous)
                    .text(to)
                    .opt_int(owner)
                    .ts(at(day, step));
            });
            previous = Some(to);
        }
        if !reqs.is_empty() {
            let mut linked: Vec<i64> = (0..rng.random_range(1..=3))
                .map(|_| reqs[rng.random_range(0..reqs.len())].id)
                .collect();
            linked.sort_unstable();
            linked.dedup();
            for req in linked {
                links.row(|r| {
                    r.int(org_id).int(id).int(req);
                });
            }
        }
    }
    report.risks += risks.finish(conn).await?;
    links.finish(conn).await?;
    report.history += history.finish(conn).await?;
    Ok(())
}

fn requirement_status(cert_status: &str, rng: &mut ChaCha8Rng) -> &'static str {
    let table: &[(&str, u32)] = match cert_status {
        "planned" => &[
            ("not_started", 85),
            ("in_progress", 10),
            ("not_applicable", 5),
        ],
        "in_progress" => &[
            ("implemented", 45),
            ("in_progress", 25),
            ("not_started", 15),
            ("failed", 8),
            ("not_applicable", 7),
        ],
        "under_audit" => &[
            ("implemented", 80),
            ("in_progress", 8),
            ("failed", 5),
            ("not_applicable", 7),
        ],
        "certified" => &[("implemented", 92), ("not_applicable", 6), ("failed", 2)],
        "expired" => &[
            ("implemented", 75),
            ("failed", 10),
            ("in_progress", 8),
            ("not_applicable", 7),
        ],
        _ => &[
            ("not_started", 40),
            ("in_progress", 30),
            ("implemented", 25),
            ("not_applicable", 5),
        ],
    };
    let total: u32 = table.iter().map(|t| t.1).sum();
    let mut pick = rng.random_range(0..total);
    for (status, weight) in table {
        if pick < *weight {
            return status;
        }
        pick -= weight;
    }
    table[0].0
}

fn at(day: NaiveDate, step: usize) -> NaiveDateTime {
    day.and_time(NaiveTime::from_hms_opt(9 + (step as u32 % 8), 30, 0).unwrap_or_default())
}

/// Draws `n` ids from a table's identity sequence, so that rows can reference each
/// other before they are copied in.
async fn reserve_ids(
    conn: &mut PgConnection,
    table: &str,
    n: usize,
) -> Result<Vec<i64>, SeedError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)",
    )
    .bind(table)
    .bind(n as i64)
    .fetch_all(&mut *conn)
    .await?)
}

fn progress_bar(enabled: bool, len: u64, message: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>28} [{bar:40}] {human_pos}/{human_len} {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(message.to_owned());
    bar
}
