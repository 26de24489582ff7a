//! Certscope's indexer: tails PostgreSQL changes into the tantivy index, the only
//! writer of that index. Owns the schema (the contract with query-api), change
//! capture, checkpoints (the position in each commit's payload), rebuilds and the
//! published index position. Knows nothing of HTTP.

pub mod analysis;
pub mod change_feed;
pub mod documents;
pub mod events;
pub mod index_store;
pub mod metrics;
pub mod position;
pub mod rebuild;
pub mod runner;
pub mod schema;
pub mod sync;
pub mod verify;

pub use position::{IndexPosition, Snapshot};
pub use runner::{IndexView, IndexerConfig, IndexerHandle, catch_up, spawn, wait_for_view};

/// The channel the change-capture triggers notify on.
pub const NOTIFY_CHANNEL: &str = "certscope_changes";

#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error(transparent)]
    Feed(#[from] change_feed::FeedError),
    #[error(transparent)]
    Store(#[from] index_store::StoreError),
    #[error(transparent)]
    Sync(#[from] sync::SyncError),
    #[error(
        "index position {position} is older than the retained change log (pruned below {pruned_below})"
    )]
    NeedsRebuild { position: u64, pruned_below: u64 },
    #[error("the index has no committed position")]
    NoPosition,
    #[error("failed to start the indexer runtime")]
    Runtime(#[source] std::io::Error),
    #[error("the indexer thread panicked")]
    Panicked,
}

impl IndexerError {
    /// Errors worth retrying: the database went away or a query failed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            IndexerError::Feed(change_feed::FeedError::Db(_))
                | IndexerError::Sync(sync::SyncError::Db(_))
        )
    }
}
