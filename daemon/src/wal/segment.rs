//! Segment files: names, listing, creation (pre-written with zeros) and whole-file reads.

use super::dma::{align_down, sync_directory};
use super::error::WalError;
use super::options::{WAL_PREWRITE_CHUNK_BYTES, WAL_REPLAY_READ_BYTES, WAL_SEGMENT_BYTES_MAX};
use glommio::io::{DmaFile, OpenOptions};
use std::path::{Path, PathBuf};

/// Digits of the sequence number in a segment's file name.
const SEQUENCE_DIGITS: usize = 12;

/// `core-{core:03}-{sequence:012}.log`
pub(crate) fn segment_file_name(core: u32, sequence: u64) -> String {
    format!("core-{core:03}-{sequence:012}.log")
}

/// The sequence number of `file_name` if it names a segment of `core`.
pub(crate) fn parse_segment_file_name(file_name: &str, core: u32) -> Option<u64> {
    let sequence = file_name
        .strip_prefix(&format!("core-{core:03}-"))?
        .strip_suffix(".log")?;
    if sequence.len() != SEQUENCE_DIGITS || !sequence.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    sequence.parse().ok()
}

/// This core's segment files in `directory`, by ascending sequence.
pub(crate) fn list_segments(directory: &Path, core: u32) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut segments = Vec::new();
    // The directory holds a few segments per core: a blocking listing at open is short.
    let entries = std::fs::read_dir(directory).map_err(WalError::io("listing", directory))?;
    for entry in entries {
        let entry = entry.map_err(WalError::io("listing", directory))?;
        if let Some(sequence) = entry
            .file_name()
            .to_str()
            .and_then(|n| parse_segment_file_name(n, core))
        {
            segments.push((sequence, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(sequence, _)| *sequence);
    Ok(segments)
}

/// Highest index seen per shard in one segment: enough to decide, without rereading,
/// whether every record of the segment is below what the shards still need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ShardIndexMap {
    // A core holds a handful of shards: a short vector beats a map.
    entries: Vec<(u32, u64)>,
}

impl ShardIndexMap {
    /// Notes a record of `shard` at `index`.
    pub(crate) fn note(&mut self, shard: u32, index: u64) {
        match self.entries.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, max)) => *max = (*max).max(index),
            None => self.entries.push((shard, index)),
        }
    }

    /// True if every noted record is below `keep_from(shard)`.
    pub(crate) fn all_below(&self, keep_from: &impl Fn(u32) -> u64) -> bool {
        self.entries
            .iter()
            .all(|&(shard, max)| max < keep_from(shard))
    }
}

/// A new segment, pre-written with zeros and durable (data and directory entry).
#[derive(Debug)]
pub(crate) struct PreparedSegment {
    pub(crate) sequence: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: DmaFile,
    pub(crate) capacity: u64,
}

/// Creates segment `sequence` of `core` and fills it with zeros, so that later writes
/// never allocate (allocating writes add journal work to every fdatasync), then makes
/// its content and its directory entry durable before anyone writes a record to it.
pub(crate) async fn prepare_segment(
    directory: PathBuf,
    core: u32,
    sequence: u64,
    segment_bytes: u64,
) -> Result<PreparedSegment, WalError> {
    let path = directory.join(segment_file_name(core, sequence));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&path)
        .await
        .map_err(WalError::glommio("creating", &path))?;
    assert!(
        segment_bytes.is_multiple_of(file.alignment()),
        "validated segment size is not block aligned"
    );
    let mut position = 0;
    while position < segment_bytes {
        let chunk = (segment_bytes - position).min(WAL_PREWRITE_CHUNK_BYTES as u64) as usize;
        let mut zeros = file.alloc_dma_buffer(chunk);
        zeros.as_bytes_mut().fill(0);
        let written = file
            .write_at(zeros, position)
            .await
            .map_err(WalError::glommio("pre-writing", &path))?;
        if written != chunk {
            return Err(short_transfer("pre-writing", &path, written, chunk));
        }
        position += chunk as u64;
    }
    file.fdatasync()
        .await
        .map_err(WalError::glommio("syncing", &path))?;
    sync_directory(&directory)
        .await
        .map_err(WalError::io("syncing directory", &directory))?;
    Ok(PreparedSegment {
        sequence,
        path,
        file,
        capacity: segment_bytes,
    })
}

/// Reads a whole segment. Its size is bounded by [`WAL_SEGMENT_BYTES_MAX`] so a stray
/// huge file cannot make us allocate without bound.
pub(crate) async fn read_segment(path: &Path) -> Result<Vec<u8>, WalError> {
    let file = DmaFile::open(path)
        .await
        .map_err(WalError::glommio("opening", path))?;
    let size = file
        .file_size()
        .await
        .map_err(WalError::glommio("sizing", path))?;
    if size > WAL_SEGMENT_BYTES_MAX {
        return Err(WalError::Corrupt {
            path: path.to_path_buf(),
            offset: WAL_SEGMENT_BYTES_MAX,
            reason: format!("segment of {size} bytes exceeds WAL_SEGMENT_BYTES_MAX"),
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    while (bytes.len() as u64) < size {
        let position = bytes.len() as u64;
        assert_eq!(
            position,
            align_down(position, file.alignment()),
            "reads stay block aligned"
        );
        let chunk = (size - position).min(WAL_REPLAY_READ_BYTES as u64) as usize;
        let read = file
            .read_at_aligned(position, chunk)
            .await
            .map_err(WalError::glommio("reading", path))?;
        if read.is_empty() {
            return Err(short_transfer("reading", path, bytes.len(), size as usize));
        }
        bytes.extend_from_slice(&read[..read.len().min(chunk)]);
    }
    file.close()
        .await
        .map_err(WalError::glommio("closing", path))?;
    Ok(bytes)
}

/// A write or read that moved fewer bytes than asked: with pre-written segments this
/// means the device or filesystem is failing.
pub(crate) fn short_transfer(
    operation: &'static str,
    path: &Path,
    done: usize,
    wanted: usize,
) -> WalError {
    WalError::Io {
        operation,
        path: path.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("transferred {done} of {wanted} bytes"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip() {
        assert_eq!(segment_file_name(3, 42), "core-003-000000000042.log");
        assert_eq!(
            parse_segment_file_name("core-003-000000000042.log", 3),
            Some(42)
        );
        assert_eq!(
            parse_segment_file_name("core-003-000000000042.log", 4),
            None
        );
        assert_eq!(parse_segment_file_name("core-003-42.log", 3), None);
        assert_eq!(
            parse_segment_file_name("core-003-00000000004x.log", 3),
            None
        );
        assert_eq!(
            parse_segment_file_name("core-003-000000000042.log.tmp", 3),
            None
        );
    }

    #[test]
    fn shard_index_map_keeps_the_maximum_per_shard() {
        let mut map = ShardIndexMap::default();
        map.note(1, 10);
        map.note(1, 5);
        map.note(2, 3);
        assert!(map.all_below(&|shard| if shard == 1 { 11 } else { 4 }));
        assert!(!map.all_below(&|shard| if shard == 1 { 10 } else { 4 }));
        assert!(!map.all_below(&|shard| if shard == 1 { 11 } else { 3 }));
        assert!(ShardIndexMap::default().all_below(&|_| 0));
    }
}
