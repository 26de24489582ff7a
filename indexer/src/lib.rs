//! Certscope's indexer: tails PostgreSQL changes into the tantivy index, the only
//! writer of that index. Owns the schema (the contract with query-api), change
//! capture, checkpoints (the position in each commit's payload), rebuilds and the
//! published index position. Knows nothing of HTTP.

pub mod analysis;
pub mod change_feed;
pub mod directory;
pub mod documents;
pub mod error;
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
pub use runner::{
    IndexView, IndexerConfig, IndexerHandle, OrgVersions, catch_up, spawn, wait_for_view,
};

/// The channel the change-capture triggers notify on.
pub const NOTIFY_CHANNEL: &str = "certscope_changes";

pub use error::{IndexerError, Operation};
