//! Rows of PostgreSQL rendered into index documents. Each kind has one row type
//! with one SQL query that joins everything its document embeds (control,
//! family, framework, certification, owner), used both for a rebuild (all rows,
//! streamed) and for incremental work (`WHERE id = ANY($1)`), so both paths
//! render identically. [`with_row_type!`] is the one place a [`Kind`] becomes
//! its row type.

mod builder;
mod rows;

use certscope_domain::Kind;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, FromRow, PgConnection};
use tantivy::TantivyDocument;

use crate::schema::Fields;
pub use rows::{CertificationRow, ControlRow, EvidenceRow, RequirementRow, RiskRow};

/// A rendered document and what the change feed needs to know about it.
#[derive(Debug)]
pub struct Rendered {
    pub kind: Kind,
    pub id: i64,
    pub doc: TantivyDocument,
    /// Signature of the fields children copy (0 for kinds without children).
    pub embed_sig: u64,
}

/// A row that renders into one document of [`DocumentRow::KIND`].
pub trait DocumentRow: for<'r> FromRow<'r, PgRow> + Send + Unpin {
    const KIND: Kind;
    /// Selects every row of the kind with what its document embeds.
    const SQL: &'static str;
    /// The row's id column in [`DocumentRow::SQL`], for `WHERE id = ANY($1)`.
    const ID: &'static str;

    fn render(&self, fields: &Fields) -> Rendered;
}

/// Expands `$body` with `$row` naming the row type of `$kind`.
macro_rules! with_row_type {
    ($kind:expr, $row:ident => $body:expr) => {
        match $kind {
            Kind::Control => {
                type $row = $crate::documents::ControlRow;
                $body
            }
            Kind::Certification => {
                type $row = $crate::documents::CertificationRow;
                $body
            }
            Kind::Requirement => {
                type $row = $crate::documents::RequirementRow;
                $body
            }
            Kind::Evidence => {
                type $row = $crate::documents::EvidenceRow;
                $body
            }
            Kind::Risk => {
                type $row = $crate::documents::RiskRow;
                $body
            }
        }
    };
}
pub(crate) use with_row_type;

/// SQL for all rows of a kind (unordered: sorting a million joined rows would
/// spill to disk for nothing, the index does not care about order).
pub fn all_rows_sql(kind: Kind) -> &'static str {
    with_row_type!(kind, R => R::SQL)
}

/// SQL for the rows of `kind` whose id is in `$1`.
pub fn rows_by_id_sql(kind: Kind) -> String {
    let (sql, id) = with_row_type!(kind, R => (R::SQL, R::ID));
    format!("{sql} WHERE {id} = ANY($1)")
}

/// Renders the current rows of `kind` with the given ids; ids without a row are
/// absent from the result (deleted).
pub async fn render_ids(
    conn: &mut PgConnection,
    f: &Fields,
    kind: Kind,
    ids: &[i64],
) -> Result<Vec<Rendered>, sqlx::Error> {
    with_row_type!(kind, R => render_rows::<R>(conn, f, ids).await)
}

async fn render_rows<R: DocumentRow>(
    conn: &mut PgConnection,
    f: &Fields,
    ids: &[i64],
) -> Result<Vec<Rendered>, sqlx::Error> {
    Ok(
        sqlx::query_as::<_, R>(AssertSqlSafe(rows_by_id_sql(R::KIND)))
            .bind(ids)
            .fetch_all(conn)
            .await?
            .iter()
            .map(|r| r.render(f))
            .collect(),
    )
}

/// Counts rows of every kind, for progress bars.
pub async fn count_rows(db: impl sqlx::PgExecutor<'_>) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM controls) + (SELECT count(*) FROM certifications) + \
         (SELECT count(*) FROM requirements) + (SELECT count(*) FROM evidence) + (SELECT count(*) FROM risks)",
    )
    .fetch_one(db)
    .await?;
    Ok(n as u64)
}

/// A stable 64-bit FNV-1a over the parts, separated so that ("ab","c") != ("a","bc").
pub fn signature(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.as_bytes().iter().chain(std::iter::once(&0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}
