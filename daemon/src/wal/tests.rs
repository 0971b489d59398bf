//! Scenario tests of the WAL on real DMA files in a temporary directory.

use super::segment::segment_file_name;
use super::test_support::{run, TestDir};
use super::*;
use std::cell::Cell;

/// Small segments so that a few hundred records rotate several times.
const OPTIONS: WalOptions = WalOptions {
    segment_bytes: 8 * 1024,
    buffer_bytes_max: 64 * 1024,
    record_bytes_max: 2048,
};

type Replayed = Vec<(RecordHeader, Vec<u8>)>;

fn header(shard: u32, index: u64) -> RecordHeader {
    RecordHeader {
        shard,
        kind: 1,
        term: 2,
        index,
        timestamp_ms: 1_700_000_000_000 + index,
    }
}

/// A payload whose bytes are all non-zero, so the log's end is its last non-zero byte.
fn payload(index: u64) -> Vec<u8> {
    vec![(index % 251) as u8 + 1; (index as usize * 37) % 300]
}

fn record(shard: u32, index: u64) -> (RecordHeader, Vec<u8>) {
    (header(shard, index), payload(index))
}

async fn open(dir: &Path) -> Result<(Wal, Replayed), WalError> {
    let mut replayed = Vec::new();
    let wal = Wal::open(dir, 0, OPTIONS, |header, payload| {
        assert_eq!(
            payload.as_ptr() as usize % 16,
            0,
            "replayed payloads are 16-byte aligned"
        );
        replayed.push((header, payload.to_vec()));
        Ok(())
    })
    .await?;
    Ok((wal, replayed))
}

async fn append_and_sync(wal: &Wal, records: &[(RecordHeader, Vec<u8>)], batch: usize) {
    for chunk in records.chunks(batch) {
        for (header, payload) in chunk {
            wal.append(header, payload).expect("append");
        }
        let report = wal.sync().await.expect("sync");
        assert_eq!(report.records, chunk.len());
    }
}

fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join("wal").join(segment_file_name(0, sequence))
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("wal"))
        .expect("list wal directory")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// Offset right after the last non-zero byte of a segment: the end of its records.
fn records_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).expect("read segment");
    bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1)
}

fn overwrite(path: &Path, offset: usize, bytes: &[u8]) {
    let mut content = std::fs::read(path).expect("read segment");
    content[offset..offset + bytes.len()].copy_from_slice(bytes);
    std::fs::write(path, content).expect("write segment");
}

#[test]
fn records_round_trip_across_rotation_and_reopen() {
    let dir = TestDir::new("wal-round-trip");
    let first: Replayed = (1..=300).map(|i| record((i % 3) as u32, i)).collect();
    let second: Replayed = (301..=400).map(|i| record((i % 3) as u32, i)).collect();
    run(async {
        let (wal, replayed) = open(dir.path()).await.expect("open empty");
        assert!(replayed.is_empty());
        append_and_sync(&wal, &first, 7).await;
        assert!(wal.segment_count() > 3, "small segments must have rotated");
        drop(wal);
        let (wal, replayed) = open(dir.path()).await.expect("reopen");
        assert_eq!(replayed, first);
        append_and_sync(&wal, &second, 64).await;
        drop(wal);
        let (_wal, replayed) = open(dir.path()).await.expect("reopen again");
        assert_eq!(replayed, [first, second].concat());
    });
}

#[test]
fn unsynced_records_are_absent_after_a_crash_and_synced_ones_present() {
    let dir = TestDir::new("wal-crash");
    let synced: Replayed = (1..=20).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &synced, 5).await;
        for i in 21..=30 {
            let (header, payload) = record(0, i);
            wal.append(&header, &payload).expect("append");
        }
        assert_eq!(wal.buffered_records(), 10);
        // Dropping without a sync is what a crash does to buffered records.
        drop(wal);
        let (_wal, replayed) = open(dir.path()).await.expect("reopen");
        assert_eq!(replayed, synced);
    });
}

#[test]
fn torn_tail_is_truncated_and_appends_continue_after_the_last_good_record() {
    for garbage in [vec![0xA5; 700], {
        // The first half of a valid record: a write cut short.
        let mut partial = Vec::new();
        encode_record(&mut partial, &header(0, 99), &[7; 200]);
        partial.truncate(120);
        partial
    }] {
        let dir = TestDir::new("wal-torn");
        let good: Replayed = (1..=10).map(|i| record(0, i)).collect();
        let later: Replayed = (11..=15).map(|i| record(0, i)).collect();
        run(async {
            let (wal, _) = open(dir.path()).await.expect("open");
            append_and_sync(&wal, &good, 4).await;
            drop(wal);
            let path = segment_path(dir.path(), 0);
            overwrite(&path, records_end(&path), &garbage);
            let (wal, replayed) = open(dir.path())
                .await
                .expect("a torn tail is not corruption");
            assert_eq!(replayed, good);
            append_and_sync(&wal, &later, 2).await;
            drop(wal);
            let (_wal, replayed) = open(dir.path()).await.expect("reopen after truncation");
            assert_eq!(replayed, [good.clone(), later.clone()].concat());
        });
    }
}

#[test]
fn zeroed_tail_ends_the_log_cleanly() {
    let dir = TestDir::new("wal-zeroed");
    let records: Replayed = (1..=10).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 10).await;
        drop(wal);
        // The last record never reached the disk: its bytes are still the pre-written zeros.
        let path = segment_path(dir.path(), 0);
        let end = records_end(&path);
        let last_bytes = RECORD_HEADER_BYTES + records[9].1.len();
        overwrite(&path, end - last_bytes, &vec![0; last_bytes]);
        let (_wal, replayed) = open(dir.path()).await.expect("zeros are a clean end");
        assert_eq!(replayed, records[..9]);
    });
}

#[test]
fn corruption_in_the_middle_refuses_to_open_naming_file_and_offset() {
    let dir = TestDir::new("wal-corrupt");
    let records: Replayed = (1..=10).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 3).await;
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let third = records[..2]
            .iter()
            .map(|(_, p)| RECORD_HEADER_BYTES + p.len())
            .sum::<usize>();
        // Flip one payload bit of the third record.
        let mut content = std::fs::read(&path).expect("read");
        content[third + RECORD_HEADER_BYTES + 1] ^= 0x10;
        std::fs::write(&path, content).expect("write");
        let error = open(dir.path())
            .await
            .expect_err("mid-log damage must refuse");
        match &error {
            WalError::Corrupt {
                path: bad, offset, ..
            } => {
                assert_eq!(bad, &path);
                assert_eq!(*offset, third as u64);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let message = error.to_string();
        assert!(
            message.contains(&path.display().to_string()) && message.contains(&third.to_string())
        );
        assert!(message.contains("from a peer"), "{message}");
    });
}

#[test]
fn huge_length_field_is_a_bad_record_not_an_allocation() {
    let dir = TestDir::new("wal-huge-length");
    let records: Replayed = (1..=6).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 6).await;
        drop(wal);
        let path = segment_path(dir.path(), 0);
        // At the tail: a torn tail, truncated.
        overwrite(&path, records_end(&path), &u32::MAX.to_le_bytes());
        let (wal, replayed) = open(dir.path())
            .await
            .expect("huge length at the tail is torn");
        assert_eq!(replayed, records);
        drop(wal);
        // In the middle: corruption at that record.
        overwrite(&path, 0, &u32::MAX.to_le_bytes());
        match open(dir.path()).await {
            Err(WalError::Corrupt {
                offset: 0, reason, ..
            }) => {
                assert!(reason.contains("exceeds"), "{reason}");
            }
            other => panic!("expected Corrupt at 0, got {other:?}"),
        }
    });
}

#[test]
fn sequence_gap_is_corruption() {
    let dir = TestDir::new("wal-gap");
    let records: Replayed = (1..=200).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 20).await;
        assert!(wal.segment_count() >= 3);
        drop(wal);
        std::fs::remove_file(segment_path(dir.path(), 1)).expect("remove segment 1");
        match open(dir.path()).await {
            Err(WalError::Corrupt {
                path,
                offset: 0,
                reason,
            }) => {
                assert_eq!(path, segment_path(dir.path(), 2));
                assert!(reason.contains("gap"), "{reason}");
            }
            other => panic!("expected a sequence gap, got {other:?}"),
        }
    });
}

#[test]
fn garbage_at_the_end_of_a_segment_that_is_not_the_last_is_corruption() {
    let dir = TestDir::new("wal-garbage-closed");
    let records: Replayed = (1..=100).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 10).await;
        assert!(wal.segment_count() >= 2);
        drop(wal);
        let path = segment_path(dir.path(), 0);
        let end = records_end(&path);
        overwrite(&path, end, &[0xEE; 16]);
        match open(dir.path()).await {
            Err(WalError::Corrupt {
                path: bad, offset, ..
            }) => {
                assert_eq!(bad, path);
                assert_eq!(offset, end as u64);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    });
}

#[test]
fn release_deletes_only_fully_covered_closed_segments_oldest_first() {
    let dir = TestDir::new("wal-release");
    // Shard 0 writes indexes 1..=150; shard 1 writes only at the start.
    let mut records: Replayed = (1..=20).map(|i| record(1, i)).collect();
    records.extend((1..=150).map(|i| record(0, i)));
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 10).await;
        let segments = wal.segment_count();
        assert!(segments >= 4, "{segments} segments");
        // Shard 1 still needs index 20: nothing can go, whatever shard 0 allows.
        let kept_for_shard_1 = wal
            .release(|shard| if shard == 0 { u64::MAX } else { 20 })
            .await;
        assert_eq!(kept_for_shard_1.expect("release"), 0);
        // Everything released: every closed segment goes, the active one stays.
        let deleted = wal.release(|_| u64::MAX).await.expect("release");
        assert_eq!(deleted, segments - 1);
        assert_eq!(wal.segment_count(), 1);
        let names = segment_files(dir.path());
        assert_eq!(names.len(), 2, "active + prepared next: {names:?}");
        assert_eq!(names[0], segment_file_name(0, segments as u64 - 1));
        drop(wal);
        let (_wal, replayed) = open(dir.path()).await.expect("reopen after release");
        assert!(!replayed.is_empty());
        assert_eq!(replayed.last(), records.last());
    });
}

#[test]
fn release_stops_at_the_first_segment_still_needed() {
    let dir = TestDir::new("wal-release-prefix");
    let records: Replayed = (1..=150).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 10).await;
        let segments = wal.segment_count();
        // About 45 records fit in a segment: the first two are below 100, the third not.
        let deleted = wal.release(|_| 100).await.expect("release");
        assert!(
            deleted >= 1 && deleted < segments - 1,
            "{deleted} of {segments}"
        );
        drop(wal);
        let (_wal, replayed) = open(dir.path()).await.expect("reopen");
        // Every record from index 100 on survives, and the first one kept is below it.
        assert!(replayed[0].0.index < 100 && replayed[0].0.index > 1);
        assert_eq!(replayed[replayed.len() - 51..], records[99..]);
    });
}

#[test]
fn buffer_bound_gives_back_pressure_and_oversized_records_are_refused() {
    let dir = TestDir::new("wal-full");
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        let payload = [9u8; 1000];
        let mut appended = 0;
        let error = loop {
            match wal.append(&header(0, appended + 1), &payload) {
                Ok(()) => appended += 1,
                Err(error) => break error,
            }
        };
        assert!(
            matches!(error, WalError::Full { limit_bytes, .. } if limit_bytes == OPTIONS.buffer_bytes_max)
        );
        assert!(wal.buffered_bytes() <= OPTIONS.buffer_bytes_max);
        assert_eq!(wal.sync().await.expect("sync").records as u64, appended);
        wal.append(&header(0, appended + 1), &payload)
            .expect("room again after sync");
        let too_large = wal
            .append(&header(0, 0), &[0; 2048])
            .expect_err("over record_bytes_max");
        assert!(matches!(
            too_large,
            WalError::RecordTooLarge {
                record_bytes: 2088,
                limit_bytes: 2048
            }
        ));
    });
}

#[test]
fn concurrent_syncs_follow_each_other_and_lose_nothing() {
    let dir = TestDir::new("wal-concurrent");
    let records: Replayed = (1..=40).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        let wal = Rc::new(wal);
        let mut tasks = Vec::new();
        for chunk in records.chunks(5) {
            for (header, payload) in chunk {
                wal.append(header, payload).expect("append");
            }
            let wal = Rc::clone(&wal);
            tasks.push(glommio::spawn_local(async move { wal.sync().await }));
        }
        let mut synced = 0;
        for task in tasks {
            synced += task.await.expect("sync").records;
        }
        assert_eq!(synced, records.len());
        drop(wal);
        let (_wal, replayed) = open(dir.path()).await.expect("reopen");
        assert_eq!(replayed, records);
    });
}

#[test]
fn replay_callback_errors_stop_open_with_the_position() {
    let dir = TestDir::new("wal-replay-reject");
    let records: Replayed = (1..=5).map(|i| record(0, i)).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records, 5).await;
        drop(wal);
        let seen = Cell::new(0);
        let result = Wal::open(dir.path(), 0, OPTIONS, |header, _| {
            seen.set(seen.get() + 1);
            if header.index == 3 {
                return Err(WalError::InvalidRecord {
                    reason: "test".into(),
                });
            }
            Ok(())
        })
        .await;
        let expected = records[..2]
            .iter()
            .map(|(_, p)| RECORD_HEADER_BYTES + p.len())
            .sum::<usize>();
        match result {
            Err(WalError::ReplayRejected { offset, .. }) => assert_eq!(offset, expected as u64),
            other => panic!("expected ReplayRejected, got {other:?}"),
        }
        assert_eq!(seen.get(), 3);
    });
}

#[test]
fn dma_reads_work_on_new_files_once_the_probe_ran() {
    let dir = TestDir::new("wal-dma-probe");
    run(async {
        // Opening the WAL runs the probe; a brand-new empty file afterwards is readable.
        let (_wal, _) = open(dir.path()).await.expect("open");
        let path = dir.path().join("fresh");
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .dma_open(&path)
            .await
            .expect("create");
        let mut buffer = file.alloc_dma_buffer(4096);
        buffer.as_bytes_mut().fill(0x42);
        file.write_at(buffer, 0).await.expect("write");
        let read = file
            .read_at_aligned(0, 4096)
            .await
            .expect("reads work after the probe");
        assert!(read.iter().all(|&b| b == 0x42));
        file.close().await.expect("close");
    });
}

#[test]
fn sync_without_records_does_no_io_and_reports_nothing() {
    let dir = TestDir::new("wal-empty-sync");
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        let report = wal.sync().await.expect("sync");
        assert_eq!(
            (report.records, report.bytes, report.segments_started),
            (0, 0, 0)
        );
        wal.append(&header(0, 1), &[1; 60]).expect("append");
        let report = wal.sync().await.expect("sync");
        assert_eq!((report.records, report.bytes), (1, 100));
    });
}

/// Waits for the background preparation of the next segment, so that it does no IO
/// during the measured part of a test.
async fn settle_next_segment(wal: &Wal) {
    let task = wal
        .state
        .borrow_mut()
        .next
        .take()
        .expect("next segment being prepared");
    let prepared = task.await.expect("next segment prepared");
    wal.state.borrow_mut().next = Some(glommio::spawn_local(async move { Ok(prepared) }));
}

fn file_writes_since_last_call() -> u64 {
    glommio::executor().io_stats().all_rings().file_writes().0
}

#[test]
fn a_sync_is_one_write_per_segment_touched() {
    let dir = TestDir::new("wal-write-count");
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        settle_next_segment(&wal).await;
        file_writes_since_last_call();
        for i in 1..=20 {
            wal.append(&header(0, i), &[1; 100]).expect("append");
        }
        let report = wal.sync().await.expect("sync");
        assert_eq!((report.records, report.segments_started), (20, 0));
        assert_eq!(
            file_writes_since_last_call(),
            1,
            "one write for a batch in one segment"
        );
        // 8 KiB segment, 140-byte records: 80 more cross into the next segment.
        for i in 21..=100 {
            wal.append(&header(0, i), &[1; 100]).expect("append");
        }
        settle_next_segment(&wal).await;
        file_writes_since_last_call();
        let report = wal.sync().await.expect("sync");
        assert_eq!((report.records, report.segments_started), (80, 1));
        // Rotation started preparing the segment after: one 8 KiB zero write of its own.
        settle_next_segment(&wal).await;
        assert_eq!(
            file_writes_since_last_call(),
            2 + 1,
            "one write in each segment"
        );
    });
}

#[test]
fn a_failed_write_keeps_the_records_buffered_and_the_next_sync_writes_them() {
    let dir = TestDir::new("wal-write-failure");
    let records: Replayed = (1..=100).map(|i| (header(0, i), vec![3; 100])).collect();
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        append_and_sync(&wal, &records[..10], 10).await;
        // The next batch crosses a segment boundary; its second write fails.
        for (header, payload) in &records[10..] {
            wal.append(header, payload).expect("append");
        }
        wal.writes_until_failure.set(Some(1));
        let error = wal.sync().await.expect_err("injected ENOSPC");
        assert!(
            matches!(&error, WalError::Io { source, .. } if source.raw_os_error() == Some(libc::ENOSPC))
        );
        let left = wal.buffered_records();
        assert!(
            left > 0 && left < 90,
            "the first segment's part became durable: {left} left"
        );
        wal.append(&header(0, 101), &[3; 100])
            .expect("appends continue behind the retry");
        let report = wal.sync().await.expect("retry");
        assert_eq!(report.records, left + 1);
        drop(wal);
        let (_wal, replayed) = open(dir.path()).await.expect("reopen");
        assert_eq!(replayed.len(), 101);
        assert_eq!(replayed[..100], records);
    });
}

#[test]
fn a_failed_first_write_reports_nothing_durable() {
    let dir = TestDir::new("wal-write-failure-first");
    run(async {
        let (wal, _) = open(dir.path()).await.expect("open");
        wal.append(&header(0, 1), &[1; 10]).expect("append");
        wal.writes_until_failure.set(Some(0));
        assert!(wal.sync().await.is_err());
        assert_eq!(wal.buffered_records(), 1);
        drop(wal);
        let (_wal, replayed) = open(dir.path()).await.expect("reopen");
        assert!(replayed.is_empty(), "a failed sync made nothing durable");
    });
}
