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
