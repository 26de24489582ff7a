//! A running service for API tests: a seeded PostgreSQL database, the indexer on
//! a temporary index, and the HTTP API on a loopback port, driven by a real HTTP
//! client.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use certscope_indexer::{IndexerConfig, IndexerHandle, Snapshot};
use certscope_query_api::{Api, ApiConfig, AppState, Keys, Role, auth};
use certscope_store::seed::{Preset, SeedConfig};
use certscope_store::testing::TestDb;
use chrono::NaiveDate;
use serde_json::Value;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

pub const SECRET: &[u8] = b"api-test-secret-0123456789";

pub struct Service {
    pub db: TestDb,
    pub pool: PgPool,
    pub base: String,
    pub keys: Keys,
    pub api: Arc<Api>,
    pub events: Arc<certscope_query_api::events::EventHub>,
    pub http: reqwest::Client,
    pub indexer: IndexerHandle,
    server: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.cancel();
        self.server.abort();
        self.indexer.cancel_token().cancel();
    }
}

pub fn as_of() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

impl Service {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Seeds the small preset (two organizations) and starts everything.
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
        let mut config = IndexerConfig::new(db.url.clone(), dir.path().join("index"));
        config.writer_memory = 64 << 20;
        config.poll_interval = Duration::from_millis(200);
        config.batch_window = Duration::from_millis(5);
        let stop = CancellationToken::new();
        let indexer = certscope_indexer::spawn(config, stop.clone());
        let mut api_config = ApiConfig::new(SECRET.to_vec());
        api_config.cors_origins = vec!["https://app.example.com".into()];
        api_config.max_position_wait = Duration::from_millis(1500);
        configure(&mut api_config);
        let state = AppState::new(
            pool.clone(),
            indexer.views.clone(),
            Some(indexer.metrics.clone()),
            api_config,
        );
        let (api, events) = (state.api.clone(), state.events.clone());
        state.start_events(pool.clone(), stop.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let shutdown = stop.clone();
        let server = tokio::spawn(async move {
            let _ = certscope_query_api::serve(listener, state, async move {
                shutdown.cancelled().await;
            })
            .await;
        });
        let service = Self {
            db,
            pool,
            base,
            keys: Keys::new(SECRET),
            api,
            events,
            http: reqwest::Client::new(),
            indexer,
            server,
            stop,
            _dir: dir,
        };
        service.caught_up().await;
        service
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
        self.indexer
            .wait_for(&target, Duration::from_secs(60))
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

    pub async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// The Prometheus text of `/metrics`.
    pub async fn metrics_text(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// GET expecting 200 and JSON.
    pub async fn json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path).await;
        let status = r.status();
        let body = r.text().await.expect("body");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).expect("json")
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
    certscope_query_api::encode_query_value(s)
}
