//! What building one FST costs, by the number and kind of its keys (vendored
//! addition). `cargo run --release -p tantivy-fst --example build_cost`; the
//! same file in a crate that depends on `tantivy-fst = "=0.5.0"` from
//! crates.io gives upstream's figures (BENCHMARKS.md).

use std::time::Instant;

fn build(keys: &[String]) -> usize {
    let mut builder = tantivy_fst::MapBuilder::memory();
    for (value, key) in keys.iter().enumerate() {
        builder
            .insert(key, value as u64)
            .expect("keys are sorted and unique");
    }
    builder.into_inner().expect("written to memory").len()
}

fn measure(name: &str, mut keys: Vec<String>) {
    keys.sort();
    keys.dedup();
    let runs = (2_000_000 / keys.len().max(1)).clamp(5, 2_000);
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..runs {
        bytes = build(&keys);
    }
    let micros = started.elapsed().as_secs_f64() * 1e6 / runs as f64;
    println!(
        "{name:>12} {:>7} keys: {micros:>10.1} us per FST, {bytes} bytes",
        keys.len()
    );
}

fn main() {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let words: Vec<String> = include_str!("../data/words-10000")
        .lines()
        .map(str::to_owned)
        .collect();
    for n in [10, 100, 1_000] {
        measure("words", words.iter().step_by(10_000 / n).cloned().collect());
    }
    measure("words", words);
    measure(
        "hex16",
        (0..200_000).map(|_| format!("{:016x}", next())).collect(),
    );
    measure(
        "ids",
        (0..200_000_u64)
            .map(|i| format!("evidence:{}", i * 7))
            .collect(),
    );
}
