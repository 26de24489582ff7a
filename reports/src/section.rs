//! The sections of a report that the API serves one at a time.

use serde_json::{Value, json};

use crate::model::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Section {
    Summary,
    Posture,
    Heatmap,
    Matrix,
    Trends,
    Forecast,
    Overdue,
    Kpis,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Self::Summary,
        Self::Posture,
        Self::Heatmap,
        Self::Matrix,
        Self::Trends,
        Self::Forecast,
        Self::Overdue,
        Self::Kpis,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Summary => "summary",
            Self::Posture => "posture",
            Self::Heatmap => "heatmap",
            Self::Matrix => "matrix",
            Self::Trends => "trends",
            Self::Forecast => "forecast",
            Self::Overdue => "overdue",
            Self::Kpis => "kpis",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// `{"meta": …, "<section>": …}`: every answer says what it describes.
    pub fn json(self, report: &Report) -> Result<Value, serde_json::Error> {
        let body = match self {
            Self::Summary => serde_json::to_value(&report.summary)?,
            Self::Posture => serde_json::to_value(&report.posture)?,
            Self::Heatmap => serde_json::to_value(&report.heatmap)?,
            Self::Matrix => serde_json::to_value(&report.matrix)?,
            Self::Trends => serde_json::to_value(&report.trends)?,
            Self::Forecast => serde_json::to_value(&report.forecast)?,
            Self::Overdue => serde_json::to_value(&report.overdue)?,
            Self::Kpis => serde_json::to_value(&report.kpis)?,
        };
        Ok(json!({ "meta": report.meta, self.as_str(): body }))
    }
}
