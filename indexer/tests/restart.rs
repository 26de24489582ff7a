//! A PostgreSQL restart mid-stream. Its own test binary: the restart ends every
//! connection of the binary's private cluster.

mod common;

use std::time::Duration;

use common::Fixture;

#[tokio::test]
async fn a_postgres_restart_mid_stream_loses_nothing() {
    let fx = Fixture::seeded().await;
    let handle = fx.start();
    fx.caught_up(&handle).await;
    let update = "UPDATE evidence SET title = title || '.' WHERE id IN (SELECT id FROM evidence ORDER BY random() LIMIT 20)";
    for _ in 0..5 {
        sqlx::query(update).execute(&fx.pool).await.unwrap();
    }
    fx.pool.close().await;
    certscope_store::testing::server()
        .await
        .restart()
        .await
        .unwrap();
    let pool = fx.db.pool().await;
    for _ in 0..5 {
        sqlx::query(update).execute(&pool).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fx = Fixture { pool, ..fx };
    fx.assert_converged(&handle).await;
    assert!(
        handle
            .metrics
            .changes_applied
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 10
    );
}
