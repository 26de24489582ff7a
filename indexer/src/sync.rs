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

use certscope_domain::{Entity, Kind};
use sqlx::PgConnection;
use tantivy::TantivyDocument;

use crate::change_feed::Change;
use crate::documents::{Rendered, render_ids};
use crate::error::{During, IndexerError, Operation};
use crate::index_store::{IndexStore, StoreError};

/// Rows rendered per query.
const RENDER_CHUNK: usize = 2_000;

/// What applying a page did.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub changes: u64,
    /// Documents written or deleted, per kind (by [`Kind::index`]).
    pub docs: [u64; Kind::COUNT],
    /// Organizations whose documents were written (0: the shared catalogue).
    pub orgs: BTreeSet<u64>,
    /// A document was deleted (its organization is not known here), or one
    /// carried no organization: every organization counts as touched.
    pub every_org: bool,
}

impl Applied {
    pub fn total_docs(&self) -> u64 {
        self.docs.iter().sum()
    }

    /// Notes whose documents a write of `ids` as `docs` touches: an id
    /// without a document is a deletion.
    fn touch(&mut self, org_field: tantivy::schema::Field, ids: usize, docs: &[TantivyDocument]) {
        use tantivy::schema::Value as _;
        if docs.len() < ids {
            self.every_org = true;
        }
        for doc in docs {
            match doc.get_first(org_field).and_then(|v| v.as_u64()) {
                Some(org) => {
                    self.orgs.insert(org);
                }
                None => self.every_org = true,
            }
        }
    }

    /// Adds what another page did.
    pub fn absorb(&mut self, other: Applied) {
        self.changes += other.changes;
        for (mine, theirs) in self.docs.iter_mut().zip(other.docs) {
            *mine += theirs;
        }
        self.orgs.extend(other.orgs);
        self.every_org |= other.every_org;
    }
}

/// Documents to re-render, by kind.
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

/// Rows whose documents embed something of another row, found by SQL taking
/// the other rows' ids as `$1`.
struct Dependents {
    kind: Kind,
    sql: &'static str,
}

/// Documents that copy a framework's fields.
const OF_FRAMEWORKS: [Dependents; 2] = [
    Dependents {
        kind: Kind::Control,
        sql: "SELECT id FROM controls WHERE framework_id = ANY($1)",
    },
    Dependents {
        kind: Kind::Certification,
        sql: "SELECT id FROM certifications WHERE framework_id = ANY($1)",
    },
];

/// Documents that show a user's name (owner, submitter).
const OF_USERS: [Dependents; 4] = [
    Dependents {
        kind: Kind::Certification,
        sql: "SELECT id FROM certifications WHERE owner_id = ANY($1)",
    },
    Dependents {
        kind: Kind::Requirement,
        sql: "SELECT id FROM requirements WHERE owner_id = ANY($1)",
    },
    Dependents {
        kind: Kind::Evidence,
        sql: "SELECT id FROM evidence WHERE submitted_by = ANY($1)",
    },
    Dependents {
        kind: Kind::Risk,
        sql: "SELECT id FROM risks WHERE owner_id = ANY($1)",
    },
];

const OF_CONTROLS: [Dependents; 1] = [Dependents {
    kind: Kind::Requirement,
    sql: "SELECT id FROM requirements WHERE control_id = ANY($1)",
}];

const OF_CERTIFICATIONS: [Dependents; 1] = [Dependents {
    kind: Kind::Requirement,
    sql: "SELECT id FROM requirements WHERE certification_id = ANY($1)",
}];

const OF_REQUIREMENTS: [Dependents; 2] = [
    Dependents {
        kind: Kind::Evidence,
        sql: "SELECT id FROM evidence WHERE requirement_id = ANY($1)",
    },
    Dependents {
        kind: Kind::Risk,
        sql: "SELECT DISTINCT risk_id FROM risk_requirements WHERE requirement_id = ANY($1)",
    },
];

impl Dirty {
    /// Marks the dependents of the rows `ids`.
    async fn add_dependents(
        &mut self,
        conn: &mut PgConnection,
        of: &[Dependents],
        ids: &[i64],
    ) -> Result<(), IndexerError> {
        if ids.is_empty() {
            return Ok(());
        }
        for d in of {
            let found: Vec<i64> = sqlx::query_scalar(d.sql)
                .bind(ids)
                .fetch_all(&mut *conn)
                .await
                .during(Operation::RenderingDocuments)?;
            self.add(d.kind, found);
        }
        Ok(())
    }
}

/// The documents a page of changes touches directly, and the frameworks and
/// users whose copied fields (names) some documents show.
fn direct(changes: &[Change]) -> (Dirty, Vec<i64>, Vec<i64>) {
    let mut dirty = Dirty::default();
    let mut frameworks = BTreeSet::new();
    let mut users = BTreeSet::new();
    for c in changes {
        match c.entity {
            Entity::Framework => {
                frameworks.insert(c.row_id);
            }
            Entity::User => {
                users.insert(c.row_id);
            }
            // a risk_requirement change is keyed by its risk
            Entity::RiskRequirement => dirty.add(Kind::Risk, [c.row_id]),
            // organizations and auditor assignments are not embedded in documents
            Entity::Organization | Entity::AuditorAssignment => {}
            Entity::Control
            | Entity::Certification
            | Entity::Requirement
            | Entity::Evidence
            | Entity::Risk => {
                if let Some(kind) = c.entity.document() {
                    dirty.add(kind, [c.row_id]);
                }
            }
        }
    }
    (
        dirty,
        frameworks.into_iter().collect(),
        users.into_iter().collect(),
    )
}

/// Parents rendered while finding the fan-out, written last.
struct Parents {
    controls: (Vec<i64>, Vec<Rendered>),
    certifications: (Vec<i64>, Vec<Rendered>),
    requirements: (Vec<i64>, Vec<Rendered>),
}

/// Renders dirty parents top-down and marks the children of those whose copied
/// fields changed.
async fn render_parents(
    conn: &mut PgConnection,
    store: &IndexStore,
    dirty: &mut Dirty,
) -> Result<Parents, IndexerError> {
    let mut step = async |kind: Kind, children: &[Dependents], dirty: &mut Dirty| {
        let ids = dirty.take(kind);
        let rendered = render_all(conn, store, kind, &ids).await?;
        let changed = changed_signatures(store, kind, &rendered);
        dirty.add_dependents(conn, children, &changed).await?;
        Ok::<_, IndexerError>((ids, rendered))
    };
    let controls = step(Kind::Control, &OF_CONTROLS, dirty).await?;
    let certifications = step(Kind::Certification, &OF_CERTIFICATIONS, dirty).await?;
    let requirements = step(Kind::Requirement, &OF_REQUIREMENTS, dirty).await?;
    Ok(Parents {
        controls,
        certifications,
        requirements,
    })
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
) -> Result<Applied, IndexerError> {
    let mut applied = Applied {
        changes: changes.len() as u64,
        ..Applied::default()
    };
    // what reports read but no document carries: an organization's own row
    // (its name), and auditor assignments (kept by id, not organization)
    for c in changes {
        match c.entity {
            Entity::Organization => {
                applied.orgs.insert(c.row_id as u64);
            }
            Entity::AuditorAssignment => applied.every_org = true,
            _ => {}
        }
    }
    let (mut dirty, frameworks, users) = direct(changes);
    dirty
        .add_dependents(conn, &OF_FRAMEWORKS, &frameworks)
        .await?;
    dirty.add_dependents(conn, &OF_USERS, &users).await?;
    let parents = render_parents(conn, store, &mut dirty).await?;

    // bottom-up writes; leaves stream in chunks
    let mut buffered = 0u64;
    for kind in [Kind::Evidence, Kind::Risk] {
        let ids = dirty.take(kind);
        for chunk in ids.chunks(RENDER_CHUNK) {
            let rendered = render_ids(conn, &store.fields, kind, chunk)
                .await
                .during(Operation::RenderingDocuments)?;
            let docs: Vec<TantivyDocument> = rendered.into_iter().map(|r| r.doc).collect();
            applied.touch(store.fields.org_id, chunk.len(), &docs);
            store.replace(kind, chunk.iter().copied(), docs)?;
            applied.docs[kind.index()] += chunk.len() as u64;
            buffered += chunk.len() as u64;
            if buffered >= commit_every {
                commit(store)?;
                buffered = 0;
            }
        }
    }
    for (kind, (ids, rendered)) in [
        (Kind::Requirement, parents.requirements),
        (Kind::Certification, parents.certifications),
        (Kind::Control, parents.controls),
    ] {
        applied.docs[kind.index()] += ids.len() as u64;
        let docs: Vec<TantivyDocument> = rendered.into_iter().map(|r| r.doc).collect();
        applied.touch(store.fields.org_id, ids.len(), &docs);
        store.replace(kind, ids, docs)?;
    }
    Ok(applied)
}

async fn render_all(
    conn: &mut PgConnection,
    store: &IndexStore,
    kind: Kind,
    ids: &[i64],
) -> Result<Vec<Rendered>, IndexerError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(RENDER_CHUNK) {
        out.extend(
            render_ids(conn, &store.fields, kind, chunk)
                .await
                .during(Operation::RenderingDocuments)?,
        );
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
