//! The WAL's closed set of operating errors.

use std::{io, path::PathBuf};

/// What can go wrong opening, appending to, syncing or releasing a WAL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    /// A file operation failed; records that were not yet durable stay buffered.
    #[error("WAL I/O error while {operation} {path}: {source}")]
    Io {
        /// What the WAL was doing ("writing", "syncing", "opening", ...).
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log is damaged somewhere other than its tail: starting from it could lose
    /// or reorder records that were acknowledged.
    #[error(
        "WAL corrupt: {path} at byte offset {offset}: {reason}. The node refuses to start \
         from a damaged log: move {path} (and the segments after it) aside and restore this \
         node's shards from a peer"
    )]
    Corrupt {
        /// The damaged segment file.
        path: PathBuf,
        /// Byte offset of the damage inside that file.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// The append buffer is at its bound; sync before appending more (back-pressure).
    #[error("WAL buffer full: {buffered_bytes} bytes buffered, limit {limit_bytes}")]
    Full {
        /// Bytes appended and not yet taken by a sync.
        buffered_bytes: usize,
        /// `WalOptions::buffer_bytes_max`.
        limit_bytes: usize,
    },
    /// A record larger than `WalOptions::record_bytes_max` was refused.
    #[error("WAL record of {record_bytes} bytes exceeds the {limit_bytes}-byte limit")]
    RecordTooLarge {
        /// Header + payload bytes of the refused record.
        record_bytes: usize,
        /// `WalOptions::record_bytes_max`.
        limit_bytes: usize,
    },
    /// The options break a bound; the reason names the field.
    #[error("invalid WAL options: {reason}")]
    InvalidOptions {
        /// Which field is wrong and why.
        reason: String,
    },
    /// The replay callback refused a record.
    #[error("WAL replay stopped at {path} byte offset {offset}: {source}")]
    ReplayRejected {
        /// The segment holding the record.
        path: PathBuf,
        /// Byte offset of the record in that segment.
        offset: u64,
        /// The callback's error.
        #[source]
        source: Box<WalError>,
    },
    /// Invalid content the replay callback found in a record's payload.
    #[error("WAL record rejected: {reason}")]
    InvalidRecord {
        /// What is wrong with the payload.
        reason: String,
    },
}

impl WalError {
    /// Wraps an IO error with what the WAL was doing and on which path.
    pub(crate) fn io(
        operation: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            operation,
            path,
            source,
        }
    }

    /// Same as [`WalError::io`] for glommio's error type.
    pub(crate) fn glommio<T>(
        operation: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(glommio::GlommioError<T>) -> Self {
        let path = path.into();
        move |source| Self::Io {
            operation,
            path,
            source: source.into(),
        }
    }
}
