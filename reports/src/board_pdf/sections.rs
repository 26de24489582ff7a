//! The cover page and the tabular sections.

use super::canvas::{Arrow, BODY, Canvas, H1, H2, SMALL, palette};
use super::charts::level_colour;
use super::format::{
    DASH, count, date, f1, join_and, opt_date, outlook_words, pct, rating, timestamp,
};
use super::table::{Align, Cell, Column, Mark, Table};
use certscope_domain::RiskStatus;

use crate::model::{
    Direction, DueList, Heatmap, Kpi, KpiState, Outlook, Rating, Report, RiskItem, Trend,
    TrendPoint,
};

/// Most overdue or upcoming items listed; the rest are counted.
pub(super) const MAX_DUE_ROWS: usize = 100;

/// Rows a heading keeps with it: a table this short is never split, a longer
/// one may break after them (a page is not left a third empty to keep a
/// dozen rows together).
const KEEP_ROWS: usize = 6;

/// Room a heading asks for below it: the whole table when it is short (so
/// short tables are not split), a header and [`KEEP_ROWS`] rows otherwise.
fn keep(rows: usize) -> f32 {
    Table::height_for(rows.max(1)).min(Table::height_for(KEEP_ROWS))
}

/// What the report covers and how it was produced (before the methodology).
pub(super) fn about(canvas: &mut Canvas<'_>, report: &Report) {
    let meta = &report.meta;
    let g = canvas.geom;
    let period = format!(
        "{} – {} · by {}",
        date(meta.period.from),
        date(meta.period.to),
        meta.period.interval.as_str()
    );
    let framework = meta
        .framework
        .clone()
        .unwrap_or_else(|| "all frameworks".to_owned());
    let view = if meta.restricted {
        "auditor view — limited to the auditor's certifications"
    } else {
        "full organization view"
    };
    let certifications = certification_list(canvas, report);
    let details = [
        ("Period", period),
        ("As of", date(meta.as_of)),
        ("Generated", timestamp(meta.generated_at)),
        ("Data position", meta.position.clone()),
        ("Framework", framework),
        ("Certifications", certifications),
        ("View", view.to_owned()),
    ];
    let label_style = BODY.size(9.0).bold().colour(palette::MUTED);
    let value_style = BODY.size(10.0);
    let value_x = g.left() + 34.0;
    let value_w = g.right() - value_x;
    let rows: Vec<(&str, Vec<String>)> = details
        .iter()
        .map(|(label, value)| {
            let max_lines = if *label == "Certifications" { 6 } else { 3 };
            let mut lines = canvas.wrap_lines(value, value_style, value_w, max_lines);
            if lines.is_empty() {
                lines.push(DASH.to_owned());
            }
            (*label, lines)
        })
        .collect();
    let row_height = |lines: &[String]| lines.len() as f32 * value_style.leading() + 2.6;
    // the block flows after the body: it moves to a new page whole
    let block: f32 = rows.iter().map(|(_, lines)| row_height(lines)).sum();
    canvas.heading("About this report", H1, block);
    for (label, value_lines) in rows {
        canvas.ensure(row_height(&value_lines));
        let top = canvas.y();
        canvas.text(g.left(), top + value_style.cap_height(), label, label_style);
        for (i, line) in value_lines.iter().enumerate() {
            let baseline = top + value_style.cap_height() + i as f32 * value_style.leading();
            canvas.text(value_x, baseline, line, value_style);
        }
        canvas.advance(row_height(&value_lines));
    }

    let note = "Confidential — prepared for the board. Every figure in this report equals the \
                Certscope JSON endpoints for the same organization, scope, parameters and data \
                position; every sentence on the first page is the JSON summary section.";
    canvas.advance(1.5);
    canvas.paragraph(note, SMALL, 0.0);
    canvas.advance(4.0);
}

/// Certification names for the cover, shortened to about six lines.
fn certification_list(canvas: &Canvas<'_>, report: &Report) -> String {
    let certs = &report.meta.certifications;
    if certs.is_empty() {
        return "none in scope".to_owned();
    }
    let width = canvas.geom.content_width() - 34.0;
    let style = BODY.size(10.0);
    let names: Vec<String> = certs
        .iter()
        .map(|c| format!("{} ({})", c.name, c.framework_name))
        .collect();
    // Six lines never hold more than a few dozen names.
    let mut shown = names.len().min(60);
    loop {
        let text = if shown == names.len() {
            join_and(&names)
        } else {
            format!(
                "{}, and {} more",
                names[..shown].join(", "),
                names.len() - shown
            )
        };
        if shown <= 1 || canvas.wrap(&text, style, width).len() <= 6 {
            return text;
        }
        shown -= 1;
    }
}

/// The KPI table.
pub(super) fn kpis(canvas: &mut Canvas<'_>, kpis: &[Kpi]) {
    canvas.heading("Key performance indicators", H1, keep(kpis.len()));
    if kpis.is_empty() {
        canvas.paragraph("No indicators are defined for this scope.", BODY, 0.0);
        return;
    }
    let columns = [
        Column::new("Indicator", 3.6, Align::Left),
        Column::new("Value", 1.4, Align::Right),
        Column::new("Target", 1.6, Align::Right),
        Column::new("Warning band", 2.4, Align::Right),
        Column::new("Previous", 1.4, Align::Right),
        Column::new("Trend", 0.9, Align::Centre),
        Column::new("State", 1.6, Align::Left),
    ];
    let mut table = Table::new(&columns, "Key performance indicators");
    for kpi in kpis {
        let target = match kpi.direction {
            Direction::HigherIsBetter => format!("≥ {}", kpi.target),
            Direction::LowerIsBetter => format!("≤ {}", kpi.target),
        };
        let (lo, hi) = if kpi.warning.as_f64() <= kpi.target.as_f64() {
            (kpi.warning, kpi.target)
        } else {
            (kpi.target, kpi.warning)
        };
        let band = format!("{lo} – {hi}");
        let trend_colour = match kpi.improving {
            Some(true) => palette::GOOD,
            Some(false) => palette::BAD,
            None => palette::NEUTRAL,
        };
        let arrow = match kpi.trend {
            Trend::Up => Arrow::Up,
            Trend::Down => Arrow::Down,
            Trend::Flat => Arrow::Right,
        };
        let state_colour = match kpi.state {
            KpiState::Good => palette::GOOD,
            KpiState::Warning => palette::WARN,
            KpiState::Breach => palette::BAD,
            KpiState::NoData => palette::NEUTRAL,
        };
        table.row(vec![
            Cell::new(kpi.label),
            match kpi.value {
                Some(v) => Cell::new(v.to_string()).bold(),
                None => Cell::new("no data").colour(palette::MUTED),
            },
            Cell::new(target),
            Cell::new(band),
            match kpi.previous {
                Some(v) => Cell::new(v.to_string()),
                None => Cell::new("no data").colour(palette::MUTED),
            },
            Cell::new("").mark(Mark::Arrow(arrow, trend_colour)),
            Cell::new(kpi.state.as_str().replace('_', " "))
                .colour(state_colour)
                .mark(Mark::Dot(state_colour)),
        ]);
    }
    table.draw(canvas);
    let mut dates: Vec<String> = kpis.iter().map(|k| date(k.previous_as_of)).collect();
    dates.dedup();
    let note = format!(
        "Previous values as of {}. Arrows show the direction of change: green is an \
         improvement, red a deterioration, grey neither. The warning band lies between the \
         target and the breach threshold.",
        join_and(&dates)
    );
    canvas.paragraph(&note, SMALL, 0.0);
    canvas.advance(2.0);
}

/// A table's heading, kept with its first rows; with no rows, the `empty`
/// note instead, and `false` (nothing to draw).
fn table_heading(canvas: &mut Canvas<'_>, title: &str, rows: usize, empty: &str) -> bool {
    canvas.heading(title, H1, keep(rows));
    if rows == 0 {
        canvas.paragraph(empty, BODY, 0.0);
        canvas.advance(2.0);
    }
    rows > 0
}

/// The ten worst risks.
pub(super) fn top_risks(canvas: &mut Canvas<'_>, risks: &[RiskItem]) {
    risk_table(
        canvas,
        "Top risks",
        risks,
        "No risks are carried as of the report date.",
    );
}

/// Risks with their status, ratings and treatment; an overdue treatment is
/// flagged in red.
pub(super) fn risk_table(canvas: &mut Canvas<'_>, title: &str, risks: &[RiskItem], empty: &str) {
    if !table_heading(canvas, title, risks.len(), empty) {
        return;
    }
    let columns = [
        Column::new("ID", 0.6, Align::Right),
        Column::new("Risk", 3.3, Align::Left),
        Column::new("Status", 1.3, Align::Left),
        Column::new("Owner", 1.6, Align::Left),
        Column::new("Inherent → residual", 2.3, Align::Left),
        Column::new("Treatment", 1.3, Align::Left),
        Column::new("Due", 2.0, Align::Left),
    ];
    let mut table = Table::new(&columns, title.to_owned());
    for risk in risks {
        let ratings = format!(
            "{} → {}",
            rating(risk.inherent.score, risk.inherent.level),
            rating(risk.residual.score, risk.residual.level)
        );
        let status = RiskStatus::parse(&risk.status).map_or(risk.status.as_str(), |s| s.label());
        let due = if risk.treatment_overdue {
            Cell::new(format!("{} overdue", opt_date(risk.due_date)))
                .colour(palette::BAD)
                .bold()
        } else {
            Cell::new(opt_date(risk.due_date))
        };
        table.row(vec![
            Cell::new(risk.id.to_string()),
            Cell::new(risk.title.as_str()),
            Cell::new(status),
            Cell::new(risk.owner.as_deref().unwrap_or(DASH)),
            Cell::new(ratings).mark(Mark::Dot(level_colour(risk.residual.level))),
            Cell::new(risk.treatment.as_str()),
            due,
        ]);
    }
    table.draw(canvas);
}

/// Risks that moved since the previous pack: a status changed, or a place
/// on the residual (or inherent) heat-map.
pub(super) fn risk_changes(canvas: &mut Canvas<'_>, heatmap: &Heatmap) {
    let title = format!("Risks that moved since {}", date(heatmap.previous_as_of));
    if !table_heading(
        canvas,
        &title,
        heatmap.changes.len(),
        "No risk changed status or rating.",
    ) {
        return;
    }
    let columns = [
        Column::new("ID", 0.7, Align::Right),
        Column::new("Risk", 4.4, Align::Left),
        Column::new("Status then → now", 2.6, Align::Left),
        Column::new("Residual then → now", 2.6, Align::Left),
    ];
    let label =
        |s: &str| RiskStatus::parse(s).map_or_else(|_| s.to_owned(), |s| s.label().to_owned());
    let moved = |then: Option<Rating>, now: Rating| match then {
        Some(then) if then == now => rating(now.score, now.level),
        // the same score in another cell: say which cell
        Some(then) if then.score == now.score => format!(
            "{} ({}×{} → {}×{})",
            rating(now.score, now.level),
            then.likelihood,
            then.impact,
            now.likelihood,
            now.impact
        ),
        Some(then) => format!(
            "{} → {}",
            rating(then.score, then.level),
            rating(now.score, now.level)
        ),
        None => format!("new → {}", rating(now.score, now.level)),
    };
    let mut table = Table::new(&columns, title.clone());
    for c in &heatmap.changes {
        let then = c
            .previous_status
            .as_deref()
            .map_or_else(|| "new".to_owned(), label);
        let mut residual = moved(c.previous_residual, c.residual);
        if c.previous_inherent.is_some_and(|i| i != c.inherent) {
            residual.push_str(&format!(
                " (inherent {})",
                moved(c.previous_inherent, c.inherent)
            ));
        }
        let status = if c.previous_status.as_deref() == Some(c.status.as_str()) {
            format!("{} (unchanged)", label(&c.status))
        } else {
            format!("{then} → {}", label(&c.status))
        };
        table.row(vec![
            Cell::new(c.id.to_string()),
            Cell::new(c.title.as_str()),
            Cell::new(status),
            Cell::new(residual).mark(Mark::Dot(level_colour(c.residual.level))),
        ]);
    }
    table.draw(canvas);
}

/// Open risks by level and overdue counts per trend point.
pub(super) fn trend_table(canvas: &mut Canvas<'_>, points: &[TrendPoint]) {
    if points.is_empty() {
        return;
    }
    canvas.heading(
        "Open risks and overdue items by period",
        H2,
        keep(points.len()),
    );
    let columns = [
        Column::new("Date", 1.6, Align::Left),
        Column::new("Readiness", 1.3, Align::Right),
        Column::new("Implemented", 1.8, Align::Right),
        Column::new("Low", 0.9, Align::Right),
        Column::new("Medium", 1.0, Align::Right),
        Column::new("High", 0.9, Align::Right),
        Column::new("Critical", 1.0, Align::Right),
        Column::new("Overdue req.", 1.4, Align::Right),
        Column::new("Overdue cert.", 1.4, Align::Right),
    ];
    let mut table = Table::new(&columns, "Open risks and overdue items by period");
    for p in points {
        let r = &p.open_risks;
        table.row(vec![
            Cell::new(date(p.date)),
            if p.applicable == 0 {
                Cell::new("no data").colour(palette::MUTED)
            } else {
                Cell::new(pct(p.readiness_pct))
            },
            Cell::new(format!("{}/{}", p.implemented, p.applicable)),
            Cell::new(r.low.to_string()),
            Cell::new(r.medium.to_string()),
            Cell::new(r.high.to_string()),
            Cell::new(r.critical.to_string()),
            Cell::new(p.overdue_requirements.to_string()),
            Cell::new(p.overdue_certifications.to_string()),
        ]);
    }
    table.draw(canvas);
    canvas.paragraph(
        "Open risks are counted by residual level; overdue counts are as of each date.",
        SMALL,
        0.0,
    );
    canvas.advance(2.0);
}

/// The certification forecast and its backtest.
pub(super) fn forecast(canvas: &mut Canvas<'_>, report: &Report) {
    let forecast = &report.forecast;
    canvas.heading(
        "Certification forecast",
        H1,
        keep(forecast.certifications.len()),
    );
    if forecast.certifications.is_empty() {
        canvas.paragraph("No certifications in scope.", BODY, 0.0);
    } else {
        let columns = [
            Column::new("Certification", 3.4, Align::Left),
            Column::new("Done/total", 1.4, Align::Right),
            Column::new("Velocity/week", 1.5, Align::Right),
            Column::new("Projected", 1.5, Align::Left),
            Column::new("Target", 1.5, Align::Left),
            Column::new("Outlook", 2.4, Align::Left),
        ];
        let mut table = Table::new(&columns, "Certification forecast");
        for c in &forecast.certifications {
            let colour = match c.outlook {
                Outlook::Complete | Outlook::OnTrack => palette::GOOD,
                Outlook::AtRisk => palette::WARN,
                Outlook::Stalled => palette::BAD,
            };
            let outlook = match c.days_late {
                Some(days) if days > 0 => {
                    format!(
                        "{}, {} late",
                        outlook_words(c.outlook),
                        count(days as u64, "day", "days")
                    )
                }
                _ => outlook_words(c.outlook).to_owned(),
            };
            table.row(vec![
                Cell::new(c.name.as_str()),
                Cell::new(format!("{}/{}", c.done, c.total)),
                Cell::new(f1(c.velocity_per_week)),
                Cell::new(opt_date(c.projected_completion)),
                Cell::new(date(c.target_date)),
                Cell::new(outlook).colour(colour).mark(Mark::Dot(colour)),
            ]);
        }
        table.draw(canvas);
    }
    let method = format!(
        "Method: {}, over a trailing window of {} days.",
        forecast.method.trim_end_matches('.'),
        forecast.window_days
    );
    canvas.paragraph(&method, SMALL, 0.0);
    let b = &forecast.backtest;
    let backtest = if b.certifications == 0 {
        format!(
            "Backtest: no certification has enough history for a {}-day backtest.",
            b.horizon_days
        )
    } else {
        format!(
            "Backtest: forecasting {} from {} days before the report date, the mean absolute \
             error was {} and the maximum {} of requirements.",
            count(b.certifications, "certification", "certifications"),
            b.horizon_days,
            pct(b.mean_abs_error_pct),
            pct(b.max_abs_error_pct)
        )
    };
    canvas.paragraph(&backtest, SMALL, 0.0);
    canvas.advance(2.0);
}

/// A due list summarised in the body: its counts, then the items by
/// certification, by owner and by age (every item counted, however many the
/// appendix lists).
pub(super) fn due_summary(
    canvas: &mut Canvas<'_>,
    title: &str,
    list: &DueList,
    empty: &str,
    appendix: &str,
) {
    canvas.heading(
        title,
        H1,
        keep(list.by_certification.len()) + 2.0 * BODY.leading(),
    );
    let k = &list.by_kind;
    let summary = format!(
        "{} in total: {}, {}, {}.",
        count(list.total, "item", "items"),
        count(k.certification, "certification", "certifications"),
        count(k.requirement, "requirement", "requirements"),
        count(k.evidence, "evidence item", "evidence items"),
    );
    canvas.paragraph(&summary, BODY, 0.0);
    canvas.advance(1.0);
    if list.total == 0 {
        canvas.paragraph(empty, BODY.colour(palette::MUTED), 0.0);
        canvas.advance(2.0);
        return;
    }
    for (heading, groups) in [
        ("Certification", &list.by_certification),
        ("Owner", &list.by_owner),
        ("Age", &list.by_age),
    ] {
        let columns = [
            Column::new(heading, 6.0, Align::Left),
            Column::new("Items", 1.2, Align::Right),
        ];
        let mut table = Table::new(&columns, format!("{title} by {}", heading.to_lowercase()));
        for g in groups.iter() {
            table.row(vec![
                Cell::new(g.label.as_str()),
                Cell::new(g.count.to_string()),
            ]);
        }
        canvas.ensure(Table::height_for(groups.len().min(6)));
        table.draw(canvas);
        canvas.advance(1.0);
    }
    canvas.paragraph(&format!("Every item is listed in {appendix}."), SMALL, 0.0);
    canvas.advance(2.0);
}

/// The appendix list of a due list: the first [`MAX_DUE_ROWS`] items.
pub(super) fn due_items(canvas: &mut Canvas<'_>, title: &str, list: &DueList, empty: &str) {
    canvas.heading(title, H1, keep(list.items.len()) + 2.0 * BODY.leading());
    let k = &list.by_kind;
    let mut summary = format!(
        "{} in total: {}, {}, {}.",
        count(list.total, "item", "items"),
        count(k.certification, "certification", "certifications"),
        count(k.requirement, "requirement", "requirements"),
        count(k.evidence, "evidence item", "evidence items"),
    );
    let shown = list.items.len().min(MAX_DUE_ROWS);
    if (shown as u64) < list.total || list.truncated {
        summary.push_str(&format!(" Showing {shown} of {}.", list.total));
    }
    canvas.paragraph(&summary, BODY, 0.0);
    canvas.advance(1.0);
    if list.items.is_empty() {
        canvas.paragraph(empty, BODY.colour(palette::MUTED), 0.0);
        canvas.advance(2.0);
        return;
    }
    let columns = [
        Column::new("Kind", 1.5, Align::Left),
        Column::new("Title", 4.6, Align::Left),
        Column::new("Owner", 2.0, Align::Left),
        Column::new("Date", 1.4, Align::Left),
        Column::new("Days", 0.9, Align::Right),
    ];
    let mut table = Table::new(&columns, title);
    for item in list.items.iter().take(MAX_DUE_ROWS) {
        let days = Cell::new(item.days.to_string());
        let days = if item.days < 0 {
            days.colour(palette::BAD)
        } else {
            days
        };
        table.row(vec![
            Cell::new(item.kind.as_str()),
            Cell::new(item.title.as_str()),
            Cell::new(item.owner.as_deref().unwrap_or(DASH)),
            Cell::new(date(item.date)),
            days,
        ]);
    }
    table.draw(canvas);
    canvas.advance(2.0);
}
