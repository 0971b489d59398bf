//! The frame (DESIGN.md §6): a fixed 32-byte little-endian header, then an rkyv body.
//!
//! ```text
//! offset size field
//!  0     4    magic        b"QRDR"
//!  4     1    version      PROTOCOL_VERSION
//!  5     1    kind         FrameKind
//!  6     2    flags        must be 0
//!  8     4    body_length  bytes of body, <= FRAME_BODY_BYTES_MAX (PEER_FRAME_BODY_BYTES_MAX for `Peer`)
//! 12     4    body_crc     CRC-32 (IEEE) of the body
//! 16     8    request_id   chosen by the requester, echoed in the reply
//! 24     4    reserved     must be 0
//! 28     4    header_crc   CRC-32 (IEEE) of bytes 0..28
//! ```
//!
//! Decoding order: header CRC first (nothing in a header is trusted before), then magic,
//! version, kind, flags, length; the body CRC is checked before the body is validated as
//! an archive, and the archive is validated before it is read.

use crate::limits::{FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES, PEER_FRAME_BODY_BYTES_MAX};
use rkyv::util::AlignedVec;

/// The four magic bytes that open every frame.
pub const MAGIC: [u8; 4] = *b"QRDR";

/// The protocol version spoken by this build.
pub const PROTOCOL_VERSION: u8 = 1;

/// Kind of a frame: which root type its body holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Client → node: body is an `Operation`.
    Request = 1,
    /// Node → client: body is a `Reply`.
    Reply = 2,
    /// Client → node: body is a `Batch`.
    BatchRequest = 3,
    /// Node → client: body is a `BatchReply`.
    BatchReply = 4,
    /// Client → node: body is a `StatusRequest`.
    StatusRequest = 5,
    /// Node → client: body is a `ClusterStatus`.
    StatusReply = 6,
    /// Node → node, first frame of a peer connection: body is a `PeerHello`.
    PeerHello = 16,
    /// Node → node, answer to the hello: body is a `PeerHelloReply`.
    PeerHelloReply = 17,
    /// Node → node: body is a peer message of the node's internal protocol (Raft,
    /// two-phase commit between shard primaries, status), same protocol version.
    Peer = 18,
}

impl FrameKind {
    /// Largest body a frame of this kind may carry: node-to-node replication frames carry
    /// batches of entries and so get a larger bound than client frames.
    pub fn body_bytes_max(self) -> usize {
        match self {
            // A status reply lists every mirror of every shard: up to 9 × 4096 of them.
            FrameKind::Peer | FrameKind::StatusReply => PEER_FRAME_BODY_BYTES_MAX,
            _ => FRAME_BODY_BYTES_MAX,
        }
    }

    /// Kind for a wire byte, if known.
    pub fn from_byte(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::Request),
            2 => Some(FrameKind::Reply),
            3 => Some(FrameKind::BatchRequest),
            4 => Some(FrameKind::BatchReply),
            5 => Some(FrameKind::StatusRequest),
            6 => Some(FrameKind::StatusReply),
            16 => Some(FrameKind::PeerHello),
            17 => Some(FrameKind::PeerHelloReply),
            18 => Some(FrameKind::Peer),
            _ => None,
        }
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Fewer bytes than a header or than the announced body.
    #[error("truncated frame: needed {needed} bytes, got {got}")]
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The header checksum does not match its bytes.
    #[error("header checksum mismatch: header says {expected:#010x}, bytes give {got:#010x}")]
    HeaderChecksumMismatch {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over the header bytes.
        got: u32,
    },
    /// The frame does not start with the magic bytes.
    #[error("bad magic {got:02x?}: not a quorder frame")]
    BadMagic {
        /// Bytes found.
        got: [u8; 4],
    },
    /// The protocol version is not spoken here.
    #[error("unsupported protocol version {got} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion {
        /// Version received.
        got: u8,
    },
    /// The kind byte names no known frame kind.
    #[error("unknown frame kind {got}")]
    UnknownKind {
        /// Byte received.
        got: u8,
    },
    /// Flags or reserved bits that this version does not define are set.
    #[error("flags {flags:#06x} or reserved {reserved:#010x} set; both must be zero")]
    ReservedBitsSet {
        /// Flags received.
        flags: u16,
        /// Reserved word received.
        reserved: u32,
    },
    /// The announced body is larger than the limit.
    #[error("body of {length} bytes exceeds the limit for its kind ({FRAME_BODY_BYTES_MAX}, peers {PEER_FRAME_BODY_BYTES_MAX})")]
    BodyTooLarge {
        /// Announced length.
        length: u32,
    },
    /// The body checksum does not match its bytes.
    #[error("body checksum mismatch: header says {expected:#010x}, body gives {got:#010x}")]
    BodyChecksumMismatch {
        /// CRC stored in the header.
        expected: u32,
        /// CRC computed over the body.
        got: u32,
    },
    /// The body is not a valid archive of the type its kind names.
    #[error("invalid {kind:?} body: {reason}")]
    InvalidBody {
        /// Frame kind.
        kind: FrameKind,
        /// What the validator said.
        reason: String,
    },
    /// The frame kind is valid but not expected on this link or in this direction.
    #[error("unexpected frame kind {kind:?} here")]
    UnexpectedKind {
        /// Frame kind.
        kind: FrameKind,
    },
}

/// A decoded, checked frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Frame kind.
    pub kind: FrameKind,
    /// Body length in bytes.
    pub body_length: u32,
    /// CRC-32 of the body.
    pub body_crc: u32,
    /// Request id.
    pub request_id: u64,
}

/// CRC-32 (IEEE 802.3, as zlib) of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

impl Header {
    /// Header for `body`.
    pub fn for_body(kind: FrameKind, request_id: u64, body: &[u8]) -> Header {
        assert!(
            body.len() <= kind.body_bytes_max(),
            "frame body over the limit"
        );
        Header {
            kind,
            body_length: body.len() as u32,
            body_crc: crc32(body),
            request_id,
        }
    }

    /// Serializes the header, computing its checksum.
    pub fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut bytes = [0u8; FRAME_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&MAGIC);
        bytes[4] = PROTOCOL_VERSION;
        bytes[5] = self.kind as u8;
        bytes[6..8].copy_from_slice(&0u16.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.body_length.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.body_crc.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.request_id.to_le_bytes());
        bytes[24..28].copy_from_slice(&0u32.to_le_bytes());
        let header_crc = crc32(&bytes[0..28]);
        bytes[28..32].copy_from_slice(&header_crc.to_le_bytes());
        bytes
    }

    /// Parses and checks a header. Nothing in it is trusted until its checksum matches.
    pub fn decode(bytes: &[u8]) -> Result<Header, FrameError> {
        if bytes.len() < FRAME_HEADER_BYTES {
            return Err(FrameError::Truncated {
                needed: FRAME_HEADER_BYTES,
                got: bytes.len(),
            });
        }
        let stored_crc = read_u32(bytes, 28);
        let computed_crc = crc32(&bytes[0..28]);
        if stored_crc != computed_crc {
            return Err(FrameError::HeaderChecksumMismatch {
                expected: stored_crc,
                got: computed_crc,
            });
        }
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != MAGIC {
            return Err(FrameError::BadMagic { got: magic });
        }
        if bytes[4] != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion { got: bytes[4] });
        }
        let kind =
            FrameKind::from_byte(bytes[5]).ok_or(FrameError::UnknownKind { got: bytes[5] })?;
        let flags = u16::from_le_bytes([bytes[6], bytes[7]]);
        let reserved = read_u32(bytes, 24);
        if flags != 0 || reserved != 0 {
            return Err(FrameError::ReservedBitsSet { flags, reserved });
        }
        let body_length = read_u32(bytes, 8);
        if body_length as usize > kind.body_bytes_max() {
            return Err(FrameError::BodyTooLarge {
                length: body_length,
            });
        }
        Ok(Header {
            kind,
            body_length,
            body_crc: read_u32(bytes, 12),
            request_id: read_u64(bytes, 16),
        })
    }

    /// Request id of a header whose checksum matched but that was refused for another
    /// reason, so that the error reply can still name the request. Zero if unknown.
    pub fn request_id_hint(bytes: &[u8]) -> u64 {
        if bytes.len() < FRAME_HEADER_BYTES || read_u32(bytes, 28) != crc32(&bytes[0..28]) {
            return 0;
        }
        read_u64(bytes, 16)
    }

    /// Checks `body` against this header.
    pub fn check_body(&self, body: &[u8]) -> Result<(), FrameError> {
        if body.len() != self.body_length as usize {
            return Err(FrameError::Truncated {
                needed: self.body_length as usize,
                got: body.len(),
            });
        }
        let computed = crc32(body);
        if computed != self.body_crc {
            return Err(FrameError::BodyChecksumMismatch {
                expected: self.body_crc,
                got: computed,
            });
        }
        Ok(())
    }
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

/// Appends a whole frame (header then body) to `out`.
pub fn write_frame(out: &mut Vec<u8>, kind: FrameKind, request_id: u64, body: &[u8]) {
    out.extend_from_slice(&Header::for_body(kind, request_id, body).encode());
    out.extend_from_slice(body);
}

/// A checked frame whose body sits in a buffer aligned for zero-copy access.
#[derive(Debug)]
pub struct Frame {
    /// The header.
    pub header: Header,
    /// The body, checksum verified, not yet validated as an archive.
    pub body: AlignedVec,
}

/// Decodes one whole frame from the front of `bytes`; returns it and the bytes consumed.
/// Used by tests, fuzzing and clients; the daemon reads header and body separately.
pub fn decode_frame(bytes: &[u8]) -> Result<(Frame, usize), FrameError> {
    let header = Header::decode(bytes)?;
    let end = FRAME_HEADER_BYTES + header.body_length as usize;
    if bytes.len() < end {
        return Err(FrameError::Truncated {
            needed: end,
            got: bytes.len(),
        });
    }
    let body_bytes = &bytes[FRAME_HEADER_BYTES..end];
    header.check_body(body_bytes)?;
    let mut body = AlignedVec::with_capacity(body_bytes.len());
    body.extend_from_slice(body_bytes);
    Ok((Frame { header, body }, end))
}
