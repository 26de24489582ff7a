//! Risk ratings: likelihood × impact on a 5 × 5 grid, the level of a score, and
//! the appetite a residual score is compared with.

use serde::{Deserialize, Serialize};

/// The lowest and highest likelihood or impact.
pub const SCALE: std::ops::RangeInclusive<u8> = 1..=5;
/// Residual score above which a risk is outside appetite, unless a request says
/// otherwise.
pub const DEFAULT_APPETITE: u8 = 12;
/// The highest score a likelihood × impact can have.
pub const MAX_SCORE: u8 = 25;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
    Critical,
}

impl RiskLevel {
    pub const ALL: [RiskLevel; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// Score = likelihood × impact: 1-4 low, 5-9 medium, 10-14 high, 15-25
    /// critical. The one banding that search facets, heat-maps, KPIs, events and
    /// pages use.
    pub const fn of_score(score: u8) -> Self {
        match score {
            0..=4 => Self::Low,
            5..=9 => Self::Medium,
            10..=14 => Self::High,
            _ => Self::Critical,
        }
    }

    /// The scores of this level, for legends and methodology pages.
    pub const fn scores(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Self::Low => 1..=4,
            Self::Medium => 5..=9,
            Self::High => 10..=14,
            Self::Critical => 15..=MAX_SCORE,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub const fn label(self) -> &'static str {
        match self {
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
    }

    /// High or critical: what "high risks" KPIs count.
    pub const fn is_high_or_worse(self) -> bool {
        matches!(self, Self::High | Self::Critical)
    }
}

impl std::fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rating of a risk: inherent (before controls) or residual (after).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RiskRating {
    pub likelihood: u8,
    pub impact: u8,
    pub score: u8,
    pub level: RiskLevel,
}

impl RiskRating {
    /// The rating of a likelihood and impact, each clamped to the 1..=5 scale
    /// (the schema refuses anything else; clamping keeps a bad row from
    /// panicking a report).
    pub fn new(likelihood: i64, impact: i64) -> Self {
        let clamp = |v: i64| v.clamp(i64::from(*SCALE.start()), i64::from(*SCALE.end())) as u8;
        let (likelihood, impact) = (clamp(likelihood), clamp(impact));
        let score = likelihood * impact;
        Self {
            likelihood,
            impact,
            score,
            level: RiskLevel::of_score(score),
        }
    }

    /// Whether this (residual) rating is outside `appetite`.
    pub const fn above(self, appetite: u8) -> bool {
        self.score > appetite
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_band_every_score_of_the_grid_without_gaps() {
        for l in SCALE {
            for i in SCALE {
                let r = RiskRating::new(l.into(), i.into());
                assert!(r.level.scores().contains(&r.score), "{r:?}");
            }
        }
        assert_eq!(RiskLevel::of_score(14), RiskLevel::High);
        assert_eq!(RiskLevel::of_score(15), RiskLevel::Critical);
        assert_eq!(RiskLevel::of_score(16), RiskLevel::Critical);
        assert_eq!(RiskLevel::of_score(4), RiskLevel::Low);
    }

    #[test]
    fn out_of_scale_values_are_clamped_not_panics() {
        let r = RiskRating::new(9, -3);
        assert_eq!((r.likelihood, r.impact, r.score), (5, 1, 5));
    }

    #[test]
    fn levels_parse_in_any_case() {
        assert_eq!(RiskLevel::parse(" Critical"), Some(RiskLevel::Critical));
        assert_eq!(RiskLevel::parse("severe"), None);
    }
}
