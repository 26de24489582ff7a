//! Reading generated PDFs back in tests: text per page (decoded through the
//! fonts' `/ToUnicode` CMaps), page sizes and embedded font programs.
//!
//! Shared by the `board_pdf` unit tests (through `#[path]`) and the
//! integration tests (`mod support;` with `pub mod pdf_text;`). Uses lopdf,
//! which is a dev-dependency only.
//!
//! lopdf's `Document::extract_text` resolves a Type0 font with
//! `/Encoding /Identity-H` through its `/ToUnicode` stream (bfchar and
//! bfrange), which is what printpdf writes for embedded fonts, so no separate
//! CMap decoder is needed, and each font's codes decode through its own map
//! (the board PDF switches to the CJK fallback font inside a text object with
//! `Tf`; lopdf joins those pieces without a separator). Each `BT … ET` text
//! object ends in a newline; the board PDF draws every string it places in
//! its own text object, so one placed string is one line.
#![allow(dead_code)]

use lopdf::{Dictionary, Document, Object, ObjectId};

/// A parsed PDF.
pub struct Pdf {
    doc: Document,
}

impl Pdf {
    /// Parses `bytes`.
    pub fn load(bytes: &[u8]) -> Result<Self, lopdf::Error> {
        Document::load_mem(bytes).map(|doc| Self { doc })
    }

    /// The underlying lopdf document.
    pub fn document(&self) -> &Document {
        &self.doc
    }

    /// Page object ids in page order.
    fn page_ids(&self) -> Vec<ObjectId> {
        self.doc.get_pages().into_values().collect()
    }

    /// Number of pages.
    pub fn page_count(&self) -> usize {
        self.doc.get_pages().len()
    }

    /// The text of every page, one string per page, runs separated by `\n`.
    pub fn page_texts(&self) -> Result<Vec<String>, lopdf::Error> {
        self.doc
            .get_pages()
            .keys()
            .map(|&n| self.doc.extract_text(&[n]))
            .collect()
    }

    /// All text of the document with pages separated by form feeds.
    pub fn text(&self) -> Result<String, lopdf::Error> {
        Ok(self.page_texts()?.join("\u{c}"))
    }

    /// `[x0, y0, x1, y1]` of each page's MediaBox in points, following
    /// inheritance from the page tree.
    pub fn media_boxes(&self) -> Vec<Option<[f32; 4]>> {
        self.page_ids()
            .into_iter()
            .map(|id| self.inherited(id, b"MediaBox").and_then(rect))
            .collect()
    }

    /// Width and height of each page in points.
    pub fn page_sizes(&self) -> Vec<Option<(f32, f32)>> {
        self.media_boxes()
            .into_iter()
            .map(|b| b.map(|[x0, y0, x1, y1]| ((x1 - x0).abs(), (y1 - y0).abs())))
            .collect()
    }

    fn inherited(&self, mut id: ObjectId, key: &[u8]) -> Option<&Object> {
        for _ in 0..64 {
            let dict = self.doc.get_dictionary(id).ok()?;
            if let Ok(value) = dict.get(key) {
                return self.resolve(value);
            }
            id = dict.get(b"Parent").ok()?.as_reference().ok()?;
        }
        None
    }

    fn resolve<'a>(&'a self, obj: &'a Object) -> Option<&'a Object> {
        match obj {
            Object::Reference(id) => self.doc.get_object(*id).ok(),
            other => Some(other),
        }
    }

    fn dictionaries(&self) -> impl Iterator<Item = &Dictionary> {
        self.doc.objects.values().filter_map(|o| match o {
            Object::Dictionary(d) => Some(d),
            Object::Stream(s) => Some(&s.dict),
            _ => None,
        })
    }

    /// Font descriptors whose `/FontFile2` (TrueType) stream is present and
    /// non-empty, by `/FontName`.
    pub fn embedded_truetype_fonts(&self) -> Vec<String> {
        self.dictionaries()
            .filter(|d| d.has_type(b"FontDescriptor"))
            .filter(|d| {
                d.get(b"FontFile2")
                    .ok()
                    .and_then(|f| self.resolve(f))
                    .and_then(|f| f.as_stream().ok())
                    .is_some_and(|s| !s.content.is_empty())
            })
            .map(|d| {
                d.get(b"FontName")
                    .and_then(Object::as_name)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Whether every font dictionary that is a Type0 font has a `/ToUnicode`
    /// map (needed for copy and paste and for `page_texts`).
    pub fn type0_fonts_have_to_unicode(&self) -> bool {
        self.dictionaries()
            .filter(|d| d.has_type(b"Font"))
            .filter(|d| {
                d.get(b"Subtype").and_then(Object::as_name).ok() == Some(b"Type0".as_slice())
            })
            .all(|d| d.has(b"ToUnicode"))
    }
}

fn rect(obj: &Object) -> Option<[f32; 4]> {
    let values = obj.as_array().ok()?;
    let nums: Vec<f32> = values.iter().filter_map(|v| v.as_float().ok()).collect();
    <[f32; 4]>::try_from(nums).ok()
}

/// Collapses runs of whitespace (including the line breaks between text runs)
/// to single spaces, for phrase searches that may span a line break.
pub fn normalize_space(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Pages of `pdf` rendered by poppler's `pdftoppm` as greyscale PGM at a low
/// resolution (for checks) and as PNG (kept for
/// review, in `review`); returns each page's pixels. Needs `pdftoppm`
/// (Debian's poppler-utils, which `.ci/run` installs).
pub fn rasterize(name: &str, pdf: &[u8], review: &std::path::Path) -> Vec<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("certscope-board-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("pack.pdf");
    std::fs::write(&file, pdf).expect("write pdf");
    std::fs::create_dir_all(review).expect("review dir");
    let run = |args: &[&str]| {
        let status = std::process::Command::new("pdftoppm")
            .args(args)
            .status()
            .expect("pdftoppm runs (install poppler-utils)");
        assert!(status.success(), "pdftoppm {args:?}");
    };
    let file_arg = file.to_str().expect("utf-8 path");
    let gray = dir.join("page");
    run(&["-gray", "-r", "30", file_arg, gray.to_str().expect("utf-8")]);
    let png = review.join(name);
    run(&["-png", "-r", "60", file_arg, png.to_str().expect("utf-8")]);
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pgm"))
        .collect();
    pages.sort();
    let pixels = pages
        .iter()
        .map(|p| {
            let bytes = std::fs::read(p).expect("read pgm");
            // P5 header: magic, width, height, maxval, each followed by whitespace
            let mut fields = 0;
            let mut at = 0;
            while fields < 4 && at < bytes.len() {
                while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                    at += 1;
                }
                while at < bytes.len() && !bytes[at].is_ascii_whitespace() {
                    at += 1;
                }
                fields += 1;
            }
            bytes[(at + 1).min(bytes.len())..].to_vec()
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    pixels
}

/// Whether a greyscale page is blank: fewer than one pixel in a thousand
/// darker than light grey.
pub fn is_blank(page: &[u8]) -> bool {
    page.iter().filter(|&&p| p < 200).count() * 1000 <= page.len()
}
