//! The per-core write-ahead log.
//!
//! # Ownership
//! Each core's glommio executor owns one [`Wal`] holding the records of every shard
//! pinned to that core. It is `!Send`, lives in an `Rc` shared by the core's tasks, and
//! every method takes `&self`. The Raft shell appends records as it produces them and
//! one flusher task calls [`Wal::sync`]; nothing that depends on a record (a vote, an
//! acknowledgement) may leave the node before a sync that started after its append
//! has returned `Ok`.
//!
//! # Files
//! Segments `DATA/wal/core-{core:03}-{sequence:012}.log`, consecutive sequences, each
//! pre-written with zeros to [`WalOptions::segment_bytes`] before its first record (an
//! allocating write makes fdatasync much slower on our disks). The next segment is
//! prepared in a background task while the current one fills, so rotation does not
//! stall commits. `DATA/wal/.dma-probe` is a small file read first on every executor
//! (see `dma.rs` for the glommio pitfall it avoids).
//!
//! # Records
//! Little-endian `length u32` (header + payload), `crc u32` (CRC-32 over bytes
//! `8..length`), `shard u32`, `kind u8`, 3 zero bytes, `term u64`, `index u64`,
//! `timestamp_ms u64`, payload; packed back to back from offset 0 of each segment,
//! never spanning two segments. The zeros after the last record mark the end. See
//! [`record`] for the encoder and scanner.
//!
//! # Durability
//! [`Wal::append`] only buffers. [`Wal::sync`] takes everything buffered so far and
//! makes it durable with one O_DIRECT write and one fdatasync (two of each when the
//! batch crosses into the next segment: the older segment is made durable first, so a
//! crash never leaves records in segment n+1 behind a torn segment n). O_DIRECT writes
//! whole blocks: the partial last block is written again, completed, by the next sync.
//! Its already durable bytes are rewritten with the same values, so a write torn at
//! any granularity leaves them intact.
//! A failed sync keeps its records buffered and the next sync writes them again at the
//! same offsets; nothing is ever reported durable that was not fdatasynced.
//!
//! # Recovery
//! [`Wal::open`] replays the segments in order. Zeros after the last valid record are
//! the normal end. Non-zero bytes after it with no valid record behind them are a torn
//! write: they are zeroed and appends continue right after the last valid record. A
//! bad record with a valid record somewhere after it, a gap in the sequence numbers or
//! garbage at the end of a segment that is not the last are corruption: open refuses
//! with [`WalError::Corrupt`] naming the file and offset, and the node is repaired
//! from a peer. A write torn out of order inside one batch (a later block reached the
//! disk, an earlier one did not) looks the same as damage to acknowledged records and
//! is refused too: refusing is the side that cannot lose an acknowledged record.

mod dma;
mod error;
mod options;
pub mod record;
mod replay;
mod segment;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

pub(crate) use dma::{align_up, ensure_dma_reads, sync_directory};
pub use error::WalError;
pub use options::{
    WalOptions, WAL_BUFFER_BYTES_MAX, WAL_PREWRITE_CHUNK_BYTES, WAL_REPLAY_READ_BYTES,
    WAL_SEGMENT_ALIGNMENT_BYTES, WAL_SEGMENT_BYTES, WAL_SEGMENT_BYTES_MAX, WAL_SEGMENT_BYTES_MIN,
};
pub use record::{encode_record, RecordHeader, RECORD_BYTES_MAX, RECORD_HEADER_BYTES};

use dma::align_down;
use glommio::{sync::Semaphore, Task};
use record::{decode_header_unchecked, encoded_length};
use replay::{ActiveSegment, ClosedSegment};
use segment::{prepare_segment, short_transfer, PreparedSegment, ShardIndexMap};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What one [`Wal::sync`] made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Records made durable.
    pub records: usize,
    /// Bytes of those records (headers included, block padding excluded).
    pub bytes: usize,
    /// Segments this sync moved to (0 unless the batch crossed a segment boundary).
    pub segments_started: usize,
    /// Time from the call to the return, waiting for an earlier sync included.
    pub elapsed: Duration,
}

/// One core's write-ahead log. See the module documentation for the guarantees.
#[derive(Debug)]
pub struct Wal {
    directory: PathBuf,
    core: u32,
    options: WalOptions,
    state: RefCell<WalState>,
    /// One sync at a time: a second caller waits for the first, then syncs what was
    /// appended meanwhile.
    sync_turn: Semaphore,
    /// One release at a time, so segments are always deleted oldest first.
    release_turn: Semaphore,
    /// Test hook: the number of segment writes that succeed before one fails.
    #[cfg(test)]
    writes_until_failure: std::cell::Cell<Option<u32>>,
}

#[derive(Debug)]
struct WalState {
    /// Encoded records appended and not yet taken by a sync.
    pending: Vec<u8>,
    pending_records: usize,
    /// The previous batch's buffer, reused so that steady state does not allocate.
    spare: Vec<u8>,
    active: ActiveSegment,
    closed: VecDeque<ClosedSegment>,
    /// The segment after the active one, being pre-written in the background.
    next: Option<Task<Result<PreparedSegment, WalError>>>,
}

/// A batch taken by a sync, and how much of it became durable.
struct Batch {
    bytes: Vec<u8>,
    records: usize,
}

#[derive(Default)]
struct BatchProgress {
    bytes: usize,
    records: usize,
    segments_started: usize,
}

impl Wal {
    /// Opens (creating if needed) `data_dir/wal` for `core`, replaying every record of
    /// this core in log order through `on_record`, whose payload argument is 16-byte
    /// aligned and valid only during the call. Truncates a torn tail; refuses
    /// corruption elsewhere with [`WalError::Corrupt`]. Must run on the executor that
    /// will own the WAL, before that executor creates any other DMA file (see `dma.rs`;
    /// `read_snapshot` takes the same precaution, so it may run first).
    pub async fn open(
        data_dir: &Path,
        core: u32,
        options: WalOptions,
        mut on_record: impl FnMut(RecordHeader, &[u8]) -> Result<(), WalError>,
    ) -> Result<Wal, WalError> {
        options.validate()?;
        let directory = data_dir.join("wal");
        std::fs::create_dir_all(&directory).map_err(WalError::io("creating", &directory))?;
        sync_directory(data_dir)
            .await
            .map_err(WalError::io("syncing directory", data_dir))?;
        ensure_dma_reads(&directory)
            .await
            .map_err(WalError::io("probing DMA reads in", &directory))?;
        let recovered = replay::recover(&directory, core, &mut on_record).await?;
        let active = match recovered.active {
            Some(active) => active,
            None => {
                let segment = recovered.fresh_sequence;
                activate(
                    prepare_segment(directory.clone(), core, segment, options.segment_bytes)
                        .await?,
                )
            }
        };
        let next = spawn_prepare(&directory, core, active.sequence + 1, options.segment_bytes);
        let state = WalState {
            pending: Vec::new(),
            pending_records: 0,
            spare: Vec::new(),
            active,
            closed: recovered.closed,
            next: Some(next),
        };
        Ok(Wal {
            directory,
            core,
            options,
            state: RefCell::new(state),
            sync_turn: Semaphore::new(1),
            release_turn: Semaphore::new(1),
            #[cfg(test)]
            writes_until_failure: std::cell::Cell::new(None),
        })
    }

    /// Buffers one record in memory (no IO); it becomes durable with the next
    /// [`Wal::sync`] that starts after this call. Refuses with [`WalError::Full`] when
    /// the buffer is at `buffer_bytes_max` (back-pressure: reply Overloaded, sync) and
    /// with [`WalError::RecordTooLarge`] above `record_bytes_max`.
    pub fn append(&self, header: &RecordHeader, payload: &[u8]) -> Result<(), WalError> {
        let record_bytes = RECORD_HEADER_BYTES + payload.len();
        if record_bytes > self.options.record_bytes_max {
            return Err(WalError::RecordTooLarge {
                record_bytes,
                limit_bytes: self.options.record_bytes_max,
            });
        }
        let mut state = self.state.borrow_mut();
        if state.pending.len() + record_bytes > self.options.buffer_bytes_max {
            return Err(WalError::Full {
                buffered_bytes: state.pending.len(),
                limit_bytes: self.options.buffer_bytes_max,
            });
        }
        encode_record(&mut state.pending, header, payload);
        state.pending_records += 1;
        Ok(())
    }

    /// Makes every record appended before this call durable (group commit: records
    /// appended while the IO is in flight wait for the next sync). If another sync is
    /// running, this one waits for it and then syncs whatever is still buffered. On an
    /// error nothing after the last durable record is reported durable and the records
    /// stay buffered for the next sync.
    pub async fn sync(&self) -> Result<SyncReport, WalError> {
        let started = Instant::now();
        let _turn = self
            .sync_turn
            .acquire_permit(1)
            .await
            .expect("the WAL never closes its semaphores");
        let batch = self.take_pending();
        let mut progress = BatchProgress::default();
        let result = self.write_batch(&batch.bytes, &mut progress).await;
        self.finish_batch(batch, &progress);
        result?;
        Ok(SyncReport {
            records: progress.records,
            bytes: progress.bytes,
            segments_started: progress.segments_started,
            elapsed: started.elapsed(),
        })
    }

    /// Deletes closed segments, oldest first, while every record in them is below
    /// `keep_from(shard)` for its shard (the first index that shard still needs).
    /// Never deletes the active segment. Returns how many segments were deleted.
    ///
    /// Records the caller needs regardless of index (the latest term and vote, say)
    /// must carry an index at or above `keep_from` of their shard, or be appended
    /// again after the snapshot that moved `keep_from`, or they may be released.
    pub async fn release(&self, keep_from: impl Fn(u32) -> u64) -> Result<usize, WalError> {
        let _turn = self
            .release_turn
            .acquire_permit(1)
            .await
            .expect("the WAL never closes its semaphores");
        let mut deleted = 0;
        loop {
            let (sequence, path) = match self.state.borrow().closed.front() {
                Some(segment) if segment.shards.all_below(&keep_from) => {
                    (segment.sequence, segment.path.clone())
                }
                _ => break,
            };
            glommio::io::remove(&path)
                .await
                .map_err(WalError::glommio("removing", &path))?;
            // A directory sync per deletion keeps the surviving segments contiguous
            // whatever a crash persists; releases are rare (after snapshots).
            sync_directory(&self.directory)
                .await
                .map_err(WalError::io("syncing directory", &self.directory))?;
            let removed = self.state.borrow_mut().closed.pop_front();
            assert_eq!(
                removed.map(|s| s.sequence),
                Some(sequence),
                "WAL segments released out of order"
            );
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Bytes appended and not yet taken by a sync.
    pub fn buffered_bytes(&self) -> usize {
        self.state.borrow().pending.len()
    }

    /// Records appended and not yet taken by a sync.
    pub fn buffered_records(&self) -> usize {
        self.state.borrow().pending_records
    }

    /// Segment files currently holding records (closed ones and the active one).
    pub fn segment_count(&self) -> usize {
        self.state.borrow().closed.len() + 1
    }

    /// The core this WAL belongs to.
    pub fn core(&self) -> u32 {
        self.core
    }

    fn take_pending(&self) -> Batch {
        let mut state = self.state.borrow_mut();
        let mut replacement = std::mem::take(&mut state.spare);
        replacement.clear();
        let bytes = std::mem::replace(&mut state.pending, replacement);
        let records = std::mem::take(&mut state.pending_records);
        Batch { bytes, records }
    }

    /// Puts the part of `batch` that did not become durable back in front of what
    /// was appended meanwhile, and keeps the batch's buffer for reuse.
    fn finish_batch(&self, mut batch: Batch, progress: &BatchProgress) {
        let mut state = self.state.borrow_mut();
        if progress.bytes < batch.bytes.len() {
            let mut pending = batch.bytes.split_off(progress.bytes);
            pending.extend_from_slice(&state.pending);
            state.pending = pending;
            state.pending_records += batch.records - progress.records;
        }
        batch.bytes.clear();
        state.spare = batch.bytes;
    }

    /// Writes `batch` segment by segment, recording in `progress` what is durable.
    async fn write_batch(
        &self,
        batch: &[u8],
        progress: &mut BatchProgress,
    ) -> Result<(), WalError> {
        let mut just_rotated = false;
        while progress.bytes < batch.len() {
            let room = {
                let state = self.state.borrow();
                state.active.capacity - state.active.end
            };
            let rest = &batch[progress.bytes..];
            let (piece_bytes, piece_records) = fitting_prefix(rest, room);
            if piece_bytes == 0 {
                // validate() guarantees a fresh segment holds the largest record.
                assert!(
                    !just_rotated,
                    "a fresh WAL segment cannot hold the next record"
                );
                self.rotate().await?;
                progress.segments_started += 1;
                just_rotated = true;
                continue;
            }
            self.write_piece(&rest[..piece_bytes]).await?;
            progress.bytes += piece_bytes;
            progress.records += piece_records;
            just_rotated = false;
        }
        Ok(())
    }

    /// Writes `piece` (whole records) right after the active segment's durable end
    /// with one write and one fdatasync.
    async fn write_piece(&self, piece: &[u8]) -> Result<(), WalError> {
        let (file, sequence, position, buffer, new_tail) = {
            let state = self.state.borrow();
            let active = &state.active;
            let alignment = active.file.alignment();
            let position = align_down(active.end, alignment);
            assert_eq!(
                active.tail.len() as u64,
                active.end - position,
                "WAL tail block out of step"
            );
            let staged = active.tail.len() + piece.len();
            let mut buffer = active
                .file
                .alloc_dma_buffer(align_up(staged as u64, alignment) as usize);
            let bytes = buffer.as_bytes_mut();
            bytes[..active.tail.len()].copy_from_slice(&active.tail);
            bytes[active.tail.len()..staged].copy_from_slice(piece);
            bytes[staged..].fill(0);
            let new_end = active.end + piece.len() as u64;
            let new_tail =
                bytes[(align_down(new_end, alignment) - position) as usize..staged].to_vec();
            (
                Rc::clone(&active.file),
                active.sequence,
                position,
                buffer,
                new_tail,
            )
        };
        #[cfg(test)]
        self.inject_write_failure()?;
        let wanted = buffer.len();
        let written = file
            .write_at(buffer, position)
            .await
            .map_err(|e| self.active_io_error("writing", e))?;
        if written != wanted {
            return Err(short_transfer(
                "writing",
                &self.state.borrow().active.path,
                written,
                wanted,
            ));
        }
        file.fdatasync()
            .await
            .map_err(|e| self.active_io_error("syncing", e))?;
        let mut state = self.state.borrow_mut();
        let active = &mut state.active;
        assert_eq!(
            active.sequence, sequence,
            "the active WAL segment changed under a sync"
        );
        note_records(&mut active.shards, piece);
        active.end += piece.len() as u64;
        active.tail = new_tail;
        Ok(())
    }

    /// Moves appends to the next segment (prepared in the background, or now if that
    /// failed) and starts preparing the one after it.
    async fn rotate(&self) -> Result<(), WalError> {
        let (task, sequence) = {
            let mut state = self.state.borrow_mut();
            (state.next.take(), state.active.sequence + 1)
        };
        let prepared = match task {
            Some(task) => task.await?,
            None => {
                let directory = self.directory.clone();
                prepare_segment(directory, self.core, sequence, self.options.segment_bytes).await?
            }
        };
        assert_eq!(
            prepared.sequence, sequence,
            "prepared WAL segment out of sequence"
        );
        let mut state = self.state.borrow_mut();
        let full = std::mem::replace(&mut state.active, activate(prepared));
        let ActiveSegment {
            sequence: full_sequence,
            path,
            shards,
            ..
        } = full;
        state.closed.push_back(ClosedSegment {
            sequence: full_sequence,
            path,
            shards,
        });
        state.next = Some(spawn_prepare(
            &self.directory,
            self.core,
            sequence + 1,
            self.options.segment_bytes,
        ));
        tracing::debug!(core = self.core, sequence, "WAL segment started");
        Ok(())
    }

    #[cfg(test)]
    fn inject_write_failure(&self) -> Result<(), WalError> {
        match self.writes_until_failure.get() {
            Some(0) => {
                self.writes_until_failure.set(None);
                let source = std::io::Error::from_raw_os_error(libc::ENOSPC);
                Err(self.active_io_error("writing", source.into()))
            }
            Some(left) => {
                self.writes_until_failure.set(Some(left - 1));
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn active_io_error(
        &self,
        operation: &'static str,
        error: glommio::GlommioError<()>,
    ) -> WalError {
        WalError::glommio(operation, self.state.borrow().active.path.clone())(error)
    }
}

fn activate(prepared: PreparedSegment) -> ActiveSegment {
    ActiveSegment {
        sequence: prepared.sequence,
        path: prepared.path,
        file: Rc::new(prepared.file),
        capacity: prepared.capacity,
        end: 0,
        tail: Vec::new(),
        shards: ShardIndexMap::default(),
    }
}

fn spawn_prepare(
    directory: &Path,
    core: u32,
    sequence: u64,
    segment_bytes: u64,
) -> Task<Result<PreparedSegment, WalError>> {
    glommio::spawn_local(prepare_segment(
        directory.to_path_buf(),
        core,
        sequence,
        segment_bytes,
    ))
}

/// Bytes and count of the whole records at the start of `records` that fit in `room`.
fn fitting_prefix(records: &[u8], room: u64) -> (usize, usize) {
    let (mut bytes, mut count) = (0, 0);
    while bytes < records.len() {
        let length = encoded_length(records, bytes);
        if (bytes + length) as u64 > room {
            break;
        }
        bytes += length;
        count += 1;
    }
    (bytes, count)
}

fn note_records(shards: &mut ShardIndexMap, records: &[u8]) {
    let mut offset = 0;
    while offset < records.len() {
        let length = encoded_length(records, offset);
        let header = decode_header_unchecked(&records[offset..offset + length]);
        shards.note(header.shard, header.index);
        offset += length;
    }
}
