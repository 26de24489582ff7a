//! Looking organizations up by what people type: their slug.

use sqlx::PgExecutor;

/// The id of the organization with `slug`, if there is one.
pub async fn id_by_slug(db: impl PgExecutor<'_>, slug: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
        .bind(slug)
        .fetch_optional(db)
        .await
}
