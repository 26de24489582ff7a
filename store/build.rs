//! `sqlx::migrate!` embeds migrations/ at compile time: rebuild when it changes.
//! And the shipped OSCAL catalogs are gzipped into the build's output
//! directory: the binary embeds 0.3 MB instead of 3 MB of JSON (`catalogs.rs`
//! inflates them on import).

use std::io::Write;
use std::path::PathBuf;

const CATALOGS: [&str; 2] = [
    "NIST_SP-800-53_rev5_HIGH-baseline-resolved-profile_catalog-min.json",
    "NIST_SP-800-53_rev5_PRIVACY-baseline-resolved-profile_catalog-min.json",
];

fn main() {
    println!("cargo::rerun-if-changed=../migrations");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for name in CATALOGS {
        let source = format!("../data/oscal/{name}");
        println!("cargo::rerun-if-changed={source}");
        let json = std::fs::read(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&json).expect("gzip in memory");
        let bytes = gz.finish().expect("gzip in memory");
        std::fs::write(out.join(format!("{name}.gz")), bytes).expect("write to OUT_DIR");
    }
}
