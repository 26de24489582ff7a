//! The fuzz targets (`certscope_query_api::fuzz`) on stable, bounded in time:
//! every input of the committed corpus (`fuzz/corpus/<target>/`, grown by the
//! coverage-guided runs of `fuzz/`), then random mutations of it for
//! `FUZZ_SECONDS` per target (default 4; `FUZZ_SEED` picks another sequence).
//! A panic, or an input slower than its budget (2 s), fails with the input saved
//! under `target/fuzz-findings/` so that it can be replayed and committed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use certscope_query_api::fuzz::{TARGETS, Target};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One input may take this long here: a guard against pathological inputs
/// (a backtracking or quadratic decoder), not a performance figure, so it is
/// far above what a debug build on a loaded 2-core machine needs (the slowest
/// corpus input took 85-120 ms beside a benchmark; libFuzzer's release runs
/// use a 1 s timeout and never hit it).
const BUDGET: Duration = Duration::from_secs(2);

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus in {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

fn seconds() -> u64 {
    std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201)
}

/// A finding: the input is kept so that it can be replayed (and committed to
/// the corpus once fixed).
fn finding(target: &str, input: &[u8], what: &str) -> ! {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    let digest = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    let path = dir.join(format!("{target}-{digest:016x}"));
    let _ = std::fs::write(&path, input);
    let shown: String = String::from_utf8_lossy(input).chars().take(300).collect();
    panic!(
        "fuzz target {target}: {what} on {shown:?} (saved to {})",
        path.display()
    );
}

/// Runs one input; returns how long it took.
fn run_one(name: &str, target: Target, input: &[u8]) -> Duration {
    let started = Instant::now();
    if std::panic::catch_unwind(|| target(input)).is_err() {
        finding(name, input, "panicked");
    }
    let took = started.elapsed();
    if took > BUDGET {
        finding(name, input, &format!("took {took:?} (budget {BUDGET:?})"));
    }
    took
}

/// A mutation of a corpus input: the operations libFuzzer starts from (bit and
/// byte changes, insertions, deletions, duplications, splices with another
/// input), stacked one to four deep.
fn mutate(rng: &mut ChaCha8Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    const INTERESTING: &[&[u8]] = &[
        b"\0",
        b"\xff",
        b"\xc3\xa9",
        b"\xe6\xbc\xa2",
        b"%",
        b"%00",
        b"%ff",
        b"&",
        b"=",
        b",",
        b":",
        b"(",
        b")",
        b"\"",
        b"*",
        b"-",
        b" OR ",
        b" NOT ",
        b"[",
        b"]",
        b"{",
        b"}",
        b"18446744073709551615",
        b"-9223372036854775808",
        b"9999-12-31",
        b"1e308",
        b"null",
    ];
    let mut data = corpus[rng.random_range(0..corpus.len())].clone();
    for _ in 0..rng.random_range(1..=4) {
        let at = rng.random_range(0..=data.len());
        match rng.random_range(0..7) {
            0 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if !data.is_empty() => {
                let i = rng.random_range(0..data.len());
                data[i] = rng.random();
            }
            2 => {
                let token = INTERESTING[rng.random_range(0..INTERESTING.len())];
                data.splice(at..at, token.iter().copied());
            }
            3 if !data.is_empty() => {
                let end = rng.random_range(at..=data.len().min(at + 16));
                data.drain(at..end);
            }
            4 if at < data.len() => {
                let end = rng.random_range(at..=data.len().min(at + 32));
                let copy = data[at..end].to_vec();
                let to = rng.random_range(0..=data.len());
                data.splice(to..to, copy);
            }
            5 => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let end = rng.random_range(from..=other.len());
                    data.splice(at..at, other[from..end].iter().copied());
                }
            }
            _ => data.truncate(at),
        }
    }
    data
}

fn fuzz(name: &str) {
    let target = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .unwrap_or_else(|| panic!("no fuzz target {name}"));
    let corpus = corpus(name);
    assert!(!corpus.is_empty(), "the corpus of {name} is empty");
    let mut slowest = Duration::ZERO;
    for input in &corpus {
        slowest = slowest.max(run_one(name, target, input));
    }
    let mut rng =
        ChaCha8Rng::seed_from_u64(seed() ^ certscope_query_api::search::cursor::hash(name));
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut runs = 0u64;
    while Instant::now() < deadline {
        let input = mutate(&mut rng, &corpus);
        slowest = slowest.max(run_one(name, target, &input));
        runs += 1;
    }
    eprintln!(
        "fuzz {name}: {} corpus inputs, {runs} mutations in {} s, slowest input {slowest:?}",
        corpus.len(),
        seconds()
    );
}

#[test]
fn every_target_has_a_harness_and_a_corpus() {
    for (name, _) in TARGETS {
        let harness = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/fuzz_targets")
            .join(format!("{name}.rs"));
        assert!(harness.is_file(), "no {}", harness.display());
        assert!(!corpus(name).is_empty(), "no corpus for {name}");
    }
}

#[test]
fn search_query() {
    fuzz("search_query");
}

#[test]
fn search_params() {
    fuzz("search_params");
}

#[test]
fn cursor() {
    fuzz("cursor");
}

#[test]
fn live_message() {
    fuzz("live_message");
}

#[test]
fn report_params() {
    fuzz("report_params");
}

#[test]
fn oscal_catalog() {
    fuzz("oscal_catalog");
}
