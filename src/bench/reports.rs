//! `certscope bench reports`: every metrics endpoint and the board PDF of the
//! largest organization over HTTP, cold (parameters never asked before, so the
//! report is read and aggregated anew) and warm (the same parameters again at
//! the same data position), and the server's peak memory.

use std::time::Instant;

use anyhow::bail;
use certscope_reports::section::Section;
use indicatif::{ProgressBar, ProgressStyle};

use super::pct;
use super::server::{BenchServer, largest_org};
use crate::database;
use crate::{GlobalArgs, IndexArgs};

pub async fn run(
    global: &GlobalArgs,
    index: &IndexArgs,
    cold: usize,
    warm: usize,
) -> anyhow::Result<()> {
    anyhow::ensure!(cold >= 1 && warm >= 1, "counts must be positive");
    let db = database::open(global).await?;
    let (_, slug, evidence) = largest_org(&db).await?;
    println!("organization {slug}: {evidence} evidence rows");
    let server = BenchServer::start(global, index, &[]).await?;
    let token = server.token(&db, &slug).await?;
    let (_, rss_start) = server.memory();

    let mut paths: Vec<(String, String)> = Section::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), format!("/v1/metrics/{}", s.as_str())))
        .collect();
    paths.push(("board.pdf (A4)".into(), "/v1/reports/board.pdf".into()));
    let bar = ProgressBar::new((paths.len() * (cold + warm + 1)) as u64)
        .with_style(ProgressStyle::with_template("{msg} {bar:30} {pos}/{len}")?)
        .with_message("requests");
    let mut unique = 0u32;
    let mut rows = Vec::new();
    for (name, path) in &paths {
        let get = |query: String| {
            let url = format!("{}{path}?{query}", server.base);
            let req = server.http.get(url).bearer_auth(&token);
            async move {
                let started = Instant::now();
                let r = req.send().await?;
                let status = r.status();
                let body = r.bytes().await?;
                if !status.is_success() {
                    bail!("{status}: {}", String::from_utf8_lossy(&body));
                }
                anyhow::Ok((started.elapsed().as_secs_f64() * 1e3, body.len()))
            }
        };
        // cold: a horizon never asked before makes a new report
        let mut cold_ms = Vec::new();
        let mut bytes = 0;
        for _ in 0..cold {
            unique += 1;
            let (ms, n) = get(format!("horizon_days={}", 1 + unique % 365)).await?;
            cold_ms.push(ms);
            bytes = n;
            bar.inc(1);
        }
        // warm: the default parameters, computed once first
        get(String::new()).await?;
        bar.inc(1);
        let mut warm_ms = Vec::new();
        for _ in 0..warm {
            warm_ms.push(get(String::new()).await?.0);
            bar.inc(1);
        }
        rows.push((name.clone(), cold_ms, warm_ms, bytes));
    }
    bar.finish_and_clear();
    let (rss, hwm) = server.memory();
    println!(
        "\n{:<16} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "endpoint", "bytes", "cold p50", "cold p99", "cold max", "warm p50", "warm p99", "warm max"
    );
    for (name, c, w, bytes) in &rows {
        println!(
            "{name:<16} {bytes:>6} {:>10.1} {:>10.1} {:>10.1} {:>10.2} {:>10.2} {:>10.2}",
            pct(c, 0.5),
            pct(c, 0.99),
            pct(c, 1.0),
            pct(w, 0.5),
            pct(w, 0.99),
            pct(w, 1.0)
        );
    }
    println!(
        "(ms; {cold} cold requests per endpoint with parameters never asked before, {warm} warm)"
    );
    println!(
        "server memory: {:.0} MiB resident now, {:.0} MiB peak ({:.0} MiB peak before the first report)",
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss_start as f64 / 1024.0
    );
    server.stop().await;
    db.close().await
}
