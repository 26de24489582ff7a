//! `certscope bench ...`: benchmarks that print their figures (BENCHMARKS.md).
//! Each runs the real service (`certscope serve` as a child process, or the
//! indexer) against the database of `--data-dir` or `DATABASE_URL`.

mod cpu;
pub mod events;
pub mod index_latency;
pub mod reports;
pub mod search;
mod server;
pub mod soak;
pub mod web;

/// The `p` quantile (0 to 1, nearest rank) of `ms`; NaN when empty.
pub fn pct(ms: &[f64], p: f64) -> f64 {
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}
