//! Bringing a database to a usable state: schema, the shipped catalogs, and demo
//! data when it holds no organization yet.

use sqlx::PgPool;

use crate::catalogs;
use crate::oscal::{self, ImportSummary, OscalError};
use crate::seed::{self, SeedConfig, SeedError, SeedReport};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error(transparent)]
    Db(#[from] crate::DbError),
    #[error("failed to import shipped catalog {slug}")]
    Catalog {
        slug: &'static str,
        #[source]
        source: OscalError,
    },
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("database error")]
    Sql(#[from] sqlx::Error),
}

/// Imports (idempotently) every catalog shipped with Certscope.
pub async fn import_shipped_catalogs(pool: &PgPool) -> Result<Vec<ImportSummary>, BootstrapError> {
    let mut out = Vec::new();
    for c in catalogs::ALL {
        let summary = oscal::import_catalog(pool, &c.json(), Some(c.slug))
            .await
            .map_err(|source| BootstrapError::Catalog {
                slug: c.slug,
                source,
            })?;
        out.push(summary);
    }
    Ok(out)
}

/// Migrates, imports the catalogs, and seeds with `seed` when no organization
/// exists. Returns the seed report when it seeded.
pub async fn prepare_demo(
    pool: &PgPool,
    seed: &SeedConfig,
) -> Result<Option<SeedReport>, BootstrapError> {
    crate::migrate(pool).await?;
    import_shipped_catalogs(pool).await?;
    let empty: bool = sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM organizations)")
        .fetch_one(pool)
        .await?;
    if !empty {
        return Ok(None);
    }
    Ok(Some(seed::seed(pool, seed).await?))
}
