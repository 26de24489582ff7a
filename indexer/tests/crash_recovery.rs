//! PostgreSQL crash recovery must not lose a change (RELIABILITY.md, "A lost
//! delete after a crash"). Its own test binary: the crash ends every
//! connection of the binary's private cluster, and the test slows its WAL
//! writer.
//!
//! With `synchronous_commit = off` a commit is visible before its WAL is
//! flushed. If the index stores a position whose `xmax` lies past such a
//! commit and PostgreSQL then crashes, recovery loses the commit and hands its
//! transaction id out again; a delete written under the reused id would look
//! older than the position and never be read.

mod common;

use std::time::Duration;

use certscope_domain::Kind;
use common::Fixture;
use sqlx::PgPool;

/// Crashes PostgreSQL the way an out-of-memory kill of one backend does: the
/// postmaster ends every session and recovers from the WAL on disk, dropping
/// what was still in its buffers.
async fn crash(pool: &PgPool) {
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill the backend {pid}");
    pool.close().await;
}

/// A pool once the server accepts sessions again after recovery.
async fn reconnect(fx: &Fixture) -> PgPool {
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pool = fx.db.pool().await;
        if sqlx::query("SELECT 1").execute(&pool).await.is_ok() {
            return pool;
        }
        pool.close().await;
    }
    panic!("PostgreSQL did not come back from crash recovery within 30 s");
}

#[tokio::test]
async fn a_change_after_crash_recovery_is_not_hidden_behind_the_index_position() {
    if std::env::var_os("CERTSCOPE_TEST_DATABASE_URL").is_some() {
        eprintln!("skipped: crashes only the private cluster, not a server given by URL");
        return;
    }
    let fx = Fixture::seeded().await;
    // the WAL writer flushes asynchronous commits only every 10 s: what the
    // indexer reads next stays in WAL buffers until the crash
    for sql in [
        "ALTER SYSTEM SET wal_writer_delay = '10s'",
        "SELECT pg_reload_conf()",
        "CHECKPOINT",
    ] {
        sqlx::query(sql).execute(&fx.pool).await.unwrap();
    }
    let handle = fx.start();
    fx.caught_up(&handle).await;

    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM evidence ORDER BY id LIMIT 2")
        .fetch_all(&fx.pool)
        .await
        .unwrap();
    let (doomed, other) = (ids[0], ids[1]);
    // an asynchronous commit the indexer reads and stores a position past
    sqlx::query("UPDATE evidence SET title = title || ' (reviewed)' WHERE id = $1")
        .bind(other)
        .execute(&fx.pool)
        .await
        .unwrap();
    let position = fx.caught_up(&handle).await.position.snapshot;

    crash(&fx.pool).await;
    let pool = reconnect(&fx).await;
    let mut tx = pool.begin().await.unwrap();
    let xid: String = sqlx::query_scalar("SELECT pg_current_xact_id()::text")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let xid: u64 = xid.parse().unwrap();
    sqlx::query("DELETE FROM evidence WHERE id = $1")
        .bind(doomed)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for sql in [
        "ALTER SYSTEM RESET wal_writer_delay",
        "SELECT pg_reload_conf()",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    assert!(
        xid >= position.xmax,
        "transaction id {xid} handed out again below the stored position {position}"
    );

    let fx = Fixture { pool, ..fx };
    let view = fx.caught_up(&handle).await;
    assert_eq!(common::version(&view, Kind::Evidence, doomed), None);
    fx.assert_converged(&handle).await;
}
