//! Which PostgreSQL to use: `DATABASE_URL`, or the private cluster in the data dir.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use certscope_store::{ClusterLifetime, PoolOptions, PrivateCluster};
use sqlx::PgPool;

use crate::GlobalArgs;

const EMBEDDED_DATABASE: &str = "certscope";

pub struct Database {
    pub pool: PgPool,
    /// The URL to connect with, password included: for the in-process indexer.
    pub url: String,
    /// The URL to print (password hidden for external servers).
    pub display_url: String,
    /// The URL to connect with, for people: includes the private cluster's password.
    pub connect_url: String,
    pub cluster: Option<PrivateCluster>,
}

impl Database {
    pub async fn close(mut self) -> anyhow::Result<()> {
        self.pool.close().await;
        if let Some(mut cluster) = self.cluster.take() {
            cluster.stop()?;
        }
        Ok(())
    }
}

pub fn data_dir(global: &GlobalArgs) -> PathBuf {
    global.data_dir.clone().unwrap_or_else(|| {
        dirs::data_dir()
            .unwrap_or_else(|| PathBuf::from(".local/share"))
            .join("certscope")
    })
}

fn pool_options(global: &GlobalArgs) -> PoolOptions {
    PoolOptions {
        max_connections: global.db_max_connections,
        min_connections: global.db_min_connections,
        acquire_timeout: Duration::from_millis(global.db_acquire_timeout_ms.max(1)),
        statement_timeout: (global.db_statement_timeout_ms > 0)
            .then(|| Duration::from_millis(global.db_statement_timeout_ms)),
        connect_timeout: Duration::from_secs(global.db_connect_timeout),
    }
}

/// The pool the API reads details from: the read replica when configured.
pub async fn read_pool(global: &GlobalArgs, db: &Database) -> anyhow::Result<PgPool> {
    match &global.database_read_url {
        Some(url) => Ok(certscope_store::connect(url, &pool_options(global)).await?),
        None => Ok(db.pool.clone()),
    }
}

pub async fn open(global: &GlobalArgs) -> anyhow::Result<Database> {
    let opts = pool_options(global);
    if let Some(url) = &global.database_url {
        let pool = certscope_store::connect(url, &opts).await?;
        let display_url = redact(url);
        return Ok(Database {
            pool,
            url: url.clone(),
            display_url: display_url.clone(),
            connect_url: display_url,
            cluster: None,
        });
    }
    let dir = data_dir(global).join("postgres");
    let cluster = PrivateCluster::start(&dir, ClusterLifetime::Detached)
        .await
        .with_context(|| {
            format!(
                "failed to start the private PostgreSQL cluster in {}",
                dir.display()
            )
        })?;
    let admin = certscope_store::connect(&cluster.url("postgres"), &opts).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(EMBEDDED_DATABASE)
            .fetch_one(&admin)
            .await?;
    if !exists {
        sqlx::query("CREATE DATABASE certscope")
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    let pool = certscope_store::connect(&cluster.url(EMBEDDED_DATABASE), &opts).await?;
    Ok(Database {
        pool,
        url: cluster.url(EMBEDDED_DATABASE),
        display_url: cluster.display_url(EMBEDDED_DATABASE),
        connect_url: cluster.url(EMBEDDED_DATABASE),
        cluster: Some(cluster),
    })
}

/// Hides the password of a connection URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The id of the organization `slug`, or an error naming it.
pub async fn organization_id(pool: &PgPool, slug: &str) -> anyhow::Result<i64> {
    certscope_store::organizations::id_by_slug(pool, slug)
        .await?
        .with_context(|| format!("no organization with slug {slug:?}"))
}
