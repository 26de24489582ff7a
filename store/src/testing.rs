//! The database harness shared by integration and end-to-end tests.
//!
//! Each test binary starts one private PostgreSQL cluster (or uses the server in
//! `CERTSCOPE_TEST_DATABASE_URL`, a URL whose database is used for administration),
//! and each test gets a fresh database cloned from a template that is migrated and,
//! for [`TestDb::with_catalogs`], holds the two shipped NIST catalogs, and for
//! [`TestDb::seeded`] also a seed. Cloning a template takes tens of milliseconds
//! where seeding takes seconds, so tests never share state and pay for a seed once
//! per binary. Templates are named after a hash of the migrations, catalogs and seed
//! configuration, so a changed schema gets a new template and an external server can
//! keep them between runs.
//!
//! Only URLs are kept in statics: pools belong to the runtime of the test using
//! them (every `#[tokio::test]` has its own).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{Mutex, OnceCell};

use crate::cluster::{ClusterLifetime, PrivateCluster};
use crate::seed::SeedConfig;

/// Where the test databases live.
#[derive(Debug)]
pub struct TestServer {
    /// URL of the administrative database (ends in `/postgres` or the env URL).
    admin_url: String,
    /// Base URL without a database name.
    base_url: String,
    cluster: Option<Mutex<PrivateCluster>>,
    _dir: Option<tempfile::TempDir>,
}

static SERVER: OnceCell<TestServer> = OnceCell::const_new();
static TEMPLATES: Mutex<Vec<String>> = Mutex::const_new(Vec::new());
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The server of this test binary, started on first use.
pub async fn server() -> &'static TestServer {
    SERVER
        .get_or_init(|| async {
            match std::env::var("CERTSCOPE_TEST_DATABASE_URL") {
                Ok(url) => {
                    let base_url = url
                        .rsplit_once('/')
                        .map(|(b, _)| b.to_owned())
                        .unwrap_or(url.clone());
                    TestServer {
                        admin_url: url,
                        base_url,
                        cluster: None,
                        _dir: None,
                    }
                }
                Err(_) => {
                    sweep_stale_clusters();
                    let dir = tempfile::Builder::new()
                        .prefix("certscope-test-pg-")
                        .tempdir()
                        .expect("create a temporary directory for the test cluster");
                    let cluster = PrivateCluster::start(dir.path(), ClusterLifetime::TiedToProcess)
                        .await
                        .unwrap_or_else(|e| panic!("start the private test cluster: {e}"));
                    let admin_url = cluster.url("postgres");
                    let base_url = admin_url.trim_end_matches("/postgres").to_owned();
                    TestServer {
                        admin_url,
                        base_url,
                        cluster: Some(Mutex::new(cluster)),
                        _dir: Some(dir),
                    }
                }
            }
        })
        .await
}

impl TestServer {
    /// Restarts the private cluster (fast shutdown, same port). Tests that need
    /// this cannot run against an external server.
    pub async fn restart(&self) -> Result<(), crate::ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.lock().await.restart().await,
            None => {
                panic!("restart needs the private test cluster, not CERTSCOPE_TEST_DATABASE_URL")
            }
        }
    }

    /// Crashes the private cluster (immediate shutdown), keeps it down for
    /// `down`, and starts it again on the same port.
    pub async fn crash_and_restart(&self, down: Duration) -> Result<(), crate::ClusterError> {
        match &self.cluster {
            Some(cluster) => cluster.lock().await.crash_and_restart(down).await,
            None => panic!(
                "crash_and_restart needs the private test cluster, not CERTSCOPE_TEST_DATABASE_URL"
            ),
        }
    }

    pub fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.base_url)
    }
}

/// Deletes temporary clusters left by earlier test processes (their postmaster
/// died with them; only the files remain).
#[allow(unsafe_code)] // one kill(pid, 0) probe, see below
fn sweep_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with("certscope-test-pg-") {
            continue;
        }
        let pid_file = entry.path().join("pgdata").join("postmaster.pid");
        let alive = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
            // SAFETY: signal 0 only probes for existence.
            .is_some_and(|pid| unsafe { libc::kill(pid, 0) } == 0);
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60);
        if !alive && old {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A fresh database for one test, dropped when the value is dropped.
#[derive(Debug)]
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin_url: String,
}

#[derive(Debug, Clone, Copy)]
enum Template<'a> {
    Migrated,
    Catalogs,
    /// The catalogs and a seed of this configuration.
    Seeded(&'a SeedConfig),
}

impl TestDb {
    /// An empty, migrated database.
    pub async fn migrated() -> Self {
        Self::from_template(Template::Migrated).await
    }

    /// A migrated database holding both shipped NIST catalogs.
    pub async fn with_catalogs() -> Self {
        Self::from_template(Template::Catalogs).await
    }

    /// A migrated database holding both shipped NIST catalogs and the data of
    /// `config`, exactly as [`crate::seed::seed`] writes it (the seed ran once,
    /// into the template this database is cloned from).
    pub async fn seeded(config: &SeedConfig) -> Self {
        Self::from_template(Template::Seeded(config)).await
    }

    /// A seeded database ([`TestDb::seeded`]) kept for the rest of the
    /// process, for a service that the tests of one binary share and that
    /// outlives them all; returns its URL. On the private cluster it goes with
    /// the process; on an external server a later test binary drops it once it
    /// is an hour old and nothing is connected to it.
    pub async fn seeded_for_process(config: &SeedConfig) -> String {
        let server = server().await;
        sweep_kept(server).await;
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let name = format!(
            "{KEPT_PREFIX}{unix}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let db = Self::create(server, Template::Seeded(config), name).await;
        let url = db.url.clone();
        // never dropped: the process ends first
        std::mem::forget(db);
        url
    }

    async fn from_template(kind: Template<'_>) -> Self {
        let server = server().await;
        let name = format!(
            "certscope_t{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        Self::create(server, kind, name).await
    }

    async fn create(server: &TestServer, kind: Template<'_>, name: String) -> Self {
        let template = ensure_template(server, kind).await;
        let mut admin = PgConnection::connect(&server.admin_url)
            .await
            .expect("connect to the test server");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {template}"
        )))
        .execute(&mut admin)
        .await
        .expect("create test database");
        let _ = admin.close().await;
        Self {
            url: server.url(&name),
            name,
            admin_url: server.admin_url.clone(),
        }
    }

    /// A pool on this database (for the calling test's runtime).
    pub async fn pool(&self) -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect(&self.url)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside any runtime we may use; a short-lived one does the work.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Names of databases kept for the whole life of a test process start so.
const KEPT_PREFIX: &str = "certscope_kept_";

/// Drops databases that earlier test processes kept on an external server
/// (their time is in their name): an hour old, with nobody connected. A
/// private cluster goes with its process, databases and all.
async fn sweep_kept(server: &TestServer) {
    if server.cluster.is_some() {
        return;
    }
    let Ok(mut admin) = PgConnection::connect(&server.admin_url).await else {
        return;
    };
    let idle: Vec<String> = sqlx::query_scalar(
        "SELECT datname FROM pg_database d WHERE starts_with(datname, $1) \
         AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)",
    )
    .bind(KEPT_PREFIX)
    .fetch_all(&mut admin)
    .await
    .unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for name in idle {
        let kept_at = name
            .strip_prefix(KEPT_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if kept_at.is_some_and(|at| now.saturating_sub(at) > 3600) {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&mut admin)
            .await;
        }
    }
    let _ = admin.close().await;
}

fn content_hash(kind: Template<'_>) -> String {
    use sha2::{Digest, Sha256};
    static MIGRATIONS: OnceLock<Vec<u8>> = OnceLock::new();
    let migrations = MIGRATIONS.get_or_init(|| {
        let mut all = Vec::new();
        for m in sqlx::migrate!("../migrations").iter() {
            all.extend_from_slice(&m.checksum);
        }
        all
    });
    let mut hasher = Sha256::new();
    hasher.update(migrations);
    if matches!(kind, Template::Catalogs | Template::Seeded(_)) {
        for c in crate::catalogs::ALL {
            hasher.update(c.json());
        }
    }
    if let Template::Seeded(config) = kind {
        // every field of the configuration decides what the seed writes
        hasher.update(format!("{config:?}").as_bytes());
    }
    hex::encode(hasher.finalize())[..12].to_owned()
}

async fn ensure_template(server: &TestServer, kind: Template<'_>) -> String {
    let name = match kind {
        Template::Migrated => format!("certscope_tpl_m_{}", content_hash(kind)),
        Template::Catalogs => format!("certscope_tpl_c_{}", content_hash(kind)),
        Template::Seeded(_) => format!("certscope_tpl_s_{}", content_hash(kind)),
    };
    // a seeded template starts as a clone of the catalogs one (built first:
    // the lock below is held while building)
    let base = match kind {
        Template::Seeded(_) => Some(Box::pin(ensure_template(server, Template::Catalogs)).await),
        _ => None,
    };
    let mut known = TEMPLATES.lock().await;
    if known.contains(&name) {
        return name;
    }
    let mut admin = PgConnection::connect(&server.admin_url)
        .await
        .expect("connect to the test server");
    // several test binaries may share an external server
    sqlx::query("SELECT pg_advisory_lock(hashtext($1))")
        .bind(&name)
        .execute(&mut admin)
        .await
        .expect("lock template creation");
    let exists: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .expect("look up template");
    if !exists {
        let building = format!("{name}_build");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {building} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .expect("drop half-built template");
        let create = match &base {
            Some(base) => format!("CREATE DATABASE {building} TEMPLATE {base}"),
            None => format!("CREATE DATABASE {building}"),
        };
        sqlx::query(sqlx::AssertSqlSafe(create))
            .execute(&mut admin)
            .await
            .expect("create template");
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(&server.url(&building))
            .await
            .expect("connect to template");
        match kind {
            Template::Migrated => crate::migrate(&pool).await.expect("migrate template"),
            Template::Catalogs => {
                crate::migrate(&pool).await.expect("migrate template");
                for c in crate::catalogs::ALL {
                    crate::oscal::import_catalog(&pool, &c.json(), Some(c.slug))
                        .await
                        .expect("import shipped catalog into template");
                }
            }
            Template::Seeded(config) => {
                crate::seed::seed(&pool, config)
                    .await
                    .expect("seed the template");
            }
        }
        pool.close().await;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {building} RENAME TO {name}"
        )))
        .execute(&mut admin)
        .await
        .expect("rename template");
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "ALTER DATABASE {name} IS_TEMPLATE true"
        )))
        .execute(&mut admin)
        .await
        .expect("mark template");
    }
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
        .bind(&name)
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    known.push(name.clone());
    name
}

/// Path of a file shipped in the repository, for tests.
pub fn repo_path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}
