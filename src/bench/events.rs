//! `certscope bench events`: live event delivery under load. A `certscope serve`
//! child process; N WebSocket subscribers of the largest organization (half on
//! its `org` room, half spread over its certification rooms); requirement status
//! changes committed open-loop at a fixed rate. Latency runs from the commit's
//! return to the event's arrival at a subscriber, one figure per delivery.
//! With `--transport socketio`, a second load phase on the same server does the
//! same with N socket.io subscribers (Engine.IO v4 over WebSocket, spoken here
//! directly: a thousand Node clients would measure Node, not the server).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::server::{BenchServer, largest_org};
use crate::database;
use crate::{GlobalArgs, IndexArgs};

/// Each requirement's last change: `(sent, committed)`; `committed` is None
/// while the UPDATE has not returned yet.
pub(super) type Commits = Arc<Mutex<HashMap<i64, (Instant, Option<Instant>)>>>;

/// The requirement id of an event message, found without parsing the whole
/// message (the subscribers share the machine with the server).
fn requirement_of(text: &str) -> Option<i64> {
    if !text.contains("\"requirement.status_changed\"") {
        return None;
    }
    let rest = &text[text.find("\"requirement_id\":")? + 17..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Which subscribers a load phase uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Websocket,
    Socketio,
}

#[derive(Default)]
pub(super) struct Subscriber {
    pub(super) latencies: Vec<f64>,
    pub(super) received: u64,
    pub(super) closed: Option<String>,
}

impl Subscriber {
    /// Counts a requirement status event and its latency from the writer's
    /// commit; false when `text` is not one.
    fn record(&mut self, text: &str, commits: &Commits, now: Instant) -> bool {
        let Some(id) = requirement_of(text) else {
            return false;
        };
        self.received += 1;
        let at = commits.lock().ok().and_then(|c| c.get(&id).copied());
        match at {
            Some((_, Some(committed))) => self
                .latencies
                .push(now.saturating_duration_since(committed).as_secs_f64() * 1e3),
            // delivered before the writer saw its commit return
            Some((_, None)) => self.latencies.push(0.0),
            None => {}
        }
        true
    }
}

pub(super) async fn subscribe(
    url: String,
    token: String,
    room: String,
    commits: Commits,
    ready: tokio::sync::mpsc::Sender<()>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Subscriber> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .context("websocket connect")?;
    let subscribe = serde_json::json!({"type": "subscribe", "rooms": [room]});
    ws.send(Message::Text(subscribe.to_string().into())).await?;
    let mut out = Subscriber::default();
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            m = ws.next() => m,
        };
        let now = Instant::now();
        match msg {
            Some(Ok(Message::Text(text))) => {
                if out.record(&text, &commits, now) {
                    continue;
                }
                if text.contains("\"type\":\"subscribed\"") {
                    ready.send(()).await.ok();
                } else if text.contains("\"type\":\"error\"") {
                    out.closed = Some(text.to_string());
                }
            }
            Some(Ok(Message::Close(frame))) => {
                out.closed = Some(format!("closed: {frame:?}"));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                out.closed = Some(format!("error: {e}"));
                break;
            }
            None => break,
        }
    }
    ws.close(None).await.ok();
    Ok(out)
}

/// A socket.io subscriber: Engine.IO v4 over WebSocket, the socket.io packets
/// written by hand (open `0`, connect `40` with the token as `auth`, events
/// `42[name, data]`, Engine.IO pings `2` answered `3`).
async fn subscribe_socketio(
    base: String,
    token: String,
    room: String,
    commits: Commits,
    ready: tokio::sync::mpsc::Sender<()>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Subscriber> {
    let url = format!(
        "{}/socket.io/?EIO=4&transport=websocket",
        base.replacen("http", "ws", 1)
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("socket.io connect")?;
    let mut out = Subscriber::default();
    loop {
        let msg = tokio::select! {
            () = stop.cancelled() => break,
            m = ws.next() => m,
        };
        let now = Instant::now();
        let text = match msg {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                out.closed = Some(format!("closed: {frame:?}"));
                break;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                out.closed = Some(format!("error: {e}"));
                break;
            }
            None => break,
        };
        // an event is sent under its kind and under the original name: only
        // the first counts
        if text.starts_with("42[\"requirement.status_changed\"") {
            out.record(&text, &commits, now);
        } else if text.as_str() == "2" {
            ws.send(Message::Text("3".into())).await?;
        } else if text.starts_with('0') {
            let auth = serde_json::json!({ "token": token });
            ws.send(Message::Text(format!("40{auth}").into())).await?;
        } else if text.starts_with("42[\"connected\"") {
            let subscribe = serde_json::json!(["subscribe", { "room": room }]);
            ws.send(Message::Text(format!("42{subscribe}").into()))
                .await?;
        } else if text.starts_with("42[\"subscribed\"") {
            ready.send(()).await.ok();
        } else if text.starts_with("42[\"error\"")
            || text.starts_with("42[\"subscription-error\"")
            || text.starts_with("44")
        {
            out.closed = Some(text.to_string());
        }
    }
    ws.close(None).await.ok();
    Ok(out)
}

/// What one phase measured.
struct Figures {
    transport: Transport,
    subscribers: usize,
    changes: u64,
    sent_in: f64,
    expected: u64,
    received: u64,
    latencies: Vec<f64>,
    subscribed_rss: u64,
    peak_rss: u64,
    closed: Vec<String>,
}

impl Figures {
    fn pct(&self, p: f64) -> f64 {
        self.latencies
            .get(((self.latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    }
}

/// The parts every phase shares.
struct Bench {
    pool: sqlx::PgPool,
    server: BenchServer,
    url: String,
    base: String,
    token: String,
    certifications: Vec<i64>,
    requirements: Vec<(i64, i64)>,
    rate: u32,
    commits: Commits,
    next: usize,
}

impl Bench {
    /// `subscribers` connect (half on the org room, half over the certification
    /// rooms) and stay while `rate` changes per second are committed for
    /// `seconds`.
    async fn phase(
        &mut self,
        transport: Transport,
        subscribers: usize,
        seconds: u64,
    ) -> anyhow::Result<Figures> {
        let stop = tokio_util::sync::CancellationToken::new();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(subscribers);
        let mut rooms_of = Vec::with_capacity(subscribers);
        let mut tasks = Vec::with_capacity(subscribers);
        let bar = ProgressBar::new(subscribers as u64).with_style(
            ProgressStyle::with_template("subscribers [{bar:40}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        for i in 0..subscribers {
            let room = if i % 2 == 0 {
                "org".to_owned()
            } else {
                let c = self.certifications[(i / 2) % self.certifications.len()];
                format!("certification:{c}")
            };
            rooms_of.push(room.clone());
            let (token, commits) = (self.token.clone(), self.commits.clone());
            let (ready, stop) = (ready_tx.clone(), stop.clone());
            tasks.push(match transport {
                Transport::Websocket => tokio::spawn(subscribe(
                    self.url.clone(),
                    token,
                    room,
                    commits,
                    ready,
                    stop,
                )),
                Transport::Socketio => tokio::spawn(subscribe_socketio(
                    self.base.clone(),
                    token,
                    room,
                    commits,
                    ready,
                    stop,
                )),
            });
            // connect in waves, not all at once
            if i % 50 == 49 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        drop(ready_tx);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut ready = 0;
        while ready < subscribers {
            match tokio::time::timeout_at(deadline.into(), ready_rx.recv()).await {
                Ok(Some(())) => {
                    ready += 1;
                    bar.inc(1);
                }
                _ => bail!("only {ready} of {subscribers} subscribers were ready in 120 s"),
            }
        }
        bar.finish_and_clear();
        let (subscribed_rss, _) = self.server.memory();
        let org_subscribers = rooms_of.iter().filter(|r| *r == "org").count() as u64;
        let per_cert: HashMap<i64, u64> = self
            .certifications
            .iter()
            .map(|c| {
                let room = format!("certification:{c}");
                (*c, rooms_of.iter().filter(|r| **r == room).count() as u64)
            })
            .collect();

        // open loop: a change every 1/rate s, whatever the previous one did
        let rate = self.rate;
        let total = u64::from(rate) * seconds;
        let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
        let progress = ProgressBar::new(total).with_style(
            ProgressStyle::with_template("changes [{bar:40}] {pos}/{len} {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let started = Instant::now();
        let mut writes = tokio::task::JoinSet::new();
        let mut expected = 0u64;
        let mut peak_rss = subscribed_rss;
        for n in 0..total {
            let due = started + interval.mul_f64(n as f64);
            tokio::time::sleep_until(due.into()).await;
            let (id, cert) = self.requirements[self.next % self.requirements.len()];
            self.next += 1;
            expected += org_subscribers + per_cert.get(&cert).copied().unwrap_or(0);
            if let Ok(mut c) = self.commits.lock() {
                c.insert(id, (Instant::now(), None));
            }
            let (pool, commits) = (self.pool.clone(), self.commits.clone());
            writes.spawn(async move { change_status(&pool, &commits, id).await });
            progress.inc(1);
            if n % u64::from(rate) == 0 {
                peak_rss = peak_rss.max(self.server.memory().0);
            }
        }
        while let Some(done) = writes.join_next().await {
            done??;
        }
        let sent_in = started.elapsed().as_secs_f64();
        progress.finish_and_clear();
        // the tail: deliveries of the last changes
        tokio::time::sleep(Duration::from_secs(3)).await;
        peak_rss = peak_rss.max(self.server.memory().0);
        stop.cancel();
        let mut f = Figures {
            transport,
            subscribers,
            changes: total,
            sent_in,
            expected,
            received: 0,
            latencies: Vec::new(),
            subscribed_rss,
            peak_rss,
            closed: Vec::new(),
        };
        for t in tasks {
            let s = t.await??;
            f.received += s.received;
            f.latencies.extend(s.latencies);
            f.closed.extend(s.closed);
        }
        f.latencies.sort_by(f64::total_cmp);
        Ok(f)
    }
}

/// The certifications of organization `org` (its rooms) and requirements that
/// take turns changing at `rate` per second: each changes at most every few
/// seconds, so a delivery is matched to its commit without doubt.
pub(super) async fn rooms_and_requirements(
    db: &database::Database,
    org: i64,
    slug: &str,
    rate: u32,
) -> anyhow::Result<(Vec<i64>, Vec<(i64, i64)>)> {
    let certifications: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM certifications WHERE organization_id = $1 ORDER BY id")
            .bind(org)
            .fetch_all(&db.pool)
            .await?;
    let requirements: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, certification_id FROM requirements WHERE organization_id = $1 \
         ORDER BY id LIMIT $2",
    )
    .bind(org)
    .bind(i64::from(rate) * 5)
    .fetch_all(&db.pool)
    .await?;
    if certifications.is_empty() || requirements.len() < rate as usize {
        bail!("{slug} has too few requirements: seed first (certscope seed --preset bench)");
    }
    Ok((certifications, requirements))
}

/// Flips requirement `id` between implemented and in progress (one status
/// event), noting when the commit returned.
pub(super) async fn change_status(
    pool: &sqlx::PgPool,
    commits: &Commits,
    id: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE requirements SET status = CASE WHEN status = 'implemented' \
         THEN 'in_progress' ELSE 'implemented' END WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    if let Ok(mut c) = commits.lock()
        && let Some(entry) = c.get_mut(&id)
    {
        entry.1 = Some(Instant::now());
    }
    Ok(())
}

pub async fn run(
    global: &GlobalArgs,
    index: &IndexArgs,
    subscribers: usize,
    rate: u32,
    seconds: u64,
    transport: Transport,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=10_000).contains(&subscribers),
        "--subscribers must be 1..=10000"
    );
    anyhow::ensure!((1..=2_000).contains(&rate), "--rate must be 1..=2000");
    anyhow::ensure!((1..=600).contains(&seconds), "--seconds must be 1..=600");
    let db = database::open(global).await?;
    let (org_id, slug, _) = largest_org(&db).await?;
    let (certifications, requirements) = rooms_and_requirements(&db, org_id, &slug, rate).await?;
    let server =
        BenchServer::start(global, index, &["--event-connections-per-token", "100000"]).await?;
    let token = server.token(&db, &slug).await?;
    let (idle_rss, _) = server.memory();
    let url = format!("{}/v1/events", server.base.replacen("http", "ws", 1));
    let base = server.base.clone();
    let mut bench = Bench {
        pool: db.pool.clone(),
        server,
        url,
        base,
        token,
        certifications,
        requirements,
        rate,
        commits: Arc::default(),
        next: 0,
    };
    // the same pipeline with one subscriber first: what fan-out adds, same run
    let mut phases = vec![(
        "baseline",
        bench
            .phase(Transport::Websocket, 1, seconds.min(10))
            .await?,
    )];
    phases.push((
        "load",
        bench
            .phase(Transport::Websocket, subscribers, seconds)
            .await?,
    ));
    if transport == Transport::Socketio {
        phases.push((
            "load",
            bench
                .phase(Transport::Socketio, subscribers, seconds)
                .await?,
        ));
    }
    let metrics = bench
        .server
        .http
        .get(format!("{}/metrics", bench.server.base))
        .send()
        .await?
        .text()
        .await?;
    let (_, hwm) = bench.server.memory();
    bench.server.stop().await;
    let slow = metrics
        .lines()
        .find(|l| l.starts_with("certscope_events_disconnects_total{reason=\"slow_consumer\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or("?")
        .to_owned();
    println!(
        "live events, {slug}: subscribers half on its org room, half over its {} certification rooms; {rate} requirement status changes/s",
        bench.certifications.len()
    );
    println!(
        "{:<10} {:<10} {:>11} {:>9} {:>17} {:>9} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "phase",
        "transport",
        "subscribers",
        "changes",
        "deliveries",
        "per s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "RSS MiB",
        "peak MiB"
    );
    for (name, f) in &phases {
        println!(
            "{:<10} {:<10} {:>11} {:>9} {:>17} {:>9.0} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>10.1} {:>10.1}",
            name,
            match f.transport {
                Transport::Websocket => "websocket",
                Transport::Socketio => "socket.io",
            },
            f.subscribers,
            f.changes,
            format!("{}/{}", f.received, f.expected),
            f.received as f64 / f.sent_in,
            f.pct(0.5),
            f.pct(0.9),
            f.pct(0.99),
            f.pct(1.0),
            f.subscribed_rss as f64 / 1024.0,
            f.peak_rss as f64 / 1024.0,
        );
    }
    println!(
        "server memory: {:.1} MiB idle before any subscriber, high-water {:.1} MiB; dropped as slow consumers: {slow}; subscribers closed early: {}",
        idle_rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        phases.iter().map(|(_, f)| f.closed.len()).sum::<usize>()
    );
    if let Some(c) = phases.iter().find_map(|(_, f)| f.closed.first()) {
        println!("first early close: {c}");
    }
    db.close().await
}
