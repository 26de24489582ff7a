//! Tables that paginate: rows as tall as their longest cell (text wraps, up
//! to [`MAX_CELL_LINES`] lines, so names, titles and ratings read in full)
//! that never split, the header row repeated on every continuation page.

use super::canvas::{Arrow, BODY, Canvas, Colour, SMALL, Style, palette};

/// Horizontal alignment of a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    Right,
    Centre,
}

/// A column: title, relative width and alignment.
#[derive(Debug, Clone, Copy)]
pub(super) struct Column {
    pub(super) title: &'static str,
    pub(super) weight: f32,
    pub(super) align: Align,
}

impl Column {
    pub(super) const fn new(title: &'static str, weight: f32, align: Align) -> Self {
        Self {
            title,
            weight,
            align,
        }
    }
}

/// A small vector mark drawn before a cell's text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Mark {
    Arrow(Arrow, Colour),
    Dot(Colour),
}

/// One cell.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cell {
    text: String,
    colour: Option<Colour>,
    bold: bool,
    mark: Option<Mark>,
}

impl Cell {
    pub(super) fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            colour: None,
            bold: false,
            mark: None,
        }
    }

    pub(super) fn colour(mut self, colour: Colour) -> Self {
        self.colour = Some(colour);
        self
    }

    pub(super) fn bold(mut self) -> Self {
        self.bold = true;
        self
    }

    pub(super) fn mark(mut self, mark: Mark) -> Self {
        self.mark = Some(mark);
        self
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Self::new(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

/// Text size of table cells in points.
const CELL_SIZE: f32 = 8.0;
/// Row height in millimetres.
const ROW_H: f32 = 5.6;
/// Header row height in millimetres.
const HEADER_H: f32 = 6.4;
/// Horizontal cell padding in millimetres.
const PAD: f32 = 1.6;
/// Width reserved for a mark in millimetres.
const MARK_W: f32 = 3.6;
/// Lines a cell wraps to at most; only text longer than that (thousands of
/// characters) is cut with `…`.
pub(super) const MAX_CELL_LINES: usize = 12;

/// A table ready to draw.
#[derive(Debug, Clone)]
pub(super) struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
    /// Caption repeated above the header on continuation pages.
    caption: String,
}

impl Table {
    pub(super) fn new(columns: &[Column], caption: impl Into<String>) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
            caption: caption.into(),
        }
    }

    /// Appends a row; missing cells are blank and extra cells are ignored.
    pub(super) fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Height of the header plus `rows` rows.
    pub(super) fn height_for(rows: usize) -> f32 {
        HEADER_H + ROW_H * rows as f32
    }

    /// Draws the table at the cursor, continuing on new pages as needed.
    pub(super) fn draw(&self, canvas: &mut Canvas<'_>) {
        let widths = self.column_widths(canvas);

        // The header never sits alone at the bottom of a page.
        let first = Self::height_for(self.rows.len().min(1));
        canvas.ensure(first);
        self.header(canvas, &widths);
        for (i, row) in self.rows.iter().enumerate() {
            let lines = self.layout(canvas, &widths, row);
            let height = row_height(&lines);
            if canvas.ensure(height) {
                self.continuation(canvas, &widths);
            }
            self.body_row(canvas, &widths, row, &lines, i);
        }
        canvas.advance(1.5);
    }

    /// Column widths in millimetres: shares of the content width by weight,
    /// but never narrower than the column title when the titles fit at all.
    fn column_widths(&self, canvas: &Canvas<'_>) -> Vec<f32> {
        let width = canvas.geom.content_width();
        let weights: Vec<f32> = self.columns.iter().map(|c| c.weight.max(0.01)).collect();
        let mins: Vec<f32> = self
            .columns
            .iter()
            .map(|c| canvas.width(c.title, header_style()) + 2.0 * PAD + 0.2)
            .collect();
        let proportional = |weights: &[f32], room: f32| -> Vec<f32> {
            let total: f32 = weights.iter().sum();
            weights.iter().map(|w| w / total * room).collect()
        };
        if mins.iter().sum::<f32>() > width {
            return proportional(&weights, width);
        }
        // Pin columns whose share is below their minimum, then share the
        // rest among the others; repeat until nothing changes.
        let mut pinned = vec![false; weights.len()];
        loop {
            let room = width
                - mins
                    .iter()
                    .zip(&pinned)
                    .filter(|(_, p)| **p)
                    .map(|(m, _)| m)
                    .sum::<f32>();
            let free: f32 = weights
                .iter()
                .zip(&pinned)
                .filter(|(_, p)| !**p)
                .map(|(w, _)| w)
                .sum();
            let mut changed = false;
            let widths: Vec<f32> = (0..weights.len())
                .map(|i| {
                    if pinned[i] {
                        return mins[i];
                    }
                    let share = weights[i] / free.max(0.01) * room;
                    if share < mins[i] {
                        pinned[i] = true;
                        changed = true;
                    }
                    share
                })
                .collect();
            if !changed {
                return widths;
            }
        }
    }

    fn continuation(&self, canvas: &mut Canvas<'_>, widths: &[f32]) {
        if !self.caption.is_empty() {
            let text = format!("{} (continued)", self.caption);
            let max = canvas.geom.content_width();
            let text = canvas.fit(&text, SMALL, max);
            let baseline = canvas.y() + SMALL.cap_height();
            canvas.text(canvas.geom.left(), baseline, &text, SMALL);
            canvas.advance(SMALL.leading() + 0.5);
        }
        self.header(canvas, widths);
    }

    fn header(&self, canvas: &mut Canvas<'_>, widths: &[f32]) {
        let style = header_style();
        let top = canvas.y();
        let left = canvas.geom.left();
        canvas.fill_rect(
            left,
            top,
            canvas.geom.content_width(),
            HEADER_H,
            palette::HEADER_BG,
        );
        let baseline = top + (HEADER_H + style.cap_height()) / 2.0;
        let mut x = left;
        for (column, &w) in self.columns.iter().zip(widths) {
            let text = canvas.fit(column.title, style, w - 2.0 * PAD);
            place(canvas, x, w, baseline, &text, style, column.align);
            x += w;
        }
        canvas.advance(HEADER_H);
    }

    /// Each cell's text wrapped to its column.
    fn layout(&self, canvas: &Canvas<'_>, widths: &[f32], row: &[Cell]) -> Vec<Vec<String>> {
        widths
            .iter()
            .enumerate()
            .map(|(i, &w)| match row.get(i) {
                Some(cell) => {
                    let mark_w = if cell.mark.is_some() { MARK_W } else { 0.0 };
                    let room = (w - 2.0 * PAD - mark_w).max(1.0);
                    canvas.wrap_lines(&cell.text, cell_style(cell), room, MAX_CELL_LINES)
                }
                None => Vec::new(),
            })
            .collect()
    }

    fn body_row(
        &self,
        canvas: &mut Canvas<'_>,
        widths: &[f32],
        row: &[Cell],
        lines: &[Vec<String>],
        index: usize,
    ) {
        let top = canvas.y();
        let left = canvas.geom.left();
        let height = row_height(lines);
        if index % 2 == 1 {
            canvas.fill_rect(
                left,
                top,
                canvas.geom.content_width(),
                height,
                palette::ZEBRA,
            );
        }
        let mut x = left;
        for (i, (column, &w)) in self.columns.iter().zip(widths).enumerate() {
            if let (Some(cell), Some(lines)) = (row.get(i), lines.get(i)) {
                draw_cell(canvas, cell, lines, column.align, (x, top), w);
            }
            x += w;
        }
        canvas.advance(height);
    }
}

/// The style a cell's text is drawn in.
fn cell_style(cell: &Cell) -> Style {
    let mut style = BODY.size(CELL_SIZE);
    if let Some(colour) = cell.colour {
        style = style.colour(colour);
    }
    if cell.bold {
        style = style.bold();
    }
    style
}

/// One line per row at least; each further line of the tallest cell adds a
/// line of leading.
fn row_height(lines: &[Vec<String>]) -> f32 {
    let n = lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
    ROW_H + (n - 1) as f32 * BODY.size(CELL_SIZE).leading()
}

/// Draws one cell's `lines` with its top-left corner at `origin`, width `w`;
/// a mark sits before the first line.
fn draw_cell(
    canvas: &mut Canvas<'_>,
    cell: &Cell,
    lines: &[String],
    align: Align,
    origin: (f32, f32),
    w: f32,
) {
    let (x, top) = origin;
    let style = cell_style(cell);
    let first_baseline = top + (ROW_H + style.cap_height()) / 2.0;
    let mark_w = if cell.mark.is_some() { MARK_W } else { 0.0 };
    for (n, text) in lines.iter().enumerate() {
        let baseline = first_baseline + n as f32 * style.leading();
        let text_w = canvas.width(text, style);
        let content_w = mark_w + text_w;
        let start = match align {
            Align::Left => x + PAD,
            Align::Right => x + w - PAD - content_w,
            Align::Centre => x + (w - content_w) / 2.0,
        };
        if let (0, Some(mark)) = (n, cell.mark) {
            let cy = top + ROW_H / 2.0;
            let cx = start + 1.4;
            match mark {
                Mark::Arrow(dir, colour) => canvas.arrow(cx, cy, 2.4, dir, colour),
                Mark::Dot(colour) => canvas.dot(cx, cy, 1.1, colour),
            }
        }
        // every line starts after the mark's room, so continuations align
        canvas.text(start + mark_w, baseline, text, style);
    }
}

/// Style of the header row.
fn header_style() -> Style {
    BODY.size(CELL_SIZE).bold().colour(palette::BRAND)
}

/// Places `text` in a column of width `w` starting at `x`.
fn place(
    canvas: &mut Canvas<'_>,
    x: f32,
    w: f32,
    baseline: f32,
    text: &str,
    style: Style,
    align: Align,
) {
    match align {
        Align::Left => canvas.text(x + PAD, baseline, text, style),
        Align::Right => canvas.text_right(x + w - PAD, baseline, text, style),
        Align::Centre => canvas.text_centre(x + w / 2.0, baseline, text, style),
    }
}
