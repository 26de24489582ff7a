//! The rules PostgreSQL applies itself (migration 0005) agree with their Rust
//! twins on generated cases, and the schema's CHECK lists are exactly the
//! domain's statuses and roles.

use certscope_domain::evidence::valid_on;
use certscope_domain::{Completion, EvidenceStatus, Kind, RequirementStatus, Role, Status};
use certscope_store::testing::TestDb;
use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::PgPool;

const CASES: usize = 2_000;

fn day(n: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 1, 1).unwrap() + chrono::Duration::days(n)
}

#[tokio::test]
async fn completion_in_sql_equals_completion_in_rust_on_generated_certifications() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut groups: Vec<Vec<&str>> = Vec::new();
    for _ in 0..CASES {
        let n = rng.random_range(0..40);
        let statuses = (0..n)
            .map(|_| {
                let all = RequirementStatus::ALL;
                all[rng.random_range(0..all.len())].as_str()
            })
            .collect();
        groups.push(statuses);
    }
    // one round trip: group number, status
    let (mut group_ids, mut statuses) = (Vec::new(), Vec::new());
    for (g, list) in groups.iter().enumerate() {
        for s in list {
            group_ids.push(g as i64);
            statuses.push(s.to_string());
        }
    }
    let rows: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT g, certscope_completion(s) FROM unnest($1::bigint[], $2::text[]) AS t(g, s) \
         GROUP BY g ORDER BY g",
    )
    .bind(&group_ids)
    .bind(&statuses)
    .fetch_all(&pool)
    .await
    .expect("aggregate");
    let from_sql: std::collections::HashMap<i64, f64> = rows.into_iter().collect();
    for (g, list) in groups.iter().enumerate() {
        let rust = Completion::of(list.iter().map(|s| RequirementStatus::parse(s).unwrap())).pct();
        // an empty certification has no rows to aggregate: 0 in both
        let sql = from_sql.get(&(g as i64)).copied().unwrap_or(0.0);
        assert_eq!(sql, rust, "statuses {list:?}");
    }
}

#[tokio::test]
async fn completion_percentages_agree_on_every_rounding_boundary() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let (mut parts, mut wholes) = (Vec::new(), Vec::new());
    for whole in 0..=400i64 {
        for part in 0..=whole {
            parts.push(part);
            wholes.push(whole);
        }
    }
    let sql: Vec<f64> = sqlx::query_scalar(
        "SELECT certscope_completion_pct(p, w) FROM unnest($1::bigint[], $2::bigint[]) \
         WITH ORDINALITY AS t(p, w, i) ORDER BY i",
    )
    .bind(&parts)
    .bind(&wholes)
    .fetch_all(&pool)
    .await
    .expect("pct");
    for ((p, w), sql) in parts.iter().zip(&wholes).zip(sql) {
        let rust = Completion {
            implemented: *p as u64,
            applicable: *w as u64,
        }
        .pct();
        assert_eq!(sql, rust, "{p} of {w}");
    }
}

#[tokio::test]
async fn evidence_validity_in_sql_equals_the_rust_rule_on_generated_evidence() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut cases = Vec::new();
    for _ in 0..CASES {
        let status = EvidenceStatus::ALL[rng.random_range(0..EvidenceStatus::ALL.len())];
        let collected = day(rng.random_range(0..60));
        let expires = rng
            .random_bool(0.7)
            .then(|| collected + chrono::Duration::days(rng.random_range(0..60)));
        let at = day(rng.random_range(-5..130));
        cases.push((status, collected, expires, at));
    }
    let sql: Vec<bool> = sqlx::query_scalar(
        "SELECT certscope_evidence_valid_on(s, c, e, d) \
         FROM unnest($1::text[], $2::date[], $3::date[], $4::date[]) WITH ORDINALITY AS t(s, c, e, d, i) \
         ORDER BY i",
    )
    .bind(cases.iter().map(|c| c.0.as_str()).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| c.1).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| c.2).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| c.3).collect::<Vec<_>>())
    .fetch_all(&pool)
    .await
    .expect("validity");
    for (c, sql) in cases.iter().zip(sql) {
        assert_eq!(sql, valid_on(c.0, c.1, c.2, c.3), "{c:?}");
    }
}

#[tokio::test]
async fn the_coverage_index_still_serves_the_rule_it_is_built_from() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let mut tx = pool.begin().await.expect("tx");
    sqlx::query("SET LOCAL enable_seqscan = off")
        .execute(&mut *tx)
        .await
        .expect("set");
    // the report's probe (reports::load): one requirement's newest evidence
    // valid on a day, read backwards from the index alone
    let plan: Vec<String> = sqlx::query_scalar(
        "EXPLAIN SELECT collected_on FROM evidence \
          WHERE organization_id = 1 AND requirement_id = 1 AND certscope_evidence_counts(status) \
            AND certscope_evidence_in_window(collected_on, expires_on, current_date) \
          ORDER BY collected_on DESC LIMIT 1",
    )
    .fetch_all(&mut *tx)
    .await
    .expect("explain");
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index Only Scan Backward using evidence_coverage_idx"),
        "the covering partial index is not used alone:\n{plan}"
    );
}

/// The quoted values of a CHECK constraint on `table.column`.
async fn check_list(pool: &PgPool, table: &str, column: &str) -> Vec<String> {
    let defs: Vec<String> = sqlx::query_scalar(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c \
         JOIN pg_class t ON t.oid = c.conrelid \
         WHERE t.relname = $1 AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%' || $2 || '%ANY%'",
    )
    .bind(table)
    .bind(column)
    .fetch_all(pool)
    .await
    .expect("constraints");
    assert_eq!(
        defs.len(),
        1,
        "one CHECK list on {table}.{column}: {defs:?}"
    );
    defs[0]
        .split('\'')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_schema_allows_exactly_the_statuses_and_roles_the_domain_knows() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let names = |kind: Kind| -> Vec<String> {
        Status::all_of(kind)
            .into_iter()
            .map(|s| s.as_str().to_owned())
            .collect()
    };
    assert_eq!(
        check_list(&pool, "certifications", "status").await,
        names(Kind::Certification)
    );
    assert_eq!(
        check_list(&pool, "requirements", "status").await,
        names(Kind::Requirement)
    );
    assert_eq!(
        check_list(&pool, "evidence", "status").await,
        names(Kind::Evidence)
    );
    assert_eq!(
        check_list(&pool, "risks", "status").await,
        names(Kind::Risk)
    );
    assert_eq!(
        check_list(&pool, "users", "role").await,
        Role::ALL.map(|r| r.as_str().to_owned())
    );
    // the status history records the kinds that have statuses
    let with_status: Vec<String> = Kind::ALL
        .into_iter()
        .filter(|k| k.is_tenant())
        .map(|k| k.as_str().to_owned())
        .collect();
    assert_eq!(
        check_list(&pool, "status_history", "entity").await,
        with_status
    );
}

#[tokio::test]
async fn expiry_in_sql_equals_the_rust_rule() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let cases: Vec<(Option<NaiveDate>, NaiveDate)> = (-3..3)
        .flat_map(|e| [(Some(day(e)), day(0)), (None, day(e))])
        .collect();
    let sql: Vec<Option<bool>> = sqlx::query_scalar(
        "SELECT certscope_expired_by(e, d) FROM unnest($1::date[], $2::date[]) \
         WITH ORDINALITY AS t(e, d, i) ORDER BY i",
    )
    .bind(cases.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(cases.iter().map(|c| c.1).collect::<Vec<_>>())
    .fetch_all(&pool)
    .await
    .expect("expiry");
    for (c, sql) in cases.iter().zip(sql) {
        // no expiry: SQL says NULL (unknown), which every filter treats as false
        assert_eq!(
            sql.unwrap_or(false),
            certscope_domain::evidence::expired_by(c.0, c.1),
            "{c:?}"
        );
    }
}
