//! `certscope report board`: the board PDF straight from PostgreSQL, with the
//! same parameters, model and renderer as `GET /v1/reports/board.pdf`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use certscope_reports::board_pdf::{self, PageSize};
use certscope_reports::{RawParams, ReportParams, ReportScope};
use chrono::NaiveDate;
use clap::Args;

use crate::GlobalArgs;
use crate::database;

/// Report parameters, as on the HTTP API.
#[derive(Debug, Args, Clone, Default)]
pub struct ReportArgs {
    /// Framework slug to limit the report to.
    #[arg(long)]
    pub framework: Option<String>,
    /// Certification id to limit the report to (repeat).
    #[arg(long = "certification")]
    pub certifications: Vec<i64>,
    /// The day the numbers describe (default: today).
    #[arg(long)]
    pub as_of: Option<NaiveDate>,
    /// First day of the trend period (default: 12 intervals before as-of).
    #[arg(long)]
    pub from: Option<NaiveDate>,
    /// Trend points: week or month.
    #[arg(long)]
    pub interval: Option<String>,
    /// The day to compare with, the previous pack's as-of (default: one
    /// interval before as-of).
    #[arg(long)]
    pub previous_as_of: Option<NaiveDate>,
    /// Residual score above which a risk is outside appetite (default 12).
    #[arg(long)]
    pub appetite: Option<u32>,
    /// Days ahead that count as upcoming (default 30).
    #[arg(long)]
    pub horizon_days: Option<u32>,
    /// KPI target, `key=value` (repeat), e.g. `readiness=95`.
    #[arg(long = "target")]
    pub targets: Vec<String>,
    /// KPI warning threshold, `key=value` (repeat).
    #[arg(long = "warning")]
    pub warnings: Vec<String>,
}

impl ReportArgs {
    pub fn raw(&self) -> anyhow::Result<RawParams> {
        let mut targets = Vec::new();
        for (list, is_target) in [(&self.targets, true), (&self.warnings, false)] {
            for item in list {
                let (key, value) = item
                    .split_once('=')
                    .with_context(|| format!("{item:?} is not key=value"))?;
                let value: u32 = value
                    .parse()
                    .with_context(|| format!("{item:?}: the value must be a whole number"))?;
                targets.push(if is_target {
                    (key.to_owned(), Some(value), None)
                } else {
                    (key.to_owned(), None, Some(value))
                });
            }
        }
        Ok(RawParams {
            framework: self.framework.clone(),
            certifications: self.certifications.clone(),
            as_of: self.as_of,
            from: self.from,
            to: None,
            interval: self.interval.clone(),
            previous_as_of: self.previous_as_of,
            appetite: self.appetite,
            horizon_days: self.horizon_days,
            limit: None,
            targets,
        })
    }
}

pub async fn board(
    global: &GlobalArgs,
    org: &str,
    out: &PathBuf,
    size: &str,
    args: &ReportArgs,
) -> anyhow::Result<()> {
    let size = PageSize::parse(size).with_context(|| format!("size {size:?}: use a4 or letter"))?;
    let params = ReportParams::new(args.raw()?, chrono::Utc::now().date_naive())?;
    let db = database::open(global).await?;
    certscope_store::migrate(&db.pool).await?;
    let org_id = database::organization_id(&db.pool, org).await?;
    let started = Instant::now();
    let scope = ReportScope {
        organization_id: org_id,
        certifications: None,
    };
    let data = certscope_reports::load(&db.pool, &scope, &params).await?;
    let loaded = started.elapsed();
    let (report, pdf) = tokio::task::spawn_blocking(move || {
        let report = certscope_reports::compute(data, &params, false)?;
        let pdf = board_pdf::render_board(&report, size)?;
        anyhow::Ok((report, pdf))
    })
    .await??;
    std::fs::write(out, &pdf).with_context(|| format!("failed to write {}", out.display()))?;
    println!(
        "wrote {} ({} bytes, {}) for {} as of {} at position {} in {:.0} ms ({:.0} ms reading)",
        out.display(),
        pdf.len(),
        size.as_str(),
        report.meta.organization.slug,
        report.meta.as_of,
        report.meta.position,
        started.elapsed().as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3
    );
    db.close().await
}
