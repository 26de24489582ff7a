//! The schema rejects rows the domain forbids.

use certscope_store::testing::TestDb;
use sqlx::PgPool;

struct Fixture {
    org_a: i64,
    org_b: i64,
    cert_b: i64,
    req_a: i64,
    control: i64,
}

async fn fixture(pool: &PgPool) -> Fixture {
    let org_a: i64 =
        sqlx::query_scalar("INSERT INTO organizations (slug, name) VALUES ('a', 'A') RETURNING id")
            .fetch_one(pool)
            .await
            .unwrap();
    let org_b: i64 =
        sqlx::query_scalar("INSERT INTO organizations (slug, name) VALUES ('b', 'B') RETURNING id")
            .fetch_one(pool)
            .await
            .unwrap();
    let control: i64 =
        sqlx::query_scalar("SELECT id FROM controls WHERE control_key = 'ac-2' LIMIT 1")
            .fetch_one(pool)
            .await
            .unwrap();
    let cert = |org: i64| {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO certifications (organization_id, framework_id, name, status, started_on, target_date) \
             SELECT $1, framework_id, 'C', 'in_progress', DATE '2026-01-01', DATE '2026-12-31' FROM controls WHERE id = $2 \
             RETURNING id",
        )
        .bind(org)
        .bind(control)
        .fetch_one(pool)
    };
    let cert_a = cert(org_a).await.unwrap();
    let cert_b = cert(org_b).await.unwrap();
    let req_a: i64 = sqlx::query_scalar(
        "INSERT INTO requirements (organization_id, certification_id, control_id, status) \
         VALUES ($1, $2, $3, 'in_progress') RETURNING id",
    )
    .bind(org_a)
    .bind(cert_a)
    .bind(control)
    .fetch_one(pool)
    .await
    .unwrap();
    Fixture {
        org_a,
        org_b,
        cert_b,
        req_a,
        control,
    }
}

fn constraint(err: sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) => db.constraint().unwrap_or(db.message()).to_owned(),
        other => panic!("expected a database error, got {other}"),
    }
}

#[tokio::test]
async fn unknown_statuses_and_scales_outside_one_to_five_are_rejected() {
    let db = TestDb::with_catalogs().await;
    let pool = db.pool().await;
    let f = fixture(&pool).await;
    let err = sqlx::query("UPDATE requirements SET status = 'done' WHERE id = $1")
        .bind(f.req_a)
        .execute(&pool)
        .await
        .unwrap_err();
    assert_eq!(constraint(err), "requirements_status_check");
    for (likelihood, ok) in [(0, false), (6, false), (1, true), (5, true)] {
        let result = sqlx::query(
            "INSERT INTO risks (organization_id, title, category, inherent_likelihood, inherent_impact, \
             residual_likelihood, residual_impact, treatment, status) VALUES ($1, 'r', 'security', $2, 3, 1, 1, 'mitigate', 'open')",
        )
        .bind(f.org_a)
        .bind(likelihood as i16)
        .execute(&pool)
        .await;
        assert_eq!(result.is_ok(), ok, "likelihood {likelihood}");
    }
    let err = sqlx::query(
        "INSERT INTO risks (organization_id, title, category, inherent_likelihood, inherent_impact, \
         residual_likelihood, residual_impact, treatment, status) VALUES ($1, 'r', 'security', 2, 2, 4, 4, 'mitigate', 'open')",
    )
    .bind(f.org_a)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(constraint(err), "risks_check", "residual above inherent");
}

#[tokio::test]
async fn evidence_without_organization_is_rejected() {
    let db = TestDb::with_catalogs().await;
    let pool = db.pool().await;
    let f = fixture(&pool).await;
    let err = sqlx::query(
        "INSERT INTO evidence (requirement_id, title, file_name, media_type, sha256, status, collected_on) \
         VALUES ($1, 't', 'f.pdf', 'application/pdf', repeat('a', 64), 'pending', DATE '2026-01-01')",
    )
    .bind(f.req_a)
    .execute(&pool)
    .await
    .unwrap_err();
    assert!(constraint(err).contains("null value in column \"organization_id\""));
    let err = sqlx::query(
        "INSERT INTO evidence (organization_id, requirement_id, title, file_name, media_type, sha256, status, collected_on) \
         VALUES ($1, $2, 't', 'f.pdf', 'application/pdf', 'not-a-hash', 'pending', DATE '2026-01-01')",
    )
    .bind(f.org_a)
    .bind(f.req_a)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(constraint(err), "evidence_sha256_check");
}

#[tokio::test]
async fn links_across_organizations_are_rejected() {
    let db = TestDb::with_catalogs().await;
    let pool = db.pool().await;
    let f = fixture(&pool).await;
    // a requirement of org A pointing at a certification of org B
    let err = sqlx::query(
        "INSERT INTO requirements (organization_id, certification_id, control_id, status) VALUES ($1, $2, $3, 'not_started')",
    )
    .bind(f.org_a)
    .bind(f.cert_b)
    .bind(f.control)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(
        constraint(err),
        "requirements_organization_id_certification_id_fkey"
    );
    // evidence of org B attached to a requirement of org A
    let err = sqlx::query(
        "INSERT INTO evidence (organization_id, requirement_id, title, file_name, media_type, sha256, status, collected_on) \
         VALUES ($1, $2, 't', 'f.pdf', 'application/pdf', repeat('a', 64), 'pending', DATE '2026-01-01')",
    )
    .bind(f.org_b)
    .bind(f.req_a)
    .execute(&pool)
    .await
    .unwrap_err();
    assert_eq!(
        constraint(err),
        "evidence_organization_id_requirement_id_fkey"
    );
}

#[tokio::test]
async fn versions_history_and_change_capture_follow_every_write() {
    let db = TestDb::with_catalogs().await;
    let pool = db.pool().await;
    let f = fixture(&pool).await;
    let mut tx = pool.begin().await.unwrap();
    for status in ["implemented", "failed", "implemented"] {
        sqlx::query("UPDATE requirements SET status = $2 WHERE id = $1")
            .bind(f.req_a)
            .bind(status)
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let version: i64 = sqlx::query_scalar("SELECT version FROM requirements WHERE id = $1")
        .bind(f.req_a)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, 4);
    let history: Vec<(Option<String>, String)> = sqlx::query_as(
        "SELECT from_status, to_status FROM status_history WHERE entity = 'requirement' AND entity_id = $1 ORDER BY id",
    )
    .bind(f.req_a)
    .fetch_all(&pool)
    .await
    .unwrap();
    let history: Vec<(Option<&str>, &str)> = history
        .iter()
        .map(|(a, b)| (a.as_deref(), b.as_str()))
        .collect();
    assert_eq!(
        history,
        [
            (None, "in_progress"),
            (Some("in_progress"), "implemented"),
            (Some("implemented"), "failed"),
            (Some("failed"), "implemented")
        ]
    );
    let changes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM change_log WHERE entity = 'requirement' AND row_id = $1",
    )
    .bind(f.req_a)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(changes, 4);
    let err = sqlx::query("UPDATE status_history SET to_status = 'x'")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("TRUNCATE evidence CASCADE")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("change capture"), "{err}");
}

#[tokio::test]
async fn every_reassessment_of_a_risk_is_recorded_and_nothing_else() {
    let db = TestDb::with_catalogs().await;
    let pool = db.pool().await;
    let f = fixture(&pool).await;
    let risk: i64 = sqlx::query_scalar(
        "INSERT INTO risks (organization_id, title, category, inherent_likelihood, inherent_impact, \
                            residual_likelihood, residual_impact, treatment, status) \
         VALUES ($1, 'Stale vendor access', 'third_party', 4, 4, 4, 4, 'mitigate', 'open') RETURNING id",
    )
    .bind(f.org_a)
    .fetch_one(&pool)
    .await
    .unwrap();
    for update in [
        // a status change alone moves nothing on the grid
        "UPDATE risks SET status = 'treating' WHERE id = $1",
        "UPDATE risks SET residual_likelihood = 2 WHERE id = $1",
        // the same ratings written again: no new assessment
        "UPDATE risks SET residual_likelihood = 2, title = 'Stale vendor accounts' WHERE id = $1",
        "UPDATE risks SET inherent_impact = 5, residual_impact = 3 WHERE id = $1",
    ] {
        sqlx::query(update).bind(risk).execute(&pool).await.unwrap();
    }
    let ratings: Vec<(i16, i16, i16, i16)> = sqlx::query_as(
        "SELECT inherent_likelihood, inherent_impact, residual_likelihood, residual_impact \
           FROM risk_ratings WHERE risk_id = $1 ORDER BY id",
    )
    .bind(risk)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(ratings, [(4, 4, 4, 4), (4, 4, 2, 4), (4, 5, 2, 3)]);
    let err = sqlx::query("UPDATE risk_ratings SET residual_impact = 1")
        .execute(&pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
}
