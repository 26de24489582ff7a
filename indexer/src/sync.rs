//! Applying a page of changes to the index, with the fan-out that keeps copied
//! (denormalized) fields in step with their source.
//!
//! Dirty documents are found top-down: a changed control, certification or
//! requirement is rendered afresh and its `embed_sig` (a hash of the fields its
//! children copy) compared with the committed document's; only when it differs are
//! the children re-rendered. Writes then go bottom-up (evidence and risks, then
//! requirements, certifications, controls): a parent's new signature never becomes
//! durable before all its children are, so a crash between intermediate commits
//! replays the fan-out instead of skipping it.

use std::collections::{BTreeSet, HashMap};

use sqlx::PgConnection;

use crate::change_feed::Change;
use crate::documents::{Rendered, render_ids};
use crate::index_store::{IndexStore, StoreError};
use crate::schema::Kind;

/// Rows rendered per query.
const RENDER_CHUNK: usize = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("database error while rendering documents")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What applying a page did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub changes: u64,
    /// Documents written or deleted, per kind (index of `Kind::ALL`).
    pub docs: [u64; 5],
}

impl Applied {
    pub fn total_docs(&self) -> u64 {
        self.docs.iter().sum()
    }
}

fn kind_index(kind: Kind) -> usize {
    Kind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

#[derive(Default)]
struct Dirty {
    sets: HashMap<Kind, BTreeSet<i64>>,
}

impl Dirty {
    fn add(&mut self, kind: Kind, ids: impl IntoIterator<Item = i64>) {
        self.sets.entry(kind).or_default().extend(ids);
    }

    fn take(&mut self, kind: Kind) -> Vec<i64> {
        self.sets
            .remove(&kind)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default()
    }
}

async fn ids_where(
    conn: &mut PgConnection,
    sql: &'static str,
    param: &[i64],
) -> Result<Vec<i64>, sqlx::Error> {
    if param.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(sql).bind(param).fetch_all(conn).await
}

/// Applies `changes` to the index (without committing the position). `commit` is
/// called whenever enough documents are buffered, to bound memory; it must not
/// advance the position.
pub async fn apply(
    conn: &mut PgConnection,
    store: &mut IndexStore,
    changes: &[Change],
    mut commit: impl FnMut(&mut IndexStore) -> Result<(), StoreError>,
    commit_every: u64,
) -> Result<Applied, SyncError> {
    let mut applied = Applied {
        changes: changes.len() as u64,
        ..Applied::default()
    };
    let mut dirty = Dirty::default();
    let mut frameworks = BTreeSet::new();
    let mut users = BTreeSet::new();
    for c in changes {
        match c.entity.as_str() {
            "control" => dirty.add(Kind::Control, [c.row_id]),
            "certification" => dirty.add(Kind::Certification, [c.row_id]),
            "requirement" => dirty.add(Kind::Requirement, [c.row_id]),
            "evidence" => dirty.add(Kind::Evidence, [c.row_id]),
            "risk" | "risk_requirement" => dirty.add(Kind::Risk, [c.row_id]),
            "framework" => {
                frameworks.insert(c.row_id);
            }
            "user" => {
                users.insert(c.row_id);
            }
            // organizations and auditor assignments are not embedded in documents
            _ => {}
        }
    }
    let frameworks: Vec<i64> = frameworks.into_iter().collect();
    let users: Vec<i64> = users.into_iter().collect();
    dirty.add(
        Kind::Control,
        ids_where(
            conn,
            "SELECT id FROM controls WHERE framework_id = ANY($1)",
            &frameworks,
        )
        .await?,
    );
    dirty.add(
        Kind::Certification,
        ids_where(
            conn,
            "SELECT id FROM certifications WHERE framework_id = ANY($1)",
            &frameworks,
        )
        .await?,
    );
    dirty.add(
        Kind::Certification,
        ids_where(
            conn,
            "SELECT id FROM certifications WHERE owner_id = ANY($1)",
            &users,
        )
        .await?,
    );
    dirty.add(
        Kind::Requirement,
        ids_where(
            conn,
            "SELECT id FROM requirements WHERE owner_id = ANY($1)",
            &users,
        )
        .await?,
    );
    dirty.add(
        Kind::Evidence,
        ids_where(
            conn,
            "SELECT id FROM evidence WHERE submitted_by = ANY($1)",
            &users,
        )
        .await?,
    );
    dirty.add(
        Kind::Risk,
        ids_where(
            conn,
            "SELECT id FROM risks WHERE owner_id = ANY($1)",
            &users,
        )
        .await?,
    );

    // top-down: render parents, find whose copied fields changed
    let controls = dirty.take(Kind::Control);
    let rendered_controls = render_all(conn, store, Kind::Control, &controls).await?;
    let changed = changed_signatures(store, Kind::Control, &rendered_controls);
    dirty.add(
        Kind::Requirement,
        ids_where(
            conn,
            "SELECT id FROM requirements WHERE control_id = ANY($1)",
            &changed,
        )
        .await?,
    );

    let certifications = dirty.take(Kind::Certification);
    let rendered_certifications =
        render_all(conn, store, Kind::Certification, &certifications).await?;
    let changed = changed_signatures(store, Kind::Certification, &rendered_certifications);
    dirty.add(
        Kind::Requirement,
        ids_where(
            conn,
            "SELECT id FROM requirements WHERE certification_id = ANY($1)",
            &changed,
        )
        .await?,
    );

    let requirements = dirty.take(Kind::Requirement);
    let rendered_requirements = render_all(conn, store, Kind::Requirement, &requirements).await?;
    let changed = changed_signatures(store, Kind::Requirement, &rendered_requirements);
    dirty.add(
        Kind::Evidence,
        ids_where(
            conn,
            "SELECT id FROM evidence WHERE requirement_id = ANY($1)",
            &changed,
        )
        .await?,
    );
    dirty.add(
        Kind::Risk,
        ids_where(
            conn,
            "SELECT DISTINCT risk_id FROM risk_requirements WHERE requirement_id = ANY($1)",
            &changed,
        )
        .await?,
    );

    // bottom-up writes; leaves stream in chunks
    let mut buffered = 0u64;
    for kind in [Kind::Evidence, Kind::Risk] {
        let ids = dirty.take(kind);
        for chunk in ids.chunks(RENDER_CHUNK) {
            let rendered = render_ids(conn, &store.fields, kind, chunk).await?;
            store.replace(
                kind,
                chunk.iter().copied(),
                rendered.into_iter().map(|r| r.doc).collect(),
            )?;
            applied.docs[kind_index(kind)] += chunk.len() as u64;
            buffered += chunk.len() as u64;
            if buffered >= commit_every {
                commit(store)?;
                buffered = 0;
            }
        }
    }
    for (kind, ids, rendered) in [
        (Kind::Requirement, requirements, rendered_requirements),
        (Kind::Certification, certifications, rendered_certifications),
        (Kind::Control, controls, rendered_controls),
    ] {
        applied.docs[kind_index(kind)] += ids.len() as u64;
        store.replace(kind, ids, rendered.into_iter().map(|r| r.doc).collect())?;
    }
    Ok(applied)
}

async fn render_all(
    conn: &mut PgConnection,
    store: &IndexStore,
    kind: Kind,
    ids: &[i64],
) -> Result<Vec<Rendered>, sqlx::Error> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(RENDER_CHUNK) {
        out.extend(render_ids(conn, &store.fields, kind, chunk).await?);
    }
    Ok(out)
}

/// Ids of rendered parents whose copied fields differ from the committed document
/// (or that have no committed document yet).
fn changed_signatures(store: &IndexStore, kind: Kind, rendered: &[Rendered]) -> Vec<i64> {
    let ids: Vec<i64> = rendered.iter().map(|r| r.id).collect();
    let indexed = store.indexed_signatures(kind, &ids);
    rendered
        .iter()
        .filter(|r| indexed.get(&r.id) != Some(&r.embed_sig))
        .map(|r| r.id)
        .collect()
}
