//! The indexer against a real PostgreSQL and a real index on disk.

mod common;

use std::time::{Duration, Instant};

use certscope_domain::Kind;
use certscope_indexer::Snapshot;
use common::{Fixture, document, eventually, text, version};
use sqlx::Connection;

#[tokio::test]
async fn an_open_transaction_does_not_hold_back_a_later_commit() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let (risk_a, risk_b): (i64, i64) = sqlx::query_as("SELECT min(id), max(id) FROM risks")
        .fetch_one(&fx.pool)
        .await
        .unwrap();

    // T1 writes first and stays open
    let mut t1_conn = sqlx::PgConnection::connect(&fx.db.url).await.unwrap();
    let mut t1 = t1_conn.begin().await.unwrap();
    sqlx::query("UPDATE risks SET title = title || ' (t1)' WHERE id = $1")
        .bind(risk_a)
        .execute(&mut *t1)
        .await
        .unwrap();
    // T2 writes later and commits
    sqlx::query("UPDATE risks SET title = title || ' (t2)' WHERE id = $1")
        .bind(risk_b)
        .execute(&fx.pool)
        .await
        .unwrap();
    let started = Instant::now();
    assert!(
        eventually(&handle, Duration::from_secs(3), |v| version(
            v,
            Kind::Risk,
            risk_b
        ) == Some(2))
        .await,
        "T2 must be indexed while T1 is still open"
    );
    let promptly = started.elapsed();
    assert!(promptly < Duration::from_secs(2), "took {promptly:?}");
    let view = handle.views.borrow().clone().unwrap();
    assert_eq!(
        version(&view, Kind::Risk, risk_a),
        Some(1),
        "T1 is not committed yet"
    );

    t1.commit().await.unwrap();
    assert!(
        eventually(&handle, Duration::from_secs(3), |v| version(
            v,
            Kind::Risk,
            risk_a
        ) == Some(2))
        .await,
        "T1 must be indexed once it commits"
    );
    fx.assert_converged(&handle).await;
}

/// An evidence row to write: organization, requirement, submitter.
async fn evidence_parent(pool: &sqlx::PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT organization_id, id, owner_id FROM requirements WHERE owner_id IS NOT NULL ORDER BY id LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Inserts a pending evidence row titled `title` under `parent`; returns its id.
async fn insert_evidence<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    (org, req, user): (i64, i64, i64),
    title: &str,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO evidence (organization_id, requirement_id, title, content, file_name, media_type, sha256, \
         status, collected_on, submitted_by) VALUES ($1, $2, $3, 'content', 'f.pdf', 'application/pdf', \
         encode(sha256($3::bytea), 'hex'), 'pending', DATE '2026-10-01', $4) RETURNING id",
    )
    .bind(org)
    .bind(req)
    .bind(title)
    .bind(user)
    .fetch_one(executor)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_row_rewritten_in_transactions_and_savepoints_is_indexed_as_last_committed() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let pool = &fx.pool;
    let kept = insert_evidence(pool, evidence_parent(pool).await, "kept").await;
    // a row updated many times in one transaction
    let mut tx = pool.begin().await.unwrap();
    for n in 0..25 {
        sqlx::query("UPDATE evidence SET title = $2 WHERE id = $1")
            .bind(kept)
            .bind(format!("kept rev {n}"))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    // a savepoint rolled back inside a committed transaction
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("UPDATE evidence SET title = 'kept final' WHERE id = $1")
        .bind(kept)
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut sp = tx.begin().await.unwrap();
    sqlx::query("DELETE FROM evidence WHERE id = $1")
        .bind(kept)
        .execute(&mut *sp)
        .await
        .unwrap();
    sp.rollback().await.unwrap();
    tx.commit().await.unwrap();

    fx.assert_converged(&handle).await;
    let view = fx.caught_up(&handle).await;
    let doc = document(&view, Kind::Evidence, kept).expect("kept evidence indexed");
    assert_eq!(text(&view, &doc, view.fields.title), "kept final");
}

#[tokio::test]
async fn rows_that_never_outlive_their_transaction_are_never_indexed() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let pool = &fx.pool;
    let parent = evidence_parent(pool).await;
    // rolled back: never visible
    let mut tx = pool.begin().await.unwrap();
    let ghost = insert_evidence(&mut *tx, parent, "ghost").await;
    tx.rollback().await.unwrap();
    // inserted, updated, then deleted in one transaction
    let mut tx = pool.begin().await.unwrap();
    let brief = insert_evidence(&mut *tx, parent, "brief").await;
    sqlx::query("UPDATE evidence SET status = 'accepted' WHERE id = $1")
        .bind(brief)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("DELETE FROM evidence WHERE id = $1")
        .bind(brief)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    fx.assert_converged(&handle).await;
    let view = fx.caught_up(&handle).await;
    assert!(document(&view, Kind::Evidence, ghost).is_none());
    assert!(document(&view, Kind::Evidence, brief).is_none());
}

#[tokio::test]
async fn deleted_rows_and_what_their_delete_cascades_to_leave_the_index() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let pool = &fx.pool;
    // a delete of an existing row, and a cascade
    let deleted_risk: i64 =
        sqlx::query_scalar("DELETE FROM risks WHERE id = (SELECT min(id) FROM risks) RETURNING id")
            .fetch_one(pool)
            .await
            .unwrap();
    let parent: i64 = sqlx::query_scalar(
        "SELECT requirement_id FROM evidence GROUP BY requirement_id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let children: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM evidence WHERE requirement_id = $1")
            .bind(parent)
            .fetch_all(pool)
            .await
            .unwrap();
    sqlx::query("DELETE FROM requirements WHERE id = $1")
        .bind(parent)
        .execute(pool)
        .await
        .unwrap();
    let cascaded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM evidence WHERE requirement_id = $1")
            .bind(parent)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(cascaded, 0, "evidence went with its requirement");

    fx.assert_converged(&handle).await;
    let view = fx.caught_up(&handle).await;
    assert!(document(&view, Kind::Risk, deleted_risk).is_none());
    assert!(document(&view, Kind::Requirement, parent).is_none());
    assert!(!children.is_empty(), "the requirement had evidence");
    for id in children {
        assert!(
            document(&view, Kind::Evidence, id).is_none(),
            "evidence {id}"
        );
    }
}

/// Asserts that every `(kind, id)` of `dependents` carries `expected` in `field`.
fn assert_rerendered(
    view: &certscope_indexer::IndexView,
    dependents: &[(String, i64)],
    field: tantivy::schema::Field,
    expected: &str,
) {
    for (kind, id) in dependents {
        let doc = document(view, Kind::parse(kind).unwrap(), *id).unwrap();
        assert_eq!(text(view, &doc, field), expected, "{kind} {id}");
    }
}

#[tokio::test]
async fn renaming_a_control_rerenders_every_dependent_document() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let pool = &fx.pool;
    let control: i64 = sqlx::query_scalar(
        "SELECT r.control_id FROM requirements r JOIN evidence e ON e.requirement_id = r.id \
         GROUP BY r.control_id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE controls SET title = 'Renamed Control Title' WHERE id = $1")
        .bind(control)
        .execute(pool)
        .await
        .unwrap();

    let view = fx.caught_up(&handle).await;
    let dependents: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'requirement', id FROM requirements WHERE control_id = $1 UNION ALL \
         SELECT 'evidence', e.id FROM evidence e JOIN requirements r ON r.id = e.requirement_id WHERE r.control_id = $1",
    )
    .bind(control)
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(
        dependents.iter().any(|d| d.0 == "evidence"),
        "the fixture has evidence under the control"
    );
    assert_rerendered(
        &view,
        &dependents,
        view.fields.control_title,
        "Renamed Control Title",
    );
    let control_doc = document(&view, Kind::Control, control).unwrap();
    assert_eq!(
        text(&view, &control_doc, view.fields.title),
        "Renamed Control Title"
    );
}

#[tokio::test]
async fn renaming_a_certification_rerenders_every_dependent_document() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let pool = &fx.pool;
    let cert: i64 = sqlx::query_scalar("SELECT certification_id FROM requirements r JOIN evidence e ON e.requirement_id = r.id LIMIT 1")
        .fetch_one(pool)
        .await
        .unwrap();
    sqlx::query("UPDATE certifications SET name = 'Renamed Certification' WHERE id = $1")
        .bind(cert)
        .execute(pool)
        .await
        .unwrap();

    let view = fx.caught_up(&handle).await;
    let dependents: Vec<(String, i64)> = sqlx::query_as(
        "SELECT 'requirement', id FROM requirements WHERE certification_id = $1 UNION ALL \
         SELECT 'evidence', e.id FROM evidence e JOIN requirements r ON r.id = e.requirement_id WHERE r.certification_id = $1",
    )
    .bind(cert)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_rerendered(
        &view,
        &dependents,
        view.fields.certification,
        "Renamed Certification",
    );
}

/// Nothing the evidence copies from its requirement changed, so the status
/// change does not re-render the 300 evidence documents below a requirement.
#[tokio::test]
async fn a_requirement_status_change_does_not_rerender_its_evidence() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let pool = &fx.pool;
    let (req, ev): (i64, i64) =
        sqlx::query_as("SELECT requirement_id, id FROM evidence ORDER BY id LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap();
    let before = handle
        .metrics
        .changes_applied
        .load(std::sync::atomic::Ordering::Relaxed);
    sqlx::query("UPDATE requirements SET status = 'failed' WHERE id = $1")
        .bind(req)
        .execute(pool)
        .await
        .unwrap();
    let view = fx.caught_up(&handle).await;
    assert_eq!(
        text(
            &view,
            &document(&view, Kind::Requirement, req).unwrap(),
            view.fields.status
        ),
        "failed"
    );
    assert_eq!(version(&view, Kind::Evidence, ev), Some(1));
    assert!(
        handle
            .metrics
            .changes_applied
            .load(std::sync::atomic::Ordering::Relaxed)
            > before
    );
    fx.assert_converged(&handle).await;
}

#[tokio::test]
async fn a_user_rename_reaches_every_document_they_own() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let user: i64 = sqlx::query_scalar(
        "SELECT owner_id FROM requirements GROUP BY owner_id ORDER BY count(*) DESC LIMIT 1",
    )
    .fetch_one(&fx.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE users SET display_name = 'Zuzana Nováková' WHERE id = $1")
        .bind(user)
        .execute(&fx.pool)
        .await
        .unwrap();
    let view = fx.caught_up(&handle).await;
    let reqs: Vec<i64> = sqlx::query_scalar("SELECT id FROM requirements WHERE owner_id = $1")
        .bind(user)
        .fetch_all(&fx.pool)
        .await
        .unwrap();
    for id in reqs {
        let doc = document(&view, Kind::Requirement, id).unwrap();
        assert_eq!(text(&view, &doc, view.fields.owner), "Zuzana Nováková");
    }
}

#[tokio::test]
async fn two_independent_indexes_follow_the_same_database() {
    let fx = Fixture::seeded().await;
    let first = fx.start();
    let other_dir = tempfile::tempdir().unwrap();
    let mut config = fx.config();
    config.index_dir = other_dir.path().join("index");
    let second = certscope_indexer::spawn(config, tokio_util::sync::CancellationToken::new());
    sqlx::query("UPDATE evidence SET title = title || ' (both)' WHERE id IN (SELECT id FROM evidence ORDER BY id LIMIT 10)")
        .execute(&fx.pool)
        .await
        .unwrap();
    fx.assert_converged(&first).await;
    fx.assert_converged(&second).await;
    // nothing per consumer is kept on the server: only the shared change log
    let slots: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_replication_slots")
        .fetch_one(&fx.pool)
        .await
        .unwrap();
    assert_eq!(slots, 0);
}

#[tokio::test]
async fn changes_read_page_by_page_come_once_each_in_commit_order() {
    let fx = Fixture::seeded().await;
    let risks: Vec<i64> = sqlx::query_scalar("SELECT id FROM risks ORDER BY id LIMIT 4")
        .fetch_all(&fx.pool)
        .await
        .unwrap();
    let touch = "UPDATE risks SET title = title || '.' WHERE id = ANY($1)";
    // a transaction open when `from` is taken: in its in-progress list, below
    // its xmax, and committed before `to`
    let mut open_conn = sqlx::PgConnection::connect(&fx.db.url).await.unwrap();
    let mut open = open_conn.begin().await.unwrap();
    sqlx::query(touch)
        .bind(&risks[..2])
        .execute(&mut *open)
        .await
        .unwrap();
    let open_xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *open)
        .await
        .unwrap();
    // a later transaction commits first, so the open one is below xmax
    sqlx::query(touch)
        .bind(&risks[2..])
        .execute(&fx.pool)
        .await
        .unwrap();
    let from = common::snapshot(&fx.pool).await;
    assert!(
        from.xip.contains(&open_xid.parse().unwrap()),
        "the open transaction {open_xid} is in progress in {from}"
    );
    // later commits of two changes each, then the open one commits
    for _ in 0..3 {
        sqlx::query(touch)
            .bind(&risks[2..])
            .execute(&fx.pool)
            .await
            .unwrap();
    }
    open.commit().await.unwrap();
    let to = common::snapshot(&fx.pool).await;
    let expected: Vec<(String, i64)> = sqlx::query_as(
        "SELECT xid::text, seq FROM change_log \
         WHERE pg_visible_in_snapshot(xid, $2::text::pg_snapshot) \
           AND NOT pg_visible_in_snapshot(xid, $1::text::pg_snapshot) \
         ORDER BY change_log.xid, change_log.seq",
    )
    .bind(from.to_string())
    .bind(to.to_string())
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    assert_eq!(
        expected.len(),
        8,
        "2 changes in the open transaction, 6 after"
    );
    let expected: Vec<(u64, i64)> = expected
        .into_iter()
        .map(|(x, s)| (x.parse().unwrap(), s))
        .collect();
    for page_size in [1, 2, 3, 100] {
        let read = read_in_pages(&fx.pool, &from, &to, page_size).await;
        assert_eq!(read, expected, "pages of {page_size}");
    }
}

/// Every change between `from` and `to`, as (xid, seq), read as the indexer
/// reads them: page after page from the last one's cursor.
async fn read_in_pages(
    pool: &sqlx::PgPool,
    from: &Snapshot,
    to: &Snapshot,
    page_size: i64,
) -> Vec<(u64, i64)> {
    let mut conn = pool.acquire().await.unwrap();
    let (mut read, mut cursor) = (Vec::new(), None);
    loop {
        let page =
            certscope_indexer::change_feed::read_page(&mut *conn, from, to, cursor, page_size)
                .await
                .unwrap();
        read.extend(page.iter().map(|c| (c.xid, c.seq)));
        cursor = read.last().copied();
        if (page.len() as i64) < page_size {
            return read;
        }
    }
}

/// Transaction ids are read as text and ordered as numbers: a page ordered by
/// the text (as the feed's query did, by the name of its `xid::text` column)
/// puts 100000 before 99999, and the cursor after the page then skips 99999.
/// Real ids cross such a boundary at 10^5, 10^6, ... on every server, so the
/// rows are written here with those ids (and another in progress at `from`).
#[tokio::test]
async fn pages_follow_transaction_ids_across_a_digit_boundary() {
    let fx = Fixture::seeded().await;
    let risk: i64 = sqlx::query_scalar("SELECT id FROM risks ORDER BY id LIMIT 1")
        .fetch_one(&fx.pool)
        .await
        .unwrap();
    for xid in [99_997_u64, 100_001, 99_999, 100_000, 100_000, 1_000_000] {
        sqlx::query(
            "INSERT INTO change_log (xid, entity, row_id, op) \
             VALUES ($1::text::xid8, 'risk', $2, 'U')",
        )
        .bind(xid.to_string())
        .bind(risk)
        .execute(&fx.pool)
        .await
        .unwrap();
    }
    // 99997 was in progress when `from` was taken; 1000000 is after `to`
    let from = Snapshot::parse("99997:99998:99997").unwrap();
    let to = Snapshot::parse("100002:100002:").unwrap();
    for page_size in [1, 2, 100] {
        let read: Vec<u64> = read_in_pages(&fx.pool, &from, &to, page_size)
            .await
            .into_iter()
            .map(|(xid, _)| xid)
            .collect();
        assert_eq!(
            read,
            [99_997, 99_999, 100_000, 100_000, 100_001],
            "pages of {page_size}"
        );
    }
}

/// The change log is pruned beside the indexer's cycles, not between them (a
/// prune reads up to the retained row count: half a second at a million rows,
/// which every change waiting to be indexed used to wait for). So a prune
/// must never delete a change the index has not applied, whatever the
/// retention: below the applied position's xmin only.
#[tokio::test]
async fn pruning_keeps_every_change_the_index_has_not_applied() {
    use certscope_indexer::change_feed::{Retention, prune_in_batches, pruned_below};
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    let applied = fx.caught_up(&handle).await.position;
    handle.stop().unwrap();
    let risks: Vec<i64> = sqlx::query_scalar("SELECT id FROM risks ORDER BY id LIMIT 5")
        .fetch_all(&fx.pool)
        .await
        .unwrap();
    for id in &risks {
        sqlx::query("UPDATE risks SET title = title || ' (after)' WHERE id = $1")
            .bind(id)
            .execute(&fx.pool)
            .await
            .unwrap();
    }
    let counts = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "SELECT count(*) FILTER (WHERE xid < $1::text::xid8), \
                    count(*) FILTER (WHERE xid >= $1::text::xid8) FROM change_log",
        )
        .bind(applied.snapshot.xmin.to_string())
        .fetch_one(&fx.pool)
        .await
        .unwrap()
    };
    let (before, unapplied) = counts().await;
    // small batches, so that the prune takes several (the seed's changes
    // are thousands): a prune that stopped after its first batch would
    // leave applied changes behind
    let batch = 100;
    assert!(
        before > 3 * batch,
        "the seed's changes are applied: {before}"
    );
    assert!(unapplied >= 5, "the updates after the position");

    let keep_nothing = Retention {
        max_age: Duration::ZERO,
        max_rows: 0,
    };
    let deleted = prune_in_batches(&fx.pool, keep_nothing, &applied.snapshot, batch)
        .await
        .unwrap();
    assert_eq!(deleted, before as u64, "every applied change goes");
    assert_eq!(counts().await, (0, unapplied), "no unapplied change goes");
    let horizon = pruned_below(&fx.pool).await.unwrap();
    assert!(
        horizon <= applied.snapshot.xmin,
        "{horizon} > {}",
        applied.snapshot.xmin
    );

    // and the index follows them from its position, without a rebuild
    let handle = fx.start();
    let view = fx.caught_up(&handle).await;
    assert!(
        view.position.generation > applied.generation,
        "advanced, not rebuilt"
    );
    for id in &risks {
        let doc = document(&view, Kind::Risk, *id).unwrap();
        assert!(text(&view, &doc, view.fields.title).ends_with(" (after)"));
    }
    fx.assert_converged(&handle).await;
}

/// The row bound: the newest `max_rows` changes are kept at most. (The count
/// is read only when PostgreSQL's statistics put the log near the bound, so
/// this waits for them: the seed's connection has reported its inserts.)
#[tokio::test]
async fn pruning_by_count_keeps_at_most_the_newest_rows() {
    use certscope_indexer::change_feed::{Retention, prune};
    let fx = Fixture::seeded().await;
    let rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM change_log")
            .fetch_one(&fx.pool)
            .await
            .unwrap()
    };
    let before = rows().await;
    assert!(before > 1_000, "the seed's changes: {before}");
    let retention = Retention {
        max_age: Duration::from_secs(86_400),
        max_rows: 100,
    };
    let everything = common::snapshot(&fx.pool).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut deleted = 0;
    while deleted == 0 && Instant::now() < deadline {
        deleted = prune(&fx.pool, retention, &everything).await.unwrap();
        if deleted == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let after = rows().await;
    assert_eq!(after, before - deleted as i64);
    assert!(after <= 100, "{after} rows kept");
}
