//! `certscope bench ...`: benchmarks that print their figures (BENCHMARKS.md).
//! Each runs the real service (`certscope serve` as a child process, or the
//! indexer) against the database of `--data-dir` or `DATABASE_URL`.

pub mod events;
pub mod index_latency;
pub mod reports;
pub mod search;
mod server;
pub mod web;
