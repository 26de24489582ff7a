//! Number, date and word formatting shared by every section.
//!
//! The PDF must print exactly what the JSON endpoints return: every `f64` with
//! one decimal (`{:.1}`), every integer with `{}` and no thousands separators,
//! dates as ISO `YYYY-MM-DD`.

use chrono::{DateTime, NaiveDate, Utc};

use crate::model::RiskLevel;
pub(super) use crate::words::{count, join_and};

/// A model `f64` with one decimal.
pub(super) fn f1(v: f64) -> String {
    format!("{v:.1}")
}

/// A model percentage: `63.2%`.
pub(super) fn pct(v: f64) -> String {
    format!("{v:.1}%")
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

/// A residual/inherent rating as `20 critical`.
pub(super) fn rating(score: u8, level: RiskLevel) -> String {
    format!("{score} {}", level.as_str())
}

/// The score range of a risk level, as printed in legends.
pub(super) fn level_range(level: RiskLevel) -> String {
    let scores = level.scores();
    format!("{}–{}", scores.start(), scores.end())
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
    fn figures_print_as_the_json_holds_them() {
        use crate::model::Figure;
        assert_eq!(Figure::Percent(63.2).to_string(), "63.2%");
        assert_eq!(Figure::Percent(-0.5).to_string(), "-0.5%");
        assert_eq!(Figure::Count(3).to_string(), "3");
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
