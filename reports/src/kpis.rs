//! Key performance indicators: a value now, the value one interval earlier,
//! a target and a warning band.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::{Direction, Kpi, KpiState, Measure, Trend};
use crate::params::Band;

#[derive(Debug, Clone, Copy)]
pub struct KpiDefinition {
    pub key: &'static str,
    pub label: &'static str,
    pub measure: Measure,
    pub direction: Direction,
    /// Default target and warning threshold.
    pub band: Band,
}

const fn def(
    key: &'static str,
    label: &'static str,
    measure: Measure,
    direction: Direction,
    target: u32,
    warning: u32,
) -> KpiDefinition {
    KpiDefinition {
        key,
        label,
        measure,
        direction,
        band: Band { target, warning },
    }
}

use Direction::{HigherIsBetter, LowerIsBetter};
use Measure::{Count, Percent};

/// The KPIs, in the order they are reported.
pub const KPI_DEFINITIONS: [KpiDefinition; 8] = [
    def(
        "readiness",
        "Control readiness",
        Percent,
        HigherIsBetter,
        90,
        70,
    ),
    def(
        "evidence_coverage",
        "Evidence coverage",
        Percent,
        HigherIsBetter,
        95,
        80,
    ),
    def(
        "failed_requirements",
        "Failed requirements",
        Count,
        LowerIsBetter,
        0,
        5,
    ),
    def(
        "overdue_requirements",
        "Overdue requirements",
        Count,
        LowerIsBetter,
        0,
        25,
    ),
    def(
        "overdue_certifications",
        "Certifications past target",
        Count,
        LowerIsBetter,
        0,
        1,
    ),
    def(
        "open_high_risks",
        "High and critical risks, open or in treatment",
        Count,
        LowerIsBetter,
        0,
        5,
    ),
    def(
        "risks_above_appetite",
        "Risks above appetite",
        Count,
        LowerIsBetter,
        0,
        3,
    ),
    def(
        "risk_reduction",
        "Risk reduction by controls",
        Percent,
        HigherIsBetter,
        50,
        30,
    ),
];

/// KPI values at one date, by key, as computed (made into a [`Figure`] of
/// the KPI's measure when reported). A KPI without a value has no data (a
/// percentage of nothing) and is reported as `no_data`, never judged.
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
            let value = now.get(d.key).map(|&v| d.measure.figure(v));
            let before = previous.get(d.key).map(|&v| d.measure.figure(v));
            let band = overrides.get(d.key).copied().unwrap_or(d.band);
            let trend = match (value, before) {
                (Some(v), Some(b)) if v.as_f64() > b.as_f64() => Trend::Up,
                (Some(v), Some(b)) if v.as_f64() < b.as_f64() => Trend::Down,
                _ => Trend::Flat,
            };
            let improving = match (trend, d.direction) {
                (Trend::Flat, _) => None,
                (Trend::Up, HigherIsBetter) | (Trend::Down, LowerIsBetter) => Some(true),
                _ => Some(false),
            };
            Kpi {
                key: d.key,
                label: d.label,
                unit: d.measure.unit(),
                value,
                previous: before,
                previous_as_of,
                target: d.measure.figure(f64::from(band.target)),
                warning: d.measure.figure(f64::from(band.warning)),
                direction: d.direction,
                state: value.map_or(KpiState::NoData, |v| state(d.direction, v.as_f64(), band)),
                trend,
                improving,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Figure;
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
                    k.value.map_or(f64::NAN, Figure::as_f64),
                    k.previous.map_or(f64::NAN, Figure::as_f64),
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
        assert_eq!(
            (k[0].target, k[0].warning, k[0].unit),
            (Figure::Percent(90.0), Figure::Percent(70.0), "%")
        );
        assert_eq!(
            (k[2].value, k[2].target, k[2].warning, k[2].unit),
            (
                Some(Figure::Count(3)),
                Figure::Count(0),
                Figure::Count(5),
                ""
            )
        );
    }

    #[test]
    fn a_band_override_moves_the_state_and_a_missing_value_is_no_data() {
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
            (
                KpiState::Warning,
                Figure::Percent(95.0),
                Figure::Percent(90.0)
            )
        );
        // no value: no data, never judged, no trend
        assert_eq!(
            (k[1].value, k[1].previous, k[1].state, k[1].trend),
            (None, None, KpiState::NoData, Trend::Flat)
        );
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
            .map(|k| {
                (
                    k.key,
                    k.value.map_or(f64::NAN, Figure::as_f64),
                    k.previous.map_or(f64::NAN, Figure::as_f64),
                )
            })
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

    #[test]
    fn counts_are_integers_and_percentages_have_one_decimal_in_json() {
        let now = KpiValues::from([("readiness", 63.25), ("failed_requirements", 27.0)]);
        let k = kpis(&now, &KpiValues::new(), on(-30), &BTreeMap::new());
        let json = serde_json::to_value(&k).unwrap();
        let readiness = &json[0];
        assert_eq!(readiness["value"], serde_json::json!(63.3));
        assert_eq!(readiness["target"], serde_json::json!(90.0));
        let failed = &json[2];
        assert_eq!(failed["key"], "failed_requirements");
        for field in ["value", "target", "warning"] {
            assert!(failed[field].is_u64(), "{field}: {}", failed[field]);
        }
        // nothing measured a month ago: null, not 0
        assert!(failed["previous"].is_null());
        assert_eq!(failed["value"].to_string(), "27");
        assert_eq!(Figure::show(k[2].value), "27");
        assert_eq!(Figure::show(k[0].value), "63.3%");
        assert_eq!(Figure::show(k[1].value), "no data");
    }
}
