//! The indexer process killed with SIGKILL at random moments, again and again,
//! while concurrent writers insert, update and delete (with rollbacks and long
//! transactions): afterwards the index holds exactly PostgreSQL's
//! (kind, id, version) set. `CERTSCOPE_CRASH_SECONDS` and `CERTSCOPE_CRASH_KILLS`
//! make it a soak (defaults: 20 s, 6 kills); `CERTSCOPE_CRASH_SEED` replays one run
//! (as far as timing allows); `CERTSCOPE_CRASH_LOG` sets the indexers' log filter.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use certscope_indexer::{Snapshot, index_store, verify};
use certscope_store::seed::{Preset, SeedConfig};
use certscope_store::testing::TestDb;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The indexer process, killed when dropped (also when the test fails).
struct Indexer(Child);

impl Drop for Indexer {
    fn drop(&mut self) {
        kill9(&mut self.0);
    }
}

fn start_indexer(url: &str, index_dir: &Path) -> Indexer {
    Indexer(
        Command::new(env!("CARGO_BIN_EXE_certscope"))
            .args([
                "index",
                "--batch-window-ms",
                "5",
                "--database-url",
                url,
                "--index-dir",
            ])
            .arg(index_dir)
            .env(
                "RUST_LOG",
                std::env::var("CERTSCOPE_CRASH_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start certscope index"),
    )
}

fn kill9(child: &mut Child) {
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
}

async fn snapshot(pool: &PgPool) -> Snapshot {
    let text: String = sqlx::query_scalar("SELECT pg_current_snapshot()::text")
        .fetch_one(pool)
        .await
        .unwrap();
    Snapshot::parse(&text).unwrap()
}

/// Changes committed in `target` that the index `position` does not reflect.
async fn missing_changes(pool: &PgPool, position: &Snapshot, target: &Snapshot) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM change_log \
         WHERE pg_visible_in_snapshot(xid, $1::text::pg_snapshot) \
           AND NOT pg_visible_in_snapshot(xid, $2::text::pg_snapshot)",
    )
    .bind(target.to_string())
    .bind(position.to_string())
    .fetch_one(pool)
    .await
    .unwrap()
}

/// One random write; errors (a row deleted by another writer, a deadlock) roll back.
async fn random_write(pool: &PgPool, rng: &mut ChaCha8Rng) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let op = rng.random_range(0..12);
    match op {
        0 | 1 => {
            sqlx::query(
                "INSERT INTO evidence (organization_id, requirement_id, title, content, file_name, media_type, sha256, status, collected_on) \
                 SELECT organization_id, id, 'crash evidence', 'text', 'c.txt', 'text/plain', md5(random()::text) || md5(random()::text), \
                        'pending', DATE '2026-10-01' FROM requirements ORDER BY random() LIMIT 1",
            )
            .execute(&mut *tx)
            .await?;
        }
        2 => {
            sqlx::query("UPDATE evidence SET title = title || '!' WHERE id = (SELECT id FROM evidence ORDER BY random() LIMIT 1)")
                .execute(&mut *tx)
                .await?;
        }
        3 => {
            sqlx::query("DELETE FROM evidence WHERE id = (SELECT id FROM evidence ORDER BY random() LIMIT 1)")
                .execute(&mut *tx)
                .await?;
        }
        4 => {
            let status =
                ["not_started", "in_progress", "implemented", "failed"][rng.random_range(0..4)];
            sqlx::query("UPDATE requirements SET status = $1 WHERE id = (SELECT id FROM requirements ORDER BY random() LIMIT 1)")
                .bind(status)
                .execute(&mut *tx)
                .await?;
        }
        5 => {
            // fan-out: every requirement and evidence of the certification
            sqlx::query("UPDATE certifications SET name = name || '*' WHERE id = (SELECT id FROM certifications ORDER BY random() LIMIT 1)")
                .execute(&mut *tx)
                .await?;
        }
        6 => {
            sqlx::query("UPDATE controls SET title = title || '~' WHERE id = (SELECT control_id FROM requirements ORDER BY random() LIMIT 1)")
                .execute(&mut *tx)
                .await?;
        }
        7 => {
            // the same row many times in one transaction
            let id: Option<i64> =
                sqlx::query_scalar("SELECT id FROM risks ORDER BY random() LIMIT 1")
                    .fetch_optional(&mut *tx)
                    .await?;
            for _ in 0..rng.random_range(2..8) {
                sqlx::query("UPDATE risks SET description = description || '.' WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        8 => {
            sqlx::query("UPDATE evidence SET status = 'accepted' WHERE id = (SELECT id FROM evidence ORDER BY random() LIMIT 1)")
                .execute(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(());
        }
        9 => {
            // a long transaction that commits after others
            sqlx::query("UPDATE requirements SET notes = notes || 'x' WHERE id = (SELECT id FROM requirements ORDER BY random() LIMIT 1)")
                .execute(&mut *tx)
                .await?;
            tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
        }
        10 => {
            if rng.random_bool(0.5) {
                sqlx::query(
                    "WITH r AS (INSERT INTO risks (organization_id, title, category, inherent_likelihood, inherent_impact, \
                     residual_likelihood, residual_impact, treatment, status) \
                     SELECT id, 'crash risk', 'security', 4, 4, 2, 2, 'mitigate', 'open' FROM organizations ORDER BY random() LIMIT 1 \
                     RETURNING id, organization_id) \
                     INSERT INTO risk_requirements (organization_id, risk_id, requirement_id) \
                     SELECT r.organization_id, r.id, (SELECT q.id FROM requirements q WHERE q.organization_id = r.organization_id LIMIT 1) FROM r",
                )
                .execute(&mut *tx)
                .await?;
            } else {
                sqlx::query(
                    "DELETE FROM risks WHERE id = (SELECT id FROM risks ORDER BY random() LIMIT 1)",
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        _ => {
            sqlx::query("UPDATE users SET display_name = display_name || '.' WHERE id = (SELECT id FROM users ORDER BY random() LIMIT 1)")
                .execute(&mut *tx)
                .await?;
        }
    }
    tx.commit().await
}

/// A database of its own with the small preset (two organizations).
async fn seeded_small() -> (TestDb, PgPool) {
    let db = TestDb::with_catalogs().await;
    let pool = db.pool().await;
    let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    certscope_store::seed::seed(&pool, &SeedConfig::preset(Preset::Small, 5, as_of))
        .await
        .unwrap();
    (db, pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_equals_postgres_after_repeated_sigkills_under_concurrent_writes() {
    let seconds = env_or("CERTSCOPE_CRASH_SECONDS", 20);
    let kills = env_or("CERTSCOPE_CRASH_KILLS", 6);
    let seed = env_or("CERTSCOPE_CRASH_SEED", rand::random::<u32>() as u64);
    eprintln!("crash loop: {seconds} s, {kills} kills, seed {seed}");

    let (db, pool) = seeded_small().await;
    let dir = tempfile::tempdir().unwrap();
    let index_dir = dir.path().join("index");

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (pool, stop, committed) = (pool.clone(), stop.clone(), committed.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (w << 32));
            while !stop.load(Ordering::Relaxed) {
                if random_write(&pool, &mut rng).await.is_ok() {
                    committed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
            }
        }));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut indexer = start_indexer(&db.url, &index_dir);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let spacing = seconds as f64 / kills as f64;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_secs_f64(
            rng.random_range(0.3..(2.0 * spacing).max(0.6)),
        ))
        .await;
        drop(indexer);
        indexer = start_indexer(&db.url, &index_dir);
    }
    let left = deadline.saturating_duration_since(Instant::now());
    tokio::time::sleep(left).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(
        committed.load(Ordering::Relaxed) > 50,
        "writers made progress"
    );

    // every change committed up to now must reach the durable index. Not "the
    // payload covers the current snapshot": transactions that capture no change
    // (the event deriver's) finish after the last indexed commit and leave
    // nothing to commit for
    let target = snapshot(&pool).await;
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let durable = index_store::open_read_only(&index_dir)
            .ok()
            .and_then(|(_, _, payload)| payload)
            .and_then(|p| Snapshot::parse(&p.snapshot).ok());
        let reached = match durable {
            Some(position) => missing_changes(&pool, &position, &target).await == 0,
            None => false,
        };
        if reached {
            break;
        }
        assert!(
            Instant::now() < until,
            "the restarted indexer did not catch up within 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(indexer);

    eprintln!("crash loop: seed {seed}");
    assert_index_equals_database(&index_dir, &pool).await;
    eprintln!(
        "crash loop: {} writes committed, index equals PostgreSQL",
        committed.load(Ordering::Relaxed)
    );
}

fn reindex(url: &str, index_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certscope"));
    cmd.args(["reindex", "--database-url", url, "--index-dir"])
        .arg(index_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

async fn assert_index_equals_database(index_dir: &Path, pool: &PgPool) {
    let (index, fields, payload) = index_store::open_read_only(index_dir).unwrap();
    let in_index = verify::index_triples(&index.reader().unwrap().searcher(), &fields).unwrap();
    let in_db = verify::database_triples(pool).await.unwrap();
    if in_index != in_db {
        // a rare failure must explain itself: what the change log says of
        // each differing row, and where the index stands
        let mut story = String::new();
        let differing = in_index.symmetric_difference(&in_db).take(5);
        for (kind, id, _) in differing {
            let rows: Result<Vec<(String, i64, String, String)>, _> = sqlx::query_as(
                "SELECT xid::text, seq, op::text, recorded_at::text FROM change_log \
                 WHERE entity = $1 AND row_id = $2 ORDER BY change_log.xid, change_log.seq",
            )
            .bind(kind)
            .bind(id)
            .fetch_all(pool)
            .await;
            story.push_str(&format!("\n  change log of {kind} {id}: {rows:?}"));
        }
        let segments: Vec<String> = index
            .searchable_segment_metas()
            .unwrap_or_default()
            .iter()
            .map(|m| {
                format!(
                    "{}:{}-{}",
                    m.id().short_uuid_string(),
                    m.max_doc(),
                    m.num_deleted_docs()
                )
            })
            .collect();
        panic!(
            "{}\n  index position {:?}\n  segments {segments:?}{story}",
            verify::describe_difference(&in_index, &in_db, 5),
            payload.map(|p| p.snapshot)
        );
    }
}

/// A rebuild writes into `<index>.staging` and swaps it in only once committed:
/// killed halfway, the live index is untouched (same files, same position), the
/// half-written staging directory is cleared by the next rebuild, and that one
/// completes and equals PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_killed_halfway_leaves_the_live_index_whole_and_the_next_one_completes() {
    let (db, pool) = seeded_small().await;
    let dir = tempfile::tempdir().unwrap();
    let index_dir = dir.path().join("index");
    let staging = dir.path().join("index.staging");
    let status = reindex(&db.url, &index_dir).status().unwrap();
    assert!(status.success(), "the first rebuild");
    let before = index_store::inspect(&index_dir).expect("a usable index");

    // a change the live index does not have yet, then a rebuild killed while
    // it writes its staging directory
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    for _ in 0..20 {
        let _ = random_write(&pool, &mut rng).await;
    }
    let mut child = reindex(&db.url, &index_dir).spawn().unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while !staging.join("meta.json").exists() {
        assert!(Instant::now() < until, "the rebuild never started writing");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rebuild ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the rebuild finished within 100 ms: not killed halfway"
    );
    kill9(&mut child);
    assert!(staging.exists(), "the half-written rebuild is left behind");

    let after = index_store::inspect(&index_dir).expect("the live index is still usable");
    assert_eq!(
        after.snapshot, before.snapshot,
        "the live index was not touched"
    );
    assert_eq!(after.built_at, before.built_at);

    let status = reindex(&db.url, &index_dir).status().unwrap();
    assert!(status.success(), "the rebuild after the kill");
    assert!(
        !staging.exists(),
        "the next rebuild cleared the staging directory"
    );
    assert_index_equals_database(&index_dir, &pool).await;
}
