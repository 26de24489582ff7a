//! The event deriver against a real PostgreSQL: every committed status change
//! becomes exactly one event, in commit order, with two derivers racing, a
//! transaction left open across passes, and a rolled-back one.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use certscope_indexer::events::{self, DeriverConfig};
use common::Fixture;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

async fn requirement_events(pool: &sqlx::PgPool) -> Vec<(i64, i64, String)> {
    sqlx::query_as(
        "SELECT id, (data->>'requirement_id')::bigint, data->>'status' FROM events \
         WHERE kind = 'requirement.status_changed' ORDER BY id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_change_becomes_exactly_one_event_in_commit_order() {
    let fx = Fixture::seeded().await;
    // the seed is a bulk load: indexed, not announced
    let report = events::derive(&fx.pool, 5_000).await.unwrap();
    assert!(report.changes > 1_000, "{report:?}");
    assert_eq!(report.events, 0, "the seed announced events");

    let cancel = CancellationToken::new();
    let config = DeriverConfig {
        poll_interval: Duration::from_millis(50),
        ..Default::default()
    };
    // two derivers, as two servers would run them: they take turns
    let a = events::spawn_deriver(fx.pool.clone(), config.clone(), cancel.clone());
    let b = events::spawn_deriver(fx.pool.clone(), config, cancel.clone());

    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM requirements WHERE status <> 'failed' ORDER BY id LIMIT 60",
    )
    .fetch_all(&fx.pool)
    .await
    .unwrap();
    // a transaction that writes first and commits last
    let mut slow_conn = sqlx::PgConnection::connect(&fx.db.url).await.unwrap();
    let mut slow = slow_conn.begin().await.unwrap();
    sqlx::query("UPDATE requirements SET status = 'failed' WHERE id = $1")
        .bind(ids[0])
        .execute(&mut *slow)
        .await
        .unwrap();
    // one that never commits
    let mut gone = fx.pool.begin().await.unwrap();
    sqlx::query("UPDATE requirements SET status = 'failed' WHERE id = $1")
        .bind(ids[1])
        .execute(&mut *gone)
        .await
        .unwrap();
    gone.rollback().await.unwrap();
    // the rest from concurrent writers
    let mut writers = tokio::task::JoinSet::new();
    for chunk in ids[2..].chunks(10) {
        let (pool, chunk) = (fx.pool.clone(), chunk.to_vec());
        writers.spawn(async move {
            for id in chunk {
                sqlx::query("UPDATE requirements SET status = 'failed' WHERE id = $1")
                    .bind(id)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        });
    }
    while writers.join_next().await.is_some() {}
    // passes happen while `slow` is open
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before_slow = requirement_events(&fx.pool).await;
    assert!(
        before_slow.iter().all(|(_, r, _)| *r != ids[0]),
        "an uncommitted change was announced"
    );
    slow.commit().await.unwrap();

    let expected: Vec<i64> = std::iter::once(ids[0])
        .chain(ids[2..].iter().copied())
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let events = loop {
        let events = requirement_events(&fx.pool).await;
        if events.len() >= expected.len() || std::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cancel.cancel();
    a.await.unwrap();
    b.await.unwrap();

    let mut per_requirement: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, r, status) in &events {
        assert_eq!(status, "failed");
        *per_requirement.entry(*r).or_default() += 1;
    }
    assert!(
        !per_requirement.contains_key(&ids[1]),
        "a rolled-back change was announced"
    );
    for id in &expected {
        assert_eq!(per_requirement.get(id), Some(&1), "requirement {id}");
    }
    assert_eq!(events.len(), expected.len());
    // the slow transaction committed last: its event comes after all the others
    let slow_event = events.iter().find(|e| e.1 == ids[0]).unwrap().0;
    assert!(before_slow.iter().all(|e| e.0 < slow_event));
    // and a pass with nothing new appends nothing
    let again = events::derive(&fx.pool, 5_000).await.unwrap();
    assert_eq!(again.events, 0);
}

#[tokio::test]
async fn pruning_raises_the_horizon_and_notices_take_the_same_order() {
    let fx = Fixture::seeded().await;
    events::derive(&fx.pool, 5_000).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..30 {
        let notice = events::notice(None, "info", &format!("notice {i}"), None);
        ids.extend(events::append(&fx.pool, &[notice]).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let retention = events::EventRetention {
        max_age: Duration::from_secs(3600),
        max_events: 10,
    };
    let deleted = events::prune(&fx.pool, retention).await.unwrap();
    assert!(deleted >= 20, "{deleted}");
    let (pruned_through, left): (i64, i64) =
        sqlx::query_as("SELECT pruned_through, (SELECT count(*) FROM events) FROM event_cursor")
            .fetch_one(&fx.pool)
            .await
            .unwrap();
    assert_eq!(left, 10);
    assert_eq!(pruned_through, ids[19]);
}
