//! The decision page and the methodology page.
//!
//! The decision page prints the report's `summary` section as it is: every
//! sentence comes from the model (`crate::summary`), so a dashboard showing
//! the JSON shows the same words.

use super::canvas::{BODY, Canvas, H1, H2, SMALL, palette};
use super::format::{date, join_and, level_range};
use crate::model::{OverallStatus, Report, RiskLevel};

/// Most status conditions and decisions printed on the decision page; the
/// rest are counted (the JSON `summary` section lists them all).
pub(super) const MAX_REASONS: usize = 4;
pub(super) const MAX_DECISIONS: usize = 8;

fn status_colour(status: OverallStatus) -> super::canvas::Colour {
    match status {
        OverallStatus::OnTrack => palette::GOOD,
        OverallStatus::AtRisk => palette::WARN,
        OverallStatus::OffTrack => palette::BAD,
        OverallStatus::NoData => palette::NEUTRAL,
    }
}

/// Page 1: who and when, the overall status and why, the key messages and
/// the decisions requested.
pub(super) fn decision_page(canvas: &mut Canvas<'_>, report: &Report) {
    let meta = &report.meta;
    let summary = &report.summary;
    let g = canvas.geom;

    // A brand band with the organization and the report date.
    let white = palette::WHITE;
    let name_style = H1.size(20.0).colour(white);
    let name = canvas.wrap_lines(&meta.organization.name, name_style, g.content_width(), 2);
    let band_h = 36.0 + name.len() as f32 * name_style.leading();
    canvas.fill_rect(0.0, 0.0, g.width, band_h, palette::BRAND);
    canvas.fill_rect(0.0, band_h, g.width, 1.2, palette::ACCENT);
    let label = SMALL.size(8.5).bold().colour(white.tint(0.25));
    canvas.text(
        g.left(),
        16.0,
        "CERTSCOPE · BOARD COMPLIANCE REPORT · CONFIDENTIAL",
        label,
    );
    let mut y = 18.0 + name_style.leading();
    for line in &name {
        canvas.text(g.left(), y, line, name_style);
        y += name_style.leading();
    }
    let certs = meta.certifications.len() as u64;
    let sub = format!(
        "As of {} · period {} – {} · {} in scope",
        date(meta.as_of),
        date(meta.period.from),
        date(meta.period.to),
        super::format::count(certs, "certification", "certifications")
    );
    let sub_style = BODY.size(10.5).colour(white.tint(0.1));
    let sub = canvas.fit(&sub, sub_style, g.content_width());
    canvas.text(g.left(), y + 1.0, &sub, sub_style);
    canvas.advance(band_h + 8.0 - canvas.y());

    // The overall status, on a bar of its colour.
    let bar = 12.0;
    let colour = status_colour(summary.status);
    let top = canvas.y();
    canvas.fill_rect(g.left(), top, g.content_width(), bar, colour);
    let status_style = H1.size(14.0).colour(white);
    canvas.text(
        g.left() + 4.0,
        top + bar / 2.0 + status_style.cap_height() / 2.0,
        &format!("Overall status: {}", summary.status.label()),
        status_style,
    );
    canvas.advance(bar + 3.0);
    let shown = summary.reasons.len().min(MAX_REASONS);
    for m in &summary.reasons[..shown] {
        canvas.bullet(&m.text, BODY.size(10.0));
        canvas.advance(0.8);
    }
    if summary.reasons.len() > shown {
        let more = (summary.reasons.len() - shown) as u64;
        canvas.paragraph(
            &format!("… and {more} more (see the indicators and the forecast)."),
            SMALL,
            4.5,
        );
    }
    canvas.advance(2.0);

    canvas.heading("Key messages", H2, 2.0 * BODY.leading());
    // a message that is already a reason printed above is not repeated
    let printed = &summary.reasons[..shown];
    for m in summary
        .messages
        .iter()
        .filter(|m| !printed.iter().any(|r| r.text == m.text))
    {
        canvas.bullet(&m.text, BODY.size(10.0));
        canvas.advance(1.0);
    }
    canvas.advance(2.0);

    canvas.heading("Decisions requested", H2, 2.0 * BODY.leading());
    if summary.decisions.is_empty() {
        canvas.paragraph(
            "No decisions are requested: no risk is above appetite and every certification \
             is forecast to meet its target.",
            BODY.size(10.0),
            0.0,
        );
    }
    let shown = summary.decisions.len().min(MAX_DECISIONS);
    for (i, d) in summary.decisions[..shown].iter().enumerate() {
        numbered(canvas, i + 1, &d.text);
        canvas.advance(1.0);
    }
    if summary.decisions.len() > shown {
        let more = (summary.decisions.len() - shown) as u64;
        canvas.paragraph(
            &format!(
                "… and {more} more, listed in the summary section of the JSON report and, for \
                 risks, in “Risks above appetite”."
            ),
            SMALL,
            6.0,
        );
    }
}

/// `n.` hanging to the left of a wrapped paragraph.
fn numbered(canvas: &mut Canvas<'_>, n: usize, text: &str) {
    let style = BODY.size(10.0);
    let indent = 6.0;
    let width = canvas.geom.content_width() - indent;
    for (i, line) in canvas.wrap(text, style, width).into_iter().enumerate() {
        canvas.ensure(style.leading());
        let baseline = canvas.y() + style.cap_height();
        if i == 0 {
            let number = format!("{n}.");
            canvas.text(canvas.geom.left(), baseline, &number, style.bold());
        }
        canvas.text(canvas.geom.left() + indent, baseline, &line, style);
        canvas.advance(style.leading());
    }
}

/// The methodology and definitions page.
pub(super) fn methodology(canvas: &mut Canvas<'_>, report: &Report) {
    canvas.heading("Methodology and definitions", H1, 3.0 * BODY.leading());
    let term_style = BODY.size(9.0).bold().colour(palette::BRAND);
    let text_style = BODY.size(9.0);
    for (term, text) in definitions(report) {
        // A term stays with the first two lines of its definition.
        let gap = if canvas.at_page_top() { 0.0 } else { 2.2 };
        if !canvas.ensure(gap + term_style.leading() + 2.0 * text_style.leading()) {
            canvas.advance(gap);
        }
        canvas.paragraph(term, term_style, 0.0);
        canvas.paragraph(&text, text_style, 0.0);
    }
}

fn definitions(report: &Report) -> Vec<(&'static str, String)> {
    let meta = &report.meta;
    let levels = join_and(
        &RiskLevel::ALL
            .iter()
            .map(|l| format!("{} {}", l.as_str(), level_range(*l)))
            .collect::<Vec<_>>(),
    );
    vec![
        (
            "Readiness",
            "Implemented requirements divided by applicable requirements, in percent. \
             Requirements marked not applicable are excluded from both; with nothing \
             applicable, readiness is 0."
                .to_owned(),
        ),
        (
            "Evidence coverage",
            format!(
                "Applicable requirements with at least one accepted, unexpired piece of \
                 evidence as of {}, divided by applicable requirements. Evidence counts from \
                 the day it was collected, once it has been accepted.",
                date(meta.as_of)
            ),
        ),
        (
            "Freshness",
            format!(
                "Evidenced requirements whose newest accepted, unexpired evidence is at most \
                 {} days old on the report date, divided by evidenced requirements.",
                report.posture.freshness_days
            ),
        ),
        (
            "Risk score and levels",
            format!(
                "Score = likelihood × impact, each rated 1 to 5. Levels: {levels}. Inherent \
                 ratings ignore controls; residual ratings allow for treatment. A risk is above \
                 appetite when its residual score exceeds {}.",
                report.heatmap.appetite
            ),
        ),
        (
            "Overall status",
            "Off track when a certification still working towards its target is forecast to \
             miss it, or an indicator is in breach; at risk when an indicator is in its warning \
             band or a risk above appetite is still open or in treatment; on track otherwise; \
             no data when nothing is in scope. Readiness and evidence coverage are not judged \
             when no requirement is applicable."
                .to_owned(),
        ),
        (
            "Risk states",
            "Open: identified, no treatment started. In treatment: being reduced. Accepted: a \
             decision to carry it as it is. Closed: no longer carried. Open and in-treatment \
             risks are the open work counted by the indicators and the trend; the heat-maps \
             and the appetite count every risk carried (open, in treatment or accepted), and \
             accepted risks above appetite are listed for the board to confirm."
                .to_owned(),
        ),
        (
            "Heat-maps",
            "Risks carried as of the report date, counted by likelihood (rows, 1 at the \
             bottom) and impact (columns, 1 on the left)."
                .to_owned(),
        ),
        (
            "Overdue and upcoming",
            format!(
                "An item is overdue when its due date (requirements), target date \
                 (certifications) or expiry date (evidence) is before the report date and it \
                 is not closed. Upcoming items fall due within the next {} days. Days are \
                 counted from the report date; negative values are days overdue.",
                report.overdue.horizon_days
            ),
        ),
        (
            "Indicators and trends",
            format!(
                "Each indicator is compared with its target and its breach threshold: good \
                 when the target is met, warning in between, breach beyond the threshold. The \
                 previous value is the same indicator one {} earlier. Trend points are taken at \
                 the end of each {} from {} to {}.",
                meta.period.interval.as_str(),
                meta.period.interval.as_str(),
                date(meta.period.from),
                date(meta.period.to)
            ),
        ),
        (
            "Forecast",
            format!(
                "Method: {}. Velocity is requirements completed per week over the trailing {} \
                 days; the projected completion extends that velocity over the remaining \
                 requirements. Outlooks: complete; on track (projected on or before the target \
                 date); at risk (projected after it); stalled (no progress in the window).",
                report.forecast.method.trim_end_matches('.'),
                report.forecast.window_days
            ),
        ),
        (
            "Backtest",
            format!(
                "The forecast is recomputed from the data as it stood {} days before the report \
                 date and compared with the requirements actually implemented by the report \
                 date. The error is |predicted − actual| / total requirements, in percent; the \
                 mean and maximum are taken over the certifications tested.",
                report.forecast.backtest.horizon_days
            ),
        ),
        (
            "Data position and reproducibility",
            format!(
                "The figures were read at data position {} (a PostgreSQL snapshot); the same \
                 parameters at the same position always produce the same numbers. All figures \
                 equal the JSON sections /v1/metrics/{{section}} for the same parameters.",
                meta.position
            ),
        ),
    ]
}
