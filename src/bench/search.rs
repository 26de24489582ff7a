//! `certscope bench search`: the same rotating queries against Certscope over
//! HTTP, PostgreSQL full-text search (tsvector + GIN, facets by GROUP BY) and
//! ILIKE '%term%', in one run on the same data; closed loop (1 and N clients) and
//! open loop at a fixed rate; searches beside cold reports; the server's
//! resident memory.
//!
//! The server runs as a child process (`certscope serve`, response cache off), so
//! its memory is its own and every request executes a real search.

use std::time::{Duration, Instant};

use anyhow::bail;
use certscope_query_api::encode_query_value as enc;
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;

use super::server::{BenchServer, largest_org};
use crate::database;
use crate::{GlobalArgs, IndexArgs};

/// One benchmark query, in both dialects.
#[derive(Debug, Clone)]
pub struct BenchQuery {
    pub label: &'static str,
    /// Query string of `/v1/search`.
    pub http: String,
    /// websearch_to_tsquery text.
    pub text: String,
    /// Plain words for ILIKE.
    pub words: Vec<String>,
    pub kinds: Vec<&'static str>,
    pub statuses: Vec<&'static str>,
    pub overdue: bool,
    pub sort_due_desc: bool,
}

impl BenchQuery {
    /// A query of text alone (no filter, default sort).
    fn text(label: &'static str, text: String, words: Vec<String>) -> Self {
        BenchQuery {
            label,
            http: format!("q={}", enc(&text)),
            text,
            words,
            kinds: vec![],
            statuses: vec![],
            overdue: false,
            sort_due_desc: false,
        }
    }
}

/// Questions as officers type them: "how do we <every word of a control title>"
/// (three to six content words and stop words: the most-words matching).
pub async fn questions(pool: &PgPool, n: usize) -> anyhow::Result<Vec<BenchQuery>> {
    let titles: Vec<(String,)> = sqlx::query_as(
        "SELECT title FROM controls WHERE NOT withdrawn ORDER BY framework_id, sort_key, id",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(n);
    for (title,) in titles.iter().cycle().step_by(5).take(titles.len() * 5) {
        if out.len() >= n {
            break;
        }
        let words: Vec<String> = title
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| w.len() >= 3)
            .map(str::to_lowercase)
            .collect();
        if words.len() < 3 {
            continue;
        }
        let text = format!("how do we handle {}", words.join(" "));
        out.push(BenchQuery::text("question", text, words));
    }
    Ok(out)
}

/// Realistic queries from the NIST control catalogue: plain words, phrases,
/// control ids, faceted, filtered and sorted.
pub async fn queries(pool: &PgPool, n: usize) -> anyhow::Result<Vec<BenchQuery>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT display_id, title FROM controls WHERE NOT withdrawn ORDER BY framework_id, sort_key, id",
    )
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        bail!("no controls: import the catalogs and seed first");
    }
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        let (display_id, title) = &rows[(i * 7) % rows.len()];
        let words: Vec<String> = title
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| w.len() >= 4)
            .map(str::to_lowercase)
            .collect();
        i += 1;
        if words.is_empty() {
            continue;
        }
        let two: Vec<String> = words.iter().take(2).cloned().collect();
        let one = vec![words[0].clone()];
        let q = BenchQuery::text;
        let item = match out.len() % 6 {
            0 => q("plain", two.join(" "), two),
            1 => q("phrase", format!("\"{}\"", two.join(" ")), two),
            2 => q("id", display_id.clone(), vec![display_id.clone()]),
            3 => {
                let mut b = q("faceted", one[0].clone(), one);
                b.http.push_str("&kind=evidence&status=accepted,pending");
                b.kinds = vec!["evidence"];
                b.statuses = vec!["accepted", "pending"];
                b
            }
            4 => {
                let mut b = q("filtered", one[0].clone(), one);
                b.http.push_str("&due=overdue");
                b.overdue = true;
                b
            }
            _ => {
                let mut b = q("sorted", one[0].clone(), one);
                b.http.push_str("&kind=requirement,evidence&sort=-due_date");
                b.kinds = vec!["requirement", "evidence"];
                b.sort_due_desc = true;
                b
            }
        };
        out.push(item);
    }
    Ok(out)
}

const FTS_TABLE_SQL: &str = "
CREATE TABLE bench_fts AS
SELECT 'control'::text AS kind, c.id, 0::bigint AS org_id, c.title, c.statement || ' ' || c.guidance AS body,
       CASE WHEN c.withdrawn THEN 'withdrawn' ELSE 'active' END AS status, f.slug AS framework,
       c.family_key AS family, NULL::text AS owner, NULL::bigint AS certification_id, NULL::date AS due_date,
       c.updated_at
FROM controls c JOIN frameworks f ON f.id = c.framework_id
UNION ALL
SELECT 'certification', x.id, x.organization_id, x.name, x.description, x.status, f.slug, NULL, u.display_name,
       x.id, x.target_date, x.updated_at
FROM certifications x JOIN frameworks f ON f.id = x.framework_id LEFT JOIN users u ON u.id = x.owner_id
UNION ALL
SELECT 'requirement', r.id, r.organization_id, c.display_id || ' ' || c.title, c.statement || ' ' || r.notes,
       r.status, f.slug, c.family_key, u.display_name, r.certification_id, r.due_date, r.updated_at
FROM requirements r JOIN controls c ON c.id = r.control_id JOIN frameworks f ON f.id = c.framework_id
LEFT JOIN users u ON u.id = r.owner_id
UNION ALL
SELECT 'evidence', e.id, e.organization_id, e.title, e.content || ' ' || e.description, e.status, f.slug,
       c.family_key, u.display_name, r.certification_id, e.expires_on, e.updated_at
FROM evidence e JOIN requirements r ON r.id = e.requirement_id JOIN controls c ON c.id = r.control_id
JOIN frameworks f ON f.id = c.framework_id LEFT JOIN users u ON u.id = e.submitted_by
UNION ALL
SELECT 'risk', k.id, k.organization_id, k.title, k.description, k.status, NULL, NULL, u.display_name, NULL,
       k.due_date, k.updated_at
FROM risks k LEFT JOIN users u ON u.id = k.owner_id";

/// A tsvector + GIN copy of every searchable row, made once per data set.
async fn ensure_fts(pool: &PgPool) -> anyhow::Result<()> {
    let rows = certscope_indexer::documents::count_rows(pool).await? as i64;
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('bench_fts') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    let existing: Option<i64> = if exists {
        Some(
            sqlx::query_scalar("SELECT count(*) FROM bench_fts")
                .fetch_one(pool)
                .await?,
        )
    } else {
        None
    };
    if existing == Some(rows) {
        return Ok(());
    }
    let bar = ProgressBar::new_spinner().with_message(format!(
        "building the PostgreSQL full-text table for {rows} rows (tsvector + GIN, once per data set)"
    ));
    bar.enable_steady_tick(Duration::from_millis(200));
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL maintenance_work_mem = '1GB'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("DROP TABLE IF EXISTS bench_fts")
        .execute(&mut *tx)
        .await?;
    sqlx::query(FTS_TABLE_SQL).execute(&mut *tx).await?;
    sqlx::query(
        "ALTER TABLE bench_fts ADD COLUMN tsv tsvector GENERATED ALWAYS AS \
         (setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', body), 'B')) STORED",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("CREATE INDEX bench_fts_tsv ON bench_fts USING gin (tsv)")
        .execute(&mut *tx)
        .await?;
    sqlx::query("CREATE INDEX bench_fts_org ON bench_fts (org_id, kind)")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE bench_fts").execute(pool).await?;
    bar.finish_with_message(format!(
        "built bench_fts in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

fn conditions(q: &BenchQuery) -> String {
    let mut c = "org_id IN ($1, 0)".to_owned();
    if !q.kinds.is_empty() {
        let list: Vec<String> = q.kinds.iter().map(|k| format!("'{k}'")).collect();
        c.push_str(&format!(" AND kind IN ({})", list.join(",")));
    }
    if !q.statuses.is_empty() {
        let list: Vec<String> = q.statuses.iter().map(|k| format!("'{k}'")).collect();
        c.push_str(&format!(" AND status IN ({})", list.join(",")));
    }
    if q.overdue {
        c.push_str(" AND due_date < current_date");
    }
    c
}

const FACETS_SQL: &str = "SELECT kind, status, framework, family, owner, certification_id, count(*) FROM m \
     GROUP BY GROUPING SETS ((kind), (status), (framework), (family), (owner), (certification_id))";

/// The matching rows' facet columns, and only those: whole rows, bodies
/// included, were PostgreSQL's to copy before (issue 20: a fair comparison).
fn facet_rows(cond: &str) -> String {
    format!(
        "WITH m AS MATERIALIZED (SELECT kind, status, framework, family, owner, certification_id \
         FROM bench_fts WHERE {cond}) {FACETS_SQL}"
    )
}

/// The same search on PostgreSQL full-text search: hits with headlines, then
/// totals and facet counts by GROUP BY.
async fn pg_fts(pool: &PgPool, org: i64, q: &BenchQuery) -> anyhow::Result<()> {
    let cond = format!(
        "{} AND tsv @@ websearch_to_tsquery('english', $2)",
        conditions(q)
    );
    let order = if q.sort_due_desc {
        "due_date DESC NULLS LAST, id"
    } else {
        "ts_rank(tsv, websearch_to_tsquery('english', $2)) DESC, id"
    };
    let hits = format!(
        "SELECT kind, id, title, ts_headline('english', body, websearch_to_tsquery('english', $2)) \
         FROM (SELECT kind, id, title, body FROM bench_fts WHERE {cond} ORDER BY {order} LIMIT 20) t"
    );
    let _: Vec<(String, i64, String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(hits))
        .bind(org)
        .bind(&q.text)
        .fetch_all(pool)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(facet_rows(&cond)))
        .bind(org)
        .bind(&q.text)
        .fetch_all(pool)
        .await?;
    Ok(())
}

/// How listings were searched before: ILIKE '%word%' on title and body.
async fn pg_ilike(pool: &PgPool, org: i64, q: &BenchQuery) -> anyhow::Result<()> {
    let mut cond = conditions(q);
    for i in 0..q.words.len() {
        cond.push_str(&format!(
            " AND (title ILIKE ${n} OR body ILIKE ${n})",
            n = i + 2
        ));
    }
    let order = if q.sort_due_desc {
        "due_date DESC NULLS LAST, id"
    } else {
        "updated_at DESC, id"
    };
    let patterns: Vec<String> = q.words.iter().map(|w| format!("%{w}%")).collect();
    let hits =
        format!("SELECT kind, id, title FROM bench_fts WHERE {cond} ORDER BY {order} LIMIT 20");
    for sql in [hits, facet_rows(&cond)] {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(org);
        for p in &patterns {
            query = query.bind(p);
        }
        query.fetch_all(pool).await?;
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum System {
    Certscope,
    Fts,
    Ilike,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Certscope => "certscope (HTTP)",
            System::Fts => "postgres FTS",
            System::Ilike => "postgres ILIKE",
        }
    }
}

struct Target {
    http: reqwest::Client,
    base: String,
    token: String,
    pool: PgPool,
    org: i64,
}

/// What every phase of the bench shares: where the servers it starts find
/// their data, and whom they search as.
struct Bench<'a> {
    global: &'a GlobalArgs,
    index: &'a IndexArgs,
    db: &'a crate::database::Database,
    org: i64,
    slug: &'a str,
}

impl Bench<'_> {
    /// A server of this bench, started with `extra` arguments.
    async fn start(&self, extra: &[&str]) -> anyhow::Result<BenchServer> {
        BenchServer::start(self.global, self.index, extra).await
    }

    /// Requests to `server` as an officer of the organization.
    async fn target_on(&self, server: &BenchServer) -> anyhow::Result<Target> {
        Ok(Target {
            http: server.http.clone(),
            base: server.base.clone(),
            token: server.token(self.db, self.slug).await?,
            pool: self.db.pool.clone(),
            org: self.org,
        })
    }
}

/// What became of one request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Answered,
    /// 503 from the server's load shedding.
    Shed,
}

impl Target {
    async fn run(&self, system: System, q: &BenchQuery) -> anyhow::Result<Answer> {
        match system {
            System::Certscope => {
                let r = self
                    .http
                    .get(format!("{}/v1/search?limit=20&{}", self.base, q.http))
                    .bearer_auth(&self.token)
                    .send()
                    .await?;
                let status = r.status();
                let body = r.bytes().await?;
                if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                    return Ok(Answer::Shed);
                }
                if !status.is_success() {
                    bail!("{} -> {status}: {}", q.http, String::from_utf8_lossy(&body));
                }
                Ok(Answer::Answered)
            }
            System::Fts => pg_fts(&self.pool, self.org, q)
                .await
                .map(|()| Answer::Answered),
            System::Ilike => pg_ilike(&self.pool, self.org, q)
                .await
                .map(|()| Answer::Answered),
        }
    }
}

#[derive(Debug, Default)]
struct Figures {
    ms: Vec<f64>,
    /// The query of each figure (closed loop).
    query: Vec<usize>,
    /// Open loop: the second of the run each answered request was due in.
    second: Vec<u64>,
    seconds: f64,
    dropped: usize,
    /// Requests that failed (for PostgreSQL: no connection within the pool's
    /// acquire timeout while the backlog grew).
    failed: usize,
    /// Requests the server refused at capacity (503), and how fast.
    shed_ms: Vec<f64>,
    /// Open loop: how late after its scheduled time each request was sent
    /// (the load generator's own delay, on cores it shares with the server).
    late_ms: Vec<f64>,
}

impl Figures {
    fn pct(&self, p: f64) -> f64 {
        super::pct(&self.ms, p)
    }

    /// p50/p99 per query type.
    fn by_label(&self, queries: &[BenchQuery]) -> String {
        let mut out = Vec::new();
        for label in [
            "plain", "phrase", "id", "faceted", "filtered", "sorted", "question",
        ] {
            if !queries.iter().any(|q| q.label == label) {
                continue;
            }
            let ms: Vec<f64> = self
                .query
                .iter()
                .zip(&self.ms)
                .filter(|(i, _)| queries[**i].label == label)
                .map(|(_, ms)| *ms)
                .collect();
            out.push(format!(
                "{label} {:.1}/{:.1}",
                super::pct(&ms, 0.5),
                super::pct(&ms, 0.99)
            ));
        }
        format!("    p50/p99 ms by type: {}", out.join(", "))
    }

    /// p99 of the requests due in each second of an open loop: whether the
    /// tail is a moment (the first second, before the server called it
    /// overload) or throughout.
    fn by_second(&self) -> String {
        let last = self.second.iter().copied().max().unwrap_or(0);
        let out: Vec<String> = (0..=last)
            .map(|s| {
                let ms: Vec<f64> = self
                    .second
                    .iter()
                    .zip(&self.ms)
                    .filter(|(x, _)| **x == s)
                    .map(|(_, ms)| *ms)
                    .collect();
                format!("{:.0}", super::pct(&ms, 0.99))
            })
            .collect();
        format!("    p99 ms by second: {}", out.join(" "))
    }

    /// The `n` slowest searches, slowest first: where the tail comes from.
    fn slowest(&self, queries: &[BenchQuery], n: usize) -> String {
        let mut timed: Vec<(f64, usize)> = self
            .ms
            .iter()
            .copied()
            .zip(self.query.iter().copied())
            .collect();
        timed.sort_by(|a, b| b.0.total_cmp(&a.0));
        let out: Vec<String> = timed
            .iter()
            .take(n)
            .map(|(ms, i)| format!("{ms:.1} {} `{}`", queries[*i].label, queries[*i].http))
            .collect();
        format!("    slowest ms: {}", out.join(", "))
    }

    fn line(&self, system: System, mode: &str) -> String {
        format!(
            "{:<18} {:<26} {:>6} {:>9.2} {:>9.2} {:>9.2} {:>9.1}{}",
            system.name(),
            mode,
            self.ms.len(),
            self.pct(0.5),
            self.pct(0.99),
            self.pct(1.0),
            self.ms.len() as f64 / self.seconds.max(1e-9),
            match (self.dropped, self.failed, self.shed_ms.len()) {
                (0, 0, 0) => String::new(),
                (0, 0, s) => format!("  (+{s} refused at capacity)"),
                (d, f, s) => format!(
                    "  ({d} not sent: backlog; {f} failed: pool timeouts; {s} refused at capacity)"
                ),
            }
        )
    }
}

async fn closed_loop(
    target: &std::sync::Arc<Target>,
    system: System,
    queries: &[BenchQuery],
    clients: usize,
) -> anyhow::Result<Figures> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (target, next, queries) = (target.clone(), next.clone(), queries.to_vec());
        tasks.spawn(async move {
            let mut ms = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(q) = queries.get(i) else { break };
                let t = Instant::now();
                let answer = target.run(system, q).await?;
                ms.push((i, t.elapsed().as_secs_f64() * 1e3, answer));
            }
            anyhow::Ok(ms)
        });
    }
    let mut f = Figures::default();
    while let Some(r) = tasks.join_next().await {
        for (i, ms, answer) in r?? {
            if answer == Answer::Shed {
                f.shed_ms.push(ms);
                continue;
            }
            f.query.push(i);
            f.ms.push(ms);
        }
    }
    f.seconds = started.elapsed().as_secs_f64();
    Ok(f)
}

/// Requests scheduled by the clock; latency from the scheduled start, so a
/// backlog counts against the system (no coordinated omission).
async fn open_loop(
    target: &std::sync::Arc<Target>,
    system: System,
    queries: &[BenchQuery],
    rate: u32,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let total = rate as u64 * seconds;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let inflight = std::sync::Arc::new(tokio::sync::Semaphore::new(256));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut f = Figures::default();
    for n in 0..total {
        let due = started + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = inflight.clone().try_acquire_owned() else {
            f.dropped += 1;
            continue;
        };
        let which = n as usize % queries.len();
        let (target, q) = (target.clone(), queries[which].clone());
        tasks.spawn(async move {
            let _permit = permit;
            let late = due.elapsed().as_secs_f64() * 1e3;
            let answer = target.run(system, &q).await.ok();
            let second = n / u64::from(rate);
            (
                answer,
                due.elapsed().as_secs_f64() * 1e3,
                late,
                which,
                second,
            )
        });
    }
    while let Some(r) = tasks.join_next().await {
        let (answer, ms, late, which, second) = r?;
        f.late_ms.push(late);
        match answer {
            Some(Answer::Answered) => {
                f.ms.push(ms);
                f.query.push(which);
                f.second.push(second);
            }
            Some(Answer::Shed) => f.shed_ms.push(ms),
            None => f.failed += 1,
        }
    }
    f.seconds = started.elapsed().as_secs_f64();
    Ok(f)
}

/// Cold reports computed one after another by each of `clients` tasks while
/// `stop` is unset (365 at most): every request names a horizon never asked
/// before, so the server loads and aggregates the report anew. Returns each
/// report's milliseconds.
async fn cold_reports(
    target: &std::sync::Arc<Target>,
    clients: u32,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinSet<anyhow::Result<Vec<f64>>> {
    use certscope_reports::section::Section;
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (target, stop) = (target.clone(), stop.clone());
        tasks.spawn(async move {
            let mut ms = Vec::new();
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // one report (every section of it) per parameter set: a
                // horizon never asked before makes it cold (horizons are
                // 1..=365; the other phases ask for no report)
                let k = (client + clients * n) as usize;
                n += 1;
                if k >= 365 {
                    break;
                }
                let section = Section::ALL[k % Section::ALL.len()];
                let horizon = 1 + k;
                let url = format!(
                    "{}/v1/metrics/{}?horizon_days={horizon}",
                    target.base,
                    section.as_str()
                );
                let started = Instant::now();
                let r = target
                    .http
                    .get(url)
                    .bearer_auth(&target.token)
                    .send()
                    .await?;
                let status = r.status();
                let body = r.bytes().await?;
                if !status.is_success() {
                    bail!(
                        "cold report {}: {status}: {}",
                        section.as_str(),
                        String::from_utf8_lossy(&body)
                    );
                }
                ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
            anyhow::Ok(ms)
        });
    }
    tasks
}

/// Passes over the queries in each half of `beside_reports`.
const PASSES: usize = 4;

/// Searches while two clients ask for cold reports, one after another (issue
/// 20's "search p99 while two cold reports compute"), beside the same searches
/// unloaded, on a server computing one report at a time and on one computing
/// two at once (the fixed figure before `--report-concurrency`; its default
/// is half the server's cores).
async fn beside_reports(bench: &Bench<'_>, queries: &[BenchQuery]) -> anyhow::Result<()> {
    println!(
        "\nsearches (1 client, {} queries) while two clients ask for cold reports, one after another",
        PASSES * queries.len()
    );
    println!(
        "{:<20} {:>16} {:>16} {:>8} {:>22}",
        "reports at once", "alone p50/p99", "beside p50/p99", "ratio", "cold reports n p50/max"
    );
    for (label, concurrency) in [("1", 1), ("2 (before)", 2)] {
        let n = concurrency.to_string();
        let server = bench
            .start(&["--cache-mib", "0", "--report-concurrency", &n])
            .await?;
        let target = std::sync::Arc::new(bench.target_on(&server).await?);
        for q in queries {
            target.run(System::Certscope, q).await?;
        }
        // several passes: a p99 of a few hundred searches moves with one stall
        let passes: Vec<BenchQuery> = (0..PASSES).flat_map(|_| queries.iter().cloned()).collect();
        let alone = closed_loop(&target, System::Certscope, &passes, 1).await?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut reports = cold_reports(&target, 2, &stop).await;
        let beside = closed_loop(&target, System::Certscope, &passes, 1).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut report_ms = Vec::new();
        while let Some(r) = reports.join_next().await {
            report_ms.extend(r??);
        }
        let beside = beside?;
        println!(
            "{:<20} {:>16} {:>16} {:>7.2}x {:>22}",
            label,
            format!("{:.1}/{:.1}", alone.pct(0.5), alone.pct(0.99)),
            format!("{:.1}/{:.1}", beside.pct(0.5), beside.pct(0.99)),
            beside.pct(0.99) / alone.pct(0.99),
            format!(
                "{} {:.0}/{:.0}",
                report_ms.len(),
                super::pct(&report_ms, 0.5),
                super::pct(&report_ms, 1.0)
            ),
        );
        server.stop().await;
    }
    println!(
        "    (target: search p99 < 30 ms while two cold reports compute; the server's default is half its cores: {} here unless pinned)",
        certscope_query_api::ApiConfig::default_report_concurrency()
    );
    Ok(())
}

/// How many queries `first_searches` times (one of each type, in rotation order).
const FIRST_SEARCHES: usize = 6;

/// The first searches after a start, with and without warming (issue 20):
/// each server is started on the same index, then the first query of each
/// type is timed on its first run and again on its second. Without warming,
/// the first searches decode every segment's columns and compute their
/// statistics; with it, the server did that before it was ready.
async fn first_searches(bench: &Bench<'_>, queries: &[BenchQuery]) -> anyhow::Result<()> {
    let mut picked: Vec<&BenchQuery> = Vec::new();
    for q in queries {
        if picked.len() < FIRST_SEARCHES && !picked.iter().any(|p| p.label == q.label) {
            picked.push(q);
        }
    }
    println!(
        "\nfirst searches after a start ({} queries, one per type; ms on the first run / the second)",
        picked.len()
    );
    println!(
        "{:<16} {:>10} {:>12} {:>12} {:>12}",
        "server", "ready s", "first sum", "first max", "second max"
    );
    for (mode, extra) in [
        (
            "not warmed",
            &["--cache-mib", "0", "--no-search-warming"][..],
        ),
        ("warmed", &["--cache-mib", "0"][..]),
    ] {
        let started = Instant::now();
        let server = bench.start(extra).await?;
        let ready = started.elapsed().as_secs_f64();
        let target = bench.target_on(&server).await?;
        let mut runs = [Vec::new(), Vec::new()];
        for run in &mut runs {
            for q in &picked {
                let t = Instant::now();
                anyhow::ensure!(
                    target.run(System::Certscope, q).await? == Answer::Answered,
                    "a first search was refused"
                );
                run.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<16} {:>10.1} {:>12.1} {:>12.1} {:>12.1}",
            mode,
            ready,
            runs[0].iter().sum::<f64>(),
            max(&runs[0]),
            max(&runs[1])
        );
        server.stop().await;
    }
    Ok(())
}

pub struct SearchBench {
    pub queries: usize,
    pub clients: usize,
    pub rate: u32,
    pub seconds: u64,
    pub ilike_queries: usize,
    /// Officer questions appended to the rotation.
    pub questions: usize,
    /// Skip PostgreSQL (full-text search and ILIKE).
    pub certscope_only: bool,
}

pub async fn run(global: &GlobalArgs, index: &IndexArgs, b: SearchBench) -> anyhow::Result<()> {
    anyhow::ensure!(
        b.queries >= 1 && b.clients >= 1 && b.rate >= 1,
        "sizes must be positive"
    );
    let db = database::open(global).await?;
    let (org, slug, evidence) = largest_org(&db).await?;
    println!("organization {slug}: {evidence} evidence rows");
    let systems: &[System] = if b.certscope_only {
        &[System::Certscope]
    } else {
        ensure_fts(&db.pool).await?;
        &[System::Certscope, System::Fts]
    };
    let mut queries = queries(&db.pool, b.queries).await?;
    queries.extend(questions(&db.pool, b.questions).await?);

    let bench = Bench {
        global,
        index,
        db: &db,
        org,
        slug: &slug,
    };
    first_searches(&bench, &queries).await?;
    beside_reports(&bench, &queries).await?;

    // the server, as a child process with the cache off
    let server = bench.start(&["--cache-mib", "0"]).await?;
    let target = std::sync::Arc::new(bench.target_on(&server).await?);

    let style = ProgressStyle::with_template("{msg} {bar:30} {pos}/{len}")?;
    let warm = ProgressBar::new((queries.len() * systems.len()) as u64)
        .with_style(style)
        .with_message("warming up");
    for q in &queries {
        for &system in systems {
            target.run(system, q).await?;
            warm.inc(1);
        }
    }
    warm.finish_and_clear();
    let (_, hwm_warm) = server.memory();

    println!(
        "\n{} queries rotating (plain, phrase, id, faceted, filtered, sorted); every search also counts facets",
        queries.len()
    );
    println!(
        "{:<18} {:<26} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "system", "mode", "n", "p50 ms", "p99 ms", "max ms", "req/s"
    );
    let mut p99 = std::collections::HashMap::new();
    for &system in systems {
        let f = closed_loop(&target, system, &queries, 1).await?;
        println!("{}", f.line(system, "closed loop, 1 client"));
        println!("{}", f.by_label(&queries));
        println!("{}", f.slowest(&queries, 5));
        p99.insert(system.name(), f.pct(0.99));
    }
    let mut capacity = 0.0;
    for &system in systems {
        let f = closed_loop(&target, system, &queries, b.clients).await?;
        println!(
            "{}",
            f.line(system, &format!("closed loop, {} clients", b.clients))
        );
        if system == System::Certscope {
            capacity = f.ms.len() as f64 / f.seconds.max(1e-9);
        }
    }
    for &system in systems {
        let f = open_loop(&target, system, &queries, b.rate, b.seconds).await?;
        println!(
            "{}",
            f.line(
                system,
                &format!("open loop, {}/s for {} s", b.rate, b.seconds)
            )
        );
    }
    // load shedding: three times the capacity the closed loop measured
    let overload = (3.0 * capacity).round().max(1.0) as u32;
    let sampling = tokio_util::sync::CancellationToken::new();
    let cpu = super::cpu::CpuLog::spawn(server.pid, Instant::now(), sampling.clone());
    let f = open_loop(&target, System::Certscope, &queries, overload, b.seconds).await?;
    sampling.cancel();
    println!(
        "{}",
        f.line(
            System::Certscope,
            &format!("3x capacity, {overload}/s, {} s", b.seconds)
        )
    );
    let refused = Figures {
        ms: f.shed_ms.clone(),
        ..Figures::default()
    };
    let unloaded = p99[System::Certscope.name()];
    println!(
        "    overload: {} answered, p99 {:.1} ms = {:.2}x the unloaded 1-client p99 ({unloaded:.1} ms; target at most 2x); {} refused with 503 ({:.0} %), answered in p50 {:.1} / p99 {:.1} ms",
        f.ms.len(),
        f.pct(0.99),
        f.pct(0.99) / unloaded,
        refused.ms.len(),
        100.0 * refused.ms.len() as f64 / (refused.ms.len() + f.ms.len()).max(1) as f64,
        refused.pct(0.5),
        refused.pct(0.99),
    );
    let late = Figures {
        ms: f.late_ms.clone(),
        ..Figures::default()
    };
    println!(
        "    the load generator sent them late by p50 {:.1} / p99 {:.1} ms (included above: latency runs from the scheduled time)",
        late.pct(0.5),
        late.pct(0.99)
    );
    println!("{}", f.by_label(&queries));
    println!(
        "    CPU under overload (cores, by server thread, PostgreSQL process and this benchmark): {}",
        cpu.between(0.0, f64::MAX)
    );
    println!(
        "    the machine under overload: {}",
        cpu.machine_between(0.0, f64::MAX)
    );
    println!("{}", f.by_second());
    let ilike_queries = if b.certscope_only { 0 } else { b.ilike_queries };
    let ilike: Vec<BenchQuery> = queries.iter().take(ilike_queries).cloned().collect();
    if !ilike.is_empty() {
        let f = closed_loop(&target, System::Ilike, &ilike, 1).await?;
        println!("{}", f.line(System::Ilike, "closed loop, 1 client"));
        let f = closed_loop(&target, System::Certscope, &ilike, 1).await?;
        println!("{}", f.line(System::Certscope, "same queries, 1 client"));
    }
    let (rss, hwm) = server.memory();
    let ours = p99[System::Certscope.name()];
    if let Some(theirs) = p99.get(System::Fts.name()) {
        println!(
            "\np99 with one client: certscope {ours:.2} ms, postgres FTS {theirs:.2} ms ({:.1}x)",
            theirs / ours
        );
    }
    println!(
        "server memory: {:.0} MiB resident now, {:.0} MiB peak ({:.0} MiB peak after warm-up)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        hwm_warm as f64 / 1024.0
    );
    server.stop().await;
    db.close().await
}
