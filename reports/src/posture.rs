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

/// Sets each row's `previous_readiness_pct` from the same group in `before`
/// (the posture at the previous pack's date), where anything was applicable.
pub fn compare(now: &mut Posture, before: &Posture) {
    fn fill(rows: &mut [PostureRow], before: &[PostureRow]) {
        let then: HashMap<&str, &PostureRow> = before.iter().map(|r| (r.key.as_str(), r)).collect();
        for row in rows {
            row.previous_readiness_pct = then
                .get(row.key.as_str())
                .filter(|r| r.counts.applicable() > 0)
                .map(|r| r.readiness_pct);
        }
    }
    fill(
        std::slice::from_mut(&mut now.overall),
        std::slice::from_ref(&before.overall),
    );
    fill(&mut now.frameworks, &before.frameworks);
    fill(&mut now.families, &before.families);
    fill(&mut now.certifications, &before.certifications);
}

fn row(key: String, label: String, counts: StatusCounts, evidenced: u64, fresh: u64) -> PostureRow {
    let applicable = counts.applicable();
    PostureRow {
        key,
        label,
        readiness_pct: counts.completion().pct(),
        previous_readiness_pct: None,
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
        let name = data.framework_name(&slug).to_owned();
        frameworks.push(row(
            slug,
            name,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Cert, Req, as_of, dataset, on};

    /// Certification 1 (NIST): on the as-of day two implemented AC
    /// requirements (evidence 10 and 200 days old), a failed and a not
    /// applicable AU one; certification 2 (privacy): one in progress, one that
    /// does not exist yet; certification 3: no requirements.
    fn programme() -> Dataset {
        dataset(
            vec![
                Cert::new(1, -300, 60),
                Cert::new(2, -300, 60).framework("privacy"),
                Cert::new(3, -300, 60),
            ],
            vec![
                Req::new(
                    1,
                    1,
                    vec![
                        (-100, "not_started"),
                        (-50, "in_progress"),
                        (-20, "implemented"),
                    ],
                )
                .evidenced(-10),
                Req::new(2, 1, vec![(-100, "not_started"), (-60, "implemented")])
                    .evidenced(-200)
                    .evidenced_before(),
                Req::new(3, 1, vec![(-100, "not_started"), (-40, "failed")])
                    .family("nist-high", "au"),
                Req::new(4, 1, vec![(-100, "not_started"), (-90, "not_applicable")])
                    .family("nist-high", "au")
                    .evidenced(-5)
                    .evidenced_before(),
                Req::new(5, 2, vec![(-10, "not_started"), (-5, "in_progress")])
                    .family("privacy", "pt")
                    .evidenced(-5),
                Req::new(6, 2, vec![(5, "not_started")]).family("privacy", "pt"),
            ],
            vec![],
            vec![],
        )
    }

    fn counts(
        implemented: u64,
        in_progress: u64,
        failed: u64,
        not_applicable: u64,
    ) -> StatusCounts {
        StatusCounts {
            implemented,
            in_progress,
            not_started: 0,
            failed,
            not_applicable,
            total: implemented + in_progress + failed + not_applicable,
        }
    }

    /// key, label, counts, readiness, evidenced, coverage, fresh, freshness
    type Summary = (String, String, StatusCounts, f64, u64, f64, u64, f64);

    fn summary(r: &PostureRow) -> Summary {
        (
            r.key.clone(),
            r.label.clone(),
            r.counts,
            r.readiness_pct,
            r.evidenced,
            r.evidence_coverage_pct,
            r.fresh,
            r.freshness_pct,
        )
    }

    fn row_of(
        key: &str,
        label: &str,
        counts: StatusCounts,
        rest: (f64, u64, f64, u64, f64),
    ) -> Summary {
        (
            key.into(),
            label.into(),
            counts,
            rest.0,
            rest.1,
            rest.2,
            rest.3,
            rest.4,
        )
    }

    fn posture_at(data: &Dataset, at: chrono::NaiveDate, column: &str) -> Posture {
        let frame = requirements_on(data, at, column).unwrap();
        posture(data, frame, at).unwrap()
    }

    #[test]
    fn overall_posture_counts_applicable_requirements_their_evidence_and_its_freshness() {
        let p = posture_at(&programme(), as_of(), "evidenced");
        assert_eq!(p.freshness_days, 180);
        // 2 implemented of 4 applicable; 3 of them evidenced, 2 of those fresh
        assert_eq!(
            summary(&p.overall),
            row_of(
                "all",
                "All requirements",
                counts(2, 1, 1, 1),
                (50.0, 3, 75.0, 2, 66.7)
            )
        );
    }

    #[test]
    fn posture_is_broken_down_by_framework_family_and_certification() {
        let p = posture_at(&programme(), as_of(), "evidenced");
        let nist = (66.7, 2, 66.7, 1, 50.0);
        let privacy = (0.0, 1, 100.0, 1, 100.0);
        assert_eq!(
            p.frameworks.iter().map(summary).collect::<Vec<_>>(),
            [
                row_of(
                    "nist-high",
                    "NIST SP 800-53 Rev. 5 High",
                    counts(2, 0, 1, 1),
                    nist
                ),
                row_of("privacy", "privacy", counts(0, 1, 0, 0), privacy),
            ]
        );
        assert_eq!(
            p.families.iter().map(summary).collect::<Vec<_>>(),
            [
                row_of(
                    "nist-high/ac",
                    "Family AC",
                    counts(2, 0, 0, 0),
                    (100.0, 2, 100.0, 1, 50.0)
                ),
                row_of(
                    "nist-high/au",
                    "Family AU",
                    counts(0, 0, 1, 1),
                    (0.0, 0, 0.0, 0, 0.0)
                ),
                row_of("privacy/pt", "Family PT", counts(0, 1, 0, 0), privacy),
            ]
        );
        // every certification in scope, with zeros when it has no requirements
        assert_eq!(
            p.certifications.iter().map(summary).collect::<Vec<_>>(),
            [
                row_of("1", "Certification 1", counts(2, 0, 1, 1), nist),
                row_of("2", "Certification 2", counts(0, 1, 0, 0), privacy),
                row_of(
                    "3",
                    "Certification 3",
                    StatusCounts::default(),
                    (0.0, 0, 0.0, 0, 0.0)
                ),
            ]
        );
    }

    #[test]
    fn an_earlier_posture_uses_the_statuses_and_evidence_of_that_day() {
        // 30 days earlier: requirement 1 was in progress, 5 did not exist, and
        // only requirement 2 (of 3 applicable) was evidenced
        let p = posture_at(&programme(), on(-30), "evidenced_prev");
        assert_eq!(p.overall.counts, counts(1, 1, 1, 1));
        assert_eq!(p.overall.readiness_pct, 33.3);
        assert_eq!(p.overall.evidenced, 1);
        assert_eq!(p.overall.evidence_coverage_pct, 33.3);
    }

    #[test]
    fn the_matrix_counts_each_family_of_each_certification() {
        let data = programme();
        let frame = requirements_on(&data, as_of(), "evidenced").unwrap();
        let m = matrix(&data, frame).unwrap();
        type Families = Vec<(String, StatusCounts)>;
        let shape: Vec<(i64, StatusCounts, Families)> = m
            .iter()
            .map(|c| {
                (
                    c.certification_id,
                    c.totals,
                    c.families
                        .iter()
                        .map(|f| (format!("{}/{}", f.framework, f.family_key), f.counts))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (
                    1,
                    counts(2, 0, 1, 1),
                    vec![
                        ("nist-high/ac".to_owned(), counts(2, 0, 0, 0)),
                        ("nist-high/au".to_owned(), counts(0, 0, 1, 1)),
                    ]
                ),
                (
                    2,
                    counts(0, 1, 0, 0),
                    vec![("privacy/pt".to_owned(), counts(0, 1, 0, 0))]
                ),
                (3, StatusCounts::default(), vec![]),
            ]
        );
    }
}
