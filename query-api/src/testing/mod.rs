//! A running service for tests (feature `testing`, never in the release
//! binary): a seeded PostgreSQL database, the [`Application`] exactly as
//! `certscope serve` builds it on a temporary index and a loopback port, and a
//! real HTTP client with typed calls (`search`, `metric`, `board_pdf`, ...).
//!
//! A test that writes, counts server-wide figures or needs its own settings
//! starts its own service ([`TestApp::start`]); tests that only read share one
//! per test binary ([`TestApp::shared`]), since each start seeds and indexes a
//! database.

pub mod contract;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use certscope_domain::Kind;
use certscope_indexer::{IndexerConfig, Snapshot};
use certscope_reports::section::Section;
use certscope_store::seed::{Preset, SeedConfig};
use certscope_store::testing::TestDb;
use chrono::NaiveDate;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::app::{Application, Databases};
use crate::{ApiConfig, AppState, Keys, Role, auth, paths};

pub const SECRET: &[u8] = b"api-test-secret-0123456789";

/// The day the seed treats as today.
pub fn as_of() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// The data every test service starts from: the small preset (two
/// organizations) as of today.
fn seed_config() -> SeedConfig {
    SeedConfig::preset(Preset::Small, 11, as_of())
}

/// A pool on the test database at `url`, for the calling test's runtime.
async fn pool(url: &str) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .expect("connect to the test database")
}

/// Query-string parameters, encoded by the client, never spliced by hand.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    /// Search text (`q`).
    pub fn q(text: &str) -> Self {
        Self::new().with("q", text)
    }

    /// Adds a parameter (repeat for several values).
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.0.push((name.to_owned(), value.to_string()));
        self
    }

    /// `?a=1&b=2`, or nothing.
    pub fn query_string(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let pairs: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    crate::encode_query_value(k),
                    crate::encode_query_value(v)
                )
            })
            .collect();
        format!("?{}", pairs.join("&"))
    }
}

/// The service under test and a client for it.
pub struct TestApp {
    pub pool: PgPool,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub keys: Keys,
    /// The running service's state: its search service, event hub, index views.
    pub state: AppState,
    pub http: reqwest::Client,
    /// What only a service of this test's own holds (none when shared).
    own: Option<Own>,
}

/// The database, the index directory and the stop signal of a service that
/// belongs to one test: dropping the test's [`TestApp`] stops the service and
/// drops the database.
struct Own {
    /// None for the shared service's database, which the process keeps.
    _db: Option<TestDb>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
    index_dir: PathBuf,
}

/// How a test's own service is set up, beyond its API settings.
#[derive(Default)]
struct Setup {
    /// A loopback listener the test bound (default: any free port).
    listener: Option<std::net::TcpListener>,
    /// A read pool of its own of this many connections (`start_with_read_pool`).
    read_pool: Option<u32>,
    /// Where the index lives (default: a temporary directory of the test's).
    index_dir: Option<PathBuf>,
}

impl Drop for Own {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The service the tests of one binary share: built once on a thread and a
/// runtime of its own, so that it outlives every test (and every test's
/// runtime); only what a test needs to reach it is kept here.
struct Shared {
    url: String,
    base: String,
    state: AppState,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

impl Shared {
    fn start() -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("shared-test-service".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime of the shared service");
                runtime.block_on(async move {
                    let url = TestDb::seeded_for_process(&seed_config()).await;
                    // every test of the binary calls from 127.0.0.1, many at
                    // once (schemathesis beside generated clients): limits per
                    // address or token would answer 429 to whichever test is
                    // unlucky on a fast machine. Tests with a server of their
                    // own check the limits
                    let unlimited = |c: &mut ApiConfig| {
                        c.rate_per_ip = 1e6;
                        c.burst_per_ip = 1e6;
                        c.rate_per_token = 1e6;
                        c.burst_per_token = 1e6;
                    };
                    let app = TestApp::serve(url.clone(), None, Setup::default(), unlimited).await;
                    let shared = Shared {
                        url,
                        base: app.base.clone(),
                        state: app.state.clone(),
                    };
                    if tx.send(shared).is_ok() {
                        // serve until the test binary exits
                        std::future::pending::<()>().await;
                    }
                });
            })
            .expect("spawn the shared service's thread");
        rx.recv()
            .expect("the shared service failed to start (see the panic above)")
    }
}

impl TestApp {
    /// The small preset (two organizations), default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The service shared by this test binary's tests that only read (the
    /// small preset, default settings but no rate limits), started by the
    /// first caller, with a client and a pool of the calling test's own. A test on it must leave
    /// nothing behind that another could see: no writes (except a fixture set
    /// up once before any test reads it), no server-wide figures.
    pub async fn shared() -> Self {
        let shared = tokio::task::spawn_blocking(|| SHARED.get_or_init(Shared::start))
            .await
            .expect("shared service");
        let pool = pool(&shared.url).await;
        Self {
            pool,
            base: shared.base.clone(),
            keys: Keys::new(SECRET),
            state: shared.state.clone(),
            http: reqwest::Client::new(),
            own: None,
        }
    }

    /// Seeds the small preset, builds the service with `configure`d API
    /// settings, serves it, and waits until the index covers the seed.
    pub async fn start_with(configure: impl FnOnce(&mut ApiConfig)) -> Self {
        Self::start_set_up_with(Setup::default(), configure).await
    }

    /// `start_with` on a listener the caller bound: for a peer that must know
    /// the address first, such as an identity provider's redirect URIs. The
    /// port stays the caller's from its bind on, so no concurrent test can
    /// take it in between.
    pub async fn start_on(
        listener: std::net::TcpListener,
        configure: impl FnOnce(&mut ApiConfig),
    ) -> Self {
        let setup = Setup {
            listener: Some(listener),
            ..Setup::default()
        };
        Self::start_set_up_with(setup, configure).await
    }

    /// The small preset served with `setup` and default API settings.
    async fn start_set_up(setup: Setup) -> Self {
        Self::start_set_up_with(setup, |_| {}).await
    }

    /// The small preset served with `setup` and `configure`d API settings.
    async fn start_set_up_with(setup: Setup, configure: impl FnOnce(&mut ApiConfig)) -> Self {
        let db = TestDb::seeded(&seed_config()).await;
        Self::serve(db.url.clone(), Some(db), setup, configure).await
    }

    /// `start` with the service reading through a pool of its own of `size`
    /// connections and a one-second acquire timeout (`state.pool`), which a
    /// test may exhaust without touching the indexer's.
    pub async fn start_with_read_pool(size: u32) -> Self {
        Self::start_set_up(Setup {
            read_pool: Some(size),
            ..Setup::default()
        })
        .await
    }

    /// `start` with the index in `dir` (which must not hold one yet), for a
    /// test that puts the index on a filesystem of its own; the indexer checks
    /// its files every 200 ms.
    pub async fn start_with_index_dir(dir: PathBuf) -> Self {
        Self::start_set_up(Setup {
            index_dir: Some(dir),
            ..Setup::default()
        })
        .await
    }

    /// Where this test's own service keeps its index.
    pub fn index_dir(&self) -> &Path {
        &self.own.as_ref().expect("a test's own service").index_dir
    }

    /// Serves the seeded database at `url` (owning `db` when it is this test's).
    async fn serve(
        url: String,
        db: Option<TestDb>,
        setup: Setup,
        configure: impl FnOnce(&mut ApiConfig),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let pool = pool(&url).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let index_dir = setup
            .index_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("index"));
        let mut indexer = IndexerConfig::new(url.clone(), index_dir.clone());
        if setup.index_dir.is_some() {
            indexer.check_interval = Duration::from_millis(200);
        }
        indexer.writer_memory = 64 << 20;
        indexer.poll_interval = Duration::from_millis(200);
        indexer.batch_window = Duration::from_millis(5);
        let mut api = ApiConfig::new(SECRET.to_vec());
        api.cors_origins = vec!["https://app.example.com".into()];
        api.max_position_wait = Duration::from_millis(1500);
        // tests share one loaded CI machine running debug builds: a burst of
        // their searches is never overload (the shedding test sets its own)
        api.search_limits.queue = 256;
        api.search_limits.late_after = api.search_limits.max_wait;
        configure(&mut api);
        let listener = match setup.listener {
            Some(listener) => {
                listener
                    .set_nonblocking(true)
                    .expect("a non-blocking listener");
                tokio::net::TcpListener::from_std(listener).expect("the test's listener")
            }
            None => tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .expect("bind"),
        };
        let databases = match setup.read_pool {
            None => Databases::single(pool.clone()),
            Some(size) => Databases {
                primary: pool.clone(),
                read: sqlx::postgres::PgPoolOptions::new()
                    .max_connections(size)
                    .acquire_timeout(Duration::from_secs(1))
                    .connect(&url)
                    .await
                    .expect("connect the read pool"),
            },
        };
        let app = Application::build(databases, indexer, api, listener);
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let state = app.state().clone();
        let stop = app.stop_token();
        tokio::spawn(async move {
            if let Err(e) = app.run_until_stopped(std::future::pending()).await {
                tracing::error!(error = %e, "test service failed");
            }
        });
        let app = Self {
            pool,
            base,
            keys: Keys::new(SECRET),
            state,
            http: reqwest::Client::new(),
            own: Some(Own {
                _db: db,
                stop,
                _dir: dir,
                index_dir,
            }),
        };
        app.caught_up().await;
        // every event appended so far (the rebuild's notice among them) is in
        // the hub, so none of them arrives live in the middle of a test
        app.events_fed().await;
        app
    }

    /// Stops the service (as SIGTERM would); the shared one is never stopped.
    pub fn stop(&self) {
        let own = self.own.as_ref().expect("only a test's own service stops");
        own.stop.cancel();
    }

    pub async fn snapshot(&self) -> Snapshot {
        let text: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
            .fetch_one(&self.pool)
            .await
            .expect("snapshot");
        Snapshot::parse(&text).expect("parse")
    }

    /// Waits until the index reflects everything committed before the call.
    pub async fn caught_up(&self) {
        let target = self.snapshot().await;
        certscope_indexer::wait_for_view(
            self.state.views.clone(),
            &target,
            Duration::from_secs(60),
        )
        .await
        .unwrap_or_else(|| panic!("index did not reach {target} within 60 s"));
    }

    /// Waits until the index reflects everything committed, then checks that
    /// it equals PostgreSQL document for document (kind, id, version).
    pub async fn assert_index_equals_database(&self) {
        self.caught_up().await;
        let view = self.state.views.borrow().clone().expect("an open index");
        let searcher = view.reader.searcher();
        let in_index = certscope_indexer::verify::index_triples(&searcher, &view.fields)
            .expect("read the index");
        let in_db = certscope_indexer::verify::database_triples(&self.pool)
            .await
            .expect("read the database");
        assert!(
            in_index == in_db,
            "index differs from PostgreSQL: {}",
            certscope_indexer::verify::describe_difference(&in_index, &in_db, 5)
        );
    }

    /// Waits until the event hub holds every event appended before the call.
    pub async fn events_fed(&self) {
        let last: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("last event");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.state.events.last_id() < last {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the event hub did not reach event {last} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn org_id(&self, slug: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
            .bind(slug)
            .fetch_one(&self.pool)
            .await
            .expect("org")
    }

    /// The organization's certification ids, in id order.
    pub async fn certification_ids(&self, org: i64) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM certifications WHERE organization_id = $1 ORDER BY id")
            .bind(org)
            .fetch_all(&self.pool)
            .await
            .expect("certifications")
    }

    /// Sets a requirement's status in PostgreSQL, as an officer's edit would:
    /// the indexer and the event feed pick it up from the change log.
    pub async fn set_requirement_status(&self, requirement: i64, status: &str) {
        sqlx::query("UPDATE requirements SET status = $2 WHERE id = $1")
            .bind(requirement)
            .bind(status)
            .execute(&self.pool)
            .await
            .expect("update the requirement");
    }

    /// The two seeded organizations' slugs.
    pub async fn orgs(&self) -> (String, String) {
        let slugs: Vec<String> = sqlx::query_scalar("SELECT slug FROM organizations ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .expect("orgs");
        (slugs[0].clone(), slugs[1].clone())
    }

    /// The organization's id and its first user with `role` (or its first user).
    async fn first_user(&self, slug: &str, role: Role) -> (i64, i64) {
        let org = self.org_id(slug).await;
        let user: i64 = sqlx::query_scalar(
            "SELECT id FROM users WHERE organization_id = $1 ORDER BY (role = $2) DESC, id LIMIT 1",
        )
        .bind(org)
        .bind(role.as_str())
        .fetch_one(&self.pool)
        .await
        .expect("user");
        (org, user)
    }

    /// A token for the organization's first user with `role` (or its first user).
    pub async fn token(&self, slug: &str, role: Role, certs: Option<Vec<i64>>) -> String {
        let (org, user) = self.first_user(slug, role).await;
        self.keys
            .issue(&auth::claims(
                user,
                org,
                role,
                certs,
                Duration::from_secs(3600),
            ))
            .expect("issue")
    }

    /// A single-use sign-in link (a full URL) for the organization's first
    /// user with `role`; auditors get `certs`.
    pub async fn signin_link(&self, slug: &str, role: Role, certs: Option<Vec<i64>>) -> String {
        let (org, user) = self.first_user(slug, role).await;
        let scope = crate::Scope {
            user_id: user,
            org_id: org,
            role,
            certifications: certs.map(|c| c.into_iter().collect()),
        };
        let token = crate::web::session::create_link(&self.pool, &scope)
            .await
            .expect("sign-in link");
        format!("{}/signin/{token}", self.base)
    }

    pub async fn officer(&self, slug: &str) -> String {
        self.token(slug, Role::Officer, None).await
    }

    /// GET `path` (with its query string) as `token`.
    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// GET `path` with `params` as `token`, any status.
    pub async fn get_at(&self, token: &str, path: &str, params: &Params) -> reqwest::Response {
        self.get(token, &format!("{path}{}", params.query_string()))
            .await
    }

    /// GET `path` with `params`, expecting 200 and JSON that conforms to the
    /// API document.
    pub async fn json_at(&self, token: &str, path: &str, params: &Params) -> Value {
        let full = format!("{path}{}", params.query_string());
        let r = self.get_at(token, path, params).await;
        let status = r.status();
        let content_type = content_type(&r);
        let body = r.text().await.expect("body");
        assert_eq!(status, 200, "{full}: {body}");
        contract::contract().assert("get", path, status.as_u16(), &content_type, body.as_bytes());
        serde_json::from_str(&body).expect("json")
    }

    /// GET expecting 200 and JSON (a path with its query string).
    pub async fn json(&self, token: &str, path: &str) -> Value {
        self.json_at(token, path, &Params::new()).await
    }

    /// `GET /v1/search` expecting 200.
    pub async fn search(&self, token: &str, params: &Params) -> Value {
        self.json_at(token, paths::SEARCH, params).await
    }

    /// `GET /v1/search`, any status.
    pub async fn search_response(&self, token: &str, params: &Params) -> reqwest::Response {
        self.get(
            token,
            &format!("{}{}", paths::SEARCH, params.query_string()),
        )
        .await
    }

    /// `GET /v1/suggest` expecting 200: the suggestions.
    pub async fn suggest(&self, token: &str, text: &str, limit: usize) -> Vec<Value> {
        let v = self
            .json_at(token, paths::SUGGEST, &Params::q(text).with("limit", limit))
            .await;
        v["suggestions"].as_array().cloned().unwrap_or_default()
    }

    /// A listing (`/v1/certifications`, `/v1/requirements`) expecting 200.
    pub async fn listing(&self, token: &str, kind: Kind, params: &Params) -> Value {
        let path = match kind {
            Kind::Certification => paths::CERTIFICATIONS,
            Kind::Requirement => paths::REQUIREMENTS,
            other => panic!("no listing of {other}"),
        };
        self.json_at(token, path, params).await
    }

    /// A detail route (`/v1/<kind>/{id}?include=...`), any status; `id` is
    /// usually a row's id, anything else tests the refusal.
    pub async fn detail(
        &self,
        token: &str,
        kind: Kind,
        id: impl std::fmt::Display,
        include: &[&str],
    ) -> reqwest::Response {
        let template = match kind {
            Kind::Certification => paths::CERTIFICATION,
            Kind::Requirement => paths::REQUIREMENT,
            Kind::Evidence => paths::EVIDENCE,
            Kind::Risk => paths::RISK,
            Kind::Control => panic!("controls have no detail route"),
        };
        let mut path = template.replace("{id}", &id.to_string());
        if !include.is_empty() {
            path.push_str(&format!("?include={}", include.join(",")));
        }
        self.get(token, &path).await
    }

    /// A detail route expecting 200: its JSON.
    pub async fn detail_json(&self, token: &str, kind: Kind, id: i64, include: &[&str]) -> Value {
        let r = self.detail(token, kind, id, include).await;
        let status = r.status();
        let path = r.url().path().to_owned();
        let content_type = content_type(&r);
        let body = r.text().await.expect("body");
        assert_eq!(status, 200, "{kind} {id}: {body}");
        contract::contract().assert(
            "get",
            &path,
            status.as_u16(),
            &content_type,
            body.as_bytes(),
        );
        serde_json::from_str(&body).expect("json")
    }

    /// `GET /v1/metrics/<section>` expecting 200 and JSON.
    pub async fn metric(&self, token: &str, section: Section, params: &Params) -> Value {
        self.json_at(token, &paths::metric(section), params).await
    }

    /// `GET /v1/metrics/<section>`, any status.
    pub async fn metric_response(
        &self,
        token: &str,
        section: Section,
        params: &Params,
    ) -> reqwest::Response {
        self.get(
            token,
            &format!("{}{}", paths::metric(section), params.query_string()),
        )
        .await
    }

    /// `GET /v1/reports/board.pdf`, any status.
    pub async fn board_pdf_response(&self, token: &str, params: &Params) -> reqwest::Response {
        self.get(
            token,
            &format!("{}{}", paths::BOARD_PDF, params.query_string()),
        )
        .await
    }

    /// `GET /v1/reports/board.pdf` expecting 200: the PDF's bytes.
    pub async fn board_pdf(&self, token: &str, params: &Params) -> Vec<u8> {
        let r = self.board_pdf_response(token, params).await;
        assert_eq!(r.status(), 200, "board.pdf{}", params.query_string());
        r.bytes().await.expect("pdf").to_vec()
    }

    /// `path` on this service, with `params`.
    pub fn url(&self, path: &str, params: &Params) -> String {
        format!("{}{path}{}", self.base, params.query_string())
    }

    /// A request to `path` with `params` and no credentials yet, for tests
    /// that set headers themselves (encodings, origins, preflights).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &Params,
    ) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(path, params))
    }

    /// GET `path` without credentials, any status: the operational routes
    /// (`paths::HEALTHZ`, `READYZ`, `OPENAPI`, `DOCS`) and refusals.
    pub async fn get_anonymous(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, &Params::new())
            .send()
            .await
            .expect("request")
    }

    /// The WebSocket URL of the live events (`ws://127.0.0.1:<port>/v1/events`).
    pub fn events_ws_url(&self) -> String {
        format!(
            "{}{}",
            self.base.replacen("http", "ws", 1),
            paths::EVENTS_WS
        )
    }

    /// `GET /v1/events/stream` (Server-Sent Events), any status, the body
    /// left streaming: as `token` (none: a ticket in `params` or nothing),
    /// resuming after `last_event_id` (sent as given, valid or not).
    pub async fn events_stream(
        &self,
        token: Option<&str>,
        params: &Params,
        last_event_id: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.request(reqwest::Method::GET, paths::EVENTS_SSE, params);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        request.send().await.expect("events stream request")
    }

    /// `POST /v1/events/tickets` expecting 200: a single-use ticket for a
    /// browser's event stream.
    pub async fn events_ticket(&self, token: &str) -> String {
        let r = self
            .request(reqwest::Method::POST, paths::EVENT_TICKETS, &Params::new())
            .bearer_auth(token)
            .send()
            .await
            .expect("ticket request");
        let status = r.status();
        let body = r.text().await.expect("ticket body");
        assert_eq!(status, 200, "{}: {body}", paths::EVENT_TICKETS);
        let v: Value = serde_json::from_str(&body).expect("ticket json");
        v["ticket"].as_str().expect("ticket").to_owned()
    }

    /// The Prometheus text of `/metrics`.
    pub async fn prometheus(&self) -> String {
        self.http
            .get(format!("{}{}", self.base, paths::PROMETHEUS))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }
}

/// The media type an answer declares.
pub fn content_type(r: &reqwest::Response) -> String {
    r.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

pub fn hits(v: &Value) -> &Vec<Value> {
    v["hits"].as_array().expect("hits")
}

/// The control ids of the first `n` hits (empty for a hit without one).
pub fn controls_of(v: &Value, n: usize) -> Vec<String> {
    hits(v)
        .iter()
        .take(n)
        .map(|h| h["control"].as_str().unwrap_or("").to_owned())
        .collect()
}

pub fn total(v: &Value) -> u64 {
    v["total"].as_u64().expect("total")
}

/// `(value, count)` pairs of a facet.
pub fn facet(v: &Value, name: &str) -> Vec<(String, u64)> {
    v["facets"][name]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    (
                        f["value"].as_str().unwrap_or_default().to_owned(),
                        f["count"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn enc(s: &str) -> String {
    crate::encode_query_value(s)
}

/// Installs the npm packages a test drives (`query-api/tests/<dir>`, pinned by
/// its lock file) with `npm ci` the first time this test binary needs them, so
/// that `cargo test` needs nothing but Node.js; `packages` are the ones whose
/// presence proves an earlier install. Fails the test saying how to install
/// Node.js when it is missing. Returns the `node_modules` directory.
pub fn npm_ci(dir: &str, packages: &[&str]) -> std::path::PathBuf {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static DONE: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(dir);
    let modules = root.join("node_modules");
    let present = || {
        packages
            .iter()
            .all(|p| modules.join(p).join("package.json").exists())
    };
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if done.get_or_insert_with(HashSet::new).contains(dir) {
        return modules;
    }
    if !present() {
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&root)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "`npm ci --prefix query-api/tests/{dir}` needs Node.js and npm ({e}): \
                     install them with `apt-get install -y nodejs npm`"
                )
            });
        assert!(
            out.status.success(),
            "`npm ci --prefix query-api/tests/{dir}` failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            present(),
            "npm ci left {packages:?} missing from {}",
            modules.display()
        );
    }
    done.as_mut().map(|d| d.insert(dir.to_owned()));
    modules
}
