//! The service's system clock stepped forward and back under a running
//! `certscope serve` (libfaketime, preloaded into the server process only;
//! PostgreSQL keeps the real time, like a database on another host).
//!
//! What must hold: tokens are judged by the service's clock (a step past their
//! expiry refuses them with the reason, a step back accepts them again); what
//! runs on durations runs on the monotonic clock, so a step neither ends nor
//! prolongs an open event stream, a cursor's pinned searcher or the replay
//! buffer of live events (before: a step forward past the 24-hour retention
//! emptied the replay buffer and resuming clients got `resync`); every
//! change still reaches the index and the event streams.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use certscope_indexer::{index_store, verify};
use certscope_query_api::auth::claims;
use certscope_query_api::{Keys, Role};
use certscope_store::seed::{Preset, SeedConfig};
use certscope_store::testing::TestDb;
use serde_json::Value;
use sqlx::PgPool;

const SECRET: &str = "clock-test-secret-of-enough-length-0123456789";

/// libfaketime's library, where Debian puts it.
fn faketime_library() -> PathBuf {
    let found = ["x86_64-linux-gnu", "aarch64-linux-gnu"]
        .iter()
        .map(|arch| PathBuf::from(format!("/usr/lib/{arch}/faketime/libfaketime.so.1")))
        .find(|p| p.exists());
    found.expect("libfaketime is not installed: `apt-get install libfaketime` (.ci/run does)")
}

/// The server process, killed when dropped.
struct Server {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The offset libfaketime applies to the server's wall clock, read at every
/// call (`FAKETIME_NO_CACHE`); the monotonic clock is left alone, as a real
/// step (NTP, an operator's `date -s`) leaves it.
struct Clock(PathBuf);

impl Clock {
    /// Replaces the offset at once (written aside, then renamed), so the
    /// server never reads a half-written file.
    fn set(&self, offset: &str) {
        let next = self.0.with_extension("next");
        std::fs::write(&next, offset).expect("write the clock offset");
        std::fs::rename(&next, &self.0).expect("replace the clock offset");
    }
}

async fn start(url: &str, index_dir: &Path, clock: &Clock) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_certscope"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", url, "--index-dir"])
        .arg(index_dir)
        .env("CERTSCOPE_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .env("LD_PRELOAD", faketime_library())
        .env("FAKETIME_TIMESTAMP_FILE", &clock.0)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start certscope serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::new(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = server.http.get(server.url("/readyz")).send().await
            && r.status() == 200
        {
            return server;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server was not ready in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// An event stream of the organization's room, resuming after `after`.
    async fn stream(&self, token: &str, after: i64) -> Stream {
        let r = self
            .http
            .get(self.url("/v1/events/stream?rooms=org"))
            .bearer_auth(token)
            .header("last-event-id", after.to_string())
            .send()
            .await
            .expect("stream");
        assert_eq!(r.status(), 200);
        Stream {
            response: r,
            text: String::new(),
        }
    }
}

/// A Server-Sent Events stream and what it has said so far.
struct Stream {
    response: reqwest::Response,
    text: String,
}

impl Stream {
    /// (event name, data) of every complete message so far.
    fn messages(&self) -> Vec<(String, Value)> {
        let complete = self.text.rfind("\n\n").map_or("", |end| &self.text[..end]);
        complete
            .split("\n\n")
            .filter(|b| b.contains("data:"))
            .map(|block| {
                let name = block
                    .lines()
                    .find_map(|l| l.strip_prefix("event:"))
                    .map_or("message", str::trim)
                    .to_owned();
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                (name, serde_json::from_str(&data).unwrap_or(Value::Null))
            })
            .collect()
    }

    /// Ids of the requirement status events seen so far.
    fn status_events(&self) -> Vec<i64> {
        self.messages()
            .iter()
            .filter(|(name, _)| name == "requirement.status_changed")
            .filter_map(|(_, v)| v["id"].as_i64())
            .collect()
    }

    /// Reads until `done` holds (15 s at most).
    async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !done(self) {
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| {
                    panic!("{what}: not within 15 s; the stream said {}", self.text)
                })
                .expect("the stream is readable")
                .unwrap_or_else(|| panic!("{what}: the stream ended; it said {}", self.text));
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Flips a requirement between implemented and in progress.
async fn change(pool: &PgPool, requirement: i64) {
    sqlx::query(
        "UPDATE requirements SET status = CASE WHEN status = 'implemented' \
         THEN 'in_progress' ELSE 'implemented' END WHERE id = $1",
    )
    .bind(requirement)
    .execute(pool)
    .await
    .expect("change a requirement");
}

/// One more change: the stream `open` hears it as its `n`th status event,
/// and a stream resuming after `since` replays all `n`, with no `resync`.
async fn change_heard_and_replayed(
    server: &Server,
    pool: &PgPool,
    requirement: i64,
    open: &mut Stream,
    token: &str,
    since: i64,
    n: usize,
) {
    change(pool, requirement).await;
    open.until(&format!("change {n} on the open stream"), |s| {
        s.status_events().len() == n
    })
    .await;
    let mut resumed = server.stream(token, since).await;
    resumed
        .until(&format!("change {n} replayed"), |s| {
            s.status_events().len() == n
        })
        .await;
    assert_eq!(resumed.status_events(), open.status_events());
    assert!(
        !resumed.messages().iter().any(|(name, _)| name == "resync"),
        "the replay buffer was kept: {}",
        resumed.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_of_the_service_clock_only_moves_what_the_wall_clock_decides() {
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let db = TestDb::seeded(&SeedConfig::preset(Preset::Small, 5, as_of)).await;
    let pool = db.pool().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock(dir.path().join("clock"));
    clock.set("+0");
    let server = start(&db.url, &dir.path().join("index"), &clock).await;

    let (org, user, requirement): (i64, i64, i64) = sqlx::query_as(
        "SELECT r.organization_id, u.id, r.id FROM requirements r \
         JOIN users u ON u.organization_id = r.organization_id AND u.role = 'officer' \
         ORDER BY r.id LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let keys = Keys::new(SECRET.as_bytes());
    let token = |ttl: Duration| {
        keys.issue(&claims(user, org, Role::Officer, None, ttl))
            .unwrap()
    };
    let hour = token(Duration::from_secs(3600));
    let week = token(Duration::from_secs(7 * 24 * 3600));

    // before any step: a first page with a cursor, an open stream, an event
    let (status, first) = server.get(&hour, "/v1/search?q=access&limit=2").await;
    assert_eq!(status, 200, "{first}");
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let since: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mut open = server.stream(&week, since).await;
    change(&pool, requirement).await;
    open.until("the first change", |s| s.status_events().len() == 1)
        .await;

    // two days ahead: past the one-hour token's expiry and the replay
    // buffer's 24-hour retention
    clock.set("+2d");
    let (status, body) = server.get(&hour, "/v1/search?q=access").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.to_string().contains("expired"),
        "the refusal says why: {body}"
    );
    let (status, body) = server.get(&week, "/v1/search?q=access").await;
    assert_eq!(status, 200, "a token valid by the service's clock: {body}");
    // the cursor's searcher is pinned for ten minutes of monotonic time
    let (status, page) = server
        .get(
            &week,
            &format!("/v1/search?q=access&limit=2&cursor={cursor}"),
        )
        .await;
    assert_eq!(status, 200, "the cursor survives the step: {page}");
    assert_ne!(page["hits"], first["hits"]);
    // the stream opened before the step stays open and hears the next change;
    // the event that change publishes must not evict the first from replay
    change_heard_and_replayed(&server, &pool, requirement, &mut open, &week, since, 2).await;

    // two days back: the hour token is valid again, a token issued "in the
    // future" of the service's clock is accepted, events still flow
    clock.set("-2d");
    let (status, body) = server.get(&hour, "/v1/search?q=access").await;
    assert_eq!(status, 200, "{body}");
    let fresh = token(Duration::from_secs(600));
    let (status, body) = server.get(&fresh, "/v1/search?q=access").await;
    assert_eq!(status, 200, "{body}");
    change_heard_and_replayed(&server, &pool, requirement, &mut open, &fresh, since, 3).await;

    // and the index followed every change: it holds PostgreSQL's documents
    clock.set("+0");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (index, fields, _) = index_store::open_read_only(&dir.path().join("index")).unwrap();
        let in_index = verify::index_triples(&index.reader().unwrap().searcher(), &fields).unwrap();
        let in_db = verify::database_triples(&pool).await.unwrap();
        if in_index == in_db {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            verify::describe_difference(&in_index, &in_db, 5)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
