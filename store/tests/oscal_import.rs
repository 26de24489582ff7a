//! Importing OSCAL catalogs into a real PostgreSQL.

use certscope_store::catalogs::{NIST_800_53_HIGH, NIST_800_53_PRIVACY};
use certscope_store::oscal::import_catalog;
use certscope_store::testing::TestDb;
use sqlx::PgPool;

async fn fingerprint(pool: &PgPool) -> (i64, i64, i64, String) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM frameworks), (SELECT count(*) FROM controls), \
                (SELECT count(*) FROM change_log), \
                (SELECT md5(string_agg(c.control_key || c.version || c.title || c.statement, ',' ORDER BY c.id)) FROM controls c)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn both_shipped_catalogs_import_with_their_real_counts() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let high = import_catalog(&pool, &NIST_800_53_HIGH.json(), Some(NIST_800_53_HIGH.slug))
        .await
        .unwrap();
    assert_eq!(
        (high.families, high.controls, high.inserted),
        (18, 370, 370)
    );
    let privacy = import_catalog(
        &pool,
        &NIST_800_53_PRIVACY.json(),
        Some(NIST_800_53_PRIVACY.slug),
    )
    .await
    .unwrap();
    assert_eq!(privacy.controls, 102);

    let (families, enhancements): (i64, i64) = sqlx::query_as(
        "SELECT count(DISTINCT family_key), count(*) FILTER (WHERE parent_id IS NOT NULL) \
         FROM controls WHERE framework_id = $1",
    )
    .bind(high.framework_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(families, 18);
    assert!(
        enhancements > 100,
        "enhancements nest under their controls: {enhancements}"
    );
    let (display, parent, statement): (String, String, String) = sqlx::query_as(
        "SELECT c.display_id, p.display_id, c.statement FROM controls c JOIN controls p ON p.id = c.parent_id \
         WHERE c.framework_id = $1 AND c.control_key = 'ac-2.1'",
    )
    .bind(high.framework_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((display.as_str(), parent.as_str()), ("AC-2(1)", "AC-2"));
    assert!(
        statement.contains("[Assignment: automated mechanisms]"),
        "{statement}"
    );
}

#[tokio::test]
async fn a_second_import_changes_nothing() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    import_catalog(&pool, &NIST_800_53_HIGH.json(), Some(NIST_800_53_HIGH.slug))
        .await
        .unwrap();
    let before = fingerprint(&pool).await;
    let again = import_catalog(&pool, &NIST_800_53_HIGH.json(), Some(NIST_800_53_HIGH.slug))
        .await
        .unwrap();
    assert_eq!((again.inserted, again.updated, again.withdrawn), (0, 0, 0));
    assert_eq!(
        fingerprint(&pool).await,
        before,
        "no row, version or change record may move"
    );
}

#[tokio::test]
async fn a_changed_catalog_updates_in_place_and_withdraws_what_left() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    let first = import_catalog(&pool, &NIST_800_53_HIGH.json(), Some("high"))
        .await
        .unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&NIST_800_53_HIGH.json()).unwrap();
    let ac = &mut doc["catalog"]["groups"][0]["controls"];
    ac[0]["title"] = "Policy and Procedures (revised)".into();
    ac.as_array_mut().unwrap().remove(1); // ac-2 and its enhancements leave the catalog
    let bytes = serde_json::to_vec(&doc).unwrap();
    let second = import_catalog(&pool, &bytes, Some("high")).await.unwrap();
    assert_eq!(second.framework_id, first.framework_id);
    assert_eq!((second.inserted, second.updated), (0, 1));
    assert!(second.withdrawn >= 1);
    let (title, version): (String, i64) =
        sqlx::query_as("SELECT title, version FROM controls WHERE control_key = 'ac-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (title.as_str(), version),
        ("Policy and Procedures (revised)", 2)
    );
    let withdrawn: bool =
        sqlx::query_scalar("SELECT withdrawn FROM controls WHERE control_key = 'ac-2'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(withdrawn);
}

#[tokio::test]
async fn a_broken_file_leaves_the_database_unchanged_and_says_why() {
    let db = TestDb::migrated().await;
    let pool = db.pool().await;
    import_catalog(
        &pool,
        &NIST_800_53_PRIVACY.json(),
        Some(NIST_800_53_PRIVACY.slug),
    )
    .await
    .unwrap();
    let before = fingerprint(&pool).await;

    let high = NIST_800_53_HIGH.json();
    let truncated = &high[..high.len() / 2];
    let err = import_catalog(&pool, truncated, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("not valid JSON: EOF while parsing"),
        "{err}"
    );

    let mut doc: serde_json::Value = serde_json::from_slice(&NIST_800_53_HIGH.json()).unwrap();
    doc["catalog"]["groups"][3]["controls"][2]
        .as_object_mut()
        .unwrap()
        .remove("title");
    let err = import_catalog(&pool, &serde_json::to_vec(&doc).unwrap(), None)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid OSCAL catalog at `catalog.groups[3].controls[2]`: missing field `title`"
    );

    let err = import_catalog(&pool, br#"{"profile": {}}"#, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an OSCAL catalog"), "{err}");
    let err = import_catalog(&pool, &NIST_800_53_HIGH.json(), Some("Not A Slug"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("slug"), "{err}");

    assert_eq!(fingerprint(&pool).await, before);
}
