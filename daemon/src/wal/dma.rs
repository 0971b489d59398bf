//! Helpers for glommio DMA files shared by the WAL and the snapshot files.
//!
//! glommio decides, per executor thread and per block device, whether the device
//! supports polled IO by reading the first block of the first `DmaFile` opened on it.
//! If that file is new and empty the read "succeeds" without touching the device, the
//! device is wrongly marked pollable, and every later read on that executor fails with
//! EOPNOTSUPP while writes keep working (glommio issues 605 and 670). Opening a small
//! non-empty probe file first makes the probe read real.

use glommio::io::{Directory, DmaFile};
use std::{io, path::Path};

/// Name of the probe file kept in each directory the daemon opens DMA files in.
pub(crate) const DMA_PROBE_FILE_NAME: &str = ".dma-probe";

/// Size of the probe file: one block of the largest O_DIRECT alignment we expect.
const DMA_PROBE_BYTES: usize = 4096;

/// Makes sure DMA reads work on this executor for files in `directory`: opens (and
/// first creates, if needed) a non-empty probe file there and reads it back. Call this
/// before opening any other DMA file in `directory`.
pub(crate) async fn ensure_dma_reads(directory: &Path) -> io::Result<()> {
    let path = directory.join(DMA_PROBE_FILE_NAME);
    let intact = std::fs::metadata(&path)
        .map(|m| m.len() == DMA_PROBE_BYTES as u64)
        .unwrap_or(false);
    if !intact {
        // A small buffered write on the reactor thread, once per data directory.
        std::fs::write(&path, [b'Q'; DMA_PROBE_BYTES])?;
    }
    let file = DmaFile::open(&path).await.map_err(io::Error::from)?;
    let read = file.read_at_aligned(0, file.alignment() as usize).await;
    file.close().await.map_err(io::Error::from)?;
    match read {
        Ok(bytes) if !bytes.is_empty() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "DMA probe file read back empty",
        )),
        Err(error) => {
            let error = io::Error::from(error);
            Err(io::Error::new(
                error.kind(),
                format!(
                    "DMA reads fail on this executor ({error}); if this is EOPNOTSUPP, a new empty \
                     file was the first DMA file opened on this device: open the WAL and snapshot \
                     directories before creating any other DMA file on this core"
                ),
            ))
        }
    }
}

/// Makes the directory's entries (created, renamed, removed files) durable.
pub(crate) async fn sync_directory(directory: &Path) -> io::Result<()> {
    let handle = Directory::open(directory).await.map_err(io::Error::from)?;
    let synced = handle.sync().await.map_err(io::Error::from);
    handle.close().await.map_err(io::Error::from)?;
    synced
}

/// Rounds `value` down to a multiple of `alignment` (a power of two).
pub(crate) fn align_down(value: u64, alignment: u64) -> u64 {
    debug_assert!(alignment.is_power_of_two());
    value & !(alignment - 1)
}

/// Rounds `value` up to a multiple of `alignment` (a power of two).
pub(crate) fn align_up(value: u64, alignment: u64) -> u64 {
    align_down(value + alignment - 1, alignment)
}
