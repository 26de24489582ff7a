//! Convergence checks: the (kind, id, version) of every live document against the
//! same triples computed from PostgreSQL. Used by tests and `certscope verify-index`.

use std::collections::BTreeSet;

use sqlx::PgExecutor;
use tantivy::collector::DocSetCollector;
use tantivy::query::AllQuery;
use tantivy::schema::Value;
use tantivy::{Searcher, TantivyDocument};

use crate::schema::Fields;

pub type Triple = (String, i64, i64);

/// Every live document's (kind, id, version).
pub fn index_triples(searcher: &Searcher, fields: &Fields) -> tantivy::Result<BTreeSet<Triple>> {
    let addresses = searcher.search(&AllQuery, &DocSetCollector)?;
    let mut out = BTreeSet::new();
    for address in addresses {
        let doc: TantivyDocument = searcher.doc(address)?;
        let kind = doc
            .get_first(fields.kind)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let id = doc
            .get_first(fields.id)
            .and_then(|v| v.as_u64())
            .unwrap_or_default() as i64;
        let version = doc
            .get_first(fields.version)
            .and_then(|v| v.as_u64())
            .unwrap_or_default() as i64;
        out.insert((kind, id, version));
    }
    Ok(out)
}

/// The same triples from PostgreSQL (one consistent statement).
pub async fn database_triples(db: impl PgExecutor<'_>) -> Result<BTreeSet<Triple>, sqlx::Error> {
    let rows: Vec<Triple> = sqlx::query_as(
        "SELECT 'control', id, version FROM controls UNION ALL \
         SELECT 'certification', id, version FROM certifications UNION ALL \
         SELECT 'requirement', id, version FROM requirements UNION ALL \
         SELECT 'evidence', id, version FROM evidence UNION ALL \
         SELECT 'risk', id, version FROM risks",
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// A readable summary of how two sets differ (at most `limit` of each side).
pub fn describe_difference(
    index: &BTreeSet<Triple>,
    db: &BTreeSet<Triple>,
    limit: usize,
) -> String {
    let missing: Vec<_> = db.difference(index).take(limit).collect();
    let extra: Vec<_> = index.difference(db).take(limit).collect();
    format!(
        "{} in PostgreSQL but not in the index (e.g. {missing:?}); {} in the index but not in PostgreSQL (e.g. {extra:?})",
        db.difference(index).count(),
        index.difference(db).count()
    )
}
