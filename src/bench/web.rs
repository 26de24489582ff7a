//! `certscope bench web`: the web interface as a person sees it, measured in a
//! real headless Chromium with the browser's own Performance API against the
//! largest organization: the search page from navigation to its results
//! painted over different queries, the dashboard's first and repeat loads, and
//! the bytes each page costs over the wire (compressed, headers included).

use anyhow::Context;
use certscope_query_api::Role;
use certscope_query_api::webdriver::Browser;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use super::pct;
use super::server::{BenchServer, largest_org};
use crate::database;
use crate::{GlobalArgs, IndexArgs};

/// The page's timings after its `load`: navigation start to the last
/// contentful paint (the results: the search renders them in the page), to
/// `load`, and the bytes transferred for it and everything it loaded.
const TIMINGS: &str = "
const done = arguments[arguments.length - 1];
const nav = performance.getEntriesByType('navigation')[0];
const bytes = nav.transferSize + performance.getEntriesByType('resource')
    .reduce((n, r) => n + r.transferSize, 0);
const server = {};
for (const t of nav.serverTiming || []) server[t.name] = t.duration;
let lcp = 0, settle = null, finished = false;
const finish = () => {
    if (finished) return;
    finished = true;
    const fcp = (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime || 0;
    done({ painted: lcp > 0 ? Math.max(lcp, fcp) : null, load: nav.loadEventEnd,
        request: nav.requestStart, response: nav.responseStart, received: nav.responseEnd,
        app: server.app, search: server.search,
        bytes, html: nav.transferSize, decoded: nav.decodedBodySize });
};
// the largest paint so far, then 50 ms for a larger one; a page that has
// not painted after 5 s is reported as such, never as 0
new PerformanceObserver(list => {
    for (const e of list.getEntries()) lcp = Math.max(lcp, e.renderTime || e.startTime);
    clearTimeout(settle);
    settle = setTimeout(finish, 50);
}).observe({ type: 'largest-contentful-paint', buffered: true });
setTimeout(finish, 5000);
";

struct Sample {
    painted: f64,
    load: f64,
    /// navigation start to the request sent (connection, redirects)
    request: f64,
    /// request sent to the first byte of the answer
    waited: f64,
    /// the server's own time for the page, and its search (`Server-Timing`)
    app: f64,
    search: f64,
    /// the last byte of the page to its results painted (parse, styles,
    /// script, layout, paint)
    browser: f64,
    bytes: f64,
    html: f64,
    decoded: f64,
}

async fn measure(b: &Browser, url: &str) -> anyhow::Result<Sample> {
    b.goto(url).await;
    timings(&b.execute_async(TIMINGS, vec![]).await, url)
}

fn timings(v: &Value, what: &str) -> anyhow::Result<Sample> {
    let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    anyhow::ensure!(f("load") > 0.0, "{what}: no navigation timing ({v})");
    anyhow::ensure!(
        f("painted") > 0.0,
        "{what}: nothing painted within 5 s of its load ({v})"
    );
    Ok(Sample {
        painted: f("painted"),
        load: f("load"),
        request: f("request"),
        waited: f("response") - f("request"),
        app: f("app"),
        search: f("search"),
        browser: f("painted") - f("received"),
        bytes: f("bytes"),
        html: f("html"),
        decoded: f("decoded"),
    })
}

/// Different queries an officer might type: words of control titles, control
/// ids, and a few with facets, taken from the catalogue in a fixed order.
async fn queries(db: &database::Database, n: usize) -> anyhow::Result<Vec<String>> {
    let titles: Vec<(String, String)> = sqlx::query_as(
        "SELECT display_id, title FROM controls WHERE NOT withdrawn ORDER BY id LIMIT 400",
    )
    .fetch_all(&db.pool)
    .await?;
    anyhow::ensure!(
        !titles.is_empty(),
        "no catalogue controls: run `certscope seed` first"
    );
    let enc = certscope_query_api::encode_query_value;
    let mut out = Vec::with_capacity(n);
    let mut i = 0usize;
    while out.len() < n {
        let (id, title) = &titles[(i * 37) % titles.len()];
        let words: Vec<&str> = title.split_whitespace().take(2).collect();
        out.push(match i % 5 {
            0 => format!("q={}", enc(id)),
            1 => format!("q={}&status=failed", enc(&words.join(" "))),
            2 => format!("q={}&kind=evidence", enc(&words.join(" "))),
            _ => format!("q={}", enc(&words.join(" "))),
        });
        i += 1;
    }
    Ok(out)
}

pub async fn run(global: &GlobalArgs, index: &IndexArgs, count: usize) -> anyhow::Result<()> {
    anyhow::ensure!(count >= 2, "--queries must be at least 2");
    let db = database::open(global).await?;
    certscope_store::migrate(&db.pool).await?;
    let (_, slug, evidence) = largest_org(&db).await?;
    println!("organization {slug}: {evidence} evidence rows");
    let server = BenchServer::start(global, index, &[]).await?;
    let link = |role| crate::api::signin_link(&db.pool, &server.base, &slug, role, None, &[]);
    let officer = link(Role::Officer).await?;
    let executive = link(Role::Executive).await?;
    // a few searches first, not measured: an officer meets a running server
    // (its index files mapped, its searchers warm), not one just started
    const WARM_UP: usize = 5;
    let mut queries = queries(&db, count + WARM_UP).await?;
    let warm_up: Vec<String> = queries.drain(..WARM_UP).collect();

    let b = Browser::start(1280, 900).await;
    b.goto(&officer).await;
    let button = b.find("main form button[type=submit]").await;
    b.click(&button).await;
    b.find("header.top .who").await;
    let mut cold = Vec::new();
    for q in &warm_up {
        cold.push(measure(&b, &format!("{}/?{q}", server.base)).await?);
    }
    // assets cached, as for anyone who has opened one page
    let bar = ProgressBar::new(queries.len() as u64)
        .with_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len}")?)
        .with_message("search pages");
    let mut search = Vec::new();
    for q in &queries {
        search.push(measure(&b, &format!("{}/?{q}", server.base)).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let first_result = b
        .execute(
            "const a = document.querySelector(\"ol.results h2 a:not([href^='/?'])\"); return a ? a.href : null;",
            vec![],
        )
        .await;
    let detail = match first_result.as_str() {
        Some(href) => Some(measure(&b, href).await?),
        None => None,
    };

    // the executive: a new browser, nothing cached; signing in lands on the
    // dashboard (that navigation is the first load), then the page again
    let e = Browser::start(1280, 900).await;
    e.goto(&executive).await;
    let button = e.find("main form button[type=submit]").await;
    e.click(&button).await;
    e.find("#kpis").await;
    let first = timings(
        &e.execute_async(TIMINGS, vec![]).await,
        "the first dashboard",
    )?;
    let mut repeat = Vec::new();
    for _ in 0..10 {
        repeat.push(measure(&e, &format!("{}/dashboard", server.base)).await?);
    }

    println!(
        "\nsearch page, {} different queries (ms from navigation start):",
        search.len()
    );
    let painted: Vec<f64> = search.iter().map(|s| s.painted).collect();
    let load: Vec<f64> = search.iter().map(|s| s.load).collect();
    println!(
        "  results painted  p50 {:>7.1}  p99 {:>7.1}  max {:>7.1}",
        pct(&painted, 0.5),
        pct(&painted, 0.99),
        pct(&painted, 1.0)
    );
    println!(
        "  load event       p50 {:>7.1}  p99 {:>7.1}  max {:>7.1}",
        pct(&load, 0.5),
        pct(&load, 0.99),
        pct(&load, 1.0)
    );
    let part = |name: &str, get: fn(&Sample) -> f64| {
        let v: Vec<f64> = search.iter().map(get).filter(|x| x.is_finite()).collect();
        println!(
            "    {name:<14} p50 {:>7.1}  p99 {:>7.1}  max {:>7.1}",
            pct(&v, 0.5),
            pct(&v, 0.99),
            pct(&v, 1.0)
        );
    };
    println!("  where the time goes:");
    part("to request", |s| s.request);
    part("request→byte", |s| s.waited);
    part("server: page", |s| s.app);
    part("server: search", |s| s.search);
    part("byte→painted", |s| s.browser);
    let mut slowest: Vec<usize> = (0..search.len()).collect();
    slowest.sort_by(|&a, &b| search[b].painted.total_cmp(&search[a].painted));
    println!(
        "  the slowest pages (painted = to request + request→byte + download + byte→painted):"
    );
    for &i in slowest.iter().take(3) {
        let s = &search[i];
        println!(
            "    {:>6.1}  to request {:>5.1}  request→byte {:>6.1} (page {:>5.1}, search {:>5.1})  byte→painted {:>6.1}  ?{}",
            s.painted, s.request, s.waited, s.app, s.search, s.browser, queries[i]
        );
    }
    println!(
        "  (before them, {WARM_UP} warm-up searches on the just-started server: first {:.1}, then up to {:.1})",
        cold[0].painted,
        cold[1..].iter().map(|s| s.painted).fold(0.0, f64::max)
    );
    println!("dashboard:");
    println!(
        "  first load       {:>7.1}  (a new browser: sign-in POST, redirect, page, assets)",
        first.load
    );
    let rl: Vec<f64> = repeat.iter().map(|s| s.load).collect();
    println!(
        "  repeat load      p50 {:>7.1}  max {:>7.1}",
        pct(&rl, 0.5),
        pct(&rl, 1.0)
    );
    println!(
        "bytes per page (transferred, compressed; page + what it loaded / page HTML alone / HTML decoded):"
    );
    let row = |name: &str, s: &Sample| {
        println!(
            "  {name:<28} {:>8.0} {:>8.0} {:>8.0}",
            s.bytes, s.html, s.decoded
        )
    };
    row("search (first, assets cached)", &search[0]);
    let heaviest = search
        .iter()
        .max_by(|a, b| a.html.total_cmp(&b.html))
        .context("no search page")?;
    row("search (heaviest HTML)", heaviest);
    if let Some(d) = &detail {
        row("detail", d);
    }
    row("dashboard (first after sign-in)", &first);
    row("dashboard (repeat)", &repeat[0]);
    server.stop().await;
    db.close().await
}
