//! The snapshot file header: pure encoding and checking, no IO.
//!
//! ```text
//! offset  size  field
//!      0     4  magic          b"QSNP"
//!      4     4  version        u32 LE, SNAPSHOT_FORMAT_VERSION
//!      8     4  shard          u32 LE
//!     12     4  reserved       zero
//!     16     8  applied_index  u64 LE
//!     24     8  term           u64 LE
//!     32     8  body_bytes     u64 LE
//!     40     4  body_crc       u32 LE, CRC-32 of the body
//!     44     4  header_crc     u32 LE, CRC-32 of bytes 0..44
//!     48     -  body           body_bytes bytes, then end of file
//! ```

use crate::limits::SNAPSHOT_BODY_BYTES_MAX;

/// First four bytes of every snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"QSNP";

/// The header layout this code writes and reads.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// Bytes of the fixed header before the body.
pub const SNAPSHOT_HEADER_BYTES: usize = 48;

/// The decoded, checked header of a snapshot file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotHeader {
    pub(crate) shard: u32,
    pub(crate) applied_index: u64,
    pub(crate) term: u64,
    pub(crate) body_bytes: u64,
    pub(crate) body_crc: u32,
}

/// Why a header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderFault {
    Truncated { available: usize },
    BadMagic { found: [u8; 4] },
    UnsupportedVersion { version: u32 },
    ChecksumMismatch { stored: u32, computed: u32 },
    ReservedNotZero,
    BodyTooLarge { body_bytes: u64 },
}

impl SnapshotHeader {
    pub(crate) fn encode(&self) -> [u8; SNAPSHOT_HEADER_BYTES] {
        let mut bytes = [0; SNAPSHOT_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&SNAPSHOT_MAGIC);
        bytes[4..8].copy_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.shard.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.applied_index.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.term.to_le_bytes());
        bytes[32..40].copy_from_slice(&self.body_bytes.to_le_bytes());
        bytes[40..44].copy_from_slice(&self.body_crc.to_le_bytes());
        let header_crc = crc32fast::hash(&bytes[..44]);
        bytes[44..48].copy_from_slice(&header_crc.to_le_bytes());
        bytes
    }

    /// Checks magic, version and header CRC, in that order: a file that is not a
    /// snapshot at all is named as such rather than as a checksum failure.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, HeaderFault> {
        if bytes.len() < SNAPSHOT_HEADER_BYTES {
            return Err(HeaderFault::Truncated {
                available: bytes.len(),
            });
        }
        let found = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if found != SNAPSHOT_MAGIC {
            return Err(HeaderFault::BadMagic { found });
        }
        let stored = u32_at(bytes, 44);
        let computed = crc32fast::hash(&bytes[..44]);
        let version = u32_at(bytes, 4);
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(HeaderFault::UnsupportedVersion { version });
        }
        if stored != computed {
            return Err(HeaderFault::ChecksumMismatch { stored, computed });
        }
        if u32_at(bytes, 12) != 0 {
            return Err(HeaderFault::ReservedNotZero);
        }
        let header = Self {
            shard: u32_at(bytes, 8),
            applied_index: u64_at(bytes, 16),
            term: u64_at(bytes, 24),
            body_bytes: u64_at(bytes, 32),
            body_crc: u32_at(bytes, 40),
        };
        if header.body_bytes > SNAPSHOT_BODY_BYTES_MAX {
            return Err(HeaderFault::BodyTooLarge {
                body_bytes: header.body_bytes,
            });
        }
        Ok(header)
    }
}

fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut field = [0; 4];
    field.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(field)
}

fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    let mut field = [0; 8];
    field.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SnapshotHeader {
        SnapshotHeader {
            shard: 5,
            applied_index: 1234,
            term: 9,
            body_bytes: 77,
            body_crc: 0xDEAD_BEEF,
        }
    }

    #[test]
    fn header_round_trips() {
        assert_eq!(SnapshotHeader::decode(&sample().encode()), Ok(sample()));
    }

    #[test]
    fn every_single_bit_flip_in_the_header_is_refused() {
        let bytes = sample().encode();
        for bit in 0..SNAPSHOT_HEADER_BYTES * 8 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                SnapshotHeader::decode(&flipped).is_err(),
                "bit {bit} flip accepted"
            );
        }
    }

    #[test]
    fn faults_are_told_apart() {
        let mut bytes = sample().encode();
        assert_eq!(
            SnapshotHeader::decode(&bytes[..10]),
            Err(HeaderFault::Truncated { available: 10 })
        );
        bytes[0] = b'X';
        assert_eq!(
            SnapshotHeader::decode(&bytes),
            Err(HeaderFault::BadMagic { found: *b"XSNP" })
        );
        let mut bytes = sample().encode();
        bytes[4] = 2;
        assert_eq!(
            SnapshotHeader::decode(&bytes),
            Err(HeaderFault::UnsupportedVersion { version: 2 })
        );
        let huge = SnapshotHeader {
            body_bytes: SNAPSHOT_BODY_BYTES_MAX + 1,
            ..sample()
        };
        assert!(matches!(
            SnapshotHeader::decode(&huge.encode()),
            Err(HeaderFault::BodyTooLarge { .. })
        ));
    }
}
