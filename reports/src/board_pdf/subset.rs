//! A small TrueType subsetter that keeps glyph ids.
//!
//! printpdf only subsets with its `text_layout` feature, which this crate does
//! not enable, so it would embed both DejaVu faces whole (about 1.4 MB per
//! report). This keeps every glyph id where it is and empties the outlines of
//! the glyphs the report does not draw: the content streams, `/W` widths and
//! `/ToUnicode` maps printpdf writes (all keyed by original glyph id) stay
//! valid. The `glyf`/`loca` tables shrink, and the `hmtx` entries of dropped
//! glyphs are zeroed so they compress to almost nothing (PDF viewers take
//! advances from `/W`). Layout, shaping and vertical tables (`GSUB`, `GPOS`,
//! `kern`, `vmtx`, …) are dropped since nothing reads them in a PDF.

use std::collections::BTreeSet;
use std::fmt;

/// Why a font could not be subset; the caller then embeds it whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SubsetError(&'static str);

impl fmt::Display for SubsetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for SubsetError {}

/// Tables copied into the subset (plus the rebuilt `glyf` and `loca`).
const KEPT: [&[u8; 4]; 11] = [
    b"OS/2", b"cmap", b"cvt ", b"fpgm", b"gasp", b"head", b"hhea", b"hmtx", b"maxp", b"name",
    b"prep",
];

/// Composite glyph flags (OpenType `glyf` spec).
const ARG_1_AND_2_ARE_WORDS: u16 = 0x0001;
const WE_HAVE_A_SCALE: u16 = 0x0008;
const MORE_COMPONENTS: u16 = 0x0020;
const WE_HAVE_AN_X_AND_Y_SCALE: u16 = 0x0040;
const WE_HAVE_A_TWO_BY_TWO: u16 = 0x0080;

fn u16_at(data: &[u8], at: usize) -> Result<u16, SubsetError> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or(SubsetError("truncated font data"))
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, SubsetError> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(SubsetError("truncated font data"))
}

/// The table directory of a single-face TrueType font.
struct Tables<'a> {
    font: &'a [u8],
    records: Vec<([u8; 4], usize, usize)>,
}

impl<'a> Tables<'a> {
    fn parse(font: &'a [u8]) -> Result<Self, SubsetError> {
        let version = u32_at(font, 0)?;
        if version != 0x0001_0000 && version != u32::from_be_bytes(*b"true") {
            return Err(SubsetError("not a TrueType (glyf) font"));
        }
        let count = usize::from(u16_at(font, 4)?);
        let mut records = Vec::with_capacity(count);
        for i in 0..count {
            let at = 12 + 16 * i;
            let tag = font
                .get(at..at + 4)
                .and_then(|t| <[u8; 4]>::try_from(t).ok())
                .ok_or(SubsetError("truncated table directory"))?;
            let offset = u32_at(font, at + 8)? as usize;
            let length = u32_at(font, at + 12)? as usize;
            if offset
                .checked_add(length)
                .is_none_or(|end| end > font.len())
            {
                return Err(SubsetError("table out of bounds"));
            }
            records.push((tag, offset, length));
        }
        Ok(Self { font, records })
    }

    fn get(&self, tag: &[u8; 4]) -> Option<&'a [u8]> {
        self.records
            .iter()
            .find(|(t, _, _)| t == tag)
            .map(|&(_, offset, length)| &self.font[offset..offset + length])
    }

    fn require(&self, tag: &'static [u8; 4]) -> Result<&'a [u8], SubsetError> {
        self.get(tag).ok_or(SubsetError("required table missing"))
    }
}

/// Glyph outlines addressed through `loca`.
struct Glyphs<'a> {
    glyf: &'a [u8],
    loca: &'a [u8],
    long: bool,
    count: u16,
}

impl<'a> Glyphs<'a> {
    fn data(&self, gid: u16) -> Result<&'a [u8], SubsetError> {
        let i = usize::from(gid);
        let (start, end) = if self.long {
            (
                u32_at(self.loca, i * 4)? as usize,
                u32_at(self.loca, i * 4 + 4)? as usize,
            )
        } else {
            (
                usize::from(u16_at(self.loca, i * 2)?) * 2,
                usize::from(u16_at(self.loca, i * 2 + 2)?) * 2,
            )
        };
        if start > end {
            return Err(SubsetError("bad loca entry"));
        }
        self.glyf
            .get(start..end)
            .ok_or(SubsetError("glyph out of bounds"))
    }

    /// Glyph ids a composite glyph is built from.
    fn components(&self, gid: u16) -> Result<Vec<u16>, SubsetError> {
        let data = self.data(gid)?;
        if data.len() < 10 || (u16_at(data, 0)? as i16) >= 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut at = 10;
        loop {
            let flags = u16_at(data, at)?;
            out.push(u16_at(data, at + 2)?);
            at += 4;
            at += if flags & ARG_1_AND_2_ARE_WORDS != 0 {
                4
            } else {
                2
            };
            if flags & WE_HAVE_A_SCALE != 0 {
                at += 2;
            } else if flags & WE_HAVE_AN_X_AND_Y_SCALE != 0 {
                at += 4;
            } else if flags & WE_HAVE_A_TWO_BY_TWO != 0 {
                at += 8;
            }
            if flags & MORE_COMPONENTS == 0 {
                return Ok(out);
            }
        }
    }
}

/// A copy of the TrueType font `font` in which only `.notdef`, the glyphs in
/// `used` and the components of those keep their outlines.
pub(super) fn subset_truetype(font: &[u8], used: &BTreeSet<u16>) -> Result<Vec<u8>, SubsetError> {
    let tables = Tables::parse(font)?;
    let head = tables.require(b"head")?;
    let glyphs = Glyphs {
        glyf: tables.require(b"glyf")?,
        loca: tables.require(b"loca")?,
        long: u16_at(head, 50)? != 0,
        count: u16_at(tables.require(b"maxp")?, 4)?,
    };

    // Close the set over composite components.
    let mut keep = BTreeSet::from([0u16]);
    let mut pending: Vec<u16> = used.iter().copied().filter(|&g| g < glyphs.count).collect();
    pending.push(0);
    while let Some(gid) = pending.pop() {
        keep.insert(gid);
        for component in glyphs.components(gid)? {
            if component < glyphs.count && !keep.contains(&component) {
                pending.push(component);
            }
        }
    }

    // Rebuild glyf with long loca offsets; dropped glyphs become empty.
    let mut glyf = Vec::new();
    let mut loca = Vec::with_capacity((usize::from(glyphs.count) + 1) * 4);
    for gid in 0..glyphs.count {
        loca.extend_from_slice(&offset32(glyf.len())?);
        if keep.contains(&gid) {
            glyf.extend_from_slice(glyphs.data(gid)?);
            glyf.resize(glyf.len().next_multiple_of(4), 0);
        }
    }
    loca.extend_from_slice(&offset32(glyf.len())?);

    let mut out_tables: Vec<([u8; 4], Vec<u8>)> = Vec::new();
    for tag in KEPT {
        if let Some(data) = tables.get(tag) {
            let mut data = data.to_vec();
            if tag == b"head" {
                if data.len() < 54 {
                    return Err(SubsetError("head table too short"));
                }
                data[8..12].fill(0); // checkSumAdjustment, set below
                data[50..52].copy_from_slice(&1u16.to_be_bytes()); // long loca
            }
            if tag == b"hmtx" {
                let metrics = u16_at(tables.require(b"hhea")?, 34)?;
                blank_dropped_metrics(&mut data, metrics, glyphs.count, &keep);
            }
            out_tables.push((*tag, data));
        }
    }
    out_tables.push((*b"glyf", glyf));
    out_tables.push((*b"loca", loca));
    if let Some(post) = tables.get(b"post").filter(|p| p.len() >= 32) {
        // Version 3: the same metrics without glyph names.
        let mut post = post[..32].to_vec();
        post[0..4].copy_from_slice(&0x0003_0000u32.to_be_bytes());
        out_tables.push((*b"post", post));
    }
    out_tables.sort_by_key(|(tag, _)| *tag);
    assemble(&out_tables)
}

/// Zeroes the `hmtx` advance and side bearing of every glyph not in `keep`,
/// except the advance of the last long metric, which later glyphs share.
/// Entries past the table's end (a malformed font) are left alone.
fn blank_dropped_metrics(hmtx: &mut [u8], metrics: u16, count: u16, keep: &BTreeSet<u16>) {
    for gid in (0..count).filter(|g| !keep.contains(g)) {
        let range = if gid < metrics {
            let at = usize::from(gid) * 4;
            if gid + 1 == metrics {
                at + 2..at + 4
            } else {
                at..at + 4
            }
        } else {
            let at = usize::from(metrics) * 4 + usize::from(gid - metrics) * 2;
            at..at + 2
        };
        if let Some(bytes) = hmtx.get_mut(range) {
            bytes.fill(0);
        }
    }
}

fn offset32(n: usize) -> Result<[u8; 4], SubsetError> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| SubsetError("font too large"))
}

fn checksum(data: &[u8]) -> u32 {
    data.chunks(4).fold(0u32, |sum, chunk| {
        let mut word = [0u8; 4];
        word[..chunk.len()].copy_from_slice(chunk);
        sum.wrapping_add(u32::from_be_bytes(word))
    })
}

/// Writes an sfnt from tables sorted by tag.
fn assemble(tables: &[([u8; 4], Vec<u8>)]) -> Result<Vec<u8>, SubsetError> {
    let count = u16::try_from(tables.len()).map_err(|_| SubsetError("too many tables"))?;
    let mut pow2 = 1u16;
    let mut selector = 0u16;
    while pow2 * 2 <= count {
        pow2 *= 2;
        selector += 1;
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    for v in [count, pow2 * 16, selector, count * 16 - pow2 * 16] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    let mut offset = 12 + 16 * tables.len();
    let mut head_at = None;
    for (tag, data) in tables {
        out.extend_from_slice(tag);
        out.extend_from_slice(&checksum(data).to_be_bytes());
        out.extend_from_slice(&offset32(offset)?);
        out.extend_from_slice(&offset32(data.len())?);
        if tag == b"head" {
            head_at = Some(offset);
        }
        offset += data.len().next_multiple_of(4);
    }
    for (_, data) in tables {
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    let head_at = head_at.ok_or(SubsetError("required table missing"))?;
    let adjustment = 0xB1B0_AFBAu32.wrapping_sub(checksum(&out));
    out[head_at + 8..head_at + 12].copy_from_slice(&adjustment.to_be_bytes());
    Ok(out)
}

/// The six-letter subset tag for `/BaseFont` (ISO 32000-1, 9.6.4), derived
/// from the glyph set so equal reports produce equal files.
pub(super) fn tag(used: &BTreeSet<u16>) -> String {
    // FNV-1a over the glyph ids.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for gid in used {
        for byte in gid.to_be_bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    (0..6)
        .map(|i| char::from(b'A' + ((hash >> (i * 8)) % 26) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

    #[test]
    fn subset_keeps_used_glyphs_and_shrinks() {
        let full = Tables::parse(FONT).expect("parse");
        let used: BTreeSet<u16> = [36u16, 37, 38, 1000].into();
        let out = subset_truetype(FONT, &used).expect("subset");
        assert!(out.len() < FONT.len() / 4, "{} bytes", out.len());

        let sub = Tables::parse(&out).expect("reparse");
        let count = u16_at(sub.require(b"maxp").expect("maxp"), 4).expect("count");
        let old = Glyphs {
            glyf: full.require(b"glyf").expect("glyf"),
            loca: full.require(b"loca").expect("loca"),
            long: u16_at(full.require(b"head").expect("head"), 50).expect("fmt") != 0,
            count,
        };
        let new = Glyphs {
            glyf: sub.require(b"glyf").expect("glyf"),
            loca: sub.require(b"loca").expect("loca"),
            long: true,
            count,
        };
        for gid in [0u16, 36, 37, 38, 1000] {
            assert_eq!(
                old.data(gid).expect("old"),
                new.data(gid).expect("new"),
                "gid {gid}"
            );
        }
        assert!(new.data(39).expect("dropped").is_empty());
        assert_eq!(checksum(&out), 0xB1B0_AFBA);
        assert_eq!(sub.get(b"GSUB"), None);
    }

    #[test]
    fn dropped_metrics_are_blanked_and_kept_ones_survive() {
        static CJK: &[u8] = include_bytes!("../../assets/DroidSansFallback.ttf");
        let full = Tables::parse(CJK).expect("parse");
        let metrics = u16_at(full.require(b"hhea").expect("hhea"), 34).expect("count");
        let used: BTreeSet<u16> = [1000u16, 20_000].into();
        let out = subset_truetype(CJK, &used).expect("subset");
        let sub = Tables::parse(&out).expect("reparse");
        assert_eq!(sub.get(b"vmtx"), None);
        assert!(sub.get(b"prep").is_some());
        let (old, new) = (
            full.require(b"hmtx").expect("hmtx"),
            sub.require(b"hmtx").expect("hmtx"),
        );
        assert_eq!(old.len(), new.len());
        let entry = |gid: u16| {
            let at = if gid < metrics {
                usize::from(gid) * 4
            } else {
                usize::from(metrics) * 4 + usize::from(gid - metrics) * 2
            };
            at..at + if gid < metrics { 4 } else { 2 }
        };
        for gid in [0u16, 1000, 20_000] {
            assert_eq!(old[entry(gid)], new[entry(gid)], "gid {gid}");
        }
        assert!(new[entry(1001)].iter().all(|&b| b == 0));
        // The advance shared by the glyphs past the long metrics stays.
        let last = usize::from(metrics - 1) * 4;
        assert_eq!(old[last..last + 2], new[last..last + 2]);
        assert_eq!(checksum(&out), 0xB1B0_AFBA);
    }

    #[test]
    fn garbage_is_rejected_not_panicking() {
        let used: BTreeSet<u16> = [1u16].into();
        assert!(subset_truetype(b"", &used).is_err());
        assert!(subset_truetype(&FONT[..100], &used).is_err());
        assert!(subset_truetype(b"OTTO\0\0\0\0\0\0\0\0", &used).is_err());
    }

    #[test]
    fn tags_are_six_capitals_and_stable() {
        let a: BTreeSet<u16> = [1u16, 2, 3].into();
        assert_eq!(tag(&a).len(), 6);
        assert!(tag(&a).chars().all(|c| c.is_ascii_uppercase()));
        assert_eq!(tag(&a), tag(&a.clone()));
    }
}
