//! Load shedding for searches: at most `concurrency` run at once and at most
//! `queue` wait for a turn. How long one may wait depends on whether the
//! queue stands (CoDel's standing-queue test): when every search admitted in
//! the last `overload_interval` (half a second) waited more than 5 ms, the
//! server is overloaded and a search waits at most `overload_wait` (about one
//! slow search); otherwise a burst is absorbed, up to `max_wait`. The interval
//! is longer than CoDel's 100 ms for packets because a search takes tens of
//! milliseconds, not microseconds: at 70 % of capacity a 100 ms interval
//! holds five searches, and five that all waited is an ordinary moment, not
//! overload (the soak refused 12 % of its searches so, RELIABILITY.md).
//!
//! A search that cannot get a turn is answered with 503 and `Retry-After`,
//! so an overloaded server answers quickly instead of queueing without
//! bound, the searches it accepts see a saturated server's latency rather
//! than a queue's (RELIABILITY.md has the figures), and a few people
//! searching at once are never refused.
//!
//! Cached answers never reach this gate: only the work that occupies a core
//! (the tantivy search or suggestion on the blocking pool) takes a turn.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The gate's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Searches running at once (default: the cores this process may use).
    pub concurrency: usize,
    /// Searches waiting for a turn; one more is refused at once.
    pub queue: usize,
    /// Longest wait for a turn while the queue does not stand (a burst).
    pub max_wait: Duration,
    /// Longest wait for a turn while it stands (overload).
    pub overload_wait: Duration,
    /// The queue stands when no search admitted during a whole interval of
    /// this length got its turn within [`Standing::TARGET`].
    pub overload_interval: Duration,
}

impl Limits {
    pub const DEFAULT_MAX_WAIT_MS: u64 = 1_000;
    pub const DEFAULT_OVERLOAD_WAIT_MS: u64 = 25;
    pub const DEFAULT_OVERLOAD_INTERVAL_MS: u64 = 500;

    /// The defaults for this machine: one search per core, four waiting per
    /// core; a burst waits up to a second, an overload 25 ms (about one slow
    /// search, so that waiting adds little to an accepted search's latency).
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            concurrency: cores,
            queue: 4 * cores,
            max_wait: Duration::from_millis(Self::DEFAULT_MAX_WAIT_MS),
            overload_wait: Duration::from_millis(Self::DEFAULT_OVERLOAD_WAIT_MS),
            overload_interval: Duration::from_millis(Self::DEFAULT_OVERLOAD_INTERVAL_MS),
        }
    }
}

/// CoDel's standing-queue test over fixed intervals.
#[derive(Debug)]
struct Standing {
    interval: Duration,
    interval_end: Instant,
    /// The shortest wait of a search admitted in the current interval.
    min_wait: Duration,
    overloaded: bool,
}

impl Standing {
    /// A queue stands when no search of a whole interval got its turn
    /// within this.
    pub const TARGET: Duration = Duration::from_millis(5);

    fn new(interval: Duration) -> Self {
        Self {
            interval: interval.max(Duration::from_millis(1)),
            interval_end: Instant::now(),
            min_wait: Duration::ZERO,
            overloaded: false,
        }
    }

    fn observe(&mut self, waited: Duration, now: Instant) {
        if now >= self.interval_end {
            // an interval with no search at all says nothing stands
            let idle = now >= self.interval_end + self.interval;
            self.overloaded = !idle && self.min_wait > Self::TARGET;
            self.min_wait = waited;
            self.interval_end = now + self.interval;
        } else {
            self.min_wait = self.min_wait.min(waited);
        }
    }
}

/// Why a search was refused: which limit it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// `queue` searches were already waiting.
    QueueFull,
    /// It waited `overload_wait` while the queue stood.
    Overloaded,
    /// It waited `max_wait` in a burst.
    Burst,
}

impl Shed {
    pub const ALL: [Shed; 3] = [Shed::QueueFull, Shed::Overloaded, Shed::Burst];

    /// The `reason` label on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::Overloaded => "overloaded",
            Shed::Burst => "burst_wait",
        }
    }
}

/// The gate every uncached search passes.
pub struct Admission {
    limits: Limits,
    turns: Arc<Semaphore>,
    waiting: AtomicUsize,
    /// Refusals by [`Shed`] reason, in [`Shed::ALL`] order.
    shed: [AtomicU64; 3],
    standing: Mutex<Standing>,
}

/// Counts one waiting search for as long as it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            turns: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            waiting: AtomicUsize::new(0),
            shed: Default::default(),
            standing: Mutex::new(Standing::new(limits.overload_interval)),
        }
    }

    /// A turn to run one search, held until the permit is dropped (move it
    /// into the blocking task, so a request given up by its client still
    /// holds the turn while its search runs); or 503 when none is free
    /// within the limits. `what` names the work, plural ("searches").
    pub async fn enter(&self, what: &str) -> Result<OwnedSemaphorePermit, ApiError> {
        let started = Instant::now();
        if let Ok(permit) = self.turns.clone().try_acquire_owned() {
            self.observe(Duration::ZERO, started);
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.limits.queue {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(self.refuse(what, Shed::QueueFull));
        }
        let _waiting = Waiting(&self.waiting);
        let (patience, reason) = if self.overloaded() {
            (self.limits.overload_wait, Shed::Overloaded)
        } else {
            (self.limits.max_wait, Shed::Burst)
        };
        let turn = tokio::time::timeout(patience, self.turns.clone().acquire_owned()).await;
        let now = Instant::now();
        self.observe(now - started, now);
        match turn {
            Ok(Ok(permit)) => Ok(permit),
            // the semaphore is never closed; a timeout is the busy server
            _ => Err(self.refuse(what, reason)),
        }
    }

    fn observe(&self, waited: Duration, now: Instant) {
        self.standing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(waited, now);
    }

    /// Whether the queue stood through the last whole interval.
    pub fn overloaded(&self) -> bool {
        self.standing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .overloaded
    }

    fn refuse(&self, what: &str, reason: Shed) -> ApiError {
        self.shed[reason as usize].fetch_add(1, Ordering::Relaxed);
        ApiError::Unavailable {
            message: format!(
                "the server is at capacity ({} {what} running, {} waiting): try again in a second",
                self.limits.concurrency, self.limits.queue
            ),
            retry_after: Duration::from_secs(1),
        }
    }

    /// Searches refused since start (exported on `/metrics`).
    pub fn shed(&self) -> u64 {
        self.shed.iter().map(|n| n.load(Ordering::Relaxed)).sum()
    }

    /// Searches refused since start for `reason`.
    pub fn shed_for(&self, reason: Shed) -> u64 {
        self.shed[reason as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(concurrency: usize, queue: usize, wait_ms: u64) -> Admission {
        Admission::new(Limits {
            concurrency,
            queue,
            max_wait: Duration::from_millis(wait_ms),
            overload_wait: Duration::from_millis(wait_ms),
            overload_interval: Duration::from_millis(100),
        })
    }

    #[tokio::test]
    async fn a_full_gate_with_no_queue_refuses_at_once() {
        let g = gate(1, 0, 1_000);
        let held = g.enter("searches").await.expect("first turn");
        let started = std::time::Instant::now();
        let refused = g.enter("searches").await.expect_err("no turn left");
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "refused without waiting"
        );
        assert!(
            matches!(refused, ApiError::Unavailable { retry_after, .. } if retry_after == Duration::from_secs(1))
        );
        assert!(refused.to_string().contains("at capacity"), "{refused}");
        assert_eq!(g.shed(), 1);
        assert_eq!(g.shed_for(Shed::QueueFull), 1, "no room to wait");
        drop(held);
        drop(g.enter("searches").await.expect("a turn once one is free"));
    }

    #[tokio::test]
    async fn a_waiting_search_gets_a_freed_turn_and_gives_up_after_the_wait() {
        let g = std::sync::Arc::new(gate(1, 1, 200));
        let held = g.enter("searches").await.expect("first turn");
        // a turn freed within the wait is taken
        let waiter = {
            let g = g.clone();
            tokio::spawn(async move { g.enter("searches").await.map(drop).is_ok() })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        assert!(waiter.await.unwrap(), "the waiting search ran");
        // nobody frees it: refused after the wait, not before
        let _held = g.enter("searches").await.expect("turn");
        let started = std::time::Instant::now();
        assert!(g.enter("searches").await.is_err());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(190),
            "gave up after {waited:?}"
        );
        assert_eq!(g.shed(), 1);
        assert_eq!(g.shed_for(Shed::Burst), 1, "waited the long wait");
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let g = std::sync::Arc::new(gate(1, 2, 5_000));
        let _held = g.enter("searches").await.expect("turn");
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let g = g.clone();
            waiters.push(tokio::spawn(
                async move { g.enter("searches").await.map(drop) },
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        assert!(
            g.enter("searches").await.is_err(),
            "a third waiter is refused"
        );
        assert!(started.elapsed() < Duration::from_millis(100));
        for w in waiters {
            w.abort();
        }
    }

    #[test]
    fn a_standing_queue_is_overload_and_a_burst_or_a_pause_is_not() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut s = Standing::new(ms(100));
        s.interval_end = t0;
        // an interval in which every search waited 8 ms or more
        s.observe(ms(10), t0);
        s.observe(ms(8), t0 + ms(50));
        s.observe(ms(12), t0 + ms(100));
        assert!(s.overloaded, "every wait above 5 ms for a whole interval");
        // one search that got its turn at once ends it
        s.observe(ms(0), t0 + ms(150));
        s.observe(ms(30), t0 + ms(200));
        assert!(
            !s.overloaded,
            "a burst with a free turn in it is not overload"
        );
        // a standing interval, then a pause of more than an interval
        s.observe(ms(9), t0 + ms(250));
        s.observe(ms(9), t0 + ms(300));
        assert!(s.overloaded);
        s.observe(ms(9), t0 + ms(700));
        assert!(!s.overloaded, "nothing stands across a pause");
    }

    #[test]
    fn with_the_default_interval_a_moment_of_waiting_is_not_overload_but_half_a_second_is() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut s = Standing::new(Limits::for_this_machine().overload_interval);
        s.interval_end = t0;
        // 150 ms in which every search waited 8 ms (two slow searches held
        // both cores, as happens at 70 % of capacity), then one ran at once
        for i in 0..=15 {
            s.observe(ms(8), t0 + ms(10 * i));
            assert!(!s.overloaded, "a moment of waiting, at {} ms", 10 * i);
        }
        s.observe(ms(0), t0 + ms(160));
        s.observe(ms(8), t0 + ms(500));
        assert!(!s.overloaded, "the interval had a search that did not wait");
        // every search of a whole half second waited: overload
        for i in 1..=50 {
            s.observe(ms(8), t0 + ms(500 + 10 * i));
        }
        assert!(s.overloaded, "a queue that stood for half a second");
    }

    #[tokio::test]
    async fn under_overload_a_search_waits_only_the_short_time() {
        let g = Admission::new(Limits {
            concurrency: 1,
            queue: 10,
            max_wait: Duration::from_secs(5),
            overload_wait: Duration::from_millis(20),
            overload_interval: Duration::from_millis(100),
        });
        let _held = g.enter("searches").await.expect("turn");
        // not overloaded yet: a waiter would wait the long time; make the
        // queue stand by hand, as an interval of long waits would
        {
            let mut s = g.standing.lock().unwrap();
            s.overloaded = true;
            s.interval_end = Instant::now() + Duration::from_secs(60);
        }
        let started = Instant::now();
        assert!(g.enter("searches").await.is_err());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(20) && waited < Duration::from_secs(1),
            "gave up after the overload wait, not the burst wait: {waited:?}"
        );
        assert_eq!(
            Shed::ALL.map(|r| g.shed_for(r)),
            [0, 1, 0],
            "counted as overload"
        );
    }
}
