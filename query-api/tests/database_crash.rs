//! PostgreSQL killed mid-load (immediate shutdown: every backend quits, no
//! checkpoint, crash recovery at the next start) and started again, while
//! writers commit and readers search and read details. Its own test binary:
//! the crash ends every connection of the binary's private cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use certscope_query_api::testing::{Params, TestApp};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_load_costs_503s_not_500s_or_hangs_and_loses_nothing() {
    // the service reads through a pool of its own with a one-second acquire
    // timeout (the product's default is five), so that a read while the
    // database is down is answered within the outage
    let s = Arc::new(TestApp::start_with_read_pool(4).await);
    let (a, _) = s.orgs().await;
    let officer = s.officer(&a).await;
    let org = s.org_id(&a).await;
    let cert = s.certification_ids(org).await[0];
    let requirements: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM requirements WHERE organization_id = $1 ORDER BY id LIMIT 50",
    )
    .bind(org)
    .fetch_all(&s.pool)
    .await
    .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    // a writer: a status change every 20 ms, through a pool of the test's own
    // (its failures while the database is down are expected, not counted)
    let committed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (url, stop, committed) = (s.pool.connect_options(), stop.clone(), committed.clone());
        let requirements = requirements.clone();
        tokio::spawn(async move {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(2)
                .acquire_timeout(Duration::from_secs(1))
                .connect_lazy_with((*url).clone());
            let mut n = 0usize;
            while !stop.load(Relaxed) {
                let id = requirements[n % requirements.len()];
                n += 1;
                let r = sqlx::query(
                    "UPDATE requirements SET status = CASE WHEN status = 'failed' \
                     THEN 'in_progress' ELSE 'failed' END WHERE id = $1",
                )
                .bind(id)
                .execute(&pool)
                .await;
                if r.is_ok() {
                    committed.fetch_add(1, Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // readers: a search (answered from the index) and a detail (read from
    // PostgreSQL), each answer's status and time kept
    type Answer = (&'static str, u16, Value);
    let answers = Arc::new(std::sync::Mutex::new(Vec::<Answer>::new()));
    let reader = {
        let (s, officer, stop, answers) =
            (s.clone(), officer.clone(), stop.clone(), answers.clone());
        tokio::spawn(async move {
            let detail = format!("/v1/certifications/{cert}");
            let search = Params::new().with("q", "access").with("limit", 5);
            while !stop.load(Relaxed) {
                for (what, r) in [
                    (
                        "search",
                        tokio::time::timeout(
                            Duration::from_secs(15),
                            s.search_response(&officer, &search),
                        )
                        .await,
                    ),
                    (
                        "detail",
                        tokio::time::timeout(Duration::from_secs(15), s.get(&officer, &detail))
                            .await,
                    ),
                ] {
                    let (status, body) = match r {
                        Ok(r) => (
                            r.status().as_u16(),
                            r.json::<Value>().await.unwrap_or(Value::Null),
                        ),
                        Err(_) => (0, Value::Null),
                    };
                    answers.lock().unwrap().push((what, status, body));
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let before_crash = committed.load(Relaxed);
    let crashed_at = answers.lock().unwrap().len();
    certscope_store::testing::server()
        .await
        .crash_and_restart(Duration::from_secs(3))
        .await
        .expect("crash and restart the cluster");
    let restarted_at = answers.lock().unwrap().len();
    // the writer gets through again, then everyone stops
    let deadline = Instant::now() + Duration::from_secs(30);
    let after_restart = committed.load(Relaxed);
    while committed.load(Relaxed) < after_restart + 10 {
        assert!(
            Instant::now() < deadline,
            "writes did not resume within 30 s of the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Relaxed);
    writer.await.unwrap();
    reader.await.unwrap();
    assert!(before_crash > 5, "the writer ran before the crash");

    let answers = answers.lock().unwrap().clone();
    for (what, status, body) in &answers {
        assert!(
            *status == 200 || *status == 503,
            "a {what} answered {status} (0: no answer within 15 s): {body}"
        );
        if *status == 503 {
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
        }
    }
    let during = &answers[crashed_at..restarted_at.max(crashed_at)];
    assert!(
        during.iter().any(|(w, st, _)| *w == "detail" && *st == 503),
        "a detail read while the database was down is refused with 503 ({} answers then)",
        during.len()
    );
    assert!(
        during.iter().any(|(w, st, _)| *w == "search" && *st == 200),
        "searches keep answering from the index while the database is down"
    );
    let count = |w: &str, st: u16| {
        during
            .iter()
            .filter(|(x, y, _)| *x == w && *y == st)
            .count()
    };
    eprintln!(
        "{} answers, {} while the database was down: search 200 x{}, detail 503 x{}, detail 200 x{}; {} writes committed",
        answers.len(),
        during.len(),
        count("search", 200),
        count("detail", 503),
        count("detail", 200),
        committed.load(Relaxed)
    );
    let tail = &answers[answers.len().saturating_sub(4)..];
    assert!(
        tail.iter().all(|(_, st, _)| *st == 200),
        "everything answers again after the restart: {:?}",
        tail.iter().map(|(w, st, _)| (w, st)).collect::<Vec<_>>()
    );

    // nothing lost: the index and the event feed caught up with every commit
    s.assert_index_equals_database().await;
    s.events_fed().await;
    let ready = s.get_anonymous("/readyz").await;
    assert_eq!(ready.status(), 200);
}
