//! CSV renderings of the report sections (RFC 4180, header row first).
//!
//! Text cells that a spreadsheet would run as a formula (starting with `=`,
//! `+`, `-`, `@`, tab or carriage return) are prefixed with `'`: names and
//! titles come from users.

use std::fmt::Write;

use crate::model::{DueList, Figure, PostureRow, Report, StatusCounts};
use crate::section::Section;

/// An RFC 4180 writer with the formula guard above: the report sections and
/// the search export write through it.
#[derive(Debug)]
pub struct Csv {
    out: String,
    first: bool,
}

impl Csv {
    pub fn new(header: &[&str]) -> Self {
        let mut csv = Self {
            out: String::new(),
            first: true,
        };
        for h in header {
            csv.text(h);
        }
        csv.end();
        csv
    }

    fn sep(&mut self) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.sep();
        let guarded = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
        let quote = guarded || value.contains([',', '"', '\n', '\r']);
        if quote {
            self.out.push('"');
        }
        if guarded {
            self.out.push('\'');
        }
        for c in value.chars() {
            if c == '"' {
                self.out.push('"');
            }
            self.out.push(c);
        }
        if quote {
            self.out.push('"');
        }
        self
    }

    pub fn num(&mut self, value: impl std::fmt::Display) -> &mut Self {
        self.sep();
        let _ = write!(self.out, "{value}");
        self
    }

    /// A KPI figure as JSON has it: `27` for a count, `63.2` for a
    /// percentage, empty for no data.
    fn figure(&mut self, value: impl Into<Option<Figure>>) -> &mut Self {
        match value.into() {
            Some(Figure::Count(n)) => self.num(n),
            Some(Figure::Percent(v)) => self.num(format_args!("{v:.1}")),
            None => self.opt(None::<u64>),
        }
    }

    pub fn opt(&mut self, value: Option<impl std::fmt::Display>) -> &mut Self {
        match value {
            Some(v) => self.num(v),
            None => {
                self.sep();
                self
            }
        }
    }

    fn counts(&mut self, c: &StatusCounts) -> &mut Self {
        self.num(c.implemented)
            .num(c.in_progress)
            .num(c.not_started)
            .num(c.failed)
            .num(c.not_applicable)
            .num(c.total)
    }

    /// Ends the row.
    pub fn end(&mut self) {
        self.out.push_str("\r\n");
        self.first = true;
    }

    /// The rows written since the last call (for streaming).
    pub fn take(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}

const COUNTS: [&str; 6] = [
    "implemented",
    "in_progress",
    "not_started",
    "failed",
    "not_applicable",
    "total",
];

/// The section as CSV.
pub fn render(section: Section, report: &Report) -> String {
    match section {
        Section::Summary => summary(report),
        Section::Posture => posture(report),
        Section::Heatmap => heatmap(report),
        Section::Matrix => matrix(report),
        Section::Trends => trends(report),
        Section::Forecast => forecast(report),
        Section::Overdue => overdue(report),
        Section::Kpis => kpis(report),
    }
}

/// One row per sentence: the status first, then why, the key messages and
/// the decisions requested.
fn summary(report: &Report) -> String {
    let s = &report.summary;
    let mut csv = Csv::new(&["part", "key", "text", "risk_id", "certification_id"]);
    csv.text("status")
        .text(s.status.as_str())
        .text(s.status.label())
        .opt(None::<i64>)
        .opt(None::<i64>);
    csv.end();
    for (part, messages) in [("reason", &s.reasons), ("message", &s.messages)] {
        for m in messages {
            csv.text(part)
                .text(m.key)
                .text(&m.text)
                .opt(None::<i64>)
                .opt(None::<i64>);
            csv.end();
        }
    }
    for d in &s.decisions {
        csv.text("decision")
            .text(d.kind.as_str())
            .text(&d.text)
            .opt(d.risk_id)
            .opt(d.certification_id);
        csv.end();
    }
    csv.out
}

fn posture(report: &Report) -> String {
    let mut cols = vec!["group", "key", "label"];
    cols.extend(COUNTS);
    cols.extend([
        "readiness_pct",
        "previous_readiness_pct",
        "evidenced",
        "evidence_coverage_pct",
        "fresh",
        "freshness_pct",
    ]);
    let mut csv = Csv::new(&cols);
    let p = &report.posture;
    let groups: [(&str, &[PostureRow]); 4] = [
        ("overall", std::slice::from_ref(&p.overall)),
        ("framework", &p.frameworks),
        ("family", &p.families),
        ("certification", &p.certifications),
    ];
    for (group, rows) in groups {
        for r in rows {
            csv.text(group)
                .text(&r.key)
                .text(&r.label)
                .counts(&r.counts)
                .num(format!("{:.1}", r.readiness_pct))
                .opt(r.previous_readiness_pct.map(|p| format!("{p:.1}")))
                .num(r.evidenced)
                .num(format!("{:.1}", r.evidence_coverage_pct))
                .num(r.fresh)
                .num(format!("{:.1}", r.freshness_pct));
            csv.end();
        }
    }
    csv.out
}

fn heatmap(report: &Report) -> String {
    let mut csv = Csv::new(&[
        "grid",
        "likelihood",
        "impact",
        "score",
        "level",
        "count",
        "risk_ids",
    ]);
    let h = &report.heatmap;
    for (name, grid) in [("inherent", &h.inherent), ("residual", &h.residual)] {
        for c in &grid.cells {
            let ids: Vec<String> = c.risk_ids.iter().map(i64::to_string).collect();
            csv.text(name)
                .num(c.likelihood)
                .num(c.impact)
                .num(c.score)
                .text(c.level.as_str())
                .num(c.count)
                .text(&ids.join(" "));
            csv.end();
        }
    }
    csv.out
}

fn matrix(report: &Report) -> String {
    let mut cols = vec![
        "certification_id",
        "certification",
        "framework",
        "family_key",
        "family_title",
    ];
    cols.extend(COUNTS);
    let mut csv = Csv::new(&cols);
    for m in &report.matrix {
        for r in &m.families {
            csv.num(m.certification_id)
                .text(&m.name)
                .text(&r.framework)
                .text(&r.family_key)
                .text(&r.family_title)
                .counts(&r.counts);
            csv.end();
        }
    }
    csv.out
}

fn trends(report: &Report) -> String {
    let mut csv = Csv::new(&[
        "date",
        "implemented",
        "applicable",
        "readiness_pct",
        "open_low",
        "open_medium",
        "open_high",
        "open_critical",
        "overdue_requirements",
        "overdue_certifications",
    ]);
    for p in &report.trends.points {
        csv.num(p.date)
            .num(p.implemented)
            .num(p.applicable)
            .num(format!("{:.1}", p.readiness_pct))
            .num(p.open_risks.low)
            .num(p.open_risks.medium)
            .num(p.open_risks.high)
            .num(p.open_risks.critical)
            .num(p.overdue_requirements)
            .num(p.overdue_certifications);
        csv.end();
    }
    csv.out
}

fn forecast(report: &Report) -> String {
    let mut csv = Csv::new(&[
        "certification_id",
        "name",
        "status",
        "target_date",
        "total",
        "done",
        "remaining",
        "velocity_per_week",
        "projected_completion",
        "outlook",
        "days_late",
    ]);
    for f in &report.forecast.certifications {
        csv.num(f.certification_id)
            .text(&f.name)
            .text(&f.status)
            .num(f.target_date)
            .num(f.total)
            .num(f.done)
            .num(f.remaining)
            .num(format!("{:.1}", f.velocity_per_week))
            .opt(f.projected_completion)
            .text(f.outlook.as_str())
            .opt(f.days_late);
        csv.end();
    }
    csv.out
}

fn overdue(report: &Report) -> String {
    let mut csv = Csv::new(&[
        "list",
        "kind",
        "id",
        "certification_id",
        "title",
        "status",
        "owner",
        "date",
        "days",
    ]);
    let lists: [(&str, &DueList); 2] = [
        ("overdue", &report.overdue.overdue),
        ("upcoming", &report.overdue.upcoming),
    ];
    for (name, list) in lists {
        for i in &list.items {
            csv.text(name)
                .text(i.kind.as_str())
                .num(i.id)
                .num(i.certification_id)
                .text(&i.title)
                .text(&i.status)
                .text(i.owner.as_deref().unwrap_or(""))
                .num(i.date)
                .num(i.days);
            csv.end();
        }
    }
    csv.out
}

fn kpis(report: &Report) -> String {
    let mut csv = Csv::new(&[
        "key",
        "label",
        "unit",
        "value",
        "previous",
        "previous_as_of",
        "target",
        "warning",
        "state",
        "trend",
        "improving",
    ]);
    for k in &report.kpis {
        csv.text(k.key)
            .text(k.label)
            .text(k.unit)
            .figure(k.value)
            .figure(k.previous)
            .num(k.previous_as_of)
            .figure(k.target)
            .figure(k.warning)
            .text(k.state.as_str())
            .text(k.trend.as_str())
            .opt(k.improving);
        csv.end();
    }
    csv.out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_defuses_formulas() {
        let mut csv = Csv::new(&["a", "b", "c"]);
        csv.text("=HYPERLINK(\"x\")").text("a,b").text("plain");
        csv.end();
        assert_eq!(
            csv.out,
            "a,b,c\r\n\"'=HYPERLINK(\"\"x\"\")\",\"a,b\",plain\r\n"
        );
    }
}
