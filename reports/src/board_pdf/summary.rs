//! Generated prose: the executive summary and the methodology page.
//!
//! Every number in these sentences is a model value printed with the shared
//! formatting rules, never a figure derived here (counts of list entries
//! excepted), so the summary can be checked against the JSON.

use super::canvas::{BODY, Canvas, H1, palette};
use super::format::{count, date, is_are, join_and, kpi_value, level_range, pct, with_unit};
use crate::model::{Kpi, KpiState, Outlook, Report, RiskLevel, Trend};

/// Longest risk or certification name quoted in a sentence, in characters.
const MAX_QUOTED: usize = 80;

/// The executive summary: a heading and four to seven sentences as bullets.
pub(super) fn executive_summary(canvas: &mut Canvas<'_>, report: &Report) {
    canvas.heading("Executive summary", H1, 3.0 * BODY.leading());
    for sentence in sentences(report) {
        canvas.bullet(&sentence, BODY.size(10.0));
        canvas.advance(1.2);
    }
    canvas.advance(3.0);
}

/// The summary sentences, in reading order.
pub(super) fn sentences(report: &Report) -> Vec<String> {
    let mut out = vec![readiness(report), evidence(report), risks(report)];
    out.push(forecast(report));
    out.push(overdue(report));
    if let Some(kpis) = indicators(&report.kpis) {
        out.push(kpis);
    }
    out
}

/// The KPI with one of the `exact` keys, else the first whose key contains
/// `fragment`.
fn find_kpi<'k>(kpis: &'k [Kpi], exact: &[&str], fragment: &str) -> Option<&'k Kpi> {
    kpis.iter()
        .find(|k| exact.contains(&k.key))
        .or_else(|| kpis.iter().find(|k| k.key.contains(fragment)))
}

fn quoted(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= MAX_QUOTED {
        return format!("“{text}”");
    }
    let cut: String = text.chars().take(MAX_QUOTED - 1).collect();
    format!("“{}…”", cut.trim_end())
}

fn readiness(report: &Report) -> String {
    let overall = &report.posture.overall;
    let implemented = count(overall.counts.implemented, "requirement", "requirements");
    let kpi = find_kpi(
        &report.kpis,
        &["readiness", "overall_readiness"],
        "readiness",
    );
    match kpi {
        Some(k) => {
            let previous = with_unit(k.previous, k.unit);
            let change = match k.trend {
                Trend::Up => "up from",
                Trend::Down => "down from",
                Trend::Flat => "unchanged from",
            };
            format!(
                "Overall readiness is {} with {implemented} implemented (not applicable ones \
                 excluded), {change} {previous} on {}.",
                kpi_value(k),
                date(k.previous_as_of)
            )
        }
        None => format!(
            "Overall readiness is {} with {implemented} implemented (not applicable ones \
             excluded).",
            pct(overall.readiness_pct)
        ),
    }
}

fn evidence(report: &Report) -> String {
    let overall = &report.posture.overall;
    format!(
        "Evidence coverage is {}: {} accepted, unexpired evidence, and {} of those have \
         evidence no older than {} days.",
        pct(overall.evidence_coverage_pct),
        match overall.evidenced {
            1 => "1 applicable requirement has".to_owned(),
            n => format!("{n} applicable requirements have"),
        },
        pct(overall.freshness_pct),
        report.posture.freshness_days
    )
}

fn risks(report: &Report) -> String {
    let heatmap = &report.heatmap;
    let open = heatmap.risks;
    if open == 0 {
        return format!("There are no open risks as of {}.", date(report.meta.as_of));
    }
    let above = heatmap.above_appetite.len() as u64;
    if let Some(worst) = heatmap.above_appetite.first() {
        let owner = worst
            .owner
            .as_deref()
            .map(|o| format!(", owned by {}", quoted(o)))
            .unwrap_or_default();
        format!(
            "{above} of the {} {} above the risk appetite (residual score above {}); the worst \
             is {} (#{}) with a residual score of {} ({}){owner}.",
            count(open, "open risk", "open risks"),
            is_are(above),
            heatmap.appetite,
            quoted(&worst.title),
            worst.id,
            worst.residual.score,
            worst.residual.level.as_str()
        )
    } else {
        let highest = heatmap
            .top_risks
            .first()
            .map(|r| {
                format!(
                    "; the highest residual score is {} ({}), for {}",
                    r.residual.score,
                    r.residual.level.as_str(),
                    quoted(&r.title)
                )
            })
            .unwrap_or_default();
        format!(
            "None of the {} is above the risk appetite (residual score of {} or less){highest}.",
            count(open, "open risk", "open risks"),
            heatmap.appetite
        )
    }
}

fn forecast(report: &Report) -> String {
    let certs = &report.forecast.certifications;
    if certs.is_empty() {
        return "No certifications are in scope for the forecast.".to_owned();
    }
    let tally = |o: Outlook| certs.iter().filter(|c| c.outlook == o).count() as u64;
    let parts: Vec<String> = [
        Outlook::Complete,
        Outlook::OnTrack,
        Outlook::AtRisk,
        Outlook::Stalled,
    ]
    .into_iter()
    .map(|o| (tally(o), o))
    .filter(|(n, _)| *n > 0)
    .map(|(n, o)| format!("{n} {} {}", is_are(n), super::format::outlook_words(o)))
    .collect();
    let mut text = format!(
        "Of the {} in scope, {}.",
        count(certs.len() as u64, "certification", "certifications"),
        join_and(&parts)
    );
    let latest = certs
        .iter()
        .filter_map(|c| c.projected_completion.map(|d| (d, c)))
        .max_by_key(|(d, _)| *d);
    match latest {
        Some((projected, c)) => {
            let verdict = match c.days_late {
                Some(days) if days > 0 => format!(", {} late", count(days as u64, "day", "days")),
                _ if projected <= c.target_date => ", within target".to_owned(),
                _ => String::new(),
            };
            text.push_str(&format!(
                " The latest projected completion is {} for {} against a target of {}{verdict}.",
                date(projected),
                quoted(&c.name),
                date(c.target_date)
            ));
        }
        None => text.push_str(" No projected completion dates are available."),
    }
    text
}

fn overdue(report: &Report) -> String {
    let o = &report.overdue;
    let upcoming = format!(
        "{} fall due within the next {} days",
        count(o.upcoming.total, "item", "items"),
        o.horizon_days
    );
    if o.overdue.total == 0 {
        return format!("Nothing is overdue, and {upcoming}.");
    }
    let k = &o.overdue.by_kind;
    format!(
        "{} {} overdue ({}, {} and {}), and {upcoming}.",
        count(o.overdue.total, "item", "items"),
        is_are(o.overdue.total),
        count(k.certification, "certification", "certifications"),
        count(k.requirement, "requirement", "requirements"),
        count(k.evidence, "evidence item", "evidence items"),
    )
}

fn indicators(kpis: &[Kpi]) -> Option<String> {
    if kpis.is_empty() {
        return None;
    }
    let in_state = |s: KpiState| kpis.iter().filter(|k| k.state == s).collect::<Vec<_>>();
    let breach = in_state(KpiState::Breach);
    let warning = in_state(KpiState::Warning);
    let total = kpis.len() as u64;
    if breach.is_empty() && warning.is_empty() {
        return Some(format!("All {total} indicators meet their targets."));
    }
    let names = |ks: &[&Kpi]| join_and(&ks.iter().map(|k| k.label.to_owned()).collect::<Vec<_>>());
    let mut parts = Vec::new();
    if !breach.is_empty() {
        let n = breach.len() as u64;
        parts.push(format!("{n} {} in breach ({})", is_are(n), names(&breach)));
    }
    if !warning.is_empty() {
        let n = warning.len() as u64;
        parts.push(format!(
            "{n} {} in the warning band ({})",
            is_are(n),
            names(&warning)
        ));
    }
    Some(format!("Of {total} indicators, {}.", join_and(&parts)))
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
            "Heat-maps",
            "Risks not closed as of the report date, counted by likelihood (rows, 1 at the \
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
                report.forecast.method, report.forecast.window_days
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
                 equal the JSON endpoints /v1/metrics/... for the same parameters.",
                meta.position
            ),
        ),
    ]
}
