//! The report model: every number a dashboard or the board PDF shows.
//!
//! One [`Report`] is computed per (organization, scope, parameters, data
//! position); the JSON endpoints serialize its sections and the PDF renders the
//! same value, so every figure in the PDF can be fetched and checked.

use certscope_domain::{Completion, RequirementStatus};
pub use certscope_domain::{RiskLevel, RiskRating as Rating};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub meta: Meta,
    pub posture: Posture,
    pub heatmap: Heatmap,
    pub matrix: Vec<CertificationMatrix>,
    pub trends: Trends,
    pub forecast: Forecast,
    pub overdue: Overdue,
    pub kpis: Vec<Kpi>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Meta {
    pub organization: Organization,
    /// The day the numbers describe (end of day, UTC).
    pub as_of: NaiveDate,
    pub period: Period,
    /// The data position the numbers were read at (a PostgreSQL snapshot).
    pub position: String,
    pub generated_at: DateTime<Utc>,
    /// Framework slug the report is limited to, if any.
    pub framework: Option<String>,
    /// Certifications covered (after the caller's scope and filters).
    pub certifications: Vec<CertificationRef>,
    /// True when the caller is an auditor and sees only its certifications.
    pub restricted: bool,
    /// Residual score above which a risk is outside appetite.
    pub appetite: u8,
    /// Days ahead that count as "upcoming".
    pub horizon_days: u32,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Organization {
    pub id: i64,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificationRef {
    pub id: i64,
    pub name: String,
    pub framework: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Week,
    Month,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
}

/// Requirements by status. `applicable` excludes not applicable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusCounts {
    pub implemented: u64,
    pub in_progress: u64,
    pub not_started: u64,
    pub failed: u64,
    pub not_applicable: u64,
    pub total: u64,
}

impl StatusCounts {
    /// The count of one status.
    pub fn get(&self, status: RequirementStatus) -> u64 {
        match status {
            RequirementStatus::Implemented => self.implemented,
            RequirementStatus::InProgress => self.in_progress,
            RequirementStatus::NotStarted => self.not_started,
            RequirementStatus::Failed => self.failed,
            RequirementStatus::NotApplicable => self.not_applicable,
        }
    }

    /// Counts `n` more requirements in `status`.
    pub fn add(&mut self, status: RequirementStatus, n: u64) {
        *match status {
            RequirementStatus::Implemented => &mut self.implemented,
            RequirementStatus::InProgress => &mut self.in_progress,
            RequirementStatus::NotStarted => &mut self.not_started,
            RequirementStatus::Failed => &mut self.failed,
            RequirementStatus::NotApplicable => &mut self.not_applicable,
        } += n;
        self.total += n;
    }

    /// Adds another group's counts.
    pub fn merge(&mut self, other: &StatusCounts) {
        for s in RequirementStatus::ALL {
            self.add(*s, other.get(*s));
        }
    }

    /// Readiness counts: implemented among applicable (the domain's rule).
    pub fn completion(&self) -> Completion {
        let mut c = Completion::default();
        for s in RequirementStatus::ALL {
            if s.is_applicable() {
                c.applicable += self.get(*s);
                if s.is_implemented() {
                    c.implemented += self.get(*s);
                }
            }
        }
        c
    }

    pub fn applicable(&self) -> u64 {
        self.completion().applicable
    }
}

/// Readiness and evidence of one group of requirements.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostureRow {
    /// framework slug, `framework/family` key, or certification id
    pub key: String,
    pub label: String,
    pub counts: StatusCounts,
    /// implemented / applicable, percent (0 when nothing is applicable)
    pub readiness_pct: f64,
    /// applicable requirements with at least one accepted, unexpired evidence
    pub evidenced: u64,
    /// evidenced / applicable, percent
    pub evidence_coverage_pct: f64,
    /// evidenced requirements whose newest such evidence is at most
    /// `freshness_days` old
    pub fresh: u64,
    /// fresh / evidenced, percent
    pub freshness_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Posture {
    pub freshness_days: u32,
    pub overall: PostureRow,
    pub frameworks: Vec<PostureRow>,
    pub families: Vec<PostureRow>,
    pub certifications: Vec<PostureRow>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeatCell {
    pub likelihood: u8,
    pub impact: u8,
    pub score: u8,
    pub level: RiskLevel,
    pub count: u64,
    pub risk_ids: Vec<i64>,
}

/// A 5×5 grid, cells ordered by likelihood then impact (1..=5 each).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grid {
    pub total: u64,
    pub cells: Vec<HeatCell>,
}

impl Grid {
    /// The cell at (likelihood, impact), both 1..=5.
    pub fn cell(&self, likelihood: u8, impact: u8) -> Option<&HeatCell> {
        if !(1..=5).contains(&likelihood) || !(1..=5).contains(&impact) {
            return None;
        }
        self.cells
            .get(usize::from(likelihood - 1) * 5 + usize::from(impact - 1))
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskItem {
    pub id: i64,
    pub title: String,
    pub category: String,
    pub owner: Option<String>,
    pub status: String,
    pub treatment: String,
    pub inherent: Rating,
    pub residual: Rating,
    pub due_date: Option<NaiveDate>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heatmap {
    /// Risks counted: not closed as of the report date.
    pub risks: u64,
    pub inherent: Grid,
    pub residual: Grid,
    pub appetite: u8,
    /// Risks whose residual score exceeds the appetite, worst first.
    pub above_appetite: Vec<RiskItem>,
    /// The ten worst risks by residual then inherent score.
    pub top_risks: Vec<RiskItem>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MatrixRow {
    pub framework: String,
    pub family_key: String,
    pub family_title: String,
    pub counts: StatusCounts,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificationMatrix {
    pub certification_id: i64,
    pub name: String,
    pub framework: String,
    pub totals: StatusCounts,
    pub families: Vec<MatrixRow>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LevelCounts {
    pub low: u64,
    pub medium: u64,
    pub high: u64,
    pub critical: u64,
}

impl LevelCounts {
    pub fn add(&mut self, level: RiskLevel) {
        match level {
            RiskLevel::Low => self.low += 1,
            RiskLevel::Medium => self.medium += 1,
            RiskLevel::High => self.high += 1,
            RiskLevel::Critical => self.critical += 1,
        }
    }

    pub fn get(&self, level: RiskLevel) -> u64 {
        match level {
            RiskLevel::Low => self.low,
            RiskLevel::Medium => self.medium,
            RiskLevel::High => self.high,
            RiskLevel::Critical => self.critical,
        }
    }

    pub fn total(&self) -> u64 {
        RiskLevel::ALL.iter().map(|l| self.get(*l)).sum()
    }

    /// High and critical: what "high risks" count.
    pub fn high_or_worse(&self) -> u64 {
        RiskLevel::ALL
            .iter()
            .filter(|l| l.is_high_or_worse())
            .map(|l| self.get(*l))
            .sum()
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrendPoint {
    pub date: NaiveDate,
    pub implemented: u64,
    pub applicable: u64,
    pub readiness_pct: f64,
    /// Open or treating risks by residual level.
    pub open_risks: LevelCounts,
    pub overdue_requirements: u64,
    pub overdue_certifications: u64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trends {
    pub interval: Interval,
    pub points: Vec<TrendPoint>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Outlook {
    Complete,
    OnTrack,
    AtRisk,
    Stalled,
}

impl Outlook {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::OnTrack => "on_track",
            Self::AtRisk => "at_risk",
            Self::Stalled => "stalled",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CertificationForecast {
    pub certification_id: i64,
    pub name: String,
    pub status: String,
    pub target_date: NaiveDate,
    /// applicable requirements
    pub total: u64,
    /// implemented requirements
    pub done: u64,
    pub remaining: u64,
    /// requirements completed per week over the trailing window
    pub velocity_per_week: f64,
    pub projected_completion: Option<NaiveDate>,
    pub outlook: Outlook,
    /// projected completion minus target date, when late
    pub days_late: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BacktestItem {
    pub certification_id: i64,
    pub cutoff: NaiveDate,
    pub predicted_done: f64,
    pub actual_done: u64,
    pub total: u64,
    /// |predicted - actual| / total, percent
    pub error_pct: f64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Backtest {
    /// Days between the cutoff and the report date.
    pub horizon_days: i64,
    pub certifications: u64,
    pub mean_abs_error_pct: f64,
    pub max_abs_error_pct: f64,
    pub items: Vec<BacktestItem>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Forecast {
    pub method: &'static str,
    pub window_days: i64,
    pub certifications: Vec<CertificationForecast>,
    pub backtest: Backtest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Certification,
    Requirement,
    Evidence,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certification => "certification",
            Self::Requirement => "requirement",
            Self::Evidence => "evidence",
        }
    }
}

/// Something with a date that matters: a due date, a target date, an expiry.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueItem {
    pub kind: ItemKind,
    pub id: i64,
    pub certification_id: i64,
    pub title: String,
    pub status: String,
    pub owner: Option<String>,
    pub date: NaiveDate,
    /// date - as_of: negative when overdue
    pub days: i64,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindCounts {
    pub certification: u64,
    pub requirement: u64,
    pub evidence: u64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueList {
    pub total: u64,
    pub by_kind: KindCounts,
    pub truncated: bool,
    pub items: Vec<DueItem>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Overdue {
    pub horizon_days: u32,
    /// past their date and not closed, most overdue first
    pub overdue: DueList,
    /// due within the horizon, soonest first
    pub upcoming: DueList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum KpiState {
    Good,
    Warning,
    Breach,
}

impl KpiState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Warning => "warning",
            Self::Breach => "breach",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Up,
    Down,
    Flat,
}

impl Trend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Flat => "flat",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kpi {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub value: f64,
    pub previous: f64,
    /// The day `previous` describes (one interval before the report date).
    pub previous_as_of: NaiveDate,
    pub target: f64,
    /// the value at which the state turns from warning to breach
    pub warning: f64,
    pub direction: Direction,
    pub state: KpiState,
    pub trend: Trend,
    /// whether the change since the previous value is an improvement
    pub improving: Option<bool>,
}
