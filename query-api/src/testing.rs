//! A running service for tests (feature `testing`, never in the release
//! binary): a seeded PostgreSQL database, the [`Application`] exactly as
//! `certscope serve` builds it on a temporary index and a loopback port, and a
//! real HTTP client with typed calls (`search`, `metric`, `board_pdf`, ...).

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
    pub db: TestDb,
    pub pool: PgPool,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub keys: Keys,
    /// The running service's state: its search service, event hub, index views.
    pub state: AppState,
    pub http: reqwest::Client,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestApp {
    /// The small preset (two organizations), default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Seeds the small preset, builds the service with `configure`d API
    /// settings, serves it, and waits until the index covers the seed.
    pub async fn start_with(configure: impl FnOnce(&mut ApiConfig)) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let db = TestDb::with_catalogs().await;
        let pool = db.pool().await;
        certscope_store::seed::seed(&pool, &SeedConfig::preset(Preset::Small, 11, as_of()))
            .await
            .expect("seed");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut indexer = IndexerConfig::new(db.url.clone(), dir.path().join("index"));
        indexer.writer_memory = 64 << 20;
        indexer.poll_interval = Duration::from_millis(200);
        indexer.batch_window = Duration::from_millis(5);
        let mut api = ApiConfig::new(SECRET.to_vec());
        api.cors_origins = vec!["https://app.example.com".into()];
        api.max_position_wait = Duration::from_millis(1500);
        configure(&mut api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let app = Application::build(Databases::single(pool.clone()), indexer, api, listener);
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let state = app.state().clone();
        let stop = app.stop_token();
        tokio::spawn(async move {
            if let Err(e) = app.run_until_stopped(std::future::pending()).await {
                tracing::error!(error = %e, "test service failed");
            }
        });
        let app = Self {
            db,
            pool,
            base,
            keys: Keys::new(SECRET),
            state,
            http: reqwest::Client::new(),
            stop,
            _dir: dir,
        };
        app.caught_up().await;
        app
    }

    /// Stops the service (as SIGTERM would).
    pub fn stop(&self) {
        self.stop.cancel();
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

    pub async fn org_id(&self, slug: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
            .bind(slug)
            .fetch_one(&self.pool)
            .await
            .expect("org")
    }

    /// The two seeded organizations' slugs.
    pub async fn orgs(&self) -> (String, String) {
        let slugs: Vec<String> = sqlx::query_scalar("SELECT slug FROM organizations ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .expect("orgs");
        (slugs[0].clone(), slugs[1].clone())
    }

    /// A token for the organization's first user with `role` (or its first user).
    pub async fn token(&self, slug: &str, role: Role, certs: Option<Vec<i64>>) -> String {
        let org = self.org_id(slug).await;
        let user: i64 = sqlx::query_scalar(
            "SELECT id FROM users WHERE organization_id = $1 ORDER BY (role = $2) DESC, id LIMIT 1",
        )
        .bind(org)
        .bind(role.as_str())
        .fetch_one(&self.pool)
        .await
        .expect("user");
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

    /// GET `path` with `params`, expecting 200 and JSON.
    pub async fn json_at(&self, token: &str, path: &str, params: &Params) -> Value {
        let full = format!("{path}{}", params.query_string());
        let r = self.get(token, &full).await;
        let status = r.status();
        let body = r.text().await.expect("body");
        assert_eq!(status, 200, "{full}: {body}");
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

    /// A detail route (`/v1/<kind>/{id}?include=...`), any status.
    pub async fn detail(
        &self,
        token: &str,
        kind: Kind,
        id: i64,
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

pub fn hits(v: &Value) -> &Vec<Value> {
    v["hits"].as_array().expect("hits")
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
