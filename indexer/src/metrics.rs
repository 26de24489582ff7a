//! Indexer figures: position, lag, documents per kind, batch sizes, commit
//! durations. Plain atomics, read by whoever exports them (query-api's /metrics,
//! the `index` command's periodic log line).

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A fixed-bucket histogram (Prometheus semantics: cumulative on export).
#[derive(Debug)]
pub struct Histogram {
    pub bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// (upper bound, cumulative count) pairs, then the sum and the count.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.bounds.len() + 1);
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            buckets.push((
                self.bounds.get(i).copied().unwrap_or(f64::INFINITY),
                cumulative,
            ));
        }
        (
            buckets,
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            self.count.load(Ordering::Relaxed),
        )
    }
}

const SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const SIZES: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0];

#[derive(Debug)]
pub struct IndexerMetrics {
    /// Commits that advanced the position since the index was built.
    pub generation: AtomicU64,
    /// `xmax` of the position's snapshot.
    pub position_xmax: AtomicU64,
    /// Committed changes not yet in the index (capped count).
    pub pending_changes: AtomicI64,
    /// Age in milliseconds of the oldest committed change not yet in the index.
    pub behind_millis: AtomicU64,
    pub changes_applied: AtomicU64,
    pub rebuilds: AtomicU64,
    pub errors: AtomicU64,
    /// Live documents per kind, in `Kind::ALL` order.
    pub docs: [AtomicU64; 5],
    /// Changes per applied batch.
    pub batch_changes: Histogram,
    /// Documents written per batch (after fan-out).
    pub batch_docs: Histogram,
    pub commit_seconds: Histogram,
    /// Why the index cannot advance right now (its disk is full, its directory
    /// vanished and it is being rebuilt), for `/readyz`; `None` when healthy.
    problem: Mutex<Option<String>>,
}

impl IndexerMetrics {
    /// Records why the index cannot advance (`None`: it advances again).
    pub fn set_problem(&self, problem: Option<String>) {
        if let Ok(mut p) = self.problem.lock() {
            *p = problem;
        }
    }

    pub fn problem(&self) -> Option<String> {
        self.problem.lock().ok().and_then(|p| p.clone())
    }
}

impl Default for IndexerMetrics {
    fn default() -> Self {
        Self {
            generation: AtomicU64::new(0),
            position_xmax: AtomicU64::new(0),
            pending_changes: AtomicI64::new(0),
            behind_millis: AtomicU64::new(0),
            changes_applied: AtomicU64::new(0),
            rebuilds: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            docs: Default::default(),
            batch_changes: Histogram::new(SIZES),
            batch_docs: Histogram::new(SIZES),
            commit_seconds: Histogram::new(SECONDS),
            problem: Mutex::new(None),
        }
    }
}
