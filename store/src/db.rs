//! Connecting to PostgreSQL and applying the schema migrations.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

/// Pool settings, from configuration.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout: Duration,
    /// `statement_timeout` set on every connection; `None` leaves the server's.
    pub statement_timeout: Option<Duration>,
    /// How long to keep trying to reach the server before giving up.
    pub connect_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("invalid database url: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("cannot reach PostgreSQL at {host}:{port} within {seconds} s")]
    Unreachable {
        host: String,
        port: u16,
        seconds: u64,
        #[source]
        source: sqlx::Error,
    },
    #[error("failed to apply migrations")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

/// Opens a pool and checks that the server answers, failing within
/// `connect_timeout` with the host and port in the message.
pub async fn connect(url: &str, opts: &PoolOptions) -> Result<PgPool, DbError> {
    let mut connect: PgConnectOptions = url.parse().map_err(DbError::InvalidUrl)?;
    connect = connect.disable_statement_logging();
    if let Some(timeout) = opts.statement_timeout {
        connect = connect.options([("statement_timeout", format!("{}", timeout.as_millis()))]);
    }
    let host = connect.get_host().to_owned();
    let port = connect.get_port();
    let pool = PgPoolOptions::new()
        .max_connections(opts.max_connections)
        .min_connections(opts.min_connections)
        .acquire_timeout(opts.acquire_timeout)
        .connect_lazy_with(connect);
    let probe = tokio::time::timeout(opts.connect_timeout, pool.acquire()).await;
    match probe {
        Ok(Ok(_conn)) => Ok(pool),
        Ok(Err(source)) if is_connect_error(&source) => Err(DbError::Unreachable {
            host,
            port,
            seconds: opts.connect_timeout.as_secs(),
            source,
        }),
        Ok(Err(other)) => Err(DbError::Sql(other)),
        Err(_elapsed) => Err(DbError::Unreachable {
            host,
            port,
            seconds: opts.connect_timeout.as_secs(),
            source: sqlx::Error::PoolTimedOut,
        }),
    }
}

fn is_connect_error(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
    )
}

/// Applies every migration in `migrations/` that the database lacks.
pub async fn migrate(pool: &PgPool) -> Result<(), DbError> {
    sqlx::migrate!("../migrations").run(pool).await?;
    Ok(())
}
