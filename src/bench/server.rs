//! The server under benchmark: `certscope serve` as a child process, so that
//! its memory is its own, with rate limits lifted and a known secret.
//!
//! `CERTSCOPE_BENCH_SERVER_CPUS` (a `taskset` CPU list such as `1`) runs the
//! server on those CPUs only; with the benchmark itself started under
//! `taskset -c 0`, the load generator no longer takes the server's cores, as a
//! load generator on another machine would not (see BENCHMARKS.md).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use certscope_query_api::{Keys, Role};
use indicatif::ProgressBar;

use crate::database::Database;
use crate::{GlobalArgs, IndexArgs};

const SECRET: &str = "bench-secret-0123456789abcdef";

pub struct BenchServer {
    child: tokio::process::Child,
    pub pid: u32,
    pub base: String,
    pub http: reqwest::Client,
}

impl BenchServer {
    /// Starts the server with `extra` arguments and waits until it is ready
    /// (a first run builds the index).
    pub async fn start(
        global: &GlobalArgs,
        index: &IndexArgs,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        drop(listener);
        let exe = std::env::current_exe()?;
        let mut cmd = match std::env::var("CERTSCOPE_BENCH_SERVER_CPUS") {
            Ok(cpus) if !cpus.trim().is_empty() => {
                let mut cmd = tokio::process::Command::new("taskset");
                cmd.args(["-c", cpus.trim()]).arg(exe);
                cmd
            }
            _ => tokio::process::Command::new(exe),
        };
        if let Some(dir) = &global.data_dir {
            cmd.arg("--data-dir").arg(dir);
        }
        cmd.args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            &addr.to_string(),
        ]);
        cmd.args(extra);
        if let Some(dir) = &index.index_dir {
            cmd.arg("--index-dir").arg(dir);
        }
        cmd.args(["--rate-per-token", "1000000", "--rate-per-ip", "1000000"])
            .env("CERTSCOPE_JWT_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null());
        let mut child = cmd.spawn().context("failed to start certscope serve")?;
        let pid = child.id().context("server pid")?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?;
        let base = format!("http://{addr}");
        let bar = ProgressBar::new_spinner()
            .with_message("waiting for the server's index (a first run builds it)");
        bar.enable_steady_tick(Duration::from_millis(200));
        let deadline = Instant::now() + Duration::from_secs(1800);
        loop {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("the server exited with {status}");
            }
            if Instant::now() > deadline {
                bail!("the server did not become ready in 30 minutes");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        bar.finish_and_clear();
        Ok(Self {
            child,
            pid,
            base,
            http,
        })
    }

    /// An officer token of the organization `slug`.
    pub async fn token(&self, db: &Database, slug: &str) -> anyhow::Result<String> {
        crate::api::issue_token(
            &db.pool,
            &Keys::new(SECRET.as_bytes()),
            slug,
            Role::Officer,
            None,
            &[],
            Duration::from_secs(3600),
        )
        .await
    }

    /// (resident, peak resident) KiB of the server process.
    pub fn memory(&self) -> (u64, u64) {
        memory_of(self.pid)
    }

    pub async fn stop(mut self) {
        self.child.kill().await.ok();
    }

    /// (anonymous, file-backed) resident KiB: heap against mapped index files.
    pub fn memory_split(&self) -> (u64, u64) {
        let kb = status_kib(self.pid);
        (kb("RssAnon:"), kb("RssFile:"))
    }
}

/// A reader of `/proc/<pid>/status` KiB figures by key.
fn status_kib(pid: u32) -> impl Fn(&str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    move |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    }
}

fn memory_of(pid: u32) -> (u64, u64) {
    let kb = status_kib(pid);
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// The organization with the most evidence: the benchmark preset's large one.
pub async fn largest_org(db: &Database) -> anyhow::Result<(i64, String, i64)> {
    let row: Option<(i64, String, i64)> = sqlx::query_as(
        "SELECT o.id, o.slug, (SELECT count(*) FROM evidence e WHERE e.organization_id = o.id) AS n \
         FROM organizations o ORDER BY n DESC LIMIT 1",
    )
    .fetch_optional(&db.pool)
    .await?;
    row.context("no organizations: seed first (certscope seed --preset bench)")
}
