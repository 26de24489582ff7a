//! The cover page and the tabular sections.

use super::canvas::{Arrow, BODY, Canvas, H1, H2, SMALL, palette};
use super::charts::level_colour;
use super::format::{
    DASH, count, date, f1, join_and, kpi_value, opt_date, outlook_words, pct, rating, timestamp,
    with_unit,
};
use super::table::{Align, Cell, Column, Mark, Table};
use crate::model::{
    Direction, DueList, Kpi, KpiState, Outlook, Report, RiskItem, Trend, TrendPoint,
};

/// Most overdue or upcoming items listed; the rest are counted.
pub(super) const MAX_DUE_ROWS: usize = 100;

/// Room a heading asks for below it: the whole table when it is short (so
/// short tables are not split), a header and a few rows otherwise.
fn keep(rows: usize) -> f32 {
    Table::height_for(rows.max(1)).min(Table::height_for(12))
}

/// Page 1: organization, title, period and scope.
pub(super) fn cover(canvas: &mut Canvas<'_>, report: &Report) {
    let meta = &report.meta;
    let g = canvas.geom;
    let band_h = (g.height * 0.36).min(105.0);
    canvas.fill_rect(0.0, 0.0, g.width, band_h, palette::BRAND);
    canvas.fill_rect(0.0, band_h, g.width, 1.6, palette::ACCENT);

    let white = palette::WHITE;
    let label = SMALL.size(9.0).bold().colour(white.tint(0.25));
    canvas.text(g.left(), 30.0, "CERTSCOPE · CONFIDENTIAL", label);

    // The organization name, large, on up to three lines.
    let mut name_style = H1.size(28.0).colour(white);
    let mut lines = canvas.wrap(&meta.organization.name, name_style, g.content_width());
    if lines.len() > 2 {
        name_style = name_style.size(20.0);
        lines = canvas.wrap_lines(&meta.organization.name, name_style, g.content_width(), 3);
    }
    let mut y = 30.0 + 6.0 + name_style.cap_height();
    for line in &lines {
        canvas.text(g.left(), y, line, name_style);
        y += name_style.leading();
    }
    let sub = BODY.size(14.0).colour(white);
    canvas.text(g.left(), y + 2.0, "Board compliance report", sub);
    let period = format!(
        "{} – {} · by {}",
        date(meta.period.from),
        date(meta.period.to),
        meta.period.interval.as_str()
    );
    canvas.text(
        g.left(),
        y + 9.0,
        &period,
        BODY.size(11.0).colour(white.tint(0.15)),
    );

    // Details below the band.
    canvas.advance(band_h + 14.0 - canvas.y());
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
    for (label, value) in details {
        let max_lines = if label == "Certifications" { 6 } else { 3 };
        let mut value_lines = canvas.wrap_lines(&value, value_style, value_w, max_lines);
        if value_lines.is_empty() {
            value_lines.push(DASH.to_owned());
        }
        let top = canvas.y();
        canvas.text(g.left(), top + value_style.cap_height(), label, label_style);
        for (i, line) in value_lines.iter().enumerate() {
            let baseline = top + value_style.cap_height() + i as f32 * value_style.leading();
            canvas.text(value_x, baseline, line, value_style);
        }
        canvas.advance(value_lines.len() as f32 * value_style.leading() + 2.6);
    }

    let note = "Confidential — prepared for the board. Every figure in this report equals the \
                Certscope JSON endpoints for the same organization, scope, parameters and data \
                position.";
    let lines = canvas.wrap(note, SMALL, g.content_width());
    let mut baseline = g.bottom() - lines.len() as f32 * SMALL.leading() + SMALL.cap_height();
    canvas.rule(baseline - SMALL.cap_height() - 2.5, palette::RULE, 0.5);
    for line in &lines {
        canvas.text(g.left(), baseline, line, SMALL);
        baseline += SMALL.leading();
    }
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
        .map(|c| format!("{} ({})", c.name, c.framework))
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
            Direction::HigherIsBetter => format!("≥ {}", with_unit(kpi.target, kpi.unit)),
            Direction::LowerIsBetter => format!("≤ {}", with_unit(kpi.target, kpi.unit)),
        };
        let (lo, hi) = if kpi.warning <= kpi.target {
            (kpi.warning, kpi.target)
        } else {
            (kpi.target, kpi.warning)
        };
        // Word units are long: print them once, after the upper bound.
        let lo = match kpi.unit {
            "" | "%" => with_unit(lo, kpi.unit),
            _ => f1(lo),
        };
        let band = format!("{lo} – {}", with_unit(hi, kpi.unit));
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
        };
        table.row(vec![
            Cell::new(kpi.label),
            Cell::new(kpi_value(kpi)).bold(),
            Cell::new(target),
            Cell::new(band),
            Cell::new(with_unit(kpi.previous, kpi.unit)),
            Cell::new("").mark(Mark::Arrow(arrow, trend_colour)),
            Cell::new(kpi.state.as_str())
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

/// The ten worst risks.
pub(super) fn top_risks(canvas: &mut Canvas<'_>, risks: &[RiskItem]) {
    canvas.heading("Top risks", H1, keep(risks.len()));
    if risks.is_empty() {
        canvas.paragraph("No open risks as of the report date.", BODY, 0.0);
        canvas.advance(2.0);
        return;
    }
    let columns = [
        Column::new("ID", 0.8, Align::Right),
        Column::new("Risk", 4.2, Align::Left),
        Column::new("Owner", 1.8, Align::Left),
        Column::new("Inherent → residual", 2.6, Align::Left),
        Column::new("Treatment", 1.4, Align::Left),
        Column::new("Due", 1.4, Align::Left),
    ];
    let mut table = Table::new(&columns, "Top risks");
    for risk in risks {
        let ratings = format!(
            "{} → {}",
            rating(risk.inherent.score, risk.inherent.level),
            rating(risk.residual.score, risk.residual.level)
        );
        table.row(vec![
            Cell::new(risk.id.to_string()),
            Cell::new(risk.title.as_str()),
            Cell::new(risk.owner.as_deref().unwrap_or(DASH)),
            Cell::new(ratings).mark(Mark::Dot(level_colour(risk.residual.level))),
            Cell::new(risk.treatment.as_str()),
            Cell::new(opt_date(risk.due_date)),
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
            Cell::new(pct(p.readiness_pct)),
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
        forecast.method, forecast.window_days
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

/// One list of overdue or upcoming items.
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
