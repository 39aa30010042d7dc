//! Durable storage of the real node: one WAL and one snapshot per group.
//!
//! Guarantees: nothing the runtime acknowledges is lost by a crash, because
//! [`GroupStorage::sync`] fsyncs before it returns (one fsync per batch),
//! and [`GroupStorage::durable`] reports a write made by
//! [`GroupStorage::start_sync`] only after the sync thread fsynced it;
//! every record carries a CRC32; recovery truncates a torn tail and refuses
//! to start on corruption in the middle with an error naming file and
//! offset; every path carries the group id (`<data-dir>/group-<id>/`).

pub mod group_storage;
pub mod record;
pub mod snapshot_file;
pub mod syncer;
pub mod wal;

pub use group_storage::GroupStorage;

use std::path::{Path, PathBuf};

/// What can go wrong with storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is corrupt at byte offset {offset}: {reason}; refusing to start (move the data directory away to start empty)", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The core broke the storage contract (a bug, not bad data).
    #[error("storage contract violated: {0}")]
    Contract(String),
}

impl StorageError {
    pub fn io(file: &Path, source: std::io::Error) -> StorageError {
        StorageError::Io {
            file: file.to_path_buf(),
            source,
        }
    }
}
