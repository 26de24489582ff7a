//! The board PDF: a printable rendering of one [`Report`].
//!
//! Layout: the decision page (organization and date, the overall status and
//! why, the key messages and the decisions requested: the `summary` section
//! as it is); what the report covers (period, generation time, data position,
//! scope) and the KPI table; then, flowing, the
//! risk heat-maps, readiness bars per framework and per certification and the
//! top risks, followed by the readiness trend with open risks and overdue
//! counts per period, the certification forecast with its backtest, and the
//! overdue and upcoming items summarised by certification, owner and age; the
//! methodology on a page of its own; finally the appendices listing the
//! overdue and the upcoming items (the first 100 of each, "showing N of M").
//! Sections flow onto further pages as needed: a heading stays with what
//! follows it, short tables move whole to the next page, long tables repeat
//! their header row and never split a row. Every page has a footer with the
//! organization, the report date, the data position and "Page n of N".
//!
//! Text uses the embedded DejaVu Sans faces (regular and bold) and, for
//! characters DejaVu lacks, Droid Sans Fallback (Chinese, Japanese, Korean;
//! one weight, so bold CJK prints regular). Each is subset to the glyphs drawn
//! and embedded as an Identity-H Type0 font with a `/ToUnicode` map, so text is
//! selectable and extractable; the fallback is only embedded in documents that
//! use it. A string mixing scripts is one text object that switches fonts, and
//! widths, truncation and wrapping use each character's own font; lines break
//! between CJK characters as well as at spaces. There is no shaping or
//! bidirectional reordering: Arabic letters appear in their isolated forms,
//! right-to-left text in logical order, and Hangul only as precomposed
//! syllables. Characters in neither font (Indic scripts, Thai, emoji, …) print
//! as `?`.
//!
//! Numbers are printed exactly as the JSON endpoints return them: one decimal
//! for every `f64`, plain integers, ISO dates (see `format`).

mod canvas;
mod charts;
mod fonts;
mod format;
mod sections;
mod subset;
mod summary;
mod table;
#[cfg(test)]
mod tests;

use printpdf::{Mm, PdfDocument, PdfPage, PdfParseErrorSeverity, PdfSaveOptions};

use crate::model::Report;
#[cfg(test)]
use canvas::PageFill;
use canvas::{Canvas, Geometry, H1, SMALL, palette};

/// Paper size of the board PDF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSize {
    /// ISO A4, 210 × 297 mm.
    A4,
    /// US Letter, 215.9 × 279.4 mm (8.5 × 11 in).
    Letter,
}

impl PageSize {
    /// Parses `a4` or `letter`, ignoring case.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("a4") {
            Some(Self::A4)
        } else if s.eq_ignore_ascii_case("letter") {
            Some(Self::Letter)
        } else {
            None
        }
    }

    /// The lowercase name accepted by [`PageSize::parse`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::A4 => "a4",
            Self::Letter => "letter",
        }
    }

    /// Width and height in millimetres.
    pub(crate) fn dimensions_mm(self) -> (f32, f32) {
        match self {
            Self::A4 => (210.0, 297.0),
            Self::Letter => (215.9, 279.4),
        }
    }
}

/// Why the board PDF could not be produced.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The embedded DejaVu fonts did not parse (a build defect, not bad input).
    /// A fallback font that does not parse only turns CJK text into `?`.
    #[error("failed to load the embedded font")]
    Font,
    /// printpdf produced no document.
    #[error("failed to serialize the PDF: {0}")]
    Serialize(String),
}

/// Renders the board PDF for `report` on pages of `size`.
///
/// Works for any report content: empty sections print a short note instead of
/// a table or chart, long names are wrapped or truncated with "…", and long
/// lists continue on further pages (overdue and upcoming lists show at most
/// 100 items each and say how many there are in total).
pub fn render_board(report: &Report, size: PageSize) -> Result<Vec<u8>, PdfError> {
    let fonts = fonts::get()?;
    let geom = Geometry::for_size(size);
    let canvas = lay_out(fonts, report, geom);
    let (page_ops, used) = canvas.finish();

    let title = format!(
        "Board compliance report — {}",
        report.meta.organization.name
    );
    let mut doc = PdfDocument::new(&title);
    let info = &mut doc.metadata.info;
    info.author = report.meta.organization.name.clone();
    info.creator = "Certscope".to_owned();
    info.producer = "Certscope (printpdf)".to_owned();
    info.subject = format!(
        "Compliance posture as of {}",
        format::date(report.meta.as_of)
    );
    if let Ok(t) =
        printpdf::OffsetDateTime::from_unix_timestamp(report.meta.generated_at.timestamp())
    {
        info.creation_date = t;
        info.modification_date = t;
        info.metadata_date = t;
    }
    fonts.register(&mut doc, &used);

    let pages = page_ops
        .into_iter()
        .map(|ops| PdfPage::new(Mm(geom.width), Mm(geom.height), ops))
        .collect();
    // printpdf only honours `subset_fonts` with its `text_layout` feature;
    // `Fonts::register` has already subset the faces either way.
    let options = PdfSaveOptions {
        subset_fonts: true,
        ..PdfSaveOptions::default()
    };
    let mut warnings = Vec::new();
    let bytes = doc.with_pages(pages).save(&options, &mut warnings);
    for w in &warnings {
        if w.severity == PdfParseErrorSeverity::Error {
            tracing::warn!(page = w.page, message = %w.msg, "board PDF serialization");
        } else {
            tracing::debug!(page = w.page, message = %w.msg, "board PDF serialization");
        }
    }
    if bytes.is_empty() {
        return Err(PdfError::Serialize("printpdf returned no bytes".to_owned()));
    }
    Ok(bytes)
}

/// How full each page of the board PDF for `report` is left (see
/// [`PageFill`]): what the page-fill tests read.
#[cfg(test)]
pub(crate) fn page_fills(report: &Report, size: PageSize) -> Result<Vec<PageFill>, PdfError> {
    let fonts = fonts::get()?;
    Ok(lay_out(fonts, report, Geometry::for_size(size)).page_fills())
}

/// Places every page's content, footers included.
fn lay_out<'f>(fonts: &'f fonts::Fonts, report: &Report, geom: Geometry) -> Canvas<'f> {
    let mut canvas = Canvas::new(fonts, geom);
    summary::decision_page(&mut canvas, report);

    canvas.new_page();
    sections::kpis(&mut canvas, &report.kpis);

    // the body flows: a heading moves to the next page only when what must
    // follow it does not fit, so Letter and A4 pages both fill
    canvas.heading("Risk heat-maps", H1, 100.0);
    charts::heatmaps(&mut canvas, &report.heatmap);
    let goal = report
        .kpis
        .iter()
        .find(|k| k.key == "readiness")
        .map(|k| charts::Goal {
            target: k.target.as_f64(),
            warning: k.warning.as_f64(),
        });
    charts::readiness_bars(
        &mut canvas,
        "Readiness by framework",
        &report.posture.frameworks,
        "No frameworks in scope.",
        goal,
        false,
    );
    charts::readiness_bars(
        &mut canvas,
        "Readiness by certification",
        &report.posture.certifications,
        "No certifications in scope.",
        goal,
        true,
    );
    sections::top_risks(&mut canvas, &report.heatmap.top_risks);
    sections::risk_table(
        &mut canvas,
        "Risks above appetite",
        &report.heatmap.above_appetite,
        "No risk is above appetite.",
    );
    sections::risk_changes(&mut canvas, &report.heatmap);

    canvas.heading("Trends", H1, 70.0);
    charts::readiness_trend(&mut canvas, &report.trends.points, goal);
    sections::trend_table(&mut canvas, &report.trends.points);
    sections::forecast(&mut canvas, report);

    let upcoming_title = format!("Upcoming items (next {} days)", report.overdue.horizon_days);
    sections::due_summary(
        &mut canvas,
        "Overdue items",
        &report.overdue.overdue,
        "Nothing is overdue.",
        "Appendix A",
    );
    sections::due_summary(
        &mut canvas,
        &upcoming_title,
        &report.overdue.upcoming,
        "Nothing falls due within the horizon.",
        "Appendix B",
    );

    // what the pack covers and how it was made: reference, after the body
    // (flowing on, so the body's last page is not left nearly empty)
    sections::about(&mut canvas, report);
    summary::methodology(&mut canvas, report);

    canvas.new_page();
    sections::due_items(
        &mut canvas,
        "Appendix A — overdue items",
        &report.overdue.overdue,
        "Nothing is overdue.",
    );
    sections::due_items(
        &mut canvas,
        &format!("Appendix B — {}", upcoming_title.to_lowercase()),
        &report.overdue.upcoming,
        "Nothing falls due within the horizon.",
    );
    footers(&mut canvas, report);
    canvas
}

/// Adds the footer to every page, now that the page count is known.
fn footers(canvas: &mut Canvas<'_>, report: &Report) {
    let meta = &report.meta;
    let total = canvas.page_count();
    let g = canvas.geom;
    let rule_y = g.height - 13.0;
    let baseline = g.height - 9.0;
    let style = SMALL.size(7.0);
    // Room for the left part: everything but the widest page number.
    let room = g.content_width() - canvas.width(&format!("Page {total} of {total}"), style) - 6.0;
    // The date always shows; a long position, then a long name, give way.
    let position = canvas.fit(&meta.position, style, room * 0.35);
    let suffix = format!(
        " · as of {} · position {position}",
        format::date(meta.as_of)
    );
    let name_room = room - canvas.width(&suffix, style);
    let name = canvas.fit(&meta.organization.name, style, name_room);
    let context = if name.is_empty() {
        suffix.trim_start_matches(" · ").to_owned()
    } else {
        format!("{name}{suffix}")
    };
    for page in 0..total {
        canvas.select_page(page);
        canvas.rule(rule_y, palette::RULE, 0.4);
        let number = format!("Page {} of {total}", page + 1);
        canvas.text_right(g.right(), baseline, &number, style);
        canvas.text(g.left(), baseline, &context, style);
    }
}
