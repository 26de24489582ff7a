//! The report model: every number a dashboard or the board PDF shows.
//!
//! One [`Report`] is computed per (organization, scope, parameters, data
//! position); the JSON endpoints serialize its sections and the PDF renders the
//! same value, so every figure in the PDF can be fetched and checked.

use certscope_domain::{Completion, RequirementStatus, RiskStatus};
pub use certscope_domain::{RiskLevel, RiskRating as Rating};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub meta: Meta,
    /// The decision page: overall status, key messages, decisions requested.
    pub summary: Summary,
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
    /// framework slug
    pub framework: String,
    pub framework_name: String,
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
    /// The same group's readiness at `previous_as_of`; absent when nothing of
    /// it was applicable then (no data, not 0%).
    pub previous_readiness_pct: Option<f64>,
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
    /// open, treating or accepted (closed risks are not carried)
    pub status: String,
    pub treatment: String,
    pub inherent: Rating,
    pub residual: Rating,
    /// When the treatment is due (open and treating risks).
    pub due_date: Option<NaiveDate>,
    /// The treatment's due date has passed and the risk is still open or
    /// being treated (the domain's deadline rule).
    pub treatment_overdue: bool,
}

/// Risks carried (not closed) by status: the one vocabulary of risk states
/// that the summary, KPIs, trends and heat-maps use. "Open work" is open plus
/// treating; accepted risks are carried but need no work, only a decision
/// when above appetite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskStatusCounts {
    pub open: u64,
    pub treating: u64,
    pub accepted: u64,
}

impl RiskStatusCounts {
    /// Counts one more risk in `status`; closed risks are not carried.
    pub fn add(&mut self, status: RiskStatus) {
        match status {
            RiskStatus::Open => self.open += 1,
            RiskStatus::Treating => self.treating += 1,
            RiskStatus::Accepted => self.accepted += 1,
            RiskStatus::Closed => {}
        }
    }

    pub fn total(&self) -> u64 {
        self.open + self.treating + self.accepted
    }

    /// Open or in treatment: the risks still being worked on.
    pub fn open_work(&self) -> u64 {
        self.open + self.treating
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Heatmap {
    /// Risks carried (open, treating or accepted) as of the report date.
    pub risks: u64,
    /// The carried risks by status.
    pub by_status: RiskStatusCounts,
    /// The risks above appetite by status: accepted ones are decisions the
    /// board owns, open and treating ones decisions it is asked for.
    pub above_appetite_by_status: RiskStatusCounts,
    pub inherent: Grid,
    pub residual: Grid,
    pub appetite: u8,
    /// Risks whose residual score exceeds the appetite, worst first.
    pub above_appetite: Vec<RiskItem>,
    /// The ten worst risks by residual then inherent score.
    pub top_risks: Vec<RiskItem>,
    /// The day `changes` compares with (the previous pack's as-of).
    pub previous_as_of: NaiveDate,
    /// Risks that moved since `previous_as_of`, worst residual first: a status
    /// that differs (new ones have no previous status; closed, accepted,
    /// treated, reopened) or a place on either grid that differs.
    pub changes: Vec<RiskChange>,
}

/// A risk whose status or rating changed since the previous pack.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RiskChange {
    pub id: i64,
    pub title: String,
    /// The status at `previous_as_of`; absent for a risk identified since.
    pub previous_status: Option<String>,
    pub status: String,
    /// The inherent rating assessed at `previous_as_of`; absent for a risk
    /// identified since.
    pub previous_inherent: Option<Rating>,
    pub inherent: Rating,
    /// The residual rating at `previous_as_of` (absent for a risk identified
    /// since): with `residual`, the risk's move on the residual heat-map.
    pub previous_residual: Option<Rating>,
    pub residual: Rating,
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
    /// target date minus the report date: negative when the target has passed
    pub days_to_target: i64,
    /// projected completion minus target date, when late
    pub days_late: Option<i64>,
}

impl CertificationForecast {
    /// Forecast to miss its target: projected after it, or no progress at all.
    pub fn will_miss_target(&self) -> bool {
        matches!(self.outlook, Outlook::AtRisk | Outlook::Stalled)
    }
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

/// A count of due items sharing a certification, an owner or an age band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueGroup {
    /// certification id, owner name (empty: unassigned) or age band key
    pub key: String,
    pub label: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DueList {
    pub total: u64,
    pub by_kind: KindCounts,
    /// Every item counted by certification, most items first.
    pub by_certification: Vec<DueGroup>,
    /// Every item counted by owner, most items first; past the tenth owner
    /// the rest are one `others` group.
    pub by_owner: Vec<DueGroup>,
    /// Every item counted by how far its date is from the report date, in
    /// bands (days overdue, or days ahead for upcoming items).
    pub by_age: Vec<DueGroup>,
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
    /// Nothing to measure: a percentage without a denominator (readiness with
    /// no applicable requirement, risk reduction with no risk). The value is
    /// null; it is never judged.
    NoData,
}

impl KpiState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Warning => "warning",
            Self::Breach => "breach",
            Self::NoData => "no_data",
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

/// What a KPI measures: a count of things, or a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    Count,
    Percent,
}

impl Measure {
    /// The unit printed after a figure: `%` for percentages, none for counts.
    pub const fn unit(self) -> &'static str {
        match self {
            Self::Count => "",
            Self::Percent => "%",
        }
    }

    /// The largest target or warning threshold a request may set.
    pub const fn max_band(self) -> u32 {
        match self {
            Self::Count => 1_000_000,
            Self::Percent => 100,
        }
    }

    /// `v` as a figure of this measure: a count rounds to a whole number (never
    /// below 0), a percentage to one decimal.
    pub fn figure(self, v: f64) -> Figure {
        match self {
            Self::Count => Figure::Count(v.round().max(0.0) as u64),
            Self::Percent => Figure::Percent(certscope_domain::round1(v)),
        }
    }
}

/// A KPI figure. A count is an integer in JSON and CSV (`27`), a percentage a
/// number with one decimal (`63.2`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Figure {
    Count(u64),
    Percent(f64),
}

impl Figure {
    /// `27`, `63.2%`, or `no data`.
    pub fn show(figure: Option<Figure>) -> String {
        figure.map_or_else(|| "no data".to_owned(), |f| f.to_string())
    }

    pub fn as_f64(self) -> f64 {
        match self {
            Self::Count(n) => n as f64,
            Self::Percent(v) => v,
        }
    }
}

impl std::fmt::Display for Figure {
    /// `27`, `63.2%`: what the PDF prints and the JSON holds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(v) => write!(f, "{v:.1}%"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kpi {
    pub key: &'static str,
    pub label: &'static str,
    /// `%` for percentages, empty for counts (whose figures are integers)
    pub unit: &'static str,
    /// Absent (null) when there is nothing to measure: state `no_data`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub value: Option<Figure>,
    /// Absent (null) when there was nothing to measure then.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub previous: Option<Figure>,
    /// The day `previous` describes (one interval before the report date).
    pub previous_as_of: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub target: Figure,
    /// the value at which the state turns from warning to breach
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub warning: Figure,
    pub direction: Direction,
    pub state: KpiState,
    pub trend: Trend,
    /// whether the change since the previous value is an improvement
    pub improving: Option<bool>,
}

/// The overall status the decision page leads with. The rule that decides it
/// lives in `summary::overall_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OverallStatus {
    OnTrack,
    AtRisk,
    OffTrack,
    /// Nothing in scope: no applicable requirement and no risk carried.
    NoData,
}

impl OverallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnTrack => "on_track",
            Self::AtRisk => "at_risk",
            Self::OffTrack => "off_track",
            Self::NoData => "no_data",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::OnTrack => "On track",
            Self::AtRisk => "At risk",
            Self::OffTrack => "Off track",
            Self::NoData => "No data",
        }
    }
}

/// One sentence of the summary with the model fields it states.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// The rule that wrote it: `target_missed`, `kpi_breach`, `readiness`, …
    pub key: &'static str,
    pub text: String,
    /// JSON pointers into the full report (`/kpis/0/value`) of every figure,
    /// date and name the sentence states.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// A risk above appetite, open or in treatment: fund treatment or accept it.
    TreatOrAcceptRisk,
    /// A risk accepted although above appetite: confirm the acceptance.
    ConfirmAcceptedRisk,
    /// A certification forecast to miss its target: new date or more resources.
    ReviseTarget,
}

impl DecisionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TreatOrAcceptRisk => "treat_or_accept_risk",
            Self::ConfirmAcceptedRisk => "confirm_accepted_risk",
            Self::ReviseTarget => "revise_target",
        }
    }
}

/// Something the board is asked to decide.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decision {
    pub kind: DecisionKind,
    pub text: String,
    pub risk_id: Option<i64>,
    pub certification_id: Option<i64>,
    /// JSON pointers into the full report of what the sentence states.
    pub sources: Vec<String>,
}

/// The decision page: what the board reads first. Every sentence is computed
/// from the other sections and names the fields it states.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    pub status: OverallStatus,
    /// Why the status is what it is: one sentence per condition that set it
    /// (empty when on track).
    pub reasons: Vec<Message>,
    /// Three to five key messages, most important first.
    pub messages: Vec<Message>,
    /// What the board is asked to decide, risks first.
    pub decisions: Vec<Decision>,
}
