//! Per-shard snapshot files: `DATA/snapshots/shard-{shard:05}.snap`.
//!
//! # Ownership
//! Called by the core that owns the shard, on its glommio executor. A snapshot holds
//! the shard's store archive (the body, opaque here) with the applied index and term it
//! reflects; once it is durable the WAL can release the records below that index.
//!
//! # Durability
//! [`write_snapshot`] writes header and body to `shard-{shard:05}.snap.tmp`, fdatasyncs
//! it, renames it over the previous snapshot and fsyncs the directory: a crash leaves
//! either the old snapshot or the new one, never a mix. A leftover temp file is ignored
//! by [`read_snapshot`] and overwritten by the next write.
//!
//! # Format
//! A 48-byte header (magic `b"QSNP"`, format version, shard, applied index, term, body
//! length, body CRC-32, header CRC-32; see [`format`]) then the body. Everything is
//! checked on read: magic, version, header CRC, shard, length against the file size,
//! body CRC. The body comes back in a 16-byte aligned buffer, ready for rkyv access.
//!
//! # IO
//! glommio DMA files, in chunks of [`SNAPSHOT_IO_CHUNK_BYTES`]: the body is copied once
//! (into DMA buffers when writing, out of them when reading) and checksummed chunk by
//! chunk between IO waits, so a body of hundreds of MiB never stalls the core's other
//! tasks for long.

pub mod format;

#[cfg(test)]
mod tests;

use crate::wal::{align_up, ensure_dma_reads, sync_directory};
use format::{HeaderFault, SnapshotHeader, SNAPSHOT_FORMAT_VERSION, SNAPSHOT_HEADER_BYTES};
use glommio::io::{DmaFile, OpenOptions};
use rkyv::util::AlignedVec;
use std::path::{Path, PathBuf};

pub use crate::limits::{SNAPSHOT_BODY_BYTES_MAX, SNAPSHOT_IO_CHUNK_BYTES};

// Chunks stay block aligned for any O_DIRECT block size up to 4 KiB, and the header
// fits in the first block.
const _: () = assert!(SNAPSHOT_IO_CHUNK_BYTES.is_multiple_of(4096));
const _: () = assert!(SNAPSHOT_HEADER_BYTES <= 512);

/// A snapshot read back from disk, every checksum verified.
#[derive(Debug)]
pub struct Snapshot {
    /// The shard it belongs to.
    pub shard: u32,
    /// Index of the last log entry reflected in the body.
    pub applied_index: u64,
    /// Term of that entry.
    pub term: u64,
    /// The body, 16-byte aligned.
    pub body: AlignedVec,
}

/// What can go wrong writing or reading a snapshot. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A file operation failed.
    #[error("snapshot I/O error while {operation} {path}: {source}")]
    Io {
        /// What was being done ("writing", "renaming", ...).
        operation: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The file does not start with the snapshot magic.
    #[error("{path} is not a quorder snapshot (magic {found:?}); {REPAIR}")]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Its first four bytes.
        found: [u8; 4],
    },
    /// The file was written by a format version this build does not read.
    #[error(
        "snapshot {path} has format version {version}, this build reads {supported}; {REPAIR}"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Version in the file.
        version: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// A stored CRC does not match the bytes.
    #[error("snapshot {path}: {part} CRC mismatch (stored {stored:#010x}, computed {computed:#010x}); {REPAIR}")]
    ChecksumMismatch {
        /// The file.
        path: PathBuf,
        /// "header" or "body".
        part: &'static str,
        /// CRC stored in the file.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// The header is damaged in a way the CRC did not catch, or the file is cut short.
    #[error("snapshot {path} is malformed: {reason}; {REPAIR}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file belongs to another shard (misplaced or renamed by hand).
    #[error("snapshot {path} belongs to shard {found}, expected shard {expected}; {REPAIR}")]
    WrongShard {
        /// The file.
        path: PathBuf,
        /// Shard asked for.
        expected: u32,
        /// Shard in the header.
        found: u32,
    },
    /// A body above [`SNAPSHOT_BODY_BYTES_MAX`].
    #[error("snapshot body of {body_bytes} bytes for {path} exceeds the {limit_bytes}-byte limit")]
    BodyTooLarge {
        /// The file.
        path: PathBuf,
        /// Size of the body.
        body_bytes: u64,
        /// [`SNAPSHOT_BODY_BYTES_MAX`].
        limit_bytes: u64,
    },
}

/// What an operator does about a damaged snapshot.
const REPAIR: &str = "move the file aside and reinstall this shard from a peer's snapshot";

/// `DATA/snapshots/shard-{shard:05}.snap`
pub fn snapshot_path(data_dir: &Path, shard: u32) -> PathBuf {
    data_dir
        .join("snapshots")
        .join(format!("shard-{shard:05}.snap"))
}

fn temp_path(data_dir: &Path, shard: u32) -> PathBuf {
    data_dir
        .join("snapshots")
        .join(format!("shard-{shard:05}.snap.tmp"))
}

fn io_error(operation: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io {
        operation,
        path,
        source,
    }
}

fn glommio_error<T>(
    operation: &'static str,
    path: &Path,
) -> impl FnOnce(glommio::GlommioError<T>) -> SnapshotError {
    let path = path.to_path_buf();
    move |source| SnapshotError::Io {
        operation,
        path,
        source: source.into(),
    }
}

/// Makes `body` the durable snapshot of `shard` at `applied_index` / `term`, replacing
/// the previous one atomically (temp file, fdatasync, rename, directory fsync).
pub async fn write_snapshot(
    data_dir: &Path,
    shard: u32,
    applied_index: u64,
    term: u64,
    body: &[u8],
) -> Result<(), SnapshotError> {
    let final_path = snapshot_path(data_dir, shard);
    let body_bytes = body.len() as u64;
    if body_bytes > SNAPSHOT_BODY_BYTES_MAX {
        let limit_bytes = SNAPSHOT_BODY_BYTES_MAX;
        return Err(SnapshotError::BodyTooLarge {
            path: final_path,
            body_bytes,
            limit_bytes,
        });
    }
    let directory = data_dir.join("snapshots");
    if !directory.is_dir() {
        std::fs::create_dir_all(&directory).map_err(io_error("creating", &directory))?;
        sync_directory(data_dir)
            .await
            .map_err(io_error("syncing directory", data_dir))?;
    }
    ensure_dma_reads(&directory)
        .await
        .map_err(io_error("probing DMA reads in", &directory))?;
    let temp = temp_path(data_dir, shard);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .dma_open(&temp)
        .await
        .map_err(glommio_error("creating", &temp))?;
    let body_crc = write_stream(&file, &temp, body).await?;
    let header = SnapshotHeader {
        shard,
        applied_index,
        term,
        body_bytes,
        body_crc,
    }
    .encode();
    write_first_block(&file, &temp, &header, body).await?;
    let total = (SNAPSHOT_HEADER_BYTES + body.len()) as u64;
    // DMA writes whole blocks: cut the zero padding after the body.
    file.truncate(total)
        .await
        .map_err(glommio_error("truncating", &temp))?;
    file.fdatasync()
        .await
        .map_err(glommio_error("syncing", &temp))?;
    file.close()
        .await
        .map_err(glommio_error("closing", &temp))?;
    glommio::io::rename(&temp, &final_path)
        .await
        .map_err(glommio_error("renaming", &temp))?;
    sync_directory(&directory)
        .await
        .map_err(io_error("syncing directory", &directory))?;
    Ok(())
}

/// Writes a zeroed header placeholder then the body, chunk by chunk, returning the
/// body's CRC (computed while copying, so the body is read once).
async fn write_stream(file: &DmaFile, path: &Path, body: &[u8]) -> Result<u32, SnapshotError> {
    let alignment = file.alignment();
    let total = SNAPSHOT_HEADER_BYTES + body.len();
    let mut body_crc = crc32fast::Hasher::new();
    let mut position = 0;
    while position < total {
        let chunk = (total - position).min(SNAPSHOT_IO_CHUNK_BYTES);
        let mut buffer = file.alloc_dma_buffer(align_up(chunk as u64, alignment) as usize);
        let bytes = buffer.as_bytes_mut();
        let header_part = SNAPSHOT_HEADER_BYTES.saturating_sub(position).min(chunk);
        bytes[..header_part].fill(0);
        let body_start = (position + header_part) - SNAPSHOT_HEADER_BYTES;
        let body_part = &body[body_start..position + chunk - SNAPSHOT_HEADER_BYTES];
        bytes[header_part..chunk].copy_from_slice(body_part);
        bytes[chunk..].fill(0);
        body_crc.update(body_part);
        write_all_at(file, path, buffer, position as u64).await?;
        position += chunk;
    }
    Ok(body_crc.finalize())
}

/// Rewrites the first block with the real header, now that the body CRC is known.
async fn write_first_block(
    file: &DmaFile,
    path: &Path,
    header: &[u8; SNAPSHOT_HEADER_BYTES],
    body: &[u8],
) -> Result<(), SnapshotError> {
    let mut buffer = file.alloc_dma_buffer(file.alignment() as usize);
    let bytes = buffer.as_bytes_mut();
    let body_part = &body[..body.len().min(bytes.len() - SNAPSHOT_HEADER_BYTES)];
    bytes[..SNAPSHOT_HEADER_BYTES].copy_from_slice(header);
    bytes[SNAPSHOT_HEADER_BYTES..SNAPSHOT_HEADER_BYTES + body_part.len()]
        .copy_from_slice(body_part);
    bytes[SNAPSHOT_HEADER_BYTES + body_part.len()..].fill(0);
    write_all_at(file, path, buffer, 0).await
}

async fn write_all_at(
    file: &DmaFile,
    path: &Path,
    buffer: glommio::io::DmaBuffer,
    position: u64,
) -> Result<(), SnapshotError> {
    let wanted = buffer.len();
    let written = file
        .write_at(buffer, position)
        .await
        .map_err(glommio_error("writing", path))?;
    if written != wanted {
        let source = std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("wrote {written} of {wanted} bytes at offset {position}"),
        );
        return Err(SnapshotError::Io {
            operation: "writing",
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

/// Reads the snapshot of `shard`: `None` if there is none, an error naming the file
/// if it is damaged in any way.
pub async fn read_snapshot(data_dir: &Path, shard: u32) -> Result<Option<Snapshot>, SnapshotError> {
    let path = snapshot_path(data_dir, shard);
    let directory = data_dir.join("snapshots");
    if !path.exists() {
        return Ok(None);
    }
    ensure_dma_reads(&directory)
        .await
        .map_err(io_error("probing DMA reads in", &directory))?;
    let file = match DmaFile::open(&path).await {
        Ok(file) => file,
        Err(error) => {
            let error = std::io::Error::from(error);
            if error.kind() == std::io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(io_error("opening", &path)(error));
        }
    };
    let read = read_checked(&file, &path, shard).await;
    file.close()
        .await
        .map_err(glommio_error("closing", &path))?;
    read.map(Some)
}

async fn read_checked(file: &DmaFile, path: &Path, shard: u32) -> Result<Snapshot, SnapshotError> {
    let size = file
        .file_size()
        .await
        .map_err(glommio_error("sizing", path))?;
    let first = read_chunk(file, path, 0, size).await?;
    let header = SnapshotHeader::decode(&first).map_err(|fault| header_error(path, fault))?;
    if header.shard != shard {
        return Err(SnapshotError::WrongShard {
            path: path.to_path_buf(),
            expected: shard,
            found: header.shard,
        });
    }
    let file_body_bytes = size - SNAPSHOT_HEADER_BYTES as u64;
    if header.body_bytes != file_body_bytes {
        return Err(SnapshotError::Malformed {
            path: path.to_path_buf(),
            reason: format!(
                "header announces a {}-byte body, the file holds {file_body_bytes}",
                header.body_bytes
            ),
        });
    }
    // Bounded: equal to the file's size, itself at most SNAPSHOT_BODY_BYTES_MAX.
    let mut body = AlignedVec::with_capacity(header.body_bytes as usize);
    let mut body_crc = crc32fast::Hasher::new();
    body.extend_from_slice(&first[SNAPSHOT_HEADER_BYTES..]);
    body_crc.update(&first[SNAPSHOT_HEADER_BYTES..]);
    let mut position = first.len() as u64;
    while position < size {
        let chunk = read_chunk(file, path, position, size).await?;
        body.extend_from_slice(&chunk);
        body_crc.update(&chunk);
        position += chunk.len() as u64;
    }
    let computed = body_crc.finalize();
    if computed != header.body_crc {
        let stored = header.body_crc;
        return Err(SnapshotError::ChecksumMismatch {
            path: path.to_path_buf(),
            part: "body",
            stored,
            computed,
        });
    }
    let (applied_index, term) = (header.applied_index, header.term);
    Ok(Snapshot {
        shard,
        applied_index,
        term,
        body,
    })
}

/// Reads up to one chunk at `position` of a file of `size` bytes; never empty.
async fn read_chunk(
    file: &DmaFile,
    path: &Path,
    position: u64,
    size: u64,
) -> Result<glommio::io::ReadResult, SnapshotError> {
    let wanted = (size - position).min(SNAPSHOT_IO_CHUNK_BYTES as u64) as usize;
    let read = file
        .read_at(position, wanted)
        .await
        .map_err(glommio_error("reading", path))?;
    if read.is_empty() && wanted > 0 {
        return Err(SnapshotError::Malformed {
            path: path.to_path_buf(),
            reason: format!("file ends at {position}, before its announced {size} bytes"),
        });
    }
    Ok(read)
}

fn header_error(path: &Path, fault: HeaderFault) -> SnapshotError {
    let path = path.to_path_buf();
    match fault {
        HeaderFault::BadMagic { found } => SnapshotError::BadMagic { path, found },
        HeaderFault::UnsupportedVersion { version } => SnapshotError::UnsupportedVersion {
            path,
            version,
            supported: SNAPSHOT_FORMAT_VERSION,
        },
        HeaderFault::ChecksumMismatch { stored, computed } => SnapshotError::ChecksumMismatch {
            path,
            part: "header",
            stored,
            computed,
        },
        HeaderFault::Truncated { available } => SnapshotError::Malformed {
            path,
            reason: format!("only {available} bytes, shorter than the header"),
        },
        HeaderFault::ReservedNotZero => SnapshotError::Malformed {
            path,
            reason: "reserved header bytes are not zero".into(),
        },
        HeaderFault::BodyTooLarge { body_bytes } => SnapshotError::BodyTooLarge {
            path,
            body_bytes,
            limit_bytes: SNAPSHOT_BODY_BYTES_MAX,
        },
    }
}
