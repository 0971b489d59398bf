//! Recovery at open: replay every segment of a core in order, find where the log ends,
//! truncate a torn tail, and refuse damage anywhere else.

use super::dma::{align_down, align_up, sync_directory};
use super::error::WalError;
use super::options::WAL_SEGMENT_ALIGNMENT_BYTES;
use super::record::{RecordHeader, RecordScanner, ScanEnd};
use super::segment::{list_segments, read_segment, short_transfer, ShardIndexMap};
use glommio::io::{DmaFile, OpenOptions};
use rkyv::util::AlignedVec;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The segment that appends go to, with where its durable records end.
#[derive(Debug)]
pub(crate) struct ActiveSegment {
    pub(crate) sequence: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Rc<DmaFile>,
    /// Bytes usable for records: the pre-written size, block aligned.
    pub(crate) capacity: u64,
    /// Offset right after the last durable record.
    pub(crate) end: u64,
    /// The bytes from the block holding `end` up to `end`: O_DIRECT writes whole
    /// blocks, so the next write starts at that block and repeats them.
    pub(crate) tail: Vec<u8>,
    pub(crate) shards: ShardIndexMap,
}

/// A full segment kept until every record in it is released.
#[derive(Debug)]
pub(crate) struct ClosedSegment {
    pub(crate) sequence: u64,
    pub(crate) path: PathBuf,
    pub(crate) shards: ShardIndexMap,
}

/// What recovery found.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) closed: VecDeque<ClosedSegment>,
    /// `None` when no segment holds anything: the caller starts a fresh segment.
    pub(crate) active: Option<ActiveSegment>,
    /// Sequence for a fresh segment when `active` is `None`.
    pub(crate) fresh_sequence: u64,
}

/// What one segment's scan left to decide the log's end with.
struct SegmentScan {
    sequence: u64,
    path: PathBuf,
    end: ScanEnd,
    records: usize,
    shards: ShardIndexMap,
    size: u64,
    /// Offset after the last non-zero byte: how far a torn tail may reach.
    nonzero_end: u64,
    /// Bytes from the last `WAL_SEGMENT_ALIGNMENT_BYTES` boundary up to `end`.
    tail: Vec<u8>,
}

impl SegmentScan {
    /// Holds records, or bytes that were meant to become records.
    fn has_content(&self) -> bool {
        self.records > 0 || !matches!(self.end, ScanEnd::Clean { .. })
    }
}

/// Replays the segments of `core` in `directory`, calling `on_record` for each valid
/// record with its payload copied into a 16-byte aligned buffer.
pub(crate) async fn recover(
    directory: &Path,
    core: u32,
    on_record: &mut impl FnMut(RecordHeader, &[u8]) -> Result<(), WalError>,
) -> Result<Recovered, WalError> {
    let segments = list_segments(directory, core)?;
    for pair in segments.windows(2) {
        if pair[1].0 != pair[0].0 + 1 {
            return Err(WalError::Corrupt {
                path: pair[1].1.clone(),
                offset: 0,
                reason: format!(
                    "sequence gap: segment {} is missing before this one",
                    pair[0].0 + 1
                ),
            });
        }
    }
    let mut payload = AlignedVec::new();
    let mut scans = Vec::with_capacity(segments.len());
    for (sequence, path) in segments {
        let bytes = read_segment(&path).await?;
        scans.push(scan_segment(
            sequence,
            path,
            &bytes,
            &mut payload,
            on_record,
        )?);
        // Replay is CPU work between reads: let other tasks of this core run.
        glommio::yield_if_needed().await;
    }
    let fresh_sequence = scans.last().map_or(0, |scan| scan.sequence + 1);
    let Some(last) = scans.iter().rposition(SegmentScan::has_content) else {
        remove_segments(directory, scans.iter().map(|scan| &scan.path)).await?;
        return Ok(Recovered {
            closed: VecDeque::new(),
            active: None,
            fresh_sequence,
        });
    };
    refuse_torn_before(&scans, last)?;
    // Segments after the end are empty, prepared ahead of need: prepare them again later.
    remove_segments(directory, scans[last + 1..].iter().map(|scan| &scan.path)).await?;
    scans.truncate(last + 1);
    let Some(end_scan) = scans.pop() else {
        unreachable!("scans holds the segment at `last`")
    };
    let active = open_active(end_scan).await?;
    let closed = scans
        .into_iter()
        .map(|scan| ClosedSegment {
            sequence: scan.sequence,
            path: scan.path,
            shards: scan.shards,
        })
        .collect();
    Ok(Recovered {
        closed,
        active: Some(active),
        fresh_sequence,
    })
}

fn scan_segment(
    sequence: u64,
    path: PathBuf,
    bytes: &[u8],
    payload: &mut AlignedVec,
    on_record: &mut impl FnMut(RecordHeader, &[u8]) -> Result<(), WalError>,
) -> Result<SegmentScan, WalError> {
    let mut scanner = RecordScanner::new(bytes);
    let mut shards = ShardIndexMap::default();
    let mut records = 0;
    for record in scanner.by_ref() {
        shards.note(record.header.shard, record.header.index);
        records += 1;
        // rkyv needs the archive 16-byte aligned; records sit at arbitrary offsets.
        payload.clear();
        payload.extend_from_slice(record.payload);
        on_record(record.header, payload).map_err(|source| WalError::ReplayRejected {
            path: path.clone(),
            offset: record.offset as u64,
            source: Box::new(source),
        })?;
    }
    let end = scanner.finish();
    if let ScanEnd::Corrupt {
        offset,
        reason,
        next_valid_offset,
    } = end
    {
        return Err(WalError::Corrupt {
            path,
            offset: offset as u64,
            reason: format!("{reason}, yet a valid record follows at offset {next_valid_offset}"),
        });
    }
    let end_offset = end.offset() as u64;
    let nonzero_end = bytes
        .iter()
        .rposition(|&byte| byte != 0)
        .map_or(0, |last| last as u64 + 1);
    let tail_start = align_down(end_offset, WAL_SEGMENT_ALIGNMENT_BYTES) as usize;
    let tail = bytes[tail_start..end_offset as usize].to_vec();
    Ok(SegmentScan {
        sequence,
        path,
        end,
        records,
        shards,
        size: bytes.len() as u64,
        nonzero_end,
        tail,
    })
}

/// Only the segment where the log ends may end in garbage: garbage in an earlier one
/// has records after it.
fn refuse_torn_before(scans: &[SegmentScan], last: usize) -> Result<(), WalError> {
    for (position, scan) in scans[..last].iter().enumerate() {
        if let ScanEnd::TornTail { offset, reason } = scan.end {
            return Err(WalError::Corrupt {
                path: scan.path.clone(),
                offset: offset as u64,
                reason: format!(
                    "{reason}, and the later segment {} holds records: only the last segment \
                     may end in a torn write",
                    scans[position + 1].path.display()
                ),
            });
        }
    }
    Ok(())
}

/// Opens the segment where the log ends for appending; zeroes a torn tail first so
/// that the bytes after the last valid record are zeros again (records appended later
/// must not be mistaken for records after damage).
async fn open_active(scan: SegmentScan) -> Result<ActiveSegment, WalError> {
    let path = scan.path;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .dma_open(&path)
        .await
        .map_err(WalError::glommio("opening", &path))?;
    let alignment = file.alignment();
    assert!(
        alignment <= WAL_SEGMENT_ALIGNMENT_BYTES,
        "O_DIRECT block of {alignment} bytes is unsupported"
    );
    let end = scan.end.offset() as u64;
    let tail = scan.tail[scan.tail.len() - (end - align_down(end, alignment)) as usize..].to_vec();
    if let ScanEnd::TornTail { .. } = scan.end {
        let start = align_down(end, alignment);
        let stop = align_up(scan.nonzero_end, alignment).min(align_down(scan.size, alignment));
        let mut zeros = file.alloc_dma_buffer((stop - start) as usize);
        zeros.as_bytes_mut().fill(0);
        zeros.as_bytes_mut()[..tail.len()].copy_from_slice(&tail);
        let wanted = zeros.len();
        let written = file
            .write_at(zeros, start)
            .await
            .map_err(WalError::glommio("truncating", &path))?;
        if written != wanted {
            return Err(short_transfer("truncating", &path, written, wanted));
        }
        file.fdatasync()
            .await
            .map_err(WalError::glommio("syncing", &path))?;
        tracing::warn!(path = %path.display(), offset = end, "WAL torn tail truncated");
    }
    Ok(ActiveSegment {
        sequence: scan.sequence,
        capacity: align_down(scan.size, alignment),
        file: Rc::new(file),
        path,
        end,
        tail,
        shards: scan.shards,
    })
}

async fn remove_segments(
    directory: &Path,
    paths: impl Iterator<Item = &PathBuf>,
) -> Result<(), WalError> {
    let mut removed = false;
    for path in paths {
        glommio::io::remove(path)
            .await
            .map_err(WalError::glommio("removing", path))?;
        removed = true;
    }
    if removed {
        sync_directory(directory)
            .await
            .map_err(WalError::io("syncing directory", directory))?;
    }
    Ok(())
}
