//! Recovery: an unusable index is set aside and rebuilt at start.

mod common;

use certscope_indexer::index_store;
use common::Fixture;

fn aside_dirs(fx: &Fixture) -> Vec<String> {
    std::fs::read_dir(fx.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".broken-"))
        .collect()
}

#[tokio::test]
async fn a_corrupt_index_is_set_aside_and_rebuilt_at_start() {
    let fx = Fixture::seeded().await;
    certscope_indexer::catch_up(&fx.config()).await.unwrap();
    let meta = fx.config().index_dir.join("meta.json");
    std::fs::write(&meta, b"{ this is not json").unwrap();
    assert!(matches!(
        index_store::inspect(&fx.config().index_dir),
        Err(index_store::Unusable::Corrupt(_))
    ));

    let handle = fx.start();
    fx.assert_converged(&handle).await;
    assert_eq!(
        aside_dirs(&fx).len(),
        1,
        "the corrupt index is kept for inspection"
    );
}

#[tokio::test]
async fn an_index_of_another_schema_version_is_rebuilt_not_misread() {
    let fx = Fixture::seeded().await;
    certscope_indexer::catch_up(&fx.config()).await.unwrap();
    let meta_path = fx.config().index_dir.join("meta.json");
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&meta_path).unwrap()).unwrap();
    let mut payload: serde_json::Value =
        serde_json::from_str(meta["payload"].as_str().unwrap()).unwrap();
    payload["schema_version"] = 999.into();
    meta["payload"] = payload.to_string().into();
    std::fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();
    assert!(matches!(
        index_store::inspect(&fx.config().index_dir),
        Err(index_store::Unusable::SchemaVersion { found: 999 })
    ));

    let handle = fx.start();
    fx.assert_converged(&handle).await;
    assert_eq!(aside_dirs(&fx).len(), 1);
    let (_, _, payload) = index_store::open_read_only(&fx.config().index_dir).unwrap();
    assert_eq!(
        payload.unwrap().schema_version,
        certscope_indexer::schema::SCHEMA_VERSION
    );
}

#[tokio::test]
async fn a_rebuilt_evidence_document_equals_the_incrementally_rendered_one() {
    use certscope_domain::Kind;
    use tantivy::Document;
    let fx = Fixture::seeded().await;
    certscope_indexer::catch_up(&fx.config()).await.unwrap();
    let (index, fields, _) = index_store::open_read_only(&fx.config().index_dir).unwrap();
    let reader = index.reader().unwrap();
    let view = certscope_indexer::IndexView {
        index: index.clone(),
        reader,
        fields: fields.clone(),
        position: certscope_indexer::IndexPosition {
            snapshot: common::snapshot(&fx.pool).await,
            generation: 0,
        },
        versions: Default::default(),
    };
    let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM evidence ORDER BY id LIMIT 50")
        .fetch_all(&fx.pool)
        .await
        .unwrap();
    let mut conn = fx.pool.acquire().await.unwrap();
    let rendered =
        certscope_indexer::documents::render_ids(&mut conn, &fields, Kind::Evidence, &ids)
            .await
            .unwrap();
    assert_eq!(rendered.len(), ids.len());
    let schema = index.schema();
    let stored: Vec<String> = schema
        .fields()
        .filter(|(_, entry)| entry.is_stored())
        .map(|(_, entry)| entry.name().to_owned())
        .collect();
    for r in rendered {
        let rebuilt = common::document(&view, Kind::Evidence, r.id).unwrap();
        let rebuilt: serde_json::Value = serde_json::from_str(&rebuilt.to_json(&schema)).unwrap();
        let mut fresh: serde_json::Value = serde_json::from_str(&r.doc.to_json(&schema)).unwrap();
        fresh
            .as_object_mut()
            .unwrap()
            .retain(|k, _| stored.contains(k));
        assert_eq!(rebuilt, fresh, "evidence {}", r.id);
    }
}
