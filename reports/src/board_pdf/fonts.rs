//! The embedded fonts: parsed once, measured without a shaper.
//!
//! Text is drawn in DejaVu Sans (regular or bold). Characters DejaVu lacks
//! (Chinese, Japanese, Korean, …) come from Droid Sans Fallback, which has a
//! single weight, so bold CJK text prints in its regular weight. A string is
//! split into runs per font ([`Fonts::runs`]); measuring, truncating and
//! wrapping take each character's width from the font that draws it.
//!
//! The fallback is parsed on first use and only embedded in documents that
//! draw one of its glyphs, so reports without such characters are unaffected.
//!
//! printpdf is built without `text_layout`, so there is no shaping: text is
//! laid out glyph by glyph from the fonts' `cmap` and `hmtx`. That is exact for
//! the scripts drawn without contextual forms (Latin, Greek, Cyrillic,
//! Armenian, Georgian, Chinese, Japanese kana and kanji, precomposed Hangul);
//! see the module docs of `board_pdf` for the limits.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::LazyLock;

use printpdf::{FontId, ParsedFont, PdfDocument, PdfFont};

use super::PdfError;
use super::subset;

static REGULAR_TTF: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../../assets/DejaVuSans-Bold.ttf");
static FALLBACK_TTF: &[u8] = include_bytes!("../../assets/DroidSansFallback.ttf");

/// Parsed once per process; `None` if the embedded bytes do not parse.
static FONTS: LazyLock<Option<Fonts>> = LazyLock::new(|| {
    let regular = parse(REGULAR_TTF, "DejaVuSans")?;
    let bold = parse(BOLD_TTF, "DejaVuSans-Bold")?;
    Some(Fonts { regular, bold })
});

/// Parsed the first time a character is missing from DejaVu. If it does not
/// parse, such characters print as `?` as if there were no fallback.
static FALLBACK: LazyLock<Option<ParsedFont>> = LazyLock::new(|| {
    let font = parse(FALLBACK_TTF, "DroidSansFallback");
    if font.is_none() {
        tracing::warn!("the embedded fallback font did not parse; CJK text prints as '?'");
    }
    font
});

/// Character drawn in place of one no font has a glyph for.
const REPLACEMENT: char = '?';
/// Invisible hyphenation hint, dropped.
const SOFT_HYPHEN: char = '\u{ad}';
/// Ellipsis appended to truncated text.
const ELLIPSIS: char = '…';

fn parse(bytes: &[u8], name: &str) -> Option<ParsedFont> {
    let mut warnings = Vec::new();
    let font = ParsedFont::from_bytes(bytes, 0, &mut warnings);
    for w in &warnings {
        tracing::debug!(font = name, warning = %w.message, "font parse warning");
    }
    let mut font = font?;
    if font.units_per_em == 0 || font.codepoint_to_glyph.is_empty() {
        return None;
    }
    font.font_name = Some(name.to_owned());
    Some(font)
}

/// The faces of the report.
pub(super) fn get() -> Result<&'static Fonts, PdfError> {
    FONTS.as_ref().ok_or(PdfError::Font)
}

/// The style of text: regular or bold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Face {
    Regular,
    Bold,
}

impl Face {
    /// The DejaVu font of this face.
    fn primary(self) -> Font {
        match self {
            Face::Regular => Font::Regular,
            Face::Bold => Font::Bold,
        }
    }
}

/// An embedded font program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Font {
    /// DejaVu Sans.
    Regular,
    /// DejaVu Sans Bold.
    Bold,
    /// Droid Sans Fallback, for characters DejaVu lacks.
    Fallback,
}

/// Number of [`Font`]s.
pub(super) const FONT_COUNT: usize = 3;

/// The glyph ids drawn, per [`Font::index`].
pub(super) type UsedGlyphs = [BTreeSet<u16>; FONT_COUNT];

impl Font {
    const ALL: [Font; FONT_COUNT] = [Font::Regular, Font::Bold, Font::Fallback];

    /// Index into per-font arrays such as [`UsedGlyphs`].
    pub(super) fn index(self) -> usize {
        match self {
            Font::Regular => 0,
            Font::Bold => 1,
            Font::Fallback => 2,
        }
    }

    /// The PDF resource name the content streams use for this font.
    pub(super) fn font_id(self) -> FontId {
        FontId(
            match self {
                Font::Regular => "FDejaVuSans",
                Font::Bold => "FDejaVuSansBold",
                Font::Fallback => "FDroidSansFallback",
            }
            .to_owned(),
        )
    }
}

/// A stretch of text drawn in one font.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    pub(super) font: Font,
    pub(super) text: String,
}

/// The parsed DejaVu faces (the fallback lives in its own lazy static).
pub(super) struct Fonts {
    regular: ParsedFont,
    bold: ParsedFont,
}

impl Fonts {
    /// The parsed program of `font`; `None` only for a fallback that did not
    /// parse.
    fn program(&self, font: Font) -> Option<&ParsedFont> {
        match font {
            Font::Regular => Some(&self.regular),
            Font::Bold => Some(&self.bold),
            Font::Fallback => FALLBACK.as_ref(),
        }
    }

    fn lookup(&self, font: Font, c: char) -> Option<u16> {
        self.program(font)?
            .codepoint_to_glyph
            .get(&u32::from(c))
            .copied()
    }

    /// The font and glyph that draw `c` in `face`: DejaVu when it has the
    /// character, the fallback otherwise (parsed only then).
    pub(super) fn glyph(&self, face: Face, c: char) -> Option<(Font, u16)> {
        let primary = face.primary();
        if let Some(gid) = self.lookup(primary, c) {
            return Some((primary, gid));
        }
        if c.is_control() || c.is_ascii() {
            return None;
        }
        self.lookup(Font::Fallback, c)
            .filter(|&gid| gid != 0)
            .map(|gid| (Font::Fallback, gid))
    }

    /// `text` ready to draw: control characters and no-break spaces become
    /// plain spaces, soft hyphens are dropped, and characters no font can
    /// draw become `?`, so nothing renders as `.notdef`.
    ///
    /// Mapping the space variants to U+0020 also keeps text extraction right:
    /// printpdf writes one `/ToUnicode` entry per glyph, so two characters
    /// sharing a glyph would extract as the same one.
    pub(super) fn sanitize<'t>(&self, face: Face, text: &'t str) -> Cow<'t, str> {
        let plain = |c: char| {
            !c.is_control()
                && c != SOFT_HYPHEN
                && !is_no_break_space(c)
                && self.glyph(face, c).is_some()
        };
        if text.chars().all(plain) {
            return Cow::Borrowed(text);
        }
        Cow::Owned(
            text.chars()
                .filter_map(|c| match c {
                    SOFT_HYPHEN => None,
                    c if is_no_break_space(c) => Some(' '),
                    c if c.is_control() => Some(' '),
                    c if self.glyph(face, c).is_some() => Some(c),
                    _ => Some(REPLACEMENT),
                })
                .collect(),
        )
    }

    /// `text` (sanitized here) split into runs per font, recording the glyph
    /// ids drawn in `used`.
    pub(super) fn runs(&self, face: Face, text: &str, used: &mut UsedGlyphs) -> Vec<Run> {
        let text = self.sanitize(face, text);
        let mut runs: Vec<Run> = Vec::new();
        for c in text.chars() {
            let font = match self.glyph(face, c) {
                Some((font, gid)) => {
                    used[font.index()].insert(gid);
                    font
                }
                // Only if the face lacks `?` itself.
                None => face.primary(),
            };
            match runs.last_mut() {
                Some(run) if run.font == font => run.text.push(c),
                _ => runs.push(Run {
                    font,
                    text: c.to_string(),
                }),
            }
        }
        runs
    }

    /// Advance of one character in em (after sanitizing), from the font that
    /// draws it.
    fn advance_em(&self, face: Face, c: char) -> f32 {
        let (font, gid) = self
            .glyph(face, c)
            .or_else(|| self.glyph(face, REPLACEMENT))
            .unwrap_or((face.primary(), 0));
        let Some(program) = self.program(font) else {
            return 0.0;
        };
        let units = program.glyph_widths.get(&gid).copied().unwrap_or(0);
        f32::from(units) / f32::from(program.units_per_em.max(1))
    }

    /// Width of `text` in millimetres at `size` points.
    pub(super) fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        let em: f32 = text.chars().map(|c| self.advance_em(face, c)).sum();
        em * size * MM_PER_PT
    }

    /// `text` cut to `max` millimetres, ending in `…` when shortened.
    pub(super) fn truncate(&self, face: Face, size: f32, text: &str, max: f32) -> String {
        let text = self.sanitize(face, text);
        if self.width(face, size, &text) <= max {
            return text.into_owned();
        }
        let ellipsis = if self.glyph(face, ELLIPSIS).is_some() {
            ELLIPSIS.to_string()
        } else {
            "...".to_owned()
        };
        let budget = max - self.width(face, size, &ellipsis);
        if budget < 0.0 {
            return String::new();
        }
        let mut used = 0.0;
        let mut out = String::new();
        for c in text.chars() {
            let w = self.advance_em(face, c) * size * MM_PER_PT;
            if used + w > budget {
                break;
            }
            used += w;
            out.push(c);
        }
        let mut out = out.trim_end().to_owned();
        out.push_str(&ellipsis);
        out
    }

    /// `text` broken into lines of at most `max` millimetres: at spaces, next
    /// to CJK characters (which need no spaces between words, see
    /// [`break_pieces`]), and inside pieces that are longer than a line.
    pub(super) fn wrap(&self, face: Face, size: f32, text: &str, max: f32) -> Vec<String> {
        let text = self.sanitize(face, text);
        let space = self.width(face, size, " ");
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut line_w = 0.0;
        for word in text.split_whitespace() {
            for (i, piece) in break_pieces(word).into_iter().enumerate() {
                // Only the first piece of a word follows a space.
                let spaced = i == 0 && !line.is_empty();
                let gap = if spaced { space } else { 0.0 };
                let piece_w = self.width(face, size, piece);
                if line_w + gap + piece_w <= max {
                    if spaced {
                        line.push(' ');
                    }
                    line.push_str(piece);
                    line_w += gap + piece_w;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    line_w = 0.0;
                }
                if piece_w <= max {
                    line.push_str(piece);
                    line_w = piece_w;
                    continue;
                }
                // A piece wider than the line: break it between characters.
                for c in piece.chars() {
                    let w = self.advance_em(face, c) * size * MM_PER_PT;
                    if line_w + w > max && !line.is_empty() {
                        lines.push(std::mem::take(&mut line));
                        line_w = 0.0;
                    }
                    line.push(c);
                    line_w += w;
                }
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }

    /// Registers the fonts drawn on `doc` under their fixed resource names,
    /// embedding only the glyphs in `used` (per font) when subsetting works
    /// and the whole font otherwise. A font with no glyphs drawn (typically
    /// the fallback) is not embedded at all.
    pub(super) fn register(&self, doc: &mut PdfDocument, used: &UsedGlyphs) {
        for font in Font::ALL {
            let glyphs = &used[font.index()];
            if glyphs.is_empty() {
                continue;
            }
            let Some(program) = self.program(font) else {
                continue;
            };
            let mut program = program.clone();
            match subset::subset_truetype(&program.original_bytes, glyphs) {
                Ok(bytes) => {
                    program.original_bytes = bytes;
                    let name = program.font_name.take().unwrap_or_default();
                    program.font_name = Some(format!("{}+{name}", subset::tag(glyphs)));
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        font = ?font,
                        "font subsetting failed; embedding the whole font"
                    );
                }
            }
            doc.resources
                .fonts
                .map
                .insert(font.font_id(), PdfFont::new(program));
        }
    }
}

/// No-break space, figure space and narrow no-break space.
fn is_no_break_space(c: char) -> bool {
    matches!(c, '\u{a0}' | '\u{2007}' | '\u{202f}')
}

/// Characters of scripts written without spaces between words, where a line
/// may break between any two characters: Han, kana, Hangul and the CJK
/// punctuation and full-width forms.
fn is_cjk(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1100..=0x11FF
            | 0x2E80..=0x2FDF
            | 0x3000..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA960..=0xA97F
            | 0xAC00..=0xD7AF
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFFEF
            | 0x20000..=0x3FFFF
    )
}

/// Characters that must not start a line (closing punctuation, small kana,
/// the prolonged sound mark; a simplified Japanese kinsoku rule).
fn no_line_start(c: char) -> bool {
    "、。，．・：；？！ー～）」』】〕〉》〙〗｝］ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ々〻…‥,.;:!?)]}%”’"
        .contains(c)
}

/// Characters that must not end a line (opening brackets).
fn no_line_end(c: char) -> bool {
    "（「『【〔〈《〘〖｛［([{“‘".contains(c)
}

/// `word` (no whitespace) cut where a line may break without a space: before
/// and after CJK characters, except where [`no_line_start`] or
/// [`no_line_end`] forbid it. Words without CJK stay whole.
fn break_pieces(word: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut prev: Option<char> = None;
    for (i, c) in word.char_indices() {
        if let Some(p) = prev
            && (is_cjk(c) || is_cjk(p))
            && !no_line_start(c)
            && !no_line_end(p)
        {
            pieces.push(&word[start..i]);
            start = i;
        }
        prev = Some(c);
    }
    if start < word.len() {
        pieces.push(&word[start..]);
    }
    pieces
}

/// Millimetres per PostScript point.
pub(super) const MM_PER_PT: f32 = 25.4 / 72.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fonts_parse_and_cover_the_scripts_we_promise() {
        let fonts = get().expect("fonts");
        for c in "AzΩωЖж«»…–—≤→↑▲▼€Աაאب".chars() {
            for face in [Face::Regular, Face::Bold] {
                let (font, _) = fonts.glyph(face, c).expect("glyph");
                assert_eq!(font, face.primary(), "{face:?} lacks {c}");
            }
        }
        for c in "中あ한さ株陽翔佐藤ー".chars() {
            for face in [Face::Regular, Face::Bold] {
                let (font, gid) = fonts.glyph(face, c).expect("fallback glyph");
                assert_eq!(font, Font::Fallback, "{c}");
                assert_ne!(gid, 0);
            }
        }
        for c in "कก🚀".chars() {
            assert!(fonts.glyph(Face::Regular, c).is_none(), "has {c}");
        }
    }

    #[test]
    fn missing_characters_become_question_marks() {
        let fonts = get().expect("fonts");
        assert_eq!(fonts.sanitize(Face::Regular, "ab🚀c\td"), "ab?c d");
        assert_eq!(fonts.sanitize(Face::Regular, "ab中c"), "ab中c");
        assert_eq!(fonts.sanitize(Face::Regular, "a\u{a0}b\u{ad}c"), "a bc");
        assert!(matches!(
            fonts.sanitize(Face::Regular, "plain"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn runs_switch_fonts_and_record_glyphs() {
        let fonts = get().expect("fonts");
        let mut used = UsedGlyphs::default();
        let runs = fonts.runs(Face::Bold, "Org: さくら 株式会社 (Tokyo)", &mut used);
        let summary: Vec<(Font, &str)> = runs.iter().map(|r| (r.font, r.text.as_str())).collect();
        assert_eq!(
            summary,
            [
                (Font::Bold, "Org: "),
                (Font::Fallback, "さくら"),
                (Font::Bold, " "),
                (Font::Fallback, "株式会社"),
                (Font::Bold, " (Tokyo)"),
            ]
        );
        assert!(used[Font::Regular.index()].is_empty());
        assert!(!used[Font::Bold.index()].is_empty());
        assert_eq!(used[Font::Fallback.index()].len(), 7);

        let mut used = UsedGlyphs::default();
        fonts.runs(Face::Regular, "plain text", &mut used);
        assert!(used[Font::Fallback.index()].is_empty());
    }

    #[test]
    fn cjk_widths_come_from_the_fallback() {
        let fonts = get().expect("fonts");
        // Ideographs are one em wide in Droid Sans Fallback; `?` is narrower.
        let w = fonts.width(Face::Regular, 10.0, "株式会社");
        let em = 10.0 * MM_PER_PT;
        assert!((w - 4.0 * em).abs() < 0.05 * em, "{w} vs {}", 4.0 * em);
        assert!(w > fonts.width(Face::Regular, 10.0, "????") * 1.5);
    }

    #[test]
    fn truncation_and_wrapping_respect_the_width() {
        let fonts = get().expect("fonts");
        let long = "A very long requirement title that will never fit in a narrow column";
        let cut = fonts.truncate(Face::Regular, 9.0, long, 40.0);
        assert!(cut.ends_with('…'), "{cut}");
        assert!(fonts.width(Face::Regular, 9.0, &cut) <= 40.0);
        assert_eq!(fonts.truncate(Face::Regular, 9.0, "short", 40.0), "short");
        assert_eq!(fonts.truncate(Face::Regular, 9.0, "short", 0.5), "");

        let lines = fonts.wrap(
            Face::Regular,
            9.0,
            &format!("{long} {}", "x".repeat(200)),
            50.0,
        );
        assert!(lines.len() > 2);
        for line in &lines {
            assert!(
                fonts.width(Face::Regular, 9.0, line) <= 50.0 + 0.01,
                "{line}"
            );
        }
        assert!(fonts.wrap(Face::Regular, 9.0, "   ", 50.0).is_empty());
    }

    #[test]
    fn cjk_truncates_and_wraps_by_its_own_widths() {
        let fonts = get().expect("fonts");
        let name = "さくらクラウド株式会社 情報セキュリティ委員会";
        let full = fonts.width(Face::Regular, 9.0, name);
        let cut = fonts.truncate(Face::Regular, 9.0, name, full / 2.0);
        assert!(cut.starts_with("さくら") && cut.ends_with('…'), "{cut}");
        assert!(fonts.width(Face::Regular, 9.0, &cut) <= full / 2.0);

        let max = full / 3.0;
        let lines = fonts.wrap(Face::Regular, 9.0, name, max);
        assert!(lines.len() >= 3, "{lines:?}");
        for line in &lines {
            assert!(
                fonts.width(Face::Regular, 9.0, line) <= max + 0.01,
                "{line}"
            );
        }
        // Breaks fall between characters, never dropping or adding any.
        assert_eq!(lines.concat().replace(' ', ""), name.replace(' ', ""));
        // Small kana and closing punctuation do not start a line.
        for line in &lines {
            let first = line.chars().next().expect("non-empty line");
            assert!(!no_line_start(first), "{lines:?}");
        }
    }

    #[test]
    fn break_pieces_follow_the_simple_kinsoku_rules() {
        assert_eq!(break_pieces("plain"), ["plain"]);
        assert_eq!(break_pieces("株式会社"), ["株", "式", "会", "社"]);
        assert_eq!(
            break_pieces("「クラウド」です。"),
            ["「ク", "ラ", "ウ", "ド」", "で", "す。"]
        );
        assert_eq!(break_pieces("ABC株式会社"), ["ABC", "株", "式", "会", "社"]);
        assert_eq!(break_pieces("ちょっと"), ["ちょっ", "と"]);
    }
}
