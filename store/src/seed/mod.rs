//! Deterministic demo and benchmark data built on the imported (real) controls.
//!
//! Everything is derived from one ChaCha stream seeded by `--seed` and from the
//! `as_of` date, so the same seed, size and date give the same rows. Tables are
//! loaded with `COPY` inside one transaction per organization (a failed seed leaves
//! no half organization). The session sets `certscope.bulk_load` so the history
//! triggers skip their "created now" rows: the seed writes twelve months of
//! back-dated history itself. Change capture is never skipped.
//!
//! One organization is seeded in the order its rows refer to each other, each
//! part in its own module: `people`, `certifications` (with their history and
//! the auditor's assignment), `requirements`, `evidence`, `risks` (with their
//! links to requirements); `history` collects the status
//! history they write, copied last. The order of the parts, of their draws
//! from the random stream and of the ids they reserve is what makes a seed
//! reproducible: a change here changes every seeded database.

mod certifications;
mod copy;
mod evidence;
mod history;
mod people;
mod requirements;
mod risks;
pub mod text;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::{Acquire, PgConnection, PgPool};

use history::History;
use text::{ORGS, OrgProfile};

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

/// The reference data every organization's programmes are built on.
struct Catalog {
    frameworks: Vec<FrameworkRow>,
    /// Controls in force, by framework, in catalog order.
    controls: HashMap<i64, Vec<ControlRow>>,
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

impl Catalog {
    async fn load(pool: &PgPool) -> Result<Self, SeedError> {
        let frameworks: Vec<FrameworkRow> =
            sqlx::query_as("SELECT id, slug FROM frameworks ORDER BY id")
                .fetch_all(pool)
                .await?;
        if frameworks.is_empty() {
            return Err(SeedError::NoFrameworks);
        }
        let rows: Vec<ControlRow> = sqlx::query_as(
            "SELECT id, framework_id, display_id, title, family_key, family_title, statement \
             FROM controls WHERE NOT withdrawn ORDER BY framework_id, sort_key, id",
        )
        .fetch_all(pool)
        .await?;
        let mut controls: HashMap<i64, Vec<ControlRow>> = HashMap::new();
        for c in rows {
            controls.entry(c.framework_id).or_default().push(c);
        }
        Ok(Self {
            frameworks,
            controls,
        })
    }
}

/// Seeds organizations and their data. Refuses to touch an organization that
/// already exists.
pub async fn seed(pool: &PgPool, config: &SeedConfig) -> Result<SeedReport, SeedError> {
    config.validate()?;
    let started = Instant::now();
    let catalog = Catalog::load(pool).await?;
    let profiles = &ORGS[..config.organizations];
    let slugs: Vec<&str> = profiles.iter().map(|o| o.slug).collect();
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
    for (index, profile) in profiles.iter().enumerate() {
        // each organization draws from its own stream, so that its data does
        // not depend on how much the ones before it drew
        let org_rng = ChaCha8Rng::seed_from_u64(rng.random());
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT set_config('certscope.bulk_load', 'on', true)")
            .execute(&mut *tx)
            .await?;
        let id = insert_organization(&mut tx, profile).await?;
        report.organizations += 1;
        OrgSeed {
            conn: &mut tx,
            config,
            catalog: &catalog,
            profile,
            index,
            large: index == 0 && config.large_org_evidence.is_some(),
            id,
            rng: org_rng,
            report: &mut report,
            history: History::new(),
        }
        .seed()
        .await?;
        tx.commit().await?;
    }
    // a bulk load leaves the planner without statistics of what it loaded
    // until autovacuum analyses it, a minute or more into the server's life,
    // which a private cluster started for one command may never reach
    sqlx::query("ANALYZE").execute(&mut *conn).await?;
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn insert_organization(
    conn: &mut PgConnection,
    profile: &OrgProfile,
) -> Result<i64, SeedError> {
    Ok(
        sqlx::query_scalar("INSERT INTO organizations (slug, name) VALUES ($1, $2) RETURNING id")
            .bind(profile.slug)
            .bind(profile.name)
            .fetch_one(conn)
            .await?,
    )
}

/// One organization being seeded: what every part reads (the configuration,
/// the catalog, the profile), and what they share: the connection of the
/// organization's transaction, its random stream, the report, and the status
/// history the parts append to.
struct OrgSeed<'a> {
    conn: &'a mut PgConnection,
    config: &'a SeedConfig,
    catalog: &'a Catalog,
    profile: &'a OrgProfile,
    /// Position among the seeded organizations (varies names and statuses).
    index: usize,
    /// The benchmark's large organization: more certifications, evidence, risks.
    large: bool,
    id: i64,
    rng: ChaCha8Rng,
    report: &'a mut SeedReport,
    history: History,
}

impl OrgSeed<'_> {
    async fn seed(mut self) -> Result<(), SeedError> {
        let people = self.people().await?;
        let certifications = self.certifications(&people).await?;
        let requirements = self.requirements(&people, &certifications).await?;
        self.evidence(&people, &certifications, &requirements)
            .await?;
        self.risks(&people, &requirements).await?;
        // last: the history refers to every row above
        self.report.history += self.history.finish(self.conn).await?;
        Ok(())
    }

    fn as_of(&self) -> NaiveDate {
        self.config.as_of
    }

    /// Draws `n` ids from a table's identity sequence, so that rows can refer
    /// to each other before they are copied in.
    async fn reserve_ids(&mut self, table: &str, n: usize) -> Result<Vec<i64>, SeedError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        Ok(sqlx::query_scalar(
            "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)",
        )
        .bind(table)
        .bind(n as i64)
        .fetch_all(&mut *self.conn)
        .await?)
    }
}
