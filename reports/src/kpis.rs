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
