//! Load shedding for searches: at most `concurrency` run at once and at most
//! `queue` wait for a turn, served in one of two modes (adaptive LIFO, as in
//! Facebook's "Fail at scale", with CoDel's test for overload):
//!
//! - **A burst** (until the line has kept a search waiting longer than
//!   `late_after`, 25 ms, for a whole `overload_interval`, half a second, or
//!   has grown longer than `overload_line`): first come, first served. A few
//!   people searching at once are never refused (they keep a line standing
//!   behind the turns, but nobody in it waits long), and a moment in which
//!   something else takes the cores is absorbed by the line.
//! - **Overload** (until the line has been empty for a tenth of an
//!   interval): the newest waiting search gets the next free turn. Served
//!   first in, first out, every accepted search would wait for the whole
//!   line ahead of it (the bulk of its latency at three times capacity,
//!   RELIABILITY.md); served newest first, the searches that get a turn get
//!   it at once or nearly, and the ones that wait are the oldest, whose
//!   clients are the most likely to have given up. A search that has waited
//!   half the longest wait goes first all the same: it is about to be
//!   refused, and a line that has not filled is a moment the server catches
//!   up with, so it is answered late rather than refused.
//!
//! The line that makes it overload (`overload_line`, 8 per core) is a
//! quarter of the line that may wait (`queue`, 32 per core): at the onset of
//! three times capacity the newest are served once more than 16 wait (two
//! cores), so no accepted search waits through a long line; at 70 % of
//! capacity a moment in which something else holds both cores for half a
//! second (autovacuum, a merge, a burst of event deliveries) is still
//! absorbed without refusing anyone (RELIABILITY.md, "Soak").
//!
//! Either way a search is refused when the line is full (a newcomer takes
//! the place of the oldest, which is refused) or after `max_wait` (a
//! second). A line that does not fill is a moment the server will catch up
//! with, and its searches are answered, late; a line that fills is more
//! arriving than the server answers, and refusing is what is left. **While
//! it refuses** under overload (it refused a search within the last
//! interval), fewer searches run (`overload_concurrency`: each search is
//! split over the cores already, and two sharing them take twice as long
//! each) and nobody waits longer than `late_after` (a search already late
//! is refused at the next turn): so the ones accepted get their turn at
//! once or nearly and run alone, at an unloaded server's speed. Not before:
//! in a moment of overload that has not filled the line, all the turns
//! drain it fastest (two at once answer about a third more) and nobody is
//! refused for being late.
//!
//! The interval is longer than CoDel's 100 ms for packets because a search
//! takes milliseconds, not microseconds: at 70 % of capacity a line that is
//! late for a tenth of a second is an ordinary moment, not overload. The
//! target (`late_after`) is 5 % of the interval, as in CoDel.
//!
//! A search that cannot get a turn is answered with 503 and `Retry-After`.
//! Cached answers never reach this gate: only the work that occupies a core
//! (the tantivy search or suggestion on the blocking pool) takes a turn, and
//! the turn ([`Turn`]) is held by that work, so a client that gives up does
//! not free a core that is still busy.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::error::ApiError;

/// The gate's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Searches running at once (default: the cores this process may use).
    pub concurrency: usize,
    /// Searches waiting for a turn; one more takes the oldest one's place,
    /// which is refused.
    pub queue: usize,
    /// A line longer than this is overload at once (the newest waiting
    /// search gets the next turn); a full one always is.
    pub overload_line: usize,
    /// Longest wait for a turn.
    pub max_wait: Duration,
    /// A search waiting longer than this is late (CoDel's target)...
    pub late_after: Duration,
    /// ...and a line late for this long is overload.
    pub overload_interval: Duration,
    /// Searches running at once while overload refuses searches. Each
    /// search is already split over the cores by segment
    /// ([`crate::search::threads_per_search`]), so two at once on two cores
    /// each take twice as long: at three times capacity that doubled every
    /// accepted search's latency while adding a third to what was answered
    /// (RELIABILITY.md, "Load shedding").
    pub overload_concurrency: usize,
}

impl Limits {
    pub const DEFAULT_MAX_WAIT_MS: u64 = 1_000;
    pub const DEFAULT_LATE_AFTER_MS: u64 = 25;
    pub const DEFAULT_OVERLOAD_INTERVAL_MS: u64 = 500;
    /// Searches that may wait per search running, by default.
    pub const QUEUE_PER_TURN: usize = 32;
    /// Searches waiting per search running that make it overload, by
    /// default.
    pub const OVERLOAD_LINE_PER_TURN: usize = 8;

    /// The defaults for this machine: one search per core, 32 waiting per
    /// core (half a second of searches at 70 % of capacity, so a moment in
    /// which something else holds the cores fills no line), served newest
    /// first once more than 8 per core wait (a line that drains in about a
    /// tenth of a second: served first in, first out, a longer line makes
    /// the searches at the onset of an overload wait through it; 32 per
    /// core put the first second's p99 at 122 ms against 41 ms with 8,
    /// RELIABILITY.md); a search waits up to a second, and is late after 25
    /// ms (about one slow search).
    ///
    /// While overload refuses searches, as many run as the cores hold split
    /// searches: one here (two cores, each search on both).
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            concurrency: cores,
            queue: Self::QUEUE_PER_TURN * cores,
            overload_line: Self::OVERLOAD_LINE_PER_TURN * cores,
            max_wait: Duration::from_millis(Self::DEFAULT_MAX_WAIT_MS),
            late_after: Duration::from_millis(Self::DEFAULT_LATE_AFTER_MS),
            overload_interval: Duration::from_millis(Self::DEFAULT_OVERLOAD_INTERVAL_MS),
            overload_concurrency: (cores / crate::search::threads_per_search()).max(1),
        }
    }

    /// Searches that may run at once: fewer while overload refuses.
    fn turns(&self, refusing: bool) -> usize {
        if refusing {
            self.overload_concurrency.min(self.concurrency)
        } else {
            self.concurrency
        }
        .max(1)
    }

    /// Under overload, a search that has waited this long goes before the
    /// newest: half the longest wait.
    fn rescue_after(&self) -> Duration {
        self.max_wait / 2
    }
}

/// Why a search was refused: which limit it met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// It was the oldest of a full line when another arrived (or there is
    /// no line: `queue` is 0).
    QueueFull,
    /// It was late at a turn while overload refused searches.
    Late,
    /// It waited `max_wait`.
    Waited,
}

impl Shed {
    pub const ALL: [Shed; 3] = [Shed::QueueFull, Shed::Late, Shed::Waited];

    /// The `reason` label on `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Shed::QueueFull => "queue_full",
            Shed::Late => "late",
            Shed::Waited => "max_wait",
        }
    }
}

/// One waiting search: a turn is handed to it by sending on `turn`; its
/// sender dropped unsent means it was pushed out of a full line.
struct Waiter {
    id: u64,
    turn: oneshot::Sender<()>,
    since: Instant,
}

/// The turns and the waiting line, under one lock.
struct Line {
    limits: Limits,
    running: usize,
    /// Oldest first.
    waiting: VecDeque<Waiter>,
    next_id: u64,
    /// Since when the line has held, without a break, a search that had
    /// waited longer than `late_after` (CoDel's "first above time")...
    late_since: Option<Instant>,
    /// ...and since when it has been empty.
    empty_since: Option<Instant>,
    /// Overload, once the line has been late for an interval, grown
    /// longer than `overload_line` or filled, until it has been empty for a
    /// tenth of an interval: a line that empties for a moment (a client's
    /// pause) does not end it, or every such moment would serve the next
    /// half second first in, first out.
    overload: bool,
    /// When a search was last refused (a full line or the longest wait).
    refused_at: Option<Instant>,
}

impl Line {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            running: 0,
            waiting: VecDeque::new(),
            next_id: 0,
            late_since: None,
            empty_since: Some(Instant::now()),
            overload: false,
            refused_at: None,
        }
    }

    /// Whether this is overload. A line is late while its oldest search has
    /// waited longer than `late_after`: a few people searching at once
    /// keep a line standing behind the turns without ever being late, and
    /// are not overload.
    fn overloaded(&mut self, now: Instant) -> bool {
        self.observe(now);
        let lasted = |since: Option<Instant>, at_least: Duration| {
            since.is_some_and(|since| now.saturating_duration_since(since) >= at_least)
        };
        let interval = self.limits.overload_interval;
        if lasted(self.late_since, interval) {
            self.overload = true;
        } else if lasted(self.empty_since, interval / 10) {
            self.overload = false;
        }
        self.overload
    }

    /// Notes whether the line is empty, and whether it is late, after any
    /// change to it: the oldest search only changes here, and only grows
    /// older in between, so lateness is exact.
    fn observe(&mut self, now: Instant) {
        let wait = self.limits.late_after;
        match self.waiting.front() {
            None => {
                self.late_since = None;
                self.empty_since.get_or_insert(now);
            }
            Some(oldest) => {
                self.empty_since = None;
                let late_from = oldest.since + wait;
                if now > late_from {
                    self.late_since.get_or_insert(late_from);
                } else {
                    self.late_since = None;
                }
            }
        }
    }

    /// Whether overload refuses searches: one was refused within the last
    /// interval.
    fn refusing(&mut self, now: Instant) -> bool {
        self.overloaded(now)
            && self
                .refused_at
                .is_some_and(|at| now.saturating_duration_since(at) < self.limits.overload_interval)
    }

    /// Takes `id` out of the line; false when it is no longer there (given
    /// a turn or pushed out).
    fn remove(&mut self, id: u64, now: Instant) -> bool {
        let Some(at) = self.waiting.iter().position(|w| w.id == id) else {
            return false;
        };
        self.waiting.remove(at);
        self.observe(now);
        true
    }
}

struct Gate {
    limits: Limits,
    line: Mutex<Line>,
    /// Refusals by [`Shed`] reason, in [`Shed::ALL`] order.
    shed: [AtomicU64; 3],
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Line> {
        self.line.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a refusal for `reason`, and notes when it was.
    fn refused(&self, line: &mut Line, reason: Shed, now: Instant) {
        line.refused_at = Some(now);
        self.shed[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A turn given back: to the newest waiting search under overload
    /// (unless the oldest has waited half the longest wait), to the oldest
    /// otherwise, or to nobody (none waits, or fewer run while overload
    /// refuses).
    fn release(&self) {
        let mut line = self.lock();
        let now = Instant::now();
        let lifo = line.overloaded(now);
        let refusing = line.refusing(now);
        if refusing {
            // while it refuses, a search already late is refused rather
            // than served late
            while line
                .waiting
                .front()
                .is_some_and(|w| now.saturating_duration_since(w.since) > self.limits.late_after)
            {
                line.waiting.pop_front();
                self.refused(&mut line, Shed::Late, now);
            }
        }
        let turns = self.limits.turns(refusing);
        loop {
            let rescue =
                |w: &Waiter| now.saturating_duration_since(w.since) >= self.limits.rescue_after();
            let next = if line.running > turns {
                None
            } else if lifo && !line.waiting.front().is_some_and(rescue) {
                line.waiting.pop_back()
            } else {
                line.waiting.pop_front()
            };
            line.observe(now);
            let Some(next) = next else {
                line.running -= 1;
                return;
            };
            // a waiter takes itself out of the line before it stops
            // listening, so this only fails for one that is going away
            if next.turn.send(()).is_ok() {
                return;
            }
        }
    }
}

/// A turn to run one search; given to the next waiting search when dropped.
pub struct Turn {
    gate: Arc<Gate>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// A search in the line, until it has its answer; dropped before that (its
/// request given up), it leaves the line, and passes on a turn handed to it
/// meanwhile.
struct Waiting<'a> {
    gate: &'a Arc<Gate>,
    id: u64,
    turn: oneshot::Receiver<()>,
    done: bool,
}

impl Waiting<'_> {
    /// What became of this search once its wait is over: a turn, or
    /// refused (counted here if it waited the longest wait, or when it was
    /// pushed out of the line).
    fn settle(&mut self) -> Option<Turn> {
        self.done = true;
        let mut line = self.gate.lock();
        let now = Instant::now();
        if line.remove(self.id, now) {
            self.gate.refused(&mut line, Shed::Waited, now);
            return None;
        }
        drop(line);
        // out of the line: given a turn (maybe as the wait ended), or
        // pushed out by a newcomer
        self.turn.try_recv().ok().map(|()| Turn {
            gate: self.gate.clone(),
        })
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut line = self.gate.lock();
        if line.remove(self.id, Instant::now()) {
            return;
        }
        drop(line);
        if self.turn.try_recv().is_ok() {
            self.gate.release();
        }
    }
}

/// The gate every uncached search passes.
pub struct Admission {
    gate: Arc<Gate>,
}

impl Admission {
    pub fn new(limits: Limits) -> Self {
        Self {
            gate: Arc::new(Gate {
                limits,
                line: Mutex::new(Line::new(limits)),
                shed: Default::default(),
            }),
        }
    }

    /// A turn to run one search, held until dropped (move it into the
    /// blocking task, so a request given up by its client still holds the
    /// turn while its search runs); or 503 when none is free within the
    /// limits. `what` names the work, plural ("searches").
    pub async fn enter(&self, what: &str) -> Result<Turn, ApiError> {
        let gate = &self.gate;
        let limits = gate.limits;
        let mut waiting = {
            let mut line = gate.lock();
            let now = Instant::now();
            if line.running < limits.turns(line.refusing(now)) {
                line.running += 1;
                return Ok(Turn { gate: gate.clone() });
            }
            if limits.queue == 0 {
                gate.refused(&mut line, Shed::QueueFull, now);
                return Err(self.message(what));
            }
            if line.waiting.len() >= limits.queue {
                // a full line is overload at once; the oldest makes room
                // (dropping its sender tells it)
                line.overload = true;
                line.waiting.pop_front();
                gate.refused(&mut line, Shed::QueueFull, now);
            }
            let (send, turn) = oneshot::channel();
            let id = line.next_id;
            line.next_id += 1;
            line.waiting.push_back(Waiter {
                id,
                turn: send,
                since: now,
            });
            if line.waiting.len() > limits.overload_line {
                // so is a long one
                line.overload = true;
            }
            line.observe(now);
            Waiting {
                gate,
                id,
                turn,
                done: false,
            }
        };
        let answer = tokio::time::timeout(limits.max_wait, &mut waiting.turn).await;
        let turn = match answer {
            Ok(Ok(())) => {
                waiting.done = true;
                Some(Turn { gate: gate.clone() })
            }
            // pushed out, or the wait is over: settle under the lock, where a
            // turn handed over at this very moment is not lost
            Ok(Err(_)) | Err(_) => waiting.settle(),
        };
        turn.ok_or_else(|| self.message(what))
    }

    fn message(&self, what: &str) -> ApiError {
        let limits = self.gate.limits;
        ApiError::Unavailable {
            message: format!(
                "the server is at capacity ({} {what} running, {} waiting): try again in a second",
                limits.concurrency, limits.queue
            ),
            retry_after: Duration::from_secs(1),
        }
    }

    /// Whether this is overload (see [`Line::overloaded`]).
    pub fn overloaded(&self) -> bool {
        self.gate.lock().overloaded(Instant::now())
    }

    /// Searches refused since start (exported on `/metrics`).
    pub fn shed(&self) -> u64 {
        self.gate
            .shed
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    /// Searches refused since start for `reason`.
    pub fn shed_for(&self, reason: Shed) -> u64 {
        self.gate.shed[reason as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(concurrency: usize, queue: usize, wait_ms: u64) -> Admission {
        Admission::new(Limits {
            concurrency,
            queue,
            overload_line: queue,
            max_wait: Duration::from_millis(wait_ms),
            late_after: Duration::from_millis(wait_ms),
            overload_interval: Duration::from_millis(100),
            overload_concurrency: concurrency,
        })
    }

    /// Makes it overload now, as a line late for an interval does (one
    /// that has refused nobody), for the hour the tests' intervals last.
    fn overload(g: &Admission) {
        g.gate.lock().overload = true;
    }

    /// One turn and room for `queue`, under overload (`overloaded`) or in
    /// a burst that lasts: nobody waits long enough to make it overload.
    fn one_turn(queue: usize, overloaded: bool) -> Arc<Admission> {
        let g = Arc::new(Admission::new(Limits {
            concurrency: 1,
            queue,
            overload_line: queue,
            max_wait: Duration::from_secs(5),
            late_after: Duration::from_secs(5),
            overload_interval: Duration::from_secs(3_600),
            overload_concurrency: 1,
        }));
        if overloaded {
            overload(&g);
        }
        g
    }

    /// A search that waits for a turn, holds it until told, and reports
    /// whether it got one; spawned 20 ms after the last so the line's order
    /// is the order of the calls.
    async fn waiter(
        g: &Arc<Admission>,
        name: &'static str,
        order: &Arc<Mutex<Vec<&'static str>>>,
    ) -> tokio::task::JoinHandle<bool> {
        let (g, order) = (g.clone(), order.clone());
        let task = tokio::spawn(async move {
            let Ok(turn) = g.enter("searches").await else {
                return false;
            };
            order.lock().unwrap().push(name);
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(turn);
            true
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        task
    }

    #[tokio::test]
    async fn a_full_gate_with_no_queue_refuses_at_once() {
        let g = gate(1, 0, 1_000);
        let held = g.enter("searches").await.expect("first turn");
        let started = std::time::Instant::now();
        let refused = g.enter("searches").await.err().expect("no turn left");
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
        let g = Arc::new(gate(1, 1, 200));
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
        assert_eq!(g.shed_for(Shed::Waited), 1, "waited the longest wait");
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let g = Arc::new(gate(1, 2, 5_000));
        let _held = g.enter("searches").await.expect("turn");
        let mut waiters = Vec::new();
        for _ in 0..2 {
            let g = g.clone();
            waiters.push(tokio::spawn(
                async move { g.enter("searches").await.map(drop) },
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!g.overloaded());
        // a third takes the first's place, which is refused at once
        let third = {
            let g = g.clone();
            tokio::spawn(async move { g.enter("searches").await.map(drop) })
        };
        let first = waiters.remove(0);
        let refused = tokio::time::timeout(Duration::from_millis(100), first)
            .await
            .expect("refused without waiting")
            .unwrap();
        assert!(refused.is_err());
        assert_eq!(g.shed_for(Shed::QueueFull), 1);
        assert!(g.overloaded(), "a full line is overload");
        third.abort();
        for w in waiters {
            w.abort();
        }
    }

    #[test]
    fn a_line_late_for_an_interval_is_overload_until_it_has_been_empty_a_while() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        // 25 ms and 500 ms, the defaults
        let limits = Limits::for_this_machine();
        let mut line = Line::new(limits);
        let join = |line: &mut Line, id: u64, at: Duration| {
            let (turn, _) = oneshot::channel();
            line.waiting.push_back(Waiter {
                id,
                turn,
                since: t0 + at,
            });
            line.observe(t0 + at);
        };
        assert!(!line.overloaded(t0), "nobody waits");
        // a few people searching at once: the line stands behind the turns
        // for a second, each of them waiting 20 ms, never late
        for n in 0..50 {
            join(&mut line, n, ms(20 * n));
            assert!(!line.overloaded(t0 + ms(20 * n + 10)));
            assert!(line.remove(n, t0 + ms(20 * n + 20)));
        }
        assert!(!line.overloaded(t0 + ms(1_000)), "standing is not late");
        // one search waiting 300 ms (something else took the cores): late
        // from 25 ms on, not for an interval
        join(&mut line, 100, ms(1_000));
        assert!(!line.overloaded(t0 + ms(1_300)));
        assert!(line.remove(100, t0 + ms(1_300)));
        // late from 2,025 ms on, without a break though the oldest changes
        // (the next one is late too when it becomes the oldest)...
        join(&mut line, 101, ms(2_000));
        join(&mut line, 102, ms(2_200));
        assert!(line.remove(101, t0 + ms(2_400)));
        assert!(!line.overloaded(t0 + ms(2_500)));
        // ...for half a second: overload
        assert!(line.overloaded(t0 + ms(2_530)));
        // emptied for a moment (10 ms: a client's pause), it stays overload
        assert!(line.remove(102, t0 + ms(2_600)));
        assert!(line.overloaded(t0 + ms(2_610)));
        join(&mut line, 103, ms(2_620));
        assert!(line.overloaded(t0 + ms(2_630)));
        // empty for a tenth of the interval, it is over
        assert!(line.remove(103, t0 + ms(2_640)));
        assert!(line.overloaded(t0 + ms(2_680)));
        assert!(!line.overloaded(t0 + ms(2_690)));
        assert!(!line.remove(103, t0 + ms(2_700)), "no longer in the line");
        // a break in the lateness starts it again: late from 3,025 ms, then
        // the oldest goes and the next has waited only 10 ms
        join(&mut line, 104, ms(3_000));
        join(&mut line, 105, ms(3_300));
        assert!(line.remove(104, t0 + ms(3_310)));
        assert!(!line.overloaded(t0 + ms(3_600)), "late again from 3,325 ms");
        assert!(line.overloaded(t0 + ms(3_830)));
    }

    #[tokio::test]
    async fn fewer_searches_run_while_overload_refuses_and_not_before() {
        let g = Arc::new(Admission::new(Limits {
            overload_concurrency: 1,
            overload_interval: Duration::from_secs(1),
            ..gate(2, 1, 5_000).gate.limits
        }));
        let order = Arc::new(Mutex::new(Vec::new()));
        let a = g.enter("searches").await.expect("first turn");
        let b = g.enter("searches").await.expect("second turn");
        // overload that has refused nobody (a late line): both turns run,
        // so a freed one goes to the waiting search
        overload(&g);
        let first = waiter(&g, "first", &order).await;
        drop(a);
        let ran = tokio::time::timeout(Duration::from_secs(1), first).await;
        assert!(ran.expect("the freed turn was handed on").unwrap());
        let c = g.enter("searches").await.expect("two run");
        // a newcomer to the full line (of one) pushes the oldest out: now
        // it refuses...
        let pushed = waiter(&g, "pushed", &order).await;
        let second = waiter(&g, "second", &order).await;
        assert!(!pushed.await.unwrap(), "refused for a full line");
        assert_eq!(Shed::ALL.map(|r| g.shed_for(r)), [1, 0, 0]);
        // ...so one runs: the end of one of the two frees no turn
        drop(c);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(*order.lock().unwrap(), ["first"], "still one running");
        // the other ends: the waiting one runs
        drop(b);
        assert!(second.await.unwrap());
        assert_eq!(*order.lock().unwrap(), ["first", "second"]);
        // once the line has been empty a tenth of an interval (100 ms
        // here), two run again
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(!g.overloaded());
        let _a = g.enter("searches").await.expect("first turn");
        let started = Instant::now();
        let _b = g.enter("searches").await.expect("second turn");
        assert!(started.elapsed() < Duration::from_millis(20), "at once");
        assert_eq!(g.shed(), 1);
    }

    /// Three searches waiting behind one turn, in a burst or under
    /// overload: the order in which they got the turn once it was freed.
    async fn order_of_three(overloaded: bool) -> Vec<&'static str> {
        let g = one_turn(4, overloaded);
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = g.enter("searches").await.expect("turn");
        let first = waiter(&g, "first", &order).await;
        let second = waiter(&g, "second", &order).await;
        let third = waiter(&g, "third", &order).await;
        assert_eq!(g.overloaded(), overloaded);
        drop(held);
        for w in [first, second, third] {
            assert!(w.await.unwrap());
        }
        assert_eq!(g.shed(), 0);
        order.lock().unwrap().clone()
    }

    #[tokio::test]
    async fn in_a_burst_the_oldest_waiter_goes_first_and_under_overload_the_newest() {
        assert_eq!(order_of_three(false).await, ["first", "second", "third"]);
        assert_eq!(order_of_three(true).await, ["third", "second", "first"]);
    }

    #[tokio::test]
    async fn under_overload_a_newcomer_to_a_full_line_takes_the_oldest_place() {
        let g = one_turn(2, true);
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = g.enter("searches").await.expect("turn");
        let first = waiter(&g, "first", &order).await;
        let second = waiter(&g, "second", &order).await;
        let third = waiter(&g, "third", &order).await;
        assert!(!first.await.unwrap(), "the oldest was refused at once");
        assert_eq!(Shed::ALL.map(|r| g.shed_for(r)), [1, 0, 0]);
        drop(held);
        assert!(second.await.unwrap() && third.await.unwrap());
        assert_eq!(*order.lock().unwrap(), ["third", "second"]);
        // a line that fills before it has stood an interval is overload too
        order.lock().unwrap().clear();
        let g = one_turn(2, false);
        let held = g.enter("searches").await.expect("turn");
        let first = waiter(&g, "first", &order).await;
        let second = waiter(&g, "second", &order).await;
        assert!(!g.overloaded(), "a burst");
        let third = waiter(&g, "third", &order).await;
        assert!(g.overloaded(), "filled");
        assert!(!first.await.unwrap(), "the oldest was refused");
        drop(held);
        assert!(second.await.unwrap() && third.await.unwrap());
        assert_eq!(*order.lock().unwrap(), ["third", "second"]);
    }

    #[tokio::test]
    async fn a_line_longer_than_the_overload_line_is_served_newest_first_and_refuses_nobody() {
        let g = Arc::new(Admission::new(Limits {
            overload_line: 2,
            ..one_turn(8, false).gate.limits
        }));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = g.enter("searches").await.expect("turn");
        let first = waiter(&g, "first", &order).await;
        let second = waiter(&g, "second", &order).await;
        assert!(!g.overloaded(), "two waiting: a burst");
        let third = waiter(&g, "third", &order).await;
        assert!(g.overloaded(), "three waiting: overload at once");
        drop(held);
        for w in [first, second, third] {
            assert!(w.await.unwrap(), "nobody refused: the line is not full");
        }
        assert_eq!(*order.lock().unwrap(), ["third", "second", "first"]);
        assert_eq!(g.shed(), 0);
    }

    #[tokio::test]
    async fn under_overload_a_search_that_waited_half_the_longest_wait_goes_first() {
        let g = Arc::new(Admission::new(Limits {
            max_wait: Duration::from_millis(1_000),
            ..one_turn(8, false).gate.limits
        }));
        overload(&g);
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = g.enter("searches").await.expect("turn");
        let old = waiter(&g, "old", &order).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let new = waiter(&g, "new", &order).await;
        let newest = waiter(&g, "newest", &order).await;
        // `old` has waited over 500 ms (half of 1,000) by now: it goes
        // first, then the newest as under overload
        drop(held);
        for w in [old, new, newest] {
            assert!(w.await.unwrap());
        }
        assert_eq!(*order.lock().unwrap(), ["old", "newest", "new"]);
        assert_eq!(g.shed(), 0);
    }

    #[tokio::test]
    async fn a_search_given_up_while_waiting_loses_no_turn() {
        let g = one_turn(4, false);
        let order = Arc::new(Mutex::new(Vec::new()));
        // given up in the line: it leaves it
        let held = g.enter("searches").await.expect("turn");
        let gone = waiter(&g, "gone", &order).await;
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        drop(held);
        // given up just as a turn was handed to it: the turn passes on
        let held = g.enter("searches").await.expect("the turn came back");
        let gone = waiter(&g, "gone", &order).await;
        drop(held); // hands the turn to `gone`, which has not run since
        gone.abort();
        assert!(gone.await.unwrap_err().is_cancelled());
        assert!(order.lock().unwrap().is_empty(), "neither ran");
        let turn = tokio::time::timeout(Duration::from_millis(100), g.enter("searches"))
            .await
            .expect("no wait: the turn was passed back");
        assert!(turn.is_ok());
        assert_eq!(g.shed(), 0);
    }

    #[tokio::test]
    async fn under_overload_a_late_search_waits_for_a_turn_up_to_the_longest_wait() {
        let g = Arc::new(Admission::new(Limits {
            concurrency: 1,
            queue: 10,
            overload_line: 10,
            max_wait: Duration::from_millis(300),
            late_after: Duration::from_millis(20),
            overload_interval: Duration::from_secs(3_600),
            overload_concurrency: 1,
        }));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = g.enter("searches").await.expect("turn");
        overload(&g);
        // waits four times `late_after` under overload, and still runs: a
        // line that does not fill is a moment the server catches up with
        let first = waiter(&g, "first", &order).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        drop(held);
        assert!(first.await.unwrap(), "got the turn");
        assert_eq!(*order.lock().unwrap(), ["first"]);
        // nobody frees the turn: refused after the longest wait, not before
        let _held = g.enter("searches").await.expect("the turn is free");
        let started = Instant::now();
        assert!(g.enter("searches").await.is_err());
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(290) && waited < Duration::from_secs(2),
            "gave up after the longest wait: {waited:?}"
        );
        assert_eq!(Shed::ALL.map(|r| g.shed_for(r)), [0, 0, 1]);
    }

    #[tokio::test]
    async fn while_overload_refuses_nobody_waits_longer_than_late_after() {
        let g = Arc::new(Admission::new(Limits {
            concurrency: 1,
            queue: 1,
            overload_line: 1,
            max_wait: Duration::from_secs(5),
            late_after: Duration::from_millis(20),
            overload_interval: Duration::from_secs(3_600),
            overload_concurrency: 1,
        }));
        let order = Arc::new(Mutex::new(Vec::new()));
        let held = g.enter("searches").await.expect("turn");
        // a newcomer to the full line (of one) pushes the oldest out: a
        // full line is overload, and now it refuses
        let pushed = waiter(&g, "pushed", &order).await;
        let late = waiter(&g, "late", &order).await;
        assert!(!pushed.await.unwrap(), "refused for a full line");
        // `late` has waited over 20 ms by the next turn: refused then, not
        // served late
        tokio::time::sleep(Duration::from_millis(40)).await;
        drop(held);
        let refused = tokio::time::timeout(Duration::from_secs(1), late).await;
        assert!(!refused.expect("refused at the turn").unwrap());
        assert_eq!(Shed::ALL.map(|r| g.shed_for(r)), [1, 1, 0]);
        assert!(order.lock().unwrap().is_empty());
        drop(g.enter("searches").await.expect("the turn is free"));
    }
}
