//! The seed generator: deterministic, realistic distributions.

use certscope_store::seed::{Preset, SeedConfig, seed};
use certscope_store::testing::TestDb;
use chrono::NaiveDate;
use sqlx::PgPool;

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
}

async fn content_digest(pool: &PgPool) -> String {
    sqlx::query_scalar(
        "SELECT md5(concat_ws('|', \
            (SELECT string_agg(concat_ws(',', id, slug, name), ';' ORDER BY id) FROM organizations), \
            (SELECT string_agg(concat_ws(',', id, email, display_name, role), ';' ORDER BY id) FROM users), \
            (SELECT string_agg(concat_ws(',', id, name, status, owner_id, started_on, target_date), ';' ORDER BY id) FROM certifications), \
            (SELECT string_agg(concat_ws(',', id, control_id, status, owner_id, due_date), ';' ORDER BY id) FROM requirements), \
            (SELECT string_agg(concat_ws(',', id, requirement_id, title, sha256, status, collected_on, expires_on), ';' ORDER BY id) FROM evidence), \
            (SELECT string_agg(concat_ws(',', id, title, inherent_likelihood, inherent_impact, residual_likelihood, residual_impact, treatment, status), ';' ORDER BY id) FROM risks), \
            (SELECT string_agg(concat_ws(',', entity, entity_id, from_status, to_status, changed_at), ';' ORDER BY id) FROM status_history)))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_same_seed_gives_the_same_data_and_another_seed_does_not() {
    let config = SeedConfig::preset(Preset::Small, 7, as_of());
    let mut digests = Vec::new();
    for seed_value in [7, 7, 8] {
        let db = TestDb::with_catalogs().await;
        let pool = db.pool().await;
        seed(
            &pool,
            &SeedConfig {
                seed: seed_value,
                ..config.clone()
            },
        )
        .await
        .unwrap();
        digests.push(content_digest(&pool).await);
    }
    assert_eq!(digests[0], digests[1]);
    assert_ne!(digests[0], digests[2]);
}

#[tokio::test]
async fn seeded_distributions_look_like_a_real_programme() {
    let db = TestDb::with_catalogs().await;
    let pool = db.pool().await;
    let report = seed(&pool, &SeedConfig::preset(Preset::Demo, 42, as_of()))
        .await
        .unwrap();
    assert_eq!(report.organizations, 4);

    let cert_statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM certifications ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        cert_statuses,
        [
            "certified",
            "expired",
            "in_progress",
            "planned",
            "under_audit",
            "withdrawn"
        ]
    );
    let req_statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM requirements ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        req_statuses,
        [
            "failed",
            "implemented",
            "in_progress",
            "not_applicable",
            "not_started"
        ]
    );
    let evidence_statuses: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT status FROM evidence ORDER BY 1")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(evidence_statuses, ["accepted", "pending", "rejected"]);

    let (expired, in_30, in_60, in_90): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE expires_on < $1), \
                count(*) FILTER (WHERE expires_on >= $1 AND expires_on < $1 + 30), \
                count(*) FILTER (WHERE expires_on >= $1 + 30 AND expires_on < $1 + 60), \
                count(*) FILTER (WHERE expires_on >= $1 + 60 AND expires_on < $1 + 90) FROM evidence",
    )
    .bind(as_of())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        expired > 0 && in_30 > 0 && in_60 > 0 && in_90 > 0,
        "{expired} {in_30} {in_60} {in_90}"
    );

    // every cell of the 5x5 inherent grid is used, and treatment lowers residual risk
    let cells: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT (inherent_likelihood, inherent_impact)) FROM risks",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(cells, 25);
    let lowered: f64 = sqlx::query_scalar(
        "SELECT avg((residual_likelihood * residual_impact < inherent_likelihood * inherent_impact)::int)::float8 \
         FROM risks WHERE treatment <> 'accept'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(lowered > 0.6, "{lowered}");

    // evidence text mentions the control it supports
    let mentions: f64 = sqlx::query_scalar(
        "SELECT avg((e.content LIKE '%' || c.display_id || '%' OR e.content ILIKE '%' || c.title || '%')::int)::float8 \
         FROM evidence e JOIN requirements r ON r.id = e.requirement_id JOIN controls c ON c.id = r.control_id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(mentions > 0.99, "{mentions}");

    // the history ends in every row's current status, and spans a year
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM requirements r WHERE r.status <> (SELECT h.to_status FROM status_history h \
         WHERE h.entity = 'requirement' AND h.entity_id = r.id ORDER BY h.changed_at DESC, h.id DESC LIMIT 1)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(mismatched, 0);
    // every risk's assessments end in its current ratings; treated risks were
    // first assessed at their inherent level, so some moved on the grid
    let (risks, rated_now, moved): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), \
                count(*) FILTER (WHERE (k.inherent_likelihood, k.inherent_impact, k.residual_likelihood, k.residual_impact) \
                                     = (l.inherent_likelihood, l.inherent_impact, l.residual_likelihood, l.residual_impact)), \
                count(*) FILTER (WHERE (SELECT count(*) FROM risk_ratings r WHERE r.risk_id = k.id) > 1) \
           FROM risks k \
           CROSS JOIN LATERAL (SELECT * FROM risk_ratings r WHERE r.risk_id = k.id \
                                ORDER BY r.changed_at DESC, r.id DESC LIMIT 1) l",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let all_risks: i64 = sqlx::query_scalar("SELECT count(*) FROM risks")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((risks, rated_now), (all_risks, all_risks));
    assert!(moved > 0, "no risk was reassessed");
    let span_days: i32 = sqlx::query_scalar(
        "SELECT (max(changed_at)::date - min(changed_at)::date) FROM status_history",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(span_days >= 365, "{span_days}");
    // non-Latin organization names survive the round trip
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM organizations ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(names.contains(&"さくらクラウド株式会社".to_owned()));
    assert!(names.contains(&"Ελληνικό Δίκτυο Ενέργειας Α.Ε.".to_owned()));
}

#[tokio::test]
async fn seeding_twice_is_refused_and_needs_catalogs() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let config = SeedConfig::preset(Preset::Small, 1, as_of());
    let err = seed(&pool, &config).await.unwrap_err();
    assert!(err.to_string().contains("import a catalog first"), "{err}");
    certscope_store::bootstrap::import_shipped_catalogs(&pool)
        .await
        .unwrap();
    seed(&pool, &config).await.unwrap();
    let err = seed(&pool, &config).await.unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}
