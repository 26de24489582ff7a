//! Key performance indicators: a value now, the value one interval earlier,
//! a target and a warning band.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::frames::round1;
use crate::model::{Direction, Kpi, KpiState, Trend};
use crate::params::Band;

#[derive(Debug, Clone, Copy)]
pub struct KpiDefinition {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub direction: Direction,
    /// Default target and warning threshold.
    pub band: Band,
}

const fn def(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    direction: Direction,
    target: u32,
    warning: u32,
) -> KpiDefinition {
    KpiDefinition {
        key,
        label,
        unit,
        direction,
        band: Band { target, warning },
    }
}

use Direction::{HigherIsBetter, LowerIsBetter};

/// The KPIs, in the order they are reported.
pub const KPI_DEFINITIONS: [KpiDefinition; 8] = [
    def(
        "readiness",
        "Control readiness",
        "%",
        HigherIsBetter,
        90,
        70,
    ),
    def(
        "evidence_coverage",
        "Evidence coverage",
        "%",
        HigherIsBetter,
        95,
        80,
    ),
    def(
        "failed_requirements",
        "Failed requirements",
        "",
        LowerIsBetter,
        0,
        5,
    ),
    def(
        "overdue_requirements",
        "Overdue requirements",
        "",
        LowerIsBetter,
        0,
        25,
    ),
    def(
        "overdue_certifications",
        "Certifications past target",
        "",
        LowerIsBetter,
        0,
        1,
    ),
    def(
        "open_high_risks",
        "Open high and critical risks",
        "",
        LowerIsBetter,
        0,
        5,
    ),
    def(
        "risks_above_appetite",
        "Risks above appetite",
        "",
        LowerIsBetter,
        0,
        3,
    ),
    def(
        "risk_reduction",
        "Risk reduction by controls",
        "%",
        HigherIsBetter,
        50,
        30,
    ),
];

/// KPI values at one date, by key.
pub type KpiValues = BTreeMap<&'static str, f64>;

fn state(direction: Direction, value: f64, band: Band) -> KpiState {
    let (target, warning) = (f64::from(band.target), f64::from(band.warning));
    match direction {
        HigherIsBetter if value >= target => KpiState::Good,
        HigherIsBetter if value >= warning => KpiState::Warning,
        LowerIsBetter if value <= target => KpiState::Good,
        LowerIsBetter if value <= warning => KpiState::Warning,
        _ => KpiState::Breach,
    }
}

pub fn kpis(
    now: &KpiValues,
    previous: &KpiValues,
    previous_as_of: NaiveDate,
    overrides: &BTreeMap<&'static str, Band>,
) -> Vec<Kpi> {
    KPI_DEFINITIONS
        .iter()
        .map(|d| {
            let value = round1(now.get(d.key).copied().unwrap_or(0.0));
            let before = round1(previous.get(d.key).copied().unwrap_or(0.0));
            let band = overrides.get(d.key).copied().unwrap_or(d.band);
            let trend = if value > before {
                Trend::Up
            } else if value < before {
                Trend::Down
            } else {
                Trend::Flat
            };
            let improving = match (trend, d.direction) {
                (Trend::Flat, _) => None,
                (Trend::Up, HigherIsBetter) | (Trend::Down, LowerIsBetter) => Some(true),
                _ => Some(false),
            };
            Kpi {
                key: d.key,
                label: d.label,
                unit: d.unit,
                value,
                previous: before,
                previous_as_of,
                target: f64::from(band.target),
                warning: f64::from(band.warning),
                direction: d.direction,
                state: state(d.direction, value, band),
                trend,
                improving,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{Cert, Req, Risk, dataset, on, params};

    fn values(pairs: [(&'static str, f64); 8]) -> KpiValues {
        KpiValues::from(pairs)
    }

    /// key, value, previous, state, trend, improving
    type Judged<'a> = (&'a str, f64, f64, &'a str, &'a str, Option<bool>);

    fn judged(kpis: &[Kpi]) -> Vec<Judged<'_>> {
        kpis.iter()
            .map(|k| {
                (
                    k.key,
                    k.value,
                    k.previous,
                    k.state.as_str(),
                    k.trend.as_str(),
                    k.improving,
                )
            })
            .collect()
    }

    #[test]
    fn each_kpi_is_judged_against_its_band_in_its_direction_with_its_trend() {
        let now = values([
            ("readiness", 92.0),
            ("evidence_coverage", 85.0),
            ("failed_requirements", 3.0),
            ("overdue_requirements", 30.0),
            ("overdue_certifications", 0.0),
            ("open_high_risks", 6.0),
            ("risks_above_appetite", 3.0),
            ("risk_reduction", 66.66),
        ]);
        let before = values([
            ("readiness", 80.0),
            ("evidence_coverage", 85.0),
            ("failed_requirements", 3.0),
            ("overdue_requirements", 20.0),
            ("overdue_certifications", 1.0),
            ("open_high_risks", 6.0),
            ("risks_above_appetite", 4.0),
            ("risk_reduction", 40.0),
        ]);
        let k = kpis(&now, &before, on(-30), &BTreeMap::new());
        assert_eq!(
            judged(&k),
            [
                ("readiness", 92.0, 80.0, "good", "up", Some(true)),
                ("evidence_coverage", 85.0, 85.0, "warning", "flat", None),
                ("failed_requirements", 3.0, 3.0, "warning", "flat", None),
                (
                    "overdue_requirements",
                    30.0,
                    20.0,
                    "breach",
                    "up",
                    Some(false)
                ),
                (
                    "overdue_certifications",
                    0.0,
                    1.0,
                    "good",
                    "down",
                    Some(true)
                ),
                ("open_high_risks", 6.0, 6.0, "breach", "flat", None),
                (
                    "risks_above_appetite",
                    3.0,
                    4.0,
                    "warning",
                    "down",
                    Some(true)
                ),
                ("risk_reduction", 66.7, 40.0, "good", "up", Some(true)),
            ]
        );
        assert!(k.iter().all(|k| k.previous_as_of == on(-30)));
        assert_eq!((k[0].target, k[0].warning, k[0].unit), (90.0, 70.0, "%"));
    }

    #[test]
    fn a_band_override_moves_the_state_and_a_missing_value_counts_as_zero() {
        let now = KpiValues::from([("readiness", 92.0)]);
        let overrides = BTreeMap::from([(
            "readiness",
            Band {
                target: 95,
                warning: 90,
            },
        )]);
        let k = kpis(&now, &KpiValues::new(), on(-30), &overrides);
        assert_eq!(k.len(), KPI_DEFINITIONS.len());
        assert_eq!(
            (k[0].state, k[0].target, k[0].warning),
            (KpiState::Warning, 95.0, 90.0)
        );
        // no value: zero, which breaches a higher-is-better target
        assert_eq!((k[1].value, k[1].state), (0.0, KpiState::Breach));
    }

    /// One certification 10 days past its target: requirements 1 and 2
    /// implemented and evidenced, 3 failed and 5 days overdue, 4 in progress,
    /// 5 not applicable. Risks as (inherent, residual): 1 open (25, 12), 2
    /// treating (16, 4), 3 accepted (20, 16), 4 closed (25, 25).
    fn programme() -> crate::Dataset {
        dataset(
            vec![Cert::new(1, -300, -10)],
            vec![
                Req::new(1, 1, vec![(-100, "implemented")])
                    .evidenced(-10)
                    .evidenced_before(),
                Req::new(2, 1, vec![(-100, "implemented")])
                    .evidenced(-20)
                    .evidenced_before(),
                Req::new(3, 1, vec![(-100, "in_progress"), (-50, "failed")]).due(-5),
                Req::new(4, 1, vec![(-100, "in_progress")]).due(30),
                Req::new(5, 1, vec![(-100, "not_applicable")]),
            ],
            vec![
                Risk::new(1, (5, 5), (3, 4), vec![(-100, "open")]),
                Risk::new(2, (4, 4), (2, 2), vec![(-100, "treating")]),
                Risk::new(3, (5, 4), (4, 4), vec![(-100, "accepted")]),
                Risk::new(4, (5, 5), (5, 5), vec![(-100, "open"), (-60, "closed")]),
            ],
            vec![],
        )
    }

    #[test]
    fn kpi_values_are_taken_from_the_sections_now_and_one_interval_earlier() {
        let report =
            crate::compute(programme(), &params(|raw| raw.appetite = Some(9)), false).unwrap();
        let values: Vec<(&str, f64, f64)> = report
            .kpis
            .iter()
            .map(|k| (k.key, k.value, k.previous))
            .collect();
        assert_eq!(
            values,
            [
                // 2 of 4 applicable, now and a month ago
                ("readiness", 50.0, 50.0),
                ("evidence_coverage", 50.0, 50.0),
                ("failed_requirements", 1.0, 1.0),
                // requirement 3 and the certification fell due since
                ("overdue_requirements", 1.0, 0.0),
                ("overdue_certifications", 1.0, 0.0),
                // risk 1 (12, high); 2 is low, 3 accepted, 4 closed
                ("open_high_risks", 1.0, 1.0),
                // carried residual above 9: risks 1 and 3
                ("risks_above_appetite", 2.0, 2.0),
                // carried residual 32 of inherent 61: 100 - 52.5
                ("risk_reduction", 47.5, 47.5),
            ]
        );
        assert_eq!(report.kpis[0].previous_as_of, on(-30));
    }
}
