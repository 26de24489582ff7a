//! The OSCAL catalogs shipped with Certscope (NIST SP 800-53 rev5, public domain),
//! embedded so that the binary runs anywhere.

/// A catalog shipped inside the binary.
#[derive(Debug, Clone, Copy)]
pub struct ShippedCatalog {
    /// Framework slug the catalog is imported under.
    pub slug: &'static str,
    pub file_name: &'static str,
    pub json: &'static [u8],
}

pub const NIST_800_53_HIGH: ShippedCatalog = ShippedCatalog {
    slug: "nist-800-53-r5-high",
    file_name: "NIST_SP-800-53_rev5_HIGH-baseline-resolved-profile_catalog-min.json",
    json: include_bytes!(
        "../../data/oscal/NIST_SP-800-53_rev5_HIGH-baseline-resolved-profile_catalog-min.json"
    ),
};

pub const NIST_800_53_PRIVACY: ShippedCatalog = ShippedCatalog {
    slug: "nist-800-53-r5-privacy",
    file_name: "NIST_SP-800-53_rev5_PRIVACY-baseline-resolved-profile_catalog-min.json",
    json: include_bytes!(
        "../../data/oscal/NIST_SP-800-53_rev5_PRIVACY-baseline-resolved-profile_catalog-min.json"
    ),
};

pub const ALL: [ShippedCatalog; 2] = [NIST_800_53_HIGH, NIST_800_53_PRIVACY];
