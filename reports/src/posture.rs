//! Readiness and evidence per framework, family and certification, and the
//! family × status matrix of each certification.

use std::collections::HashMap;

use polars::prelude::*;

use crate::frames::{
    counts_at, evidence_aggs, i64_at, pct, requirements_at, status_aggs, str_at, u64_at,
};
use crate::load::{Dataset, day};
use crate::model::{CertificationMatrix, MatrixRow, Posture, PostureRow, StatusCounts};

use certscope_domain::evidence::{self, FRESHNESS_DAYS};

/// Requirements as of `at`, with `evidenced` taken from `evidence_column`
/// (the loader computed one column per date it was asked about).
pub fn requirements_on(
    data: &Dataset,
    at: chrono::NaiveDate,
    evidence_column: &str,
) -> PolarsResult<LazyFrame> {
    let frame = requirements_at(&data.requirements, &data.requirement_history, day(at))?;
    Ok(if evidence_column == "evidenced" {
        frame
    } else {
        frame.with_column(col(evidence_column).alias("evidenced"))
    })
}

fn row(key: String, label: String, counts: StatusCounts, evidenced: u64, fresh: u64) -> PostureRow {
    let applicable = counts.applicable();
    PostureRow {
        key,
        label,
        readiness_pct: counts.completion().pct(),
        counts,
        evidenced,
        evidence_coverage_pct: pct(evidenced, applicable),
        fresh,
        freshness_pct: pct(fresh, evidenced),
    }
}

fn grouped(frame: LazyFrame, by: &[&str], fresh_from: i32) -> PolarsResult<DataFrame> {
    let mut aggs = status_aggs();
    aggs.extend(evidence_aggs(fresh_from));
    let keys: Vec<Expr> = by.iter().map(|k| col(*k)).collect();
    frame
        .group_by(keys.clone())
        .agg(aggs)
        .sort(by.to_vec(), SortMultipleOptions::default())
        .collect()
}

/// Posture at `at` over the requirements in `frame`.
pub fn posture(data: &Dataset, frame: LazyFrame, at: chrono::NaiveDate) -> PolarsResult<Posture> {
    let fresh_from = day(evidence::fresh_from(at));
    let frame = frame.with_column(lit(1i32).alias("all"));

    let overall = grouped(frame.clone(), &["all"], fresh_from)?;
    let overall = if overall.height() == 0 {
        row(
            "all".into(),
            "All requirements".into(),
            StatusCounts::default(),
            0,
            0,
        )
    } else {
        row(
            "all".into(),
            "All requirements".into(),
            counts_at(&overall, 0)?,
            u64_at(&overall, "evidenced", 0)?,
            u64_at(&overall, "fresh", 0)?,
        )
    };

    let by_framework = grouped(frame.clone(), &["framework"], fresh_from)?;
    let mut frameworks = Vec::with_capacity(by_framework.height());
    for i in 0..by_framework.height() {
        let slug = str_at(&by_framework, "framework", i)?.to_owned();
        frameworks.push(row(
            slug.clone(),
            slug,
            counts_at(&by_framework, i)?,
            u64_at(&by_framework, "evidenced", i)?,
            u64_at(&by_framework, "fresh", i)?,
        ));
    }

    let by_family = grouped(
        frame.clone(),
        &["framework", "family_key", "family_title"],
        fresh_from,
    )?;
    let mut families = Vec::with_capacity(by_family.height());
    for i in 0..by_family.height() {
        families.push(row(
            format!(
                "{}/{}",
                str_at(&by_family, "framework", i)?,
                str_at(&by_family, "family_key", i)?
            ),
            str_at(&by_family, "family_title", i)?.to_owned(),
            counts_at(&by_family, i)?,
            u64_at(&by_family, "evidenced", i)?,
            u64_at(&by_family, "fresh", i)?,
        ));
    }

    let by_cert = grouped(frame, &["certification_id"], fresh_from)?;
    let found: HashMap<i64, usize> = (0..by_cert.height())
        .map(|i| Ok((i64_at(&by_cert, "certification_id", i)?, i)))
        .collect::<PolarsResult<_>>()?;
    // every certification in scope is listed, with zeros when it has no requirements
    let mut certifications = Vec::new();
    for cert in &data.certifications {
        let (counts, evidenced, fresh) = match found.get(&cert.id) {
            Some(&i) => (
                counts_at(&by_cert, i)?,
                u64_at(&by_cert, "evidenced", i)?,
                u64_at(&by_cert, "fresh", i)?,
            ),
            None => (StatusCounts::default(), 0, 0),
        };
        certifications.push(row(
            cert.id.to_string(),
            cert.name.clone(),
            counts,
            evidenced,
            fresh,
        ));
    }
    Ok(Posture {
        freshness_days: FRESHNESS_DAYS,
        overall,
        frameworks,
        families,
        certifications,
    })
}

/// The family × status matrix of each certification in scope.
pub fn matrix(data: &Dataset, frame: LazyFrame) -> PolarsResult<Vec<CertificationMatrix>> {
    let by = [
        "certification_id",
        "framework",
        "family_key",
        "family_title",
    ];
    let df = frame
        .group_by(by.iter().map(|k| col(*k)).collect::<Vec<_>>())
        .agg(status_aggs())
        .sort(by.to_vec(), SortMultipleOptions::default())
        .collect()?;
    let mut rows: HashMap<i64, Vec<MatrixRow>> = HashMap::new();
    for i in 0..df.height() {
        rows.entry(i64_at(&df, "certification_id", i)?)
            .or_default()
            .push(MatrixRow {
                framework: str_at(&df, "framework", i)?.to_owned(),
                family_key: str_at(&df, "family_key", i)?.to_owned(),
                family_title: str_at(&df, "family_title", i)?.to_owned(),
                counts: counts_at(&df, i)?,
            });
    }
    Ok(data
        .certifications
        .iter()
        .map(|cert| {
            let families = rows.remove(&cert.id).unwrap_or_default();
            let mut totals = StatusCounts::default();
            for r in &families {
                totals.merge(&r.counts);
            }
            CertificationMatrix {
                certification_id: cert.id,
                name: cert.name.clone(),
                framework: cert.framework.clone(),
                totals,
                families,
            }
        })
        .collect())
}
