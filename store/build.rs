//! `sqlx::migrate!` embeds migrations/ at compile time: rebuild when it changes.
//! And the shipped OSCAL catalogs are gzipped into the build's output
//! directory (every `*.json` of data/oscal; catalogs.rs names the ones it
//! ships): the binary embeds 0.3 MB instead of 3 MB of JSON (`catalogs.rs`
//! inflates them on import).

use std::io::Write;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=../migrations");
    println!("cargo::rerun-if-changed=../data/oscal");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dir = std::fs::read_dir("../data/oscal").expect("../data/oscal");
    for entry in dir {
        let path = entry.expect("an entry of ../data/oscal").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        println!("cargo::rerun-if-changed={}", path.display());
        let json = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&json).expect("gzip in memory");
        let bytes = gz.finish().expect("gzip in memory");
        let name = path.file_name().expect("a file name").to_string_lossy();
        std::fs::write(out.join(format!("{name}.gz")), bytes).expect("write to OUT_DIR");
    }
}
