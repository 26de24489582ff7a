//! The OSCAL catalogs shipped with Certscope (NIST SP 800-53 rev5, public domain),
//! embedded (gzipped by `build.rs`) so that the binary runs anywhere.

use std::io::Read;

/// A catalog shipped inside the binary.
#[derive(Debug, Clone, Copy)]
pub struct ShippedCatalog {
    /// Framework slug the catalog is imported under.
    pub slug: &'static str,
    pub file_name: &'static str,
    gzipped: &'static [u8],
}

impl ShippedCatalog {
    /// The catalog's OSCAL JSON (inflated on each call: imports are rare).
    pub fn json(&self) -> Vec<u8> {
        let mut json = Vec::with_capacity(self.gzipped.len() * 10);
        flate2::read::GzDecoder::new(self.gzipped)
            .read_to_end(&mut json)
            .expect("the catalogs embedded at build time inflate");
        json
    }
}

/// A shipped catalog: its file in `data/oscal/`, named once (`build.rs`
/// gzips every catalog there into the build's output directory).
macro_rules! shipped {
    ($slug:literal, $file:literal) => {
        ShippedCatalog {
            slug: $slug,
            file_name: $file,
            gzipped: include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".gz")),
        }
    };
}

pub const NIST_800_53_HIGH: ShippedCatalog = shipped!(
    "nist-800-53-r5-high",
    "NIST_SP-800-53_rev5_HIGH-baseline-resolved-profile_catalog-min.json"
);

pub const NIST_800_53_PRIVACY: ShippedCatalog = shipped!(
    "nist-800-53-r5-privacy",
    "NIST_SP-800-53_rev5_PRIVACY-baseline-resolved-profile_catalog-min.json"
);

pub const ALL: [ShippedCatalog; 2] = [NIST_800_53_HIGH, NIST_800_53_PRIVACY];
