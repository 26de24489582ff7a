//! Vector charts: the risk heat-maps, readiness bars and the readiness trend.

use chrono::NaiveDate;

use super::canvas::{BODY, Canvas, Colour, H2, SMALL, palette};
use super::format::{count, date, level_range, pct};
use crate::model::{Grid, Heatmap, PostureRow, RiskLevel, TrendPoint};

/// Fill of a heat-map cell (and legend swatch) by level.
pub(super) fn level_colour(level: RiskLevel) -> Colour {
    match level {
        RiskLevel::Low => Colour::rgb(0.47, 0.75, 0.42),
        RiskLevel::Medium => Colour::rgb(0.99, 0.85, 0.33),
        RiskLevel::High => Colour::rgb(0.97, 0.58, 0.24),
        RiskLevel::Critical => Colour::rgb(0.86, 0.23, 0.20),
    }
}

/// Gap between the two heat-maps in millimetres.
const GRID_GAP: f32 = 10.0;
/// Width of the likelihood tick column in millimetres.
const Y_AXIS: f32 = 7.0;

/// The inherent and residual heat-maps side by side, with legend and
/// appetite line.
pub(super) fn heatmaps(canvas: &mut Canvas<'_>, heatmap: &Heatmap) {
    let block_w = (canvas.geom.content_width() - GRID_GAP) / 2.0;
    let cell = ((block_w - Y_AXIS) / 5.0).min(16.0);
    let block_h = 11.0 + cell * 5.0 + 9.0;
    let legend_h = 14.0;
    canvas.ensure(block_h + legend_h);

    let top = canvas.y();
    let left = canvas.geom.left();
    let grids = [
        ("Inherent risk", &heatmap.inherent),
        ("Residual risk", &heatmap.residual),
    ];
    for (i, (title, grid)) in grids.into_iter().enumerate() {
        let x = left + i as f32 * (block_w + GRID_GAP);
        grid_block(canvas, x, top, cell, title, grid);
    }
    canvas.advance(block_h);

    // Legend: one swatch per level with its score range.
    let baseline = canvas.y() + SMALL.cap_height() + 1.0;
    let mut x = left;
    let label_style = SMALL.colour(palette::INK);
    for level in RiskLevel::ALL {
        canvas.fill_rect(x, baseline - 3.0, 3.6, 3.6, level_colour(level));
        let label = format!("{} {}", level.as_str(), level_range(level));
        canvas.text(x + 5.0, baseline, &label, label_style);
        x += 5.0 + canvas.width(&label, label_style) + 6.0;
    }
    canvas.advance(6.0);

    let above = heatmap.above_appetite.len() as u64;
    let appetite = format!(
        "Appetite: residual score ≤ {}; {} above.",
        heatmap.appetite,
        count(above, "risk", "risks")
    );
    canvas.paragraph(&appetite, BODY.bold(), 0.0);
    canvas.advance(2.0);
}

/// One 5×5 grid with its title and axes at (`x`, `top`).
fn grid_block(canvas: &mut Canvas<'_>, x: f32, top: f32, cell: f32, title: &str, grid: &Grid) {
    let title_style = H2.size(10.0);
    let heading = format!("{title} ({})", count(grid.total, "risk", "risks"));
    let heading = canvas.fit(&heading, title_style, Y_AXIS + 5.0 * cell);
    canvas.text(x, top + title_style.cap_height(), &heading, title_style);
    canvas.text(x, top + 9.0, "Likelihood ↑", SMALL);

    let gx = x + Y_AXIS;
    let gy = top + 11.0;
    for likelihood in 1..=5u8 {
        let row_top = gy + f32::from(5 - likelihood) * cell;
        let tick_base = row_top + (cell + SMALL.cap_height()) / 2.0;
        canvas.text_right(gx - 2.0, tick_base, &likelihood.to_string(), SMALL);
        for impact in 1..=5u8 {
            let cx = gx + f32::from(impact - 1) * cell;
            let found = grid
                .cells
                .iter()
                .find(|c| c.likelihood == likelihood && c.impact == impact);
            let (level, n) = match found {
                Some(c) => (c.level, Some(c.count)),
                None => (RiskLevel::of_score(likelihood * impact), None),
            };
            let occupied = n.is_some_and(|n| n > 0);
            let fill = if occupied {
                level_colour(level)
            } else {
                level_colour(level).tint(0.68)
            };
            canvas.fill_rect(cx + 0.3, row_top + 0.3, cell - 0.6, cell - 0.6, fill);
            if let Some(n) = n {
                let style = if !occupied {
                    BODY.size(8.5).colour(palette::MUTED)
                } else if level == RiskLevel::Critical {
                    BODY.size(10.0).bold().colour(palette::WHITE)
                } else {
                    BODY.size(10.0).bold()
                };
                let text = canvas.fit(&n.to_string(), style, cell - 1.0);
                let baseline = row_top + (cell + style.cap_height()) / 2.0;
                canvas.text_centre(cx + cell / 2.0, baseline, &text, style);
            }
        }
    }
    let axis_base = gy + 5.0 * cell + 3.6;
    for impact in 1..=5u8 {
        let cx = gx + (f32::from(impact) - 0.5) * cell;
        canvas.text_centre(cx, axis_base, &impact.to_string(), SMALL);
    }
    canvas.text_centre(gx + 2.5 * cell, axis_base + 4.2, "Impact →", SMALL);
}

/// Row height of a readiness bar in millimetres.
const BAR_ROW: f32 = 6.4;

/// The readiness KPI's target and warning threshold, which colour the bars.
#[derive(Debug, Clone, Copy)]
pub(super) struct Goal {
    pub(super) target: f64,
    pub(super) warning: f64,
}

/// Horizontal readiness bars, one per row, coloured by the readiness KPI's
/// state rule against `goal` (green at or above target, amber down to the
/// warning threshold, red below) with the target marked; a row with nothing
/// applicable reads "no data" instead of 0%. Labels wrap to two lines.
pub(super) fn readiness_bars(
    canvas: &mut Canvas<'_>,
    title: &str,
    rows: &[PostureRow],
    empty: &str,
    goal: Option<Goal>,
    legend: bool,
) {
    canvas.heading(title, H2, BAR_ROW);
    if rows.is_empty() {
        canvas.paragraph(empty, BODY.colour(palette::MUTED), 0.0);
        canvas.advance(2.0);
        return;
    }
    let label_style = BODY.size(8.5);
    let pct_style = BODY.size(8.5).bold();
    let left = canvas.geom.left();
    let label_w = (canvas.geom.content_width() * 0.34).min(62.0);
    let pct_w = canvas.width("100.0% (+100.0)", pct_style) + 2.0;
    let bar_x = left + label_w + 2.0;
    let bar_w = (canvas.geom.right() - pct_w - 2.0 - bar_x).max(10.0);
    for row in rows {
        let label = canvas.wrap_lines(&row.label, label_style, label_w, 2);
        let extra = (label.len().max(1) - 1) as f32 * label_style.leading();
        let height = BAR_ROW + extra;
        if canvas.ensure(height) {
            let caption = format!("{title} (continued)");
            canvas.paragraph(&caption, SMALL, 0.0);
        }
        let top = canvas.y();
        let baseline = top + (BAR_ROW + label_style.cap_height()) / 2.0;
        for (i, line) in label.iter().enumerate() {
            canvas.text(
                left,
                baseline + i as f32 * label_style.leading(),
                line,
                label_style,
            );
        }
        let bar_top = top + (BAR_ROW - 3.6) / 2.0;
        canvas.fill_rect(bar_x, bar_top, bar_w, 3.6, palette::TRACK);
        if row.counts.applicable() == 0 {
            canvas.text_right(
                canvas.geom.right(),
                baseline,
                "no data",
                pct_style.colour(palette::MUTED),
            );
        } else {
            let share = (row.readiness_pct / 100.0).clamp(0.0, 1.0);
            let share = if share.is_finite() { share as f32 } else { 0.0 };
            let colour = match goal {
                Some(g) if row.readiness_pct >= g.target => palette::GOOD,
                Some(g) if row.readiness_pct >= g.warning => palette::WARN,
                Some(_) => palette::BAD,
                None => palette::ACCENT,
            };
            canvas.fill_rect(bar_x, bar_top, bar_w * share, 3.6, colour);
            // the change since the previous pack, in points
            let text = match row.previous_readiness_pct {
                Some(before) => {
                    format!(
                        "{} ({:+.1})",
                        pct(row.readiness_pct),
                        row.readiness_pct - before
                    )
                }
                None => pct(row.readiness_pct),
            };
            canvas.text_right(canvas.geom.right(), baseline, &text, pct_style);
        }
        if let Some(g) = goal {
            let x = bar_x + bar_w * (g.target / 100.0).clamp(0.0, 1.0) as f32;
            canvas.line(&[(x, bar_top - 1.0), (x, bar_top + 4.6)], palette::INK, 0.6);
        }
        canvas.advance(height);
    }
    if let Some(g) = goal.filter(|_| legend) {
        let note = format!(
            "Green at or above the {} readiness target (the vertical mark), amber down to the {} \
             warning threshold, red below; \"no data\" where nothing is applicable. In brackets: \
             the change in points since the previous pack.",
            pct(g.target),
            pct(g.warning)
        );
        canvas.paragraph(&note, SMALL, 0.0);
    }
    canvas.advance(2.0);
}

/// Height of the trend chart in millimetres (plot plus axis labels).
const TREND_H: f32 = 62.0;

/// A line chart of readiness over the trend points.
/// The target line and scope changes are marked (see the note printed
/// under the chart).
pub(super) fn readiness_trend(canvas: &mut Canvas<'_>, points: &[TrendPoint], goal: Option<Goal>) {
    canvas.heading("Readiness over time", H2, TREND_H);
    if points.is_empty() {
        canvas.paragraph(
            "No trend data for this period.",
            BODY.colour(palette::MUTED),
            0.0,
        );
        canvas.advance(2.0);
        return;
    }
    let top = canvas.y() + 2.0;
    let plot_l = canvas.geom.left() + 11.0;
    let plot_r = canvas.geom.right() - 4.0;
    let plot_t = top;
    let plot_b = top + TREND_H - 12.0;
    let plot_w = plot_r - plot_l;
    let plot_h = plot_b - plot_t;

    for tick in (0..=100).step_by(20) {
        let y = plot_b - plot_h * tick as f32 / 100.0;
        let colour = if tick == 0 {
            palette::MUTED
        } else {
            palette::RULE
        };
        canvas.line(
            &[(plot_l, y), (plot_r, y)],
            colour,
            if tick == 0 { 0.8 } else { 0.4 },
        );
        let label = format!("{tick}%");
        canvas.text_right(plot_l - 1.5, y + SMALL.cap_height() / 2.0, &label, SMALL);
    }

    let first = points.iter().map(|p| p.date).min();
    let last = points.iter().map(|p| p.date).max();
    let span = match (first, last) {
        (Some(a), Some(b)) => (b - a).num_days(),
        _ => 0,
    };
    let x_of = |i: usize, d: NaiveDate| -> f32 {
        match first {
            Some(a) if span > 0 => plot_l + plot_w * (d - a).num_days() as f32 / span as f32,
            _ if points.len() > 1 => plot_l + plot_w * i as f32 / (points.len() - 1) as f32,
            _ => plot_l + plot_w / 2.0,
        }
    };
    let y_of = |v: f64| -> f32 {
        let v = if v.is_finite() {
            v.clamp(0.0, 100.0) as f32
        } else {
            0.0
        };
        plot_b - plot_h * v / 100.0
    };

    // labels placed so far, as (left, top, right, bottom): later labels move
    // down until they overlap none of them
    let mut taken: Vec<(f32, f32, f32, f32)> = Vec::new();
    if let Some(g) = goal {
        let y = y_of(g.target);
        canvas.line(&[(plot_l, y), (plot_r, y)], palette::GOOD, 0.7);
        let label = format!("target {}", pct(g.target));
        let style = SMALL.colour(palette::GOOD);
        canvas.text_right(plot_r, y - 1.2, &label, style);
        let w = canvas.width(&label, style);
        taken.push((plot_r - w, y - 1.2 - style.cap_height(), plot_r, y - 1.2));
    }

    // Scope changes: requirements entering or leaving scope move readiness
    // without any work done or undone; mark them so nobody reads a new
    // certification as a collapse.
    let mut by_date: Vec<(usize, &TrendPoint)> = points.iter().enumerate().collect();
    by_date.sort_by_key(|(_, p)| p.date);
    let mut marked = 0;
    for pair in by_date.windows(2) {
        let ((_, before), (i, now)) = (pair[0], pair[1]);
        let (a, b) = (before.applicable, now.applicable);
        if a == b || a == 0 || a.abs_diff(b) * 10 < a {
            continue;
        }
        let x = x_of(i, now.date);
        canvas.line(&[(x, plot_t), (x, plot_b)], palette::MUTED, 0.5);
        let label = if b > a {
            format!("+{} in scope", b - a)
        } else {
            format!("−{} out of scope", a - b)
        };
        let w = canvas.width(&label, SMALL);
        let lx = (x + 1.0).min(plot_r - w);
        let overlaps = |baseline: f32| {
            let (l, t, r, b) = (lx, baseline - SMALL.cap_height(), lx + w, baseline);
            taken
                .iter()
                .any(|&(l2, t2, r2, b2)| l < r2 && l2 < r && t < b2 + 0.8 && t2 < b + 0.8)
        };
        let mut baseline = plot_t + 3.0 + (marked % 3) as f32 * 3.2;
        while overlaps(baseline) && baseline < plot_b - 3.2 {
            baseline += 3.2;
        }
        canvas.text(lx, baseline, &label, SMALL);
        taken.push((lx, baseline - SMALL.cap_height(), lx + w, baseline));
        marked += 1;
    }

    // Plot in date order; a point without a finite value, or with nothing
    // applicable (no data rather than 0%), is left out.
    let mut plotted: Vec<(f32, f32, f64)> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.readiness_pct.is_finite() && p.applicable > 0)
        .map(|(i, p)| (x_of(i, p.date), y_of(p.readiness_pct), p.readiness_pct))
        .collect();
    plotted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let coords: Vec<(f32, f32)> = plotted.iter().map(|&(x, y, _)| (x, y)).collect();
    canvas.line(&coords, palette::ACCENT, 1.6);
    for &(x, y) in &coords {
        canvas.dot(x, y, 0.9, palette::BRAND);
    }
    if let Some(&(x, y, value)) = plotted.last() {
        let label = pct(value);
        let style = SMALL.bold().colour(palette::BRAND);
        let w = canvas.width(&label, style);
        let lx = (x - w / 2.0).clamp(plot_l, plot_r - w);
        let ly = if y - 2.5 < plot_t + 3.0 {
            y + 5.0
        } else {
            y - 2.5
        };
        canvas.text(lx, ly, &label, style);
    }

    // Date labels, thinned so they never overlap.
    let label_w = canvas.width("0000-00-00", SMALL) + 3.0;
    let fit = ((plot_w / label_w).floor() as usize).max(1);
    let step = points.len().div_ceil(fit).max(1);
    let axis_base = plot_b + 4.2;
    for (i, p) in points.iter().enumerate().step_by(step) {
        let label = date(p.date);
        let w = canvas.width(&label, SMALL);
        let x = (x_of(i, p.date) - w / 2.0).clamp(plot_l - 4.0, plot_r + 4.0 - w);
        canvas.text(x, axis_base, &label, SMALL);
    }
    canvas.advance(TREND_H);
    if marked > 0 {
        canvas.paragraph(
            "Vertical marks: requirements entering or leaving scope (a certification added or \
             removed), which move readiness without any work done or undone.",
            SMALL,
            0.0,
        );
        canvas.advance(1.5);
    }
}
