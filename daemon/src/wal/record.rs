//! The WAL record format: pure encoding and scanning, no IO.
//!
//! ```text
//! offset  size  field
//!      0     4  length        u32 LE, bytes of the whole record (header + payload)
//!      4     4  crc           u32 LE, CRC-32 (crc32fast) of bytes 8..length
//!      8     4  shard         u32 LE
//!     12     1  kind          u8, meaning owned by the caller
//!     13     3  reserved      zero
//!     16     8  term          u64 LE
//!     24     8  index         u64 LE
//!     32     8  timestamp_ms  u64 LE
//!     40     -  payload       length - 40 bytes
//! ```
//!
//! Records are packed back to back with no alignment. A length under
//! [`RECORD_HEADER_BYTES`] or over [`RECORD_BYTES_MAX`] is a bad record, never an
//! allocation. The scanner tells three endings apart: a clean end (only zero bytes
//! after the last valid record), a torn tail (non-zero bytes after the last valid
//! record, but no valid record after them) and corruption in the middle (a bad
//! record followed, later, by a valid one).

use quorder_proto::limits::FRAME_BODY_BYTES_MAX;
use std::fmt;

/// Bytes of the fixed record header that precedes every payload.
pub const RECORD_HEADER_BYTES: usize = 40;

/// Largest payload of one record: a Raft entry carries at most one frame body.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = FRAME_BODY_BYTES_MAX;

/// Largest whole record (header + payload) the format admits.
pub const RECORD_BYTES_MAX: usize = RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_MAX;

// The length travels as a u32.
const _: () = assert!(RECORD_BYTES_MAX < u32::MAX as usize);

/// The bytes covered by the CRC start after the length and CRC fields.
const CHECKSUMMED_FROM_BYTES: usize = 8;

/// The metadata of one record. Which `kind` values exist is up to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordHeader {
    /// Shard whose log this record belongs to.
    pub shard: u32,
    /// What the payload is (entry, hard state, ...), interpreted by the caller.
    pub kind: u8,
    /// Raft term of the record.
    pub term: u64,
    /// Raft index of the record within its shard's log.
    pub index: u64,
    /// Leader-assigned wall-clock time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Appends one encoded record to `out`.
///
/// # Panics
/// If `payload` is longer than [`RECORD_PAYLOAD_BYTES_MAX`]: callers check the
/// size first and refuse with a typed error (see `Wal::append`).
pub fn encode_record(out: &mut Vec<u8>, header: &RecordHeader, payload: &[u8]) {
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX,
        "WAL record payload of {} bytes exceeds RECORD_PAYLOAD_BYTES_MAX",
        payload.len()
    );
    let length = RECORD_HEADER_BYTES + payload.len();
    let start = out.len();
    out.reserve(length);
    out.extend_from_slice(&(length as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // CRC, filled in below once the bytes exist
    out.extend_from_slice(&header.shard.to_le_bytes());
    out.push(header.kind);
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&header.term.to_le_bytes());
    out.extend_from_slice(&header.index.to_le_bytes());
    out.extend_from_slice(&header.timestamp_ms.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[start + CHECKSUMMED_FROM_BYTES..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// One valid record found by the scanner, borrowing its payload from the scanned bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The decoded header.
    pub header: RecordHeader,
    /// The payload bytes (not aligned: copy before handing them to rkyv).
    pub payload: &'a [u8],
    /// Byte offset of the record's first byte in the scanned slice.
    pub offset: usize,
}

impl Record<'_> {
    /// Bytes of the whole record, header included.
    pub fn encoded_bytes(&self) -> usize {
        RECORD_HEADER_BYTES + self.payload.len()
    }
}

/// Why bytes at some offset are not a valid record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadRecordReason {
    /// Fewer than the four bytes of a length field remain.
    LengthTruncated {
        /// Bytes left from the record's offset.
        available: usize,
    },
    /// The length field is smaller than a header (zero for zeroed space).
    LengthTooSmall {
        /// The length field.
        length: u32,
    },
    /// The length field is larger than [`RECORD_BYTES_MAX`].
    LengthTooLarge {
        /// The length field.
        length: u32,
    },
    /// The record would run past the end of the scanned bytes.
    Truncated {
        /// The length field.
        length: u32,
        /// Bytes left from the record's offset.
        available: usize,
    },
    /// The reserved header bytes are not zero.
    ReservedNotZero,
    /// The stored CRC does not match the bytes.
    ChecksumMismatch {
        /// CRC stored in the record.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
}

impl fmt::Display for BadRecordReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthTruncated { available } => {
                write!(
                    f,
                    "only {available} bytes remain, too few for a length field"
                )
            }
            Self::LengthTooSmall { length } => {
                write!(
                    f,
                    "length field {length} is below the {RECORD_HEADER_BYTES}-byte header"
                )
            }
            Self::LengthTooLarge { length } => {
                write!(
                    f,
                    "length field {length} exceeds the {RECORD_BYTES_MAX}-byte maximum"
                )
            }
            Self::Truncated { length, available } => {
                write!(
                    f,
                    "record of {length} bytes but only {available} bytes remain"
                )
            }
            Self::ReservedNotZero => write!(f, "reserved header bytes are not zero"),
            Self::ChecksumMismatch { stored, computed } => {
                write!(
                    f,
                    "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
        }
    }
}

/// How a scan ended. Offsets are relative to the scanned slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte from `offset` on is zero (or `offset` is the end of the data).
    Clean {
        /// Where the next record would go.
        offset: usize,
    },
    /// Non-zero bytes start at `offset` but no valid record follows them: the tail
    /// of an interrupted write, to be truncated.
    TornTail {
        /// Offset of the first bad byte, right after the last valid record.
        offset: usize,
        /// What is wrong with the bytes at `offset`.
        reason: BadRecordReason,
    },
    /// A bad record at `offset` with a valid record after it: damage inside the log.
    Corrupt {
        /// Offset of the bad record.
        offset: usize,
        /// What is wrong with it.
        reason: BadRecordReason,
        /// Offset of the first valid record found after it.
        next_valid_offset: usize,
    },
}

impl ScanEnd {
    /// Offset right after the last valid record.
    pub fn offset(&self) -> usize {
        match *self {
            Self::Clean { offset }
            | Self::TornTail { offset, .. }
            | Self::Corrupt { offset, .. } => offset,
        }
    }
}

/// Iterates over the valid records at the start of a byte slice. Once the iterator
/// returns `None`, [`RecordScanner::end`] says why.
#[derive(Debug)]
pub struct RecordScanner<'a> {
    data: &'a [u8],
    position: usize,
    end: Option<ScanEnd>,
}

impl<'a> RecordScanner<'a> {
    /// Starts scanning `data` at offset 0.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            position: 0,
            end: None,
        }
    }

    /// How the scan ended, once the iterator is exhausted; `None` before.
    pub fn end(&self) -> Option<ScanEnd> {
        self.end
    }

    /// Runs the scan to its end, discarding records, and says how it ended.
    pub fn finish(mut self) -> ScanEnd {
        loop {
            if self.next().is_none() {
                if let Some(end) = self.end {
                    return end;
                }
            }
        }
    }

    /// Records why the scan stopped at `self.position`, where `reason` says what is
    /// wrong with the bytes there.
    fn stop(&mut self, reason: BadRecordReason) {
        let offset = self.position;
        let end = match find_valid_record(self.data, offset + 1) {
            Some(next_valid_offset) => ScanEnd::Corrupt {
                offset,
                reason,
                next_valid_offset,
            },
            None if self.data[offset..].iter().all(|&byte| byte == 0) => ScanEnd::Clean { offset },
            None => ScanEnd::TornTail { offset, reason },
        };
        self.end = Some(end);
    }
}

impl<'a> Iterator for RecordScanner<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        if self.end.is_some() {
            return None;
        }
        if self.position == self.data.len() {
            self.end = Some(ScanEnd::Clean {
                offset: self.position,
            });
            return None;
        }
        match decode_record(self.data, self.position) {
            Ok(record) => {
                self.position += record.encoded_bytes();
                Some(record)
            }
            Err(reason) => {
                self.stop(reason);
                None
            }
        }
    }
}

/// Decodes and verifies the record starting at `offset`. Checks run cheapest first so
/// that the search for a valid record in garbage rarely computes a CRC.
pub fn decode_record(data: &[u8], offset: usize) -> Result<Record<'_>, BadRecordReason> {
    let available = data.len().saturating_sub(offset);
    if available < 4 {
        return Err(BadRecordReason::LengthTruncated { available });
    }
    let length = read_u32(data, offset);
    if (length as usize) < RECORD_HEADER_BYTES {
        return Err(BadRecordReason::LengthTooSmall { length });
    }
    if length as usize > RECORD_BYTES_MAX {
        return Err(BadRecordReason::LengthTooLarge { length });
    }
    if length as usize > available {
        return Err(BadRecordReason::Truncated { length, available });
    }
    let bytes = &data[offset..offset + length as usize];
    if bytes[13..16] != [0, 0, 0] {
        return Err(BadRecordReason::ReservedNotZero);
    }
    let stored = read_u32(bytes, 4);
    let computed = crc32fast::hash(&bytes[CHECKSUMMED_FROM_BYTES..]);
    if stored != computed {
        return Err(BadRecordReason::ChecksumMismatch { stored, computed });
    }
    Ok(Record {
        header: decode_header_unchecked(bytes),
        payload: &bytes[RECORD_HEADER_BYTES..],
        offset,
    })
}

/// Reads the header fields of a record whose bytes are already trusted (verified, or
/// encoded by this process).
pub(crate) fn decode_header_unchecked(bytes: &[u8]) -> RecordHeader {
    RecordHeader {
        shard: read_u32(bytes, 8),
        kind: bytes[12],
        term: read_u64(bytes, 16),
        index: read_u64(bytes, 24),
        timestamp_ms: read_u64(bytes, 32),
    }
}

/// Length field of a record encoded by this process.
pub(crate) fn encoded_length(bytes: &[u8], offset: usize) -> usize {
    let length = read_u32(bytes, offset) as usize;
    assert!(
        (RECORD_HEADER_BYTES..=RECORD_BYTES_MAX).contains(&length)
            && offset + length <= bytes.len(),
        "WAL buffer holds a malformed record at {offset}"
    );
    length
}

/// First offset at or after `from` holding a valid record. A valid record starts with
/// a non-zero length, so runs of zero bytes are skipped without decoding.
fn find_valid_record(data: &[u8], from: usize) -> Option<usize> {
    let mut candidate = from;
    while candidate + RECORD_HEADER_BYTES <= data.len() {
        let nonzero = candidate + data[candidate..].iter().position(|&byte| byte != 0)?;
        // The first non-zero byte may be the second, third or fourth byte of a length.
        candidate = candidate.max(nonzero.saturating_sub(3));
        if decode_record(data, candidate).is_ok() {
            return Some(candidate);
        }
        candidate += 1;
    }
    None
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut field = [0; 4];
    field.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(field)
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut field = [0; 8];
    field.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(field)
}

#[cfg(test)]
mod tests;
