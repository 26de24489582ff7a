//! Readiness (completion): implemented requirements among the applicable ones.
//! The SQL twin, used by the event deriver and certification snapshots, is
//! `certscope_completion_pct` (migration 0005); `tests/sql_rules.rs` keeps them
//! equal.

use serde::Serialize;

use crate::status::RequirementStatus;

/// Rounds to one decimal: the precision of every percentage we print, so that
/// JSON, CSV, PDF and pages show the same number.
pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `part` of `whole` in percent with one decimal, halves rounded up; 0 when
/// `whole` is 0. Integer arithmetic, so it agrees exactly with PostgreSQL's
/// `round(100.0 * part / whole, 1)` (floating point would not on every `.x5`).
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    let (part, whole) = (u128::from(part), u128::from(whole));
    let tenths = (2000 * part + whole) / (2 * whole);
    tenths as f64 / 10.0
}

/// Implemented and applicable requirements of some group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Completion {
    pub implemented: u64,
    pub applicable: u64,
}

impl Completion {
    /// Counts requirements by status.
    pub fn of(statuses: impl IntoIterator<Item = RequirementStatus>) -> Self {
        statuses.into_iter().fold(Self::default(), |mut c, s| {
            c.add(s);
            c
        })
    }

    pub fn add(&mut self, status: RequirementStatus) {
        if status.is_applicable() {
            self.applicable += 1;
            if status.is_implemented() {
                self.implemented += 1;
            }
        }
    }

    /// Readiness in percent with one decimal; 0 when nothing is applicable.
    pub fn pct(self) -> f64 {
        pct(self.implemented, self.applicable)
    }

    /// Readiness, or `None` when nothing was applicable (no data, not 0 %).
    pub fn pct_if_any(self) -> Option<f64> {
        (self.applicable > 0).then(|| self.pct())
    }

    /// Applicable requirements not implemented yet.
    pub fn remaining(self) -> u64 {
        self.applicable.saturating_sub(self.implemented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequirementStatus::*;

    #[test]
    fn not_applicable_requirements_count_neither_way() {
        let c = Completion::of([Implemented, NotApplicable, Failed, InProgress]);
        assert_eq!(
            c,
            Completion {
                implemented: 1,
                applicable: 3
            }
        );
        assert_eq!(c.pct(), 33.3);
        assert_eq!(c.remaining(), 2);
    }

    #[test]
    fn nothing_applicable_is_zero_or_no_data() {
        let c = Completion::of([NotApplicable]);
        assert_eq!(c.pct(), 0.0);
        assert_eq!(c.pct_if_any(), None);
    }

    #[test]
    fn percentages_round_half_away_from_zero_to_one_decimal() {
        assert_eq!(pct(1, 8), 12.5);
        assert_eq!(pct(2, 3), 66.7);
        assert_eq!(pct(0, 0), 0.0);
    }
}
