//! The indexer's one error type: what failed, and what the indexer was doing
//! when it did, so a failed rebuild says "rebuilding the index", not "reading the
//! change log".

use crate::index_store::StoreError;
use crate::position::SnapshotParseError;

/// What the indexer (or the event deriver) was doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Connecting,
    ReadingChanges,
    RenderingDocuments,
    Rebuilding,
    PruningChanges,
    CheckingIndex,
    DerivingEvents,
    AppendingEvents,
    SweepingExpiry,
    PruningEvents,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Connecting => "connecting to the database",
            Operation::ReadingChanges => "reading the change log",
            Operation::RenderingDocuments => "rendering documents",
            Operation::Rebuilding => "rebuilding the index",
            Operation::PruningChanges => "pruning the change log",
            Operation::CheckingIndex => "comparing the index with the database",
            Operation::DerivingEvents => "deriving live events",
            Operation::AppendingEvents => "appending live events",
            Operation::SweepingExpiry => "announcing expired evidence",
            Operation::PruningEvents => "pruning live events",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error("database error while {op}")]
    Db {
        op: Operation,
        #[source]
        source: sqlx::Error,
    },
    #[error("unreadable snapshot while {op}")]
    Snapshot {
        op: Operation,
        #[source]
        source: SnapshotParseError,
    },
    #[error("change_log names an entity {0:?} this version does not know (a newer schema?)")]
    UnknownEntity(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
        matches!(self, IndexerError::Db { .. })
    }

    /// The index's own storage failed (a write refused, a file gone): the
    /// indexer drops its writer, reopens or rebuilds the index, and retries,
    /// while searches answer from the last commit. Another indexer holding the
    /// lock is not such a fault: it is a second writer, refused at start.
    pub fn is_index_fault(&self) -> bool {
        matches!(
            self,
            IndexerError::Store(StoreError::Tantivy { .. } | StoreError::Io { .. })
        )
    }

    /// Whether somewhere in the chain the disk said it is full (ENOSPC, EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = source {
            let io = e.downcast_ref::<std::io::Error>().or_else(|| {
                e.downcast_ref::<std::sync::Arc<std::io::Error>>()
                    .map(|a| a.as_ref())
            });
            if let Some(io) = io
                && (io.kind() == std::io::ErrorKind::StorageFull
                    || io.kind() == std::io::ErrorKind::QuotaExceeded)
            {
                return true;
            }
            // tantivy keeps some I/O errors as text only: ENOSPC is 28, EDQUOT 122
            let text = e.to_string();
            if ["(os error 28)", "(os error 122)", "No space left on device"]
                .iter()
                .any(|t| text.contains(t))
            {
                return true;
            }
            source = e.source();
        }
        false
    }

    /// The operation that failed, where one is known.
    pub fn operation(&self) -> Option<Operation> {
        match self {
            IndexerError::Db { op, .. } | IndexerError::Snapshot { op, .. } => Some(*op),
            _ => None,
        }
    }
}

/// Attaches the operation to a lower-level error: `.during(Operation::Rebuilding)?`.
pub trait During<T> {
    fn during(self, op: Operation) -> Result<T, IndexerError>;
}

impl<T> During<T> for Result<T, sqlx::Error> {
    fn during(self, op: Operation) -> Result<T, IndexerError> {
        self.map_err(|source| IndexerError::Db { op, source })
    }
}

impl<T> During<T> for Result<T, SnapshotParseError> {
    fn during(self, op: Operation) -> Result<T, IndexerError> {
        self.map_err(|source| IndexerError::Snapshot { op, source })
    }
}

pub type Result<T, E = IndexerError> = std::result::Result<T, E>;
