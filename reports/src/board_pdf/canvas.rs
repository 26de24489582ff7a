//! A page-flowing drawing surface over printpdf operations.
//!
//! Coordinates are millimetres from the top-left corner of the page (printpdf
//! counts points from the bottom left; the conversion happens here). A cursor
//! `y` tracks where the next block goes; blocks ask [`Canvas::ensure`] for
//! their height first, so nothing is drawn past the bottom margin and no row or
//! line is split across pages.

use printpdf::{
    Color, Line, LinePoint, Mm, Op, PaintMode, PdfFontHandle, Point, Polygon, PolygonRing, Pt,
    Rect, Rgb, TextItem, WindingOrder,
};

use super::PageSize;
use super::fonts::{Face, Fonts, MM_PER_PT, UsedGlyphs};

/// An RGB colour, components 0–1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Colour {
    r: f32,
    g: f32,
    b: f32,
}

impl Colour {
    pub(super) const fn rgb(r: f32, g: f32, b: f32) -> Self {
        Self { r, g, b }
    }

    /// The colour mixed with white: `amount` 0 keeps it, 1 gives white.
    pub(super) fn tint(self, amount: f32) -> Self {
        let mix = |c: f32| c + (1.0 - c) * amount;
        Self::rgb(mix(self.r), mix(self.g), mix(self.b))
    }

    fn pdf(self) -> Color {
        Color::Rgb(Rgb::new(self.r, self.g, self.b, None))
    }
}

/// The report's colours.
pub(super) mod palette {
    use super::Colour;

    pub(crate) const INK: Colour = Colour::rgb(0.13, 0.14, 0.16);
    pub(crate) const MUTED: Colour = Colour::rgb(0.42, 0.44, 0.48);
    pub(crate) const BRAND: Colour = Colour::rgb(0.10, 0.24, 0.42);
    pub(crate) const ACCENT: Colour = Colour::rgb(0.18, 0.45, 0.72);
    pub(crate) const RULE: Colour = Colour::rgb(0.78, 0.80, 0.84);
    pub(crate) const HEADER_BG: Colour = Colour::rgb(0.89, 0.92, 0.96);
    pub(crate) const ZEBRA: Colour = Colour::rgb(0.965, 0.97, 0.98);
    pub(crate) const TRACK: Colour = Colour::rgb(0.90, 0.91, 0.93);
    pub(crate) const GOOD: Colour = Colour::rgb(0.16, 0.56, 0.28);
    pub(crate) const WARN: Colour = Colour::rgb(0.85, 0.55, 0.05);
    pub(crate) const BAD: Colour = Colour::rgb(0.80, 0.16, 0.15);
    pub(crate) const NEUTRAL: Colour = Colour::rgb(0.55, 0.57, 0.60);
    pub(crate) const WHITE: Colour = Colour::rgb(1.0, 1.0, 1.0);
}

/// Font face, size in points and colour of a run of text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Style {
    pub(super) face: Face,
    pub(super) size: f32,
    pub(super) colour: Colour,
}

impl Style {
    pub(super) const fn new(face: Face, size: f32, colour: Colour) -> Self {
        Self { face, size, colour }
    }

    pub(super) const fn colour(self, colour: Colour) -> Self {
        Self { colour, ..self }
    }

    pub(super) const fn bold(self) -> Self {
        Self {
            face: Face::Bold,
            ..self
        }
    }

    pub(super) const fn size(self, size: f32) -> Self {
        Self { size, ..self }
    }

    /// Baseline-to-baseline distance in millimetres.
    pub(super) fn leading(self) -> f32 {
        self.size * 1.35 * MM_PER_PT
    }

    /// Height of capitals above the baseline in millimetres (DejaVu: 0.73 em).
    pub(super) fn cap_height(self) -> f32 {
        self.size * 0.73 * MM_PER_PT
    }
}

/// Body text.
pub(super) const BODY: Style = Style::new(Face::Regular, 9.5, palette::INK);
/// Notes, captions and footers.
pub(super) const SMALL: Style = Style::new(Face::Regular, 7.5, palette::MUTED);
/// Section titles.
pub(super) const H1: Style = Style::new(Face::Bold, 15.0, palette::BRAND);
/// Sub-section titles.
pub(super) const H2: Style = Style::new(Face::Bold, 11.0, palette::BRAND);

/// Page dimensions and margins in millimetres.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Geometry {
    pub(super) width: f32,
    pub(super) height: f32,
    pub(super) margin: f32,
}

impl Geometry {
    pub(super) fn for_size(size: PageSize) -> Self {
        let (width, height) = size.dimensions_mm();
        Self {
            width,
            height,
            margin: 18.0,
        }
    }

    pub(super) fn left(&self) -> f32 {
        self.margin
    }

    pub(super) fn right(&self) -> f32 {
        self.width - self.margin
    }

    pub(super) fn content_width(&self) -> f32 {
        self.width - 2.0 * self.margin
    }

    pub(super) fn top(&self) -> f32 {
        self.margin
    }

    /// Lowest y any content may reach; the footer sits below it.
    pub(super) fn bottom(&self) -> f32 {
        self.height - self.margin
    }
}

/// Direction of a vector arrow head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Arrow {
    Up,
    Down,
    Right,
}

/// How full a page was left: the share of its content height (between the
/// margins) that the cursor had reached, the lowest text baseline of the flow
/// (footers aside) in the same measure (above 1: text below the bottom
/// margin), and whether the page ended because
/// the next block did not fit (`flowed`) or because a new part starts on a
/// new page.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PageFill {
    pub(crate) fill: f32,
    pub(crate) lowest_text: f32,
    pub(crate) flowed: bool,
}

/// Pages of operations under construction.
pub(super) struct Canvas<'f> {
    fonts: &'f Fonts,
    pub(super) geom: Geometry,
    pages: Vec<Vec<Op>>,
    current: usize,
    y: f32,
    used: UsedGlyphs,
    fills: Vec<PageFill>,
    /// The lowest text baseline of the flow on the current page.
    lowest_text: f32,
    /// Set by the footer pass, whose text sits below the margin by design.
    in_footers: bool,
}

impl<'f> Canvas<'f> {
    /// A canvas with one empty page.
    pub(super) fn new(fonts: &'f Fonts, geom: Geometry) -> Self {
        Self {
            fonts,
            geom,
            pages: vec![Vec::new()],
            current: 0,
            y: geom.top(),
            used: UsedGlyphs::default(),
            fills: Vec::new(),
            lowest_text: geom.top(),
            in_footers: false,
        }
    }

    /// The cursor: where the next block starts.
    pub(super) fn y(&self) -> f32 {
        self.y
    }

    /// Moves the cursor down.
    pub(super) fn advance(&mut self, dy: f32) {
        self.y += dy;
    }

    /// Room left above the bottom margin.
    pub(super) fn space_left(&self) -> f32 {
        self.geom.bottom() - self.y
    }

    /// Whether nothing has been placed on the current page yet.
    pub(super) fn at_page_top(&self) -> bool {
        self.y <= self.geom.top() + 0.01
    }

    /// Starts a new page (a new part of the document) and puts the cursor
    /// at its top.
    pub(super) fn new_page(&mut self) {
        self.break_page(false);
    }

    fn break_page(&mut self, flowed: bool) {
        let fill = self.fill(flowed);
        self.fills.push(fill);
        self.lowest_text = self.geom.top();
        self.pages.push(Vec::new());
        self.current = self.pages.len() - 1;
        self.y = self.geom.top();
    }

    /// Makes sure `height` fits below the cursor, starting a new page if it
    /// does not. Returns whether a page was started.
    pub(super) fn ensure(&mut self, height: f32) -> bool {
        if height <= self.space_left() || self.at_page_top() {
            return false;
        }
        self.break_page(true);
        true
    }

    /// How full each page was left, the last one included (as not flowed).
    #[cfg(test)]
    pub(super) fn page_fills(&self) -> Vec<PageFill> {
        let mut fills = self.fills.clone();
        fills.push(self.fill(false));
        fills
    }

    fn fill(&self, flowed: bool) -> PageFill {
        let content = self.geom.bottom() - self.geom.top();
        let share = |y: f32| ((y - self.geom.top()) / content).max(0.0);
        PageFill {
            fill: share(self.y).min(1.0),
            lowest_text: share(self.lowest_text),
            flowed,
        }
    }

    /// Number of pages so far.
    pub(super) fn page_count(&self) -> usize {
        self.pages.len()
    }

    /// Directs drawing to page `index` (used for the footer pass).
    pub(super) fn select_page(&mut self, index: usize) {
        self.in_footers = true;
        if index < self.pages.len() {
            self.current = index;
        }
    }

    /// The finished pages and the glyph ids drawn per font.
    pub(super) fn finish(self) -> (Vec<Vec<Op>>, UsedGlyphs) {
        (self.pages, self.used)
    }

    // ---- measuring -------------------------------------------------------

    /// Width of `text` in millimetres.
    pub(super) fn width(&self, text: &str, style: Style) -> f32 {
        let text = self.fonts.sanitize(style.face, text);
        self.fonts.width(style.face, style.size, &text)
    }

    /// `text` shortened with `…` to at most `max` millimetres.
    pub(super) fn fit(&self, text: &str, style: Style, max: f32) -> String {
        self.fonts.truncate(style.face, style.size, text, max)
    }

    /// `text` wrapped to lines of at most `max` millimetres.
    pub(super) fn wrap(&self, text: &str, style: Style, max: f32) -> Vec<String> {
        self.fonts.wrap(style.face, style.size, text, max)
    }

    /// `text` wrapped to at most `max_lines` lines of `max` millimetres; the
    /// last line ends in `…` when text was cut.
    pub(super) fn wrap_lines(
        &self,
        text: &str,
        style: Style,
        max: f32,
        max_lines: usize,
    ) -> Vec<String> {
        let mut lines = self.wrap(text, style, max);
        if lines.len() > max_lines && max_lines > 0 {
            let rest = lines[max_lines - 1..].join(" ");
            lines.truncate(max_lines - 1);
            // The rest spans two lines or more, so it is cut with "…".
            lines.push(self.fit(&rest, style, max));
        }
        lines.truncate(max_lines);
        lines
    }

    // ---- drawing at absolute positions -----------------------------------

    fn ops(&mut self) -> &mut Vec<Op> {
        // `current` always indexes an existing page: pages start non-empty and
        // are only ever appended to.
        let last = self.pages.len().saturating_sub(1);
        let index = self.current.min(last);
        &mut self.pages[index]
    }

    fn point(&self, x: f32, y: f32) -> Point {
        Point::new(Mm(x), Mm(self.geom.height - y))
    }

    /// Draws `text` with its baseline at `baseline`, starting at `x`: one
    /// text object, switching fonts where DejaVu lacks a character (so text
    /// extraction keeps the string together).
    pub(super) fn text(&mut self, x: f32, baseline: f32, text: &str, style: Style) {
        if self.fonts.sanitize(style.face, text).trim().is_empty() {
            return;
        }
        if !self.in_footers {
            self.lowest_text = self.lowest_text.max(baseline);
        }
        let fonts = self.fonts;
        let runs = fonts.runs(style.face, text, &mut self.used);
        let pos = self.point(x, baseline);
        let size = Pt(style.size);
        let ops = self.ops();
        ops.extend([
            Op::StartTextSection,
            Op::SetFillColor {
                col: style.colour.pdf(),
            },
            Op::SetTextCursor { pos },
        ]);
        for run in runs {
            ops.extend([
                Op::SetFont {
                    font: PdfFontHandle::External(run.font.font_id()),
                    size,
                },
                Op::ShowText {
                    items: vec![TextItem::Text(run.text)],
                },
            ]);
        }
        ops.push(Op::EndTextSection);
    }

    /// Draws `text` ending at `right`.
    pub(super) fn text_right(&mut self, right: f32, baseline: f32, text: &str, style: Style) {
        let w = self.width(text, style);
        self.text(right - w, baseline, text, style);
    }

    /// Draws `text` centred on `centre`.
    pub(super) fn text_centre(&mut self, centre: f32, baseline: f32, text: &str, style: Style) {
        let w = self.width(text, style);
        self.text(centre - w / 2.0, baseline, text, style);
    }

    /// Fills a rectangle given by its top-left corner.
    pub(super) fn fill_rect(&mut self, x: f32, top: f32, w: f32, h: f32, colour: Colour) {
        if w <= 0.0 || h <= 0.0 {
            return;
        }
        let lower_left = self.point(x, top + h);
        self.ops().extend([
            Op::SetFillColor { col: colour.pdf() },
            Op::DrawRectangle {
                rectangle: Rect {
                    x: lower_left.x,
                    y: lower_left.y,
                    width: Mm(w).into(),
                    height: Mm(h).into(),
                    mode: Some(PaintMode::Fill),
                    winding_order: Some(WindingOrder::NonZero),
                },
            },
        ]);
    }

    /// Strokes a polyline through `points` with a `thickness` in points.
    pub(super) fn line(&mut self, points: &[(f32, f32)], colour: Colour, thickness: f32) {
        if points.len() < 2 {
            return;
        }
        let points = self.line_points(points);
        self.ops().extend([
            Op::SetOutlineColor { col: colour.pdf() },
            Op::SetOutlineThickness { pt: Pt(thickness) },
            Op::DrawLine {
                line: Line {
                    points,
                    is_closed: false,
                },
            },
        ]);
    }

    /// A horizontal rule across the content width at `y`.
    pub(super) fn rule(&mut self, y: f32, colour: Colour, thickness: f32) {
        let (l, r) = (self.geom.left(), self.geom.right());
        self.line(&[(l, y), (r, y)], colour, thickness);
    }

    /// Straight-segment path points from millimetre coordinates.
    fn line_points(&self, points: &[(f32, f32)]) -> Vec<LinePoint> {
        points
            .iter()
            .map(|&(x, y)| LinePoint {
                p: self.point(x, y),
                bezier: false,
            })
            .collect()
    }

    /// Fills the polygon through `points` (bezier flags per point).
    fn fill_path(&mut self, points: Vec<LinePoint>, colour: Colour) {
        self.ops().extend([
            Op::SetFillColor { col: colour.pdf() },
            Op::DrawPolygon {
                polygon: Polygon {
                    rings: vec![PolygonRing { points }],
                    mode: PaintMode::Fill,
                    winding_order: WindingOrder::NonZero,
                },
            },
        ]);
    }

    /// Fills the polygon through `points`.
    pub(super) fn fill_polygon(&mut self, points: &[(f32, f32)], colour: Colour) {
        if points.len() < 3 {
            return;
        }
        let points = self.line_points(points);
        self.fill_path(points, colour);
    }

    /// A filled triangle of side about `size` centred on (`cx`, `cy`).
    pub(super) fn arrow(&mut self, cx: f32, cy: f32, size: f32, dir: Arrow, colour: Colour) {
        let h = size * 0.87 / 2.0;
        let s = size / 2.0;
        let points = match dir {
            Arrow::Up => [(cx - s, cy + h), (cx + s, cy + h), (cx, cy - h)],
            Arrow::Down => [(cx - s, cy - h), (cx + s, cy - h), (cx, cy + h)],
            Arrow::Right => [(cx - h, cy - s), (cx - h, cy + s), (cx + h, cy)],
        };
        self.fill_polygon(&points, colour);
    }

    /// A filled circle of radius `r` centred on (`cx`, `cy`).
    pub(super) fn dot(&mut self, cx: f32, cy: f32, r: f32, colour: Colour) {
        // Four cubic arcs; k is the standard circle approximation constant.
        let k = 0.552_284_8 * r;
        let pts = [
            ((cx + r, cy), false),
            ((cx + r, cy + k), true),
            ((cx + k, cy + r), true),
            ((cx, cy + r), false),
            ((cx - k, cy + r), true),
            ((cx - r, cy + k), true),
            ((cx - r, cy), false),
            ((cx - r, cy - k), true),
            ((cx - k, cy - r), true),
            ((cx, cy - r), false),
            ((cx + k, cy - r), true),
            ((cx + r, cy - k), true),
            ((cx + r, cy), false),
        ];
        let points = pts
            .iter()
            .map(|&((x, y), bezier)| LinePoint {
                p: self.point(x, y),
                bezier,
            })
            .collect();
        self.fill_path(points, colour);
    }

    // ---- flowing blocks --------------------------------------------------

    /// A section title; `keep_with` millimetres of what follows must fit on
    /// the same page.
    pub(super) fn heading(&mut self, text: &str, style: Style, keep_with: f32) {
        let gap_before = if self.at_page_top() { 0.0 } else { 4.0 };
        let height = gap_before + style.leading() + 2.0;
        if !self.ensure(height + keep_with) {
            self.advance(gap_before);
        }
        let baseline = self.y + style.cap_height();
        let max = self.geom.content_width();
        let text = self.fit(text, style, max);
        self.text(self.geom.left(), baseline, &text, style);
        self.y = baseline + style.leading() - style.cap_height() + 2.0;
    }

    /// A wrapped paragraph starting at `indent` from the left margin. Lines
    /// flow onto new pages one at a time.
    pub(super) fn paragraph(&mut self, text: &str, style: Style, indent: f32) {
        let width = self.geom.content_width() - indent;
        for line in self.wrap(text, style, width) {
            self.ensure(style.leading());
            let baseline = self.y + style.cap_height();
            self.text(self.geom.left() + indent, baseline, &line, style);
            self.y += style.leading();
        }
    }

    /// A bulleted paragraph: the bullet stays with the first line.
    pub(super) fn bullet(&mut self, text: &str, style: Style) {
        let indent = 4.5;
        let width = self.geom.content_width() - indent;
        for (i, line) in self.wrap(text, style, width).into_iter().enumerate() {
            self.ensure(style.leading());
            let baseline = self.y + style.cap_height();
            if i == 0 {
                let r = style.size * 0.11 * MM_PER_PT;
                let cy = baseline - style.cap_height() / 2.0;
                self.dot(self.geom.left() + 1.5, cy, r.max(0.5), palette::ACCENT);
            }
            self.text(self.geom.left() + indent, baseline, &line, style);
            self.y += style.leading();
        }
    }
}
