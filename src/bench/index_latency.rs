//! `certscope bench index-latency`: commit-to-searchable latency at a fixed rate of
//! row changes, measured open-loop (writes are scheduled by the clock, not by the
//! previous write finishing), with the indexer in this process.
//!
//! Each write updates one evidence row, commits, then takes a snapshot; the
//! latency is the time from the commit's return to the first published index
//! position that covers that snapshot (i.e. the change is searchable).
//! Also printed: the segments each published view held (what merging leaves
//! searches to visit) and the CPU time of this process (indexer and writers;
//! PostgreSQL is apart) per thousand changes, the work beside the latency.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use certscope_indexer::{IndexView, Snapshot};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::database;
use crate::{GlobalArgs, IndexArgs};

pub async fn run(
    global: &GlobalArgs,
    args: &IndexArgs,
    rate: u32,
    seconds: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=5_000).contains(&rate),
        "--rate must be 1..=5000 changes per second"
    );
    anyhow::ensure!((1..=600).contains(&seconds), "--seconds must be 1..=600");
    let db = database::open(global).await?;
    let max_id: Option<i64> = sqlx::query_scalar("SELECT max(id) FROM evidence")
        .fetch_one(&db.pool)
        .await?;
    let max_id = max_id.context("no evidence rows: seed first (certscope seed)")?;
    let config = crate::serve::indexer_config(global, args, &db);
    let cancel = CancellationToken::new();
    let handle = certscope_indexer::spawn(config, cancel.clone());
    let mut views = handle.views.clone();
    println!("waiting for the index to open (a first run builds it)...");
    while views.borrow_and_update().is_none() {
        views
            .changed()
            .await
            .context("indexer stopped before opening the index")?;
    }
    // changes written since this index last ran (by another build on its own
    // index, say) are caught up first: a first cycle of 20,000 of them would
    // hold the first second's changes for as long, and measure the catch-up
    let now: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(&db.pool)
        .await?;
    let now = Snapshot::parse(&now)?;
    let caught_up = |views: &tokio::sync::watch::Receiver<Option<IndexView>>| {
        views
            .borrow()
            .as_ref()
            .is_some_and(|v| v.position.snapshot.covers(&now))
    };
    if !caught_up(&views) {
        println!("catching up with the changes written since the index last ran...");
        tokio::time::timeout(Duration::from_secs(300), async {
            while !caught_up(&views) {
                views.changed().await?;
            }
            anyhow::Ok(())
        })
        .await
        .context("the index did not catch up within 5 minutes")??;
    }

    let pending: Arc<Mutex<VecDeque<(Snapshot, Instant)>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let segments: Arc<Mutex<Vec<usize>>> = Arc::default();
    // the observer: on every published position, retire what it covers
    let observer = {
        let (pending, latencies, segments, mut views) = (
            pending.clone(),
            latencies.clone(),
            segments.clone(),
            handle.views.clone(),
        );
        tokio::spawn(async move {
            while views.changed().await.is_ok() {
                let now = Instant::now();
                let Some((position, held)) = views.borrow_and_update().as_ref().map(|v| {
                    let held = v.reader.searcher().segment_readers().len();
                    (v.position.snapshot.clone(), held)
                }) else {
                    continue;
                };
                segments.lock().await.push(held);
                let mut pending = pending.lock().await;
                let mut lat = latencies.lock().await;
                pending.retain(|(snap, at)| {
                    if position.covers(snap) {
                        lat.push(now.duration_since(*at).as_secs_f64() * 1000.0);
                        false
                    } else {
                        true
                    }
                });
            }
        })
    };

    let total = rate as u64 * seconds;
    let cpu_before = process_cpu_seconds();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let limiter = Arc::new(tokio::sync::Semaphore::new(64));
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = limiter.clone().acquire_owned().await?;
        let (pool, pending) = (db.pool.clone(), pending.clone());
        let id = 1 + (n as i64 * 7919) % max_id;
        tasks.spawn(async move {
            let _permit = permit;
            let mut conn = pool.acquire().await?;
            sqlx::query("UPDATE evidence SET description = description || '.' WHERE id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?;
            let committed = Instant::now();
            let text: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
                .fetch_one(&mut *conn)
                .await?;
            pending
                .lock()
                .await
                .push_back((Snapshot::parse(&text)?, committed));
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let sent_in = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.lock().await.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cpu = process_cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    observer.abort();
    cancel.cancel();
    handle.finished().await?;
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "index latency at {rate} changes/s for {seconds} s: {} changes sent in {sent_in:.1} s ({:.0}/s), {} measured, {} unconfirmed",
        total,
        total as f64 / sent_in,
        lat.len(),
        pending.lock().await.len()
    );
    println!(
        "commit-to-searchable ms: p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    let segments = segments.lock().await.clone();
    if let Some(most) = segments.iter().max() {
        println!(
            "segments per published view: mean {:.1}  max {most}",
            segments.iter().sum::<usize>() as f64 / segments.len() as f64
        );
    }
    if let Some(cpu) = cpu {
        println!(
            "this process's CPU (indexer and writers) from the first change to the last confirmed: {cpu:.1} s, {:.0} ms per 1,000 changes",
            cpu * 1e6 / total as f64
        );
    }
    db.close().await
}

/// User and system CPU seconds of this process, all threads (Linux; `None`
/// elsewhere). `/proc` counts in USER_HZ, 100 per second on every Linux ABI.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the fields after the command name, which is in parentheses and may hold spaces
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let utime: f64 = fields.nth(11)?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
