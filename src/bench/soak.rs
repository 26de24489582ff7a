//! `certscope bench soak`: a long week in half an hour. Against a `certscope
//! serve` child process and the largest organization, all at once:
//! requirement status changes at a fixed rate and WebSocket event subscribers
//! and a cold report (parameters never asked before) every few seconds
//! first, then open-loop searches at 70 % of the capacity measured beside
//! them (4 clients, closed loop, 20 s). Every
//! window of the run prints its search latency and errors with the server's
//! memory, file descriptors, database connections and the change log's size;
//! the summary compares the first window with the last.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use super::cpu::CpuLog;
use super::events::{self, Commits};
use super::pct;
use super::search::{BenchQuery, queries};
use super::server::{BenchServer, largest_org};
use crate::database;
use crate::{GlobalArgs, IndexArgs};

#[derive(Debug, clap::Args)]
pub struct Soak {
    /// How long.
    #[arg(long, default_value_t = 30)]
    pub minutes: u64,
    /// Searches per second (default: 70 % of the capacity measured first).
    #[arg(long)]
    pub search_rate: Option<u32>,
    /// Requirement status changes committed per second.
    #[arg(long, default_value_t = 200)]
    pub changes: u32,
    /// WebSocket event subscribers.
    #[arg(long, default_value_t = 200)]
    pub subscribers: usize,
    /// Seconds between cold reports.
    #[arg(long, default_value_t = 10)]
    pub report_every: u64,
    /// The server's change-log retention in rows (it prunes every 5 minutes):
    /// the change log must stay near it.
    #[arg(long, default_value_t = 100_000)]
    pub retention_rows: i64,
}

/// One search, one report or one change: when (seconds into the run), how
/// long (ms), and its HTTP status (200 for a committed change; 0: no answer,
/// a failed change, or not sent for a backlog).
#[derive(Clone, Copy)]
struct Outcome {
    at: f64,
    ms: f64,
    status: u16,
}

impl Outcome {
    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// HTTP status of an answer read to its end (0: none).
async fn status_of(r: reqwest::Result<reqwest::Response>) -> u16 {
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            if r.bytes().await.is_ok() { status } else { 0 }
        }
        Err(_) => 0,
    }
}

/// The server seen from outside, every 10 s.
#[derive(Clone, Copy)]
struct Sample {
    at: f64,
    rss_kib: u64,
    /// Of which anonymous (heap) and file-backed (the mapped index).
    anon_kib: u64,
    file_kib: u64,
    /// What the server's bounded caches say they hold, and what its
    /// allocator has handed out (its `/metrics`).
    cache_bytes: f64,
    heap_in_use: f64,
    /// The published index view's segments and the deleted documents they
    /// still hold.
    segments: f64,
    deleted: f64,
    fds: usize,
    connections: i64,
    change_log: i64,
}

async fn search(http: &reqwest::Client, base: &str, token: &str, q: &BenchQuery) -> u16 {
    let url = format!("{base}/v1/search?limit=20&{}", q.http);
    status_of(http.get(url).bearer_auth(token).send().await).await
}

/// Searches per second 4 clients get answered in 20 s (two cold reports),
/// closed loop.
const CAPACITY_WINDOW: Duration = Duration::from_secs(20);
async fn capacity(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    queries: &[BenchQuery],
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..4 {
        let (http, base, token) = (http.clone(), base.to_owned(), token.to_owned());
        let (queries, done) = (queries.to_vec(), done.clone());
        clients.spawn(async move {
            let mut i = c;
            while started.elapsed() < CAPACITY_WINDOW {
                match search(&http, &base, &token, &queries[i % queries.len()]).await {
                    200 => {
                        done.fetch_add(1, Relaxed);
                    }
                    // shed at capacity: not an answer, but no failure either
                    503 => {}
                    status => bail!("a search answered {status} while measuring capacity"),
                }
                i += 4;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = clients.join_next().await {
        r??;
    }
    Ok(done.load(Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Starts `act(n)` at `rate` per second from `started` for `run_for`, on
/// schedule whatever earlier calls are doing (open loop: latency runs from
/// the scheduled time, so a backlog counts against the server). With 256
/// still in flight a call is not made and counts as an error.
async fn open_loop<F, Fut>(
    started: Instant,
    run_for: Duration,
    rate: u32,
    mut act: F,
) -> Vec<Outcome>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = u16> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let inflight = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = tokio::task::JoinSet::new();
    let mut outcomes = Vec::new();
    for n in 0u64.. {
        let due = started + interval.mul_f64(n as f64);
        if due.duration_since(started) >= run_for {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let at = due.duration_since(started).as_secs_f64();
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            outcomes.push(Outcome {
                at,
                ms: f64::NAN,
                status: 0,
            });
            continue;
        };
        let work = act(n);
        tasks.spawn(async move {
            let _permit = permit;
            let status = work.await;
            Outcome {
                at,
                ms: due.elapsed().as_secs_f64() * 1e3,
                status,
            }
        });
        while let Some(Ok(o)) = tasks.try_join_next() {
            outcomes.push(o);
        }
    }
    while let Some(Ok(o)) = tasks.join_next().await {
        outcomes.push(o);
    }
    outcomes
}

/// The sum of a metric's series in a Prometheus text page.
fn metric_sum(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The server's own figures the soak follows, from its `/metrics`: bytes held
/// by the caches, heap bytes in use, index segments, deleted documents.
const SERVER_FIGURES: [&str; 4] = [
    "certscope_cache_bytes",
    "certscope_heap_in_use_bytes",
    "certscope_index_segments",
    "certscope_index_deleted_documents",
];

/// The server's `/metrics` page, if it answered.
async fn metrics_page(http: &reqwest::Client, base: &str) -> Option<String> {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()
}

async fn server_figures(http: &reqwest::Client, base: &str) -> [f64; 4] {
    let page = metrics_page(http, base).await;
    SERVER_FIGURES.map(|name| page.as_deref().map_or(f64::NAN, |p| metric_sum(p, name)))
}

fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

pub async fn run(global: &GlobalArgs, index: &IndexArgs, s: Soak) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1440).contains(&s.minutes),
        "--minutes must be 1..=1440"
    );
    anyhow::ensure!(
        (1..=2_000).contains(&s.changes),
        "--changes must be 1..=2000"
    );
    anyhow::ensure!(
        s.subscribers <= 10_000,
        "--subscribers must be at most 10000"
    );
    anyhow::ensure!(s.report_every >= 1, "--report-every must be positive");
    let db = database::open(global).await?;
    let (org, slug, evidence) = largest_org(&db).await?;
    let queries = queries(&db.pool, 240).await?;
    let (certifications, requirements) =
        events::rooms_and_requirements(&db, org, &slug, s.changes).await?;
    let retention = s.retention_rows.to_string();
    let server = BenchServer::start(
        global,
        index,
        &[
            "--event-connections-per-token",
            "100000",
            "--change-retention-rows",
            &retention,
        ],
    )
    .await?;
    let token = server.token(&db, &slug).await?;
    let (http, base) = (server.http.clone(), server.base.clone());
    for q in &queries {
        search(&http, &base, &token, q).await;
    }

    // subscribers: half on the org room, half over the certification rooms
    let stop = CancellationToken::new();
    let commits: Commits = Arc::default();
    let url = format!("{}/v1/events", base.replacen("http", "ws", 1));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(s.subscribers.max(1));
    let mut subscribers = Vec::with_capacity(s.subscribers);
    // subscribers per certification room: a change reaches those and the org room's
    let mut expected_per_change = std::collections::HashMap::<i64, u64>::new();
    for i in 0..s.subscribers {
        let room = if i % 2 == 0 {
            "org".to_owned()
        } else {
            let c = certifications[(i / 2) % certifications.len()];
            *expected_per_change.entry(c).or_default() += 1;
            format!("certification:{c}")
        };
        subscribers.push(tokio::spawn(events::subscribe(
            url.clone(),
            token.clone(),
            room,
            commits.clone(),
            ready_tx.clone(),
            stop.clone(),
        )));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    drop(ready_tx);
    for n in 0..s.subscribers {
        match tokio::time::timeout(Duration::from_secs(120), ready_rx.recv()).await {
            Ok(Some(())) => {}
            _ => bail!(
                "only {n} of {} subscribers were ready in 120 s",
                s.subscribers
            ),
        }
    }
    let org_subscribers = s.subscribers.div_ceil(2) as u64;

    let run_for = Duration::from_secs(s.minutes * 60);
    let (change_rate, report_every) = (s.changes, s.report_every);
    // the changes start first: capacity is measured under them
    let writes_started = Instant::now();
    let writes_for = run_for + CAPACITY_WINDOW + Duration::from_secs(2);

    // status changes, open loop
    let writer = {
        let (pool, commits, requirements) =
            (db.pool.clone(), commits.clone(), requirements.clone());
        let expected_per_change = expected_per_change.clone();
        tokio::spawn(async move {
            let mut expected = 0u64;
            let outcomes = open_loop(writes_started, writes_for, change_rate, |n| {
                let (id, cert) = requirements[n as usize % requirements.len()];
                expected += org_subscribers + expected_per_change.get(&cert).copied().unwrap_or(0);
                if let Ok(mut c) = commits.lock() {
                    c.insert(id, (Instant::now(), None));
                }
                let (pool, commits) = (pool.clone(), commits.clone());
                async move {
                    match events::change_status(&pool, &commits, id).await {
                        Ok(()) => 200,
                        Err(_) => 0,
                    }
                }
            })
            .await;
            (outcomes, expected)
        })
    };

    // a cold report every few seconds: a horizon never asked before (for the
    // first 365 reports: an hour at the default pace; later ones repeat).
    // They start with the changes, so the capacity is measured beside them
    // too: 70 % of it is 70 % of what the server can do under this mix.
    let reporter = {
        let (http, base, token) = (http.clone(), base.clone(), token.clone());
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(report_every));
            let mut n = 0u32;
            while writes_started.elapsed() < writes_for {
                tick.tick().await;
                n += 1;
                let t = Instant::now();
                let horizon = 1 + n % 365;
                let url = format!("{base}/v1/metrics/posture?horizon_days={horizon}");
                let status = status_of(http.get(url).bearer_auth(&token).send().await).await;
                outcomes.push(Outcome {
                    at: writes_started.elapsed().as_secs_f64(),
                    ms: t.elapsed().as_secs_f64() * 1e3,
                    status,
                });
            }
            outcomes
        })
    };

    let capacity = capacity(&http, &base, &token, &queries).await?;
    let rate = s
        .search_rate
        .unwrap_or((0.7 * capacity).round().max(1.0) as u32);
    println!(
        "soak of {slug} ({evidence} evidence rows) for {} min: searches {rate}/s (capacity {capacity:.0}/s: 4 clients \
         beside the changes and reports), {} status changes/s, {} event subscribers, a cold report every {} s, change log kept to {} rows",
        s.minutes, s.changes, s.subscribers, s.report_every, s.retention_rows
    );
    let started = Instant::now();
    let since = move || started.elapsed().as_secs_f64();
    let cpu = CpuLog::spawn(server.pid, started, stop.clone());
    let offset = started.duration_since(writes_started).as_secs_f64();

    // searches, open loop; latency from the scheduled time
    let searcher = {
        let (http, base, token, queries) =
            (http.clone(), base.clone(), token.clone(), queries.clone());
        tokio::spawn(open_loop(started, run_for, rate, move |n| {
            let q = queries[n as usize % queries.len()].clone();
            let (http, base, token) = (http.clone(), base.clone(), token.clone());
            async move { search(&http, &base, &token, &q).await }
        }))
    };

    // the server from outside, every 10 s
    let bar = ProgressBar::new(run_for.as_secs()).with_style(
        ProgressStyle::with_template("soak [{bar:40}] {pos}/{len} s  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut samples = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    while started.elapsed() < run_for + Duration::from_secs(1) {
        tick.tick().await;
        let connections: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
        )
        .fetch_one(&db.pool)
        .await?;
        let change_log: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
            .fetch_one(&db.pool)
            .await?;
        let (anon_kib, file_kib) = server.memory_split();
        let [cache_bytes, heap_in_use, segments, deleted] = server_figures(&http, &base).await;
        let sample = Sample {
            at: since(),
            rss_kib: server.memory().0,
            anon_kib,
            file_kib,
            cache_bytes,
            heap_in_use,
            segments,
            deleted,
            fds: open_files(server.pid),
            connections,
            change_log,
        };
        bar.set_position(started.elapsed().as_secs().min(run_for.as_secs()));
        bar.set_message(format!(
            "RSS {:.0} MiB, {} fds, {} connections, change log {} rows",
            sample.rss_kib as f64 / 1024.0,
            sample.fds,
            sample.connections,
            sample.change_log
        ));
        samples.push(sample);
    }
    let searches = searcher.await?;
    let (mut changes, expected) = writer.await?;
    // the changes began before the capacity measure: their time is the run's
    for c in &mut changes {
        c.at -= offset;
    }
    let mut reports = reporter.await?;
    for r in &mut reports {
        r.at -= offset;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // the last deliveries
    stop.cancel();
    let (mut received, mut closed, mut delivery) = (0u64, Vec::new(), Vec::new());
    for t in subscribers {
        let sub = t.await??;
        received += sub.received;
        delivery.extend(sub.latencies);
        closed.extend(sub.closed);
    }
    bar.finish_and_clear();
    let shed_by_reason = metrics_page(&http, &base)
        .await
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("certscope_searches_shed_by_reason"))
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .join(", ");
    server.stop().await;

    // by window: six windows of the run (five minutes each for 30 minutes)
    let window = (s.minutes as f64 * 60.0 / 6.0).max(60.0);
    let windows = ((s.minutes as f64 * 60.0) / window).ceil() as usize;
    println!(
        "\n{:<11} {:>9} {:>8} {:>8} {:>8} {:>7} {:>8} {:>7} {:>10} {:>9} {:>5} {:>6} {:>11}",
        "window",
        "searches",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "changes",
        "errors",
        "report p50",
        "RSS MiB",
        "fds",
        "conns",
        "change log"
    );
    let in_window = |o: &&Outcome, w: usize| o.at >= 0.0 && (o.at / window) as usize == w;
    let mut p99s = Vec::new();
    let mut rss = Vec::new();
    for w in 0..windows {
        let ws: Vec<&Outcome> = searches.iter().filter(|o| in_window(o, w)).collect();
        let ms: Vec<f64> = ws.iter().filter(|o| o.ok()).map(|o| o.ms).collect();
        let wc: Vec<&Outcome> = changes.iter().filter(|o| in_window(o, w)).collect();
        let wr: Vec<f64> = reports
            .iter()
            .filter(|o| in_window(o, w))
            .map(|o| o.ms)
            .collect();
        let last = samples
            .iter()
            .rev()
            .find(|x| (x.at / window) as usize <= w)
            .copied();
        p99s.push(pct(&ms, 0.99));
        rss.push(last.map_or(0, |x| x.rss_kib));
        println!(
            "{:>4}-{:<4}s {:>9} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>8} {:>7} {:>10.0} {:>9.1} {:>5} {:>6} {:>11}",
            (w as f64 * window) as u64,
            ((w + 1) as f64 * window) as u64,
            ws.len(),
            pct(&ms, 0.5),
            pct(&ms, 0.99),
            pct(&ms, 1.0),
            ws.iter().filter(|o| !o.ok()).count(),
            wc.len(),
            wc.iter().filter(|o| !o.ok()).count(),
            pct(&wr, 0.5),
            last.map_or(0.0, |x| x.rss_kib as f64 / 1024.0),
            last.map_or(0, |x| x.fds),
            last.map_or(0, |x| x.connections),
            last.map_or(0, |x| x.change_log),
        );
    }
    let errors = searches.iter().filter(|o| !o.ok()).count()
        + changes.iter().filter(|o| !o.ok()).count()
        + reports.iter().filter(|o| !o.ok()).count()
        + closed.len();
    let (first, last) = (samples.first().copied(), samples.last().copied());
    let growth = |a: f64, b: f64| 100.0 * (b - a) / a.max(1.0);
    println!(
        "\nerrors: {errors} ({} searches, {} changes, {} of {} reports, {} subscribers closed early)",
        searches.iter().filter(|o| !o.ok()).count(),
        changes.iter().filter(|o| !o.ok()).count(),
        reports.iter().filter(|o| !o.ok()).count(),
        reports.len(),
        closed.len()
    );
    println!(
        "search p99: first window {:.1} ms, last {:.1} ms ({:+.0} %)",
        p99s.first().copied().unwrap_or(f64::NAN),
        p99s.last().copied().unwrap_or(f64::NAN),
        growth(
            p99s.first().copied().unwrap_or(f64::NAN),
            p99s.last().copied().unwrap_or(f64::NAN)
        )
    );
    if let (Some(a), Some(b)) = (rss.first(), rss.last()) {
        println!(
            "server RSS: end of the first window {:.0} MiB, end {:.0} MiB ({:+.1} %)",
            *a as f64 / 1024.0,
            *b as f64 / 1024.0,
            growth(*a as f64, *b as f64)
        );
    }
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "anonymous / file-backed / heap in use / of which caches (MiB), over the run: {}",
        samples
            .iter()
            .step_by((samples.len() / 12).max(1))
            .map(|x| {
                format!(
                    "{:.0}/{:.0}/{:.0}/{:.0}",
                    mib(x.anon_kib),
                    mib(x.file_kib),
                    x.heap_in_use / 1_048_576.0,
                    x.cache_bytes / 1_048_576.0
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "index segments / deleted documents they hold, over the run: {}",
        samples
            .iter()
            .step_by((samples.len() / 12).max(1))
            .map(|x| format!("{:.0}/{:.0}", x.segments, x.deleted))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if let (Some(a), Some(b)) = (first, last) {
        let max_log = samples.iter().map(|x| x.change_log).max().unwrap_or(0);
        println!(
            "file descriptors {} -> {}; database connections {} -> {}; change log {} -> {} rows (at most {max_log})",
            a.fds, b.fds, a.connections, b.connections, a.change_log, b.change_log
        );
    }
    println!(
        "events: {received} of {expected} deliveries, p50 {:.1} / p99 {:.1} ms from commit",
        pct(&delivery, 0.5),
        pct(&delivery, 0.99)
    );
    let mut refused = std::collections::BTreeMap::<u16, usize>::new();
    for o in searches.iter().filter(|o| !o.ok()) {
        *refused.entry(o.status).or_default() += 1;
    }
    if !refused.is_empty() {
        println!(
            "search errors by status (0: no answer, or not sent for a backlog of 256): {refused:?}"
        );
    }
    println!("searches the server refused, by the limit they met: {shed_by_reason}");
    println!(
        "CPU over the run (cores, by server thread, PostgreSQL process and this benchmark): {}",
        cpu.between(0.0, f64::MAX)
    );
    println!(
        "the machine over the run (all cores, by state; pressure stall information): {}",
        cpu.machine_between(0.0, f64::MAX)
    );
    for m in moments(&searches, &reports, &cpu) {
        println!("{m}");
    }
    if let Some(c) = closed.first() {
        println!("first early close: {c}");
    }
    db.close().await
}

/// The moments searches failed: failures less than two seconds apart are one
/// moment, told with the cold reports that were computing then (a report's
/// outcome is stamped when it ended) and the CPU each group took from a
/// second before the first to the last, so a run says what coincided with
/// them.
fn moments(searches: &[Outcome], reports: &[Outcome], cpu: &CpuLog) -> Vec<String> {
    let mut failed: Vec<&Outcome> = searches.iter().filter(|o| !o.ok()).collect();
    failed.sort_by(|a, b| a.at.total_cmp(&b.at));
    let mut groups: Vec<Vec<&Outcome>> = Vec::new();
    for o in failed {
        match groups.last_mut() {
            Some(g) if g.last().is_some_and(|l| o.at - l.at < 2.0) => g.push(o),
            _ => groups.push(vec![o]),
        }
    }
    groups
        .iter()
        .map(|g| {
            let (from, to) = (g[0].at, g[g.len() - 1].at);
            let beside: Vec<String> = reports
                .iter()
                .filter(|r| r.at - r.ms / 1e3 <= to + 0.5 && r.at >= from - 0.5)
                .map(|r| format!("{:.0} ms", r.ms))
                .collect();
            format!(
                "  refusals at {from:.1}-{to:.1} s: {} searches; cold reports computing then: {}\n    CPU then: {}\n    the machine then: {}",
                g.len(),
                if beside.is_empty() {
                    "none".to_owned()
                } else {
                    beside.join(", ")
                },
                cpu.between(from - 1.0, to),
                cpu.machine_between(from - 1.0, to)
            )
        })
        .collect()
}
