//! Compliance analytics: rows from PostgreSQL, aggregated with polars into one
//! [`model::Report`], rendered as JSON/CSV sections by the API and as the
//! board PDF by [`board_pdf`].
//!
//! [`load`] reads (async, sqlx); [`compute`] aggregates (CPU-bound: run it off
//! the async runtime). Neither knows HTTP or tantivy.

pub mod board_pdf;
pub mod csv;
mod frames;
mod heatmap;
pub mod kpis;
pub mod load;
pub mod model;
mod overdue;
pub mod params;
mod posture;
#[cfg(test)]
mod sample;
pub mod section;
pub mod summary;
mod trends;
mod words;

use chrono::{NaiveDate, Utc};
use polars::prelude::*;

pub use load::{Dataset, load};
pub use params::{ParamError, RawParams, ReportParams, ReportScope};

use crate::kpis::KpiValues;
use crate::model::{CertificationRef, Meta, OverallStatus, Period, Report, Summary};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("framework {0:?} does not exist")]
    UnknownFramework(String),
    #[error("certification {0} does not exist")]
    CertificationNotFound(i64),
    #[error("certification {0} is outside the caller's assignments")]
    Forbidden(i64),
    #[error("organization does not exist")]
    OrganizationNotFound,
    #[error("database error while loading the report")]
    Db(#[from] sqlx::Error),
    #[error("aggregation failed")]
    Polars(#[from] PolarsError),
}

/// Aggregates a loaded dataset into the report model.
#[tracing::instrument(skip_all, fields(org_id = data.organization.id))]
pub fn compute(
    mut data: Dataset,
    params: &ReportParams,
    restricted: bool,
) -> Result<Report, ReportError> {
    let as_of = params.as_of;
    let previous = params.previous_as_of();
    // certifications that did not exist yet on the report date are left out
    let existing = frames::state_at(&data.certification_history, load::day(as_of))?.collect()?;
    let existing: std::collections::HashSet<i64> = existing
        .column("entity_id")?
        .i64()?
        .iter()
        .flatten()
        .collect();
    data.certifications.retain(|c| existing.contains(&c.id));

    let now = posture::requirements_on(&data, as_of, "evidenced")?;
    let mut posture = posture::posture(&data, now.clone(), as_of)?;
    let matrix = posture::matrix(&data, now.clone())?;
    let heatmap = heatmap::heatmap(&data, as_of, previous, params.appetite)?;
    let trends = trends::trends(&data, params)?;
    let forecast = trends::forecast(&data, params)?;
    let overdue = overdue::overdue(&data, now, params)?;

    let current = trends
        .points
        .last()
        .filter(|p| p.date == as_of)
        .cloned()
        .map_or_else(|| trends::point(&data, as_of), Ok)?;
    let values_now = kpi_values(&data, &posture, &current, as_of, params.appetite)?;
    let before = posture::requirements_on(&data, previous, "evidenced_prev")?;
    let posture_before = posture::posture(&data, before, previous)?;
    posture::compare(&mut posture, &posture_before);
    let point_before = trends::point(&data, previous)?;
    let values_before = kpi_values(
        &data,
        &posture_before,
        &point_before,
        previous,
        params.appetite,
    )?;
    let kpis = kpis::kpis(&values_now, &values_before, previous, &params.targets);

    let meta = Meta {
        organization: data.organization.clone(),
        as_of,
        period: Period {
            from: params.from,
            to: as_of,
            interval: params.interval,
        },
        position: data.position.clone(),
        generated_at: Utc::now(),
        framework: params.framework.clone(),
        certifications: data
            .certifications
            .iter()
            .map(|c| CertificationRef {
                id: c.id,
                name: c.name.clone(),
                framework: c.framework.clone(),
                framework_name: data.framework_name(&c.framework).to_owned(),
            })
            .collect(),
        restricted,
        appetite: params.appetite,
        horizon_days: params.horizon_days,
    };
    let mut report = Report {
        meta,
        summary: Summary {
            status: OverallStatus::NoData,
            reasons: Vec::new(),
            messages: Vec::new(),
            decisions: Vec::new(),
        },
        posture,
        heatmap,
        matrix,
        trends,
        forecast,
        overdue,
        kpis,
    };
    // computed last: it reads every other section
    report.summary = summary::summary(&report);
    Ok(report)
}

fn kpi_values(
    data: &Dataset,
    posture: &model::Posture,
    point: &model::TrendPoint,
    at: NaiveDate,
    appetite: u8,
) -> Result<KpiValues, ReportError> {
    let risks = heatmap::risks_at(data, at)?
        .lazy()
        .filter(frames::rule::risk_carried())
        .select([
            col("residual")
                .gt(lit(u32::from(appetite)))
                .cast(DataType::UInt64)
                .sum()
                .alias("above"),
            col("residual")
                .cast(DataType::UInt64)
                .sum()
                .alias("residual"),
            col("inherent")
                .cast(DataType::UInt64)
                .sum()
                .alias("inherent"),
        ])
        .collect()?;
    let above = frames::u64_at(&risks, "above", 0)?;
    let residual = frames::u64_at(&risks, "residual", 0)?;
    let inherent = frames::u64_at(&risks, "inherent", 0)?;
    let mut values = KpiValues::from([
        ("failed_requirements", posture.overall.counts.failed as f64),
        ("overdue_requirements", point.overdue_requirements as f64),
        (
            "overdue_certifications",
            point.overdue_certifications as f64,
        ),
        ("open_high_risks", point.open_risks.high_or_worse() as f64),
        ("risks_above_appetite", above as f64),
    ]);
    // percentages of nothing have no data (left out: reported as no_data)
    if posture.overall.counts.applicable() > 0 {
        values.insert("readiness", posture.overall.readiness_pct);
        values.insert("evidence_coverage", posture.overall.evidence_coverage_pct);
    }
    if inherent > 0 {
        values.insert(
            "risk_reduction",
            frames::round1(100.0 - frames::pct(residual, inherent)),
        );
    }
    Ok(values)
}
