//! WAL sizing: the named bounds and the options checked against them.
//!
//! The WAL's bounds live in the daemon's `limits` module with every other maximum; the
//! relations that involve the record format are asserted here.

use super::error::WalError;
use super::record::{RECORD_BYTES_MAX, RECORD_HEADER_BYTES};

pub use crate::limits::{
    WAL_BUFFER_BYTES_MAX, WAL_PREWRITE_CHUNK_BYTES, WAL_REPLAY_READ_BYTES,
    WAL_SEGMENT_ALIGNMENT_BYTES, WAL_SEGMENT_BYTES, WAL_SEGMENT_BYTES_MAX, WAL_SEGMENT_BYTES_MIN,
};

// A maximal record always fits in an empty default segment and in the default buffer.
const _: () = assert!(RECORD_BYTES_MAX as u64 + WAL_SEGMENT_ALIGNMENT_BYTES <= WAL_SEGMENT_BYTES);
const _: () = assert!(RECORD_BYTES_MAX <= WAL_BUFFER_BYTES_MAX);
const _: () = assert!(WAL_SEGMENT_BYTES_MIN <= WAL_SEGMENT_BYTES);
const _: () = assert!(WAL_SEGMENT_BYTES <= WAL_SEGMENT_BYTES_MAX);
const _: () = assert!(WAL_SEGMENT_BYTES.is_multiple_of(WAL_SEGMENT_ALIGNMENT_BYTES));
const _: () = assert!(WAL_SEGMENT_BYTES_MIN.is_multiple_of(WAL_SEGMENT_ALIGNMENT_BYTES));
const _: () =
    assert!((WAL_PREWRITE_CHUNK_BYTES as u64).is_multiple_of(WAL_SEGMENT_ALIGNMENT_BYTES));
const _: () = assert!((WAL_REPLAY_READ_BYTES as u64).is_multiple_of(WAL_SEGMENT_ALIGNMENT_BYTES));
// Segment offsets and sizes are handled as usize in memory.
const _: () = assert!(WAL_SEGMENT_BYTES_MAX <= usize::MAX as u64);

/// Sizing of one core's WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// Size of each segment file, pre-written with zeros before use.
    pub segment_bytes: u64,
    /// Most bytes of records appended and not yet taken by a sync. A sync in flight
    /// holds up to as many again, so the WAL's buffers peak near twice this.
    pub buffer_bytes_max: usize,
    /// Largest record (header + payload) `append` accepts.
    pub record_bytes_max: usize,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: WAL_SEGMENT_BYTES,
            buffer_bytes_max: WAL_BUFFER_BYTES_MAX,
            record_bytes_max: RECORD_BYTES_MAX,
        }
    }
}

impl WalOptions {
    /// Checks the options against the WAL's bounds and each other.
    pub fn validate(&self) -> Result<(), WalError> {
        let invalid = |reason: String| Err(WalError::InvalidOptions { reason });
        if !(WAL_SEGMENT_BYTES_MIN..=WAL_SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return invalid(format!(
                "segment_bytes = {} is outside {WAL_SEGMENT_BYTES_MIN}..={WAL_SEGMENT_BYTES_MAX}",
                self.segment_bytes
            ));
        }
        if !self
            .segment_bytes
            .is_multiple_of(WAL_SEGMENT_ALIGNMENT_BYTES)
        {
            return invalid(format!(
                "segment_bytes = {} is not a multiple of {WAL_SEGMENT_ALIGNMENT_BYTES}",
                self.segment_bytes
            ));
        }
        if !(RECORD_HEADER_BYTES < self.record_bytes_max
            && self.record_bytes_max <= RECORD_BYTES_MAX)
        {
            return invalid(format!(
                "record_bytes_max = {} must be above {RECORD_HEADER_BYTES} and at most {RECORD_BYTES_MAX}",
                self.record_bytes_max
            ));
        }
        if self.record_bytes_max as u64 + WAL_SEGMENT_ALIGNMENT_BYTES > self.segment_bytes {
            return invalid(format!(
                "segment_bytes = {} cannot hold a record of record_bytes_max = {} plus a block",
                self.segment_bytes, self.record_bytes_max
            ));
        }
        if self.buffer_bytes_max < self.record_bytes_max {
            return invalid(format!(
                "buffer_bytes_max = {} is below record_bytes_max = {}: a maximal record could never be appended",
                self.buffer_bytes_max, self.record_bytes_max
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(WalOptions::default().validate().is_ok());
    }

    #[test]
    fn each_mistake_is_named() {
        let base = WalOptions::default();
        let cases = [
            (
                WalOptions {
                    segment_bytes: 4096,
                    ..base
                },
                "segment_bytes = 4096 is outside",
            ),
            (
                WalOptions {
                    segment_bytes: 64 * 1024 * 1024 + 512,
                    ..base
                },
                "not a multiple",
            ),
            (
                WalOptions {
                    record_bytes_max: 40,
                    ..base
                },
                "record_bytes_max = 40",
            ),
            (
                WalOptions {
                    segment_bytes: 1024 * 1024,
                    ..base
                },
                "cannot hold a record",
            ),
            (
                WalOptions {
                    buffer_bytes_max: 1000,
                    ..base
                },
                "buffer_bytes_max = 1000",
            ),
        ];
        for (options, expected) in cases {
            let message = options
                .validate()
                .expect_err("options must be refused")
                .to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }
}
