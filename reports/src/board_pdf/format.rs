//! Number, date and word formatting shared by every section.
//!
//! The PDF must print exactly what the JSON endpoints return: every `f64` with
//! one decimal (`{:.1}`), every integer with `{}` and no thousands separators,
//! dates as ISO `YYYY-MM-DD`.

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::{Kpi, RiskLevel};

/// A model `f64` with one decimal.
pub(super) fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// A model percentage: `63.2%`.
pub(super) fn pct(v: f64) -> String {
    format!("{v:.1}%")
}

/// A KPI figure with its unit: `63.2%`, `12.0 days`, or bare `3.0`.
pub(super) fn with_unit(v: f64, unit: &str) -> String {
    match unit {
        "" => format!("{v:.1}"),
        "%" => format!("{v:.1}%"),
        unit => format!("{v:.1} {unit}"),
    }
}

/// The KPI's current value with its unit.
pub(super) fn kpi_value(kpi: &Kpi) -> String {
    with_unit(kpi.value, kpi.unit)
}

/// ISO date.
pub(super) fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// An optional date, or an em dash.
pub(super) fn opt_date(d: Option<NaiveDate>) -> String {
    d.map_or_else(|| DASH.to_owned(), date)
}

/// A UTC timestamp to the minute.
pub(super) fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// Placeholder for a missing value.
pub(super) const DASH: &str = "—";

/// `1 risk`, `2 risks`.
pub(super) fn count(n: u64, singular: &str, plural: &str) -> String {
    if n == 1 {
        format!("{n} {singular}")
    } else {
        format!("{n} {plural}")
    }
}

/// `is` or `are` agreeing with `n`.
pub(super) fn is_are(n: u64) -> &'static str {
    if n == 1 { "is" } else { "are" }
}

/// A residual/inherent rating as `20 critical`.
pub(super) fn rating(score: u8, level: RiskLevel) -> String {
    format!("{score} {}", level.as_str())
}

/// The score range of a risk level, as printed in legends.
pub(super) fn level_range(level: RiskLevel) -> String {
    let scores = level.scores();
    format!("{}–{}", scores.start(), scores.end())
}

/// Joins words as `a, b and c`.
pub(super) fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Lowercase words for an outlook: `on track`.
pub(super) fn outlook_words(outlook: crate::model::Outlook) -> &'static str {
    use crate::model::Outlook;
    match outlook {
        Outlook::Complete => "complete",
        Outlook::OnTrack => "on track",
        Outlook::AtRisk => "at risk",
        Outlook::Stalled => "stalled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_the_contract() {
        assert_eq!(with_unit(63.2, "%"), "63.2%");
        assert_eq!(with_unit(12.0, "days"), "12.0 days");
        assert_eq!(with_unit(3.0, ""), "3.0");
        assert_eq!(with_unit(-0.5, "%"), "-0.5%");
    }

    #[test]
    fn joins_read_naturally() {
        let w = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(join_and(&w(&[])), "");
        assert_eq!(join_and(&w(&["a"])), "a");
        assert_eq!(join_and(&w(&["a", "b"])), "a and b");
        assert_eq!(join_and(&w(&["a", "b", "c"])), "a, b and c");
        assert_eq!(count(1, "risk", "risks"), "1 risk");
        assert_eq!(count(0, "risk", "risks"), "0 risks");
    }
}
