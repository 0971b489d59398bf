//! Snapshot files on real DMA IO in a temporary directory.

use super::*;
use crate::wal::test_support::{run, TestDir};

fn body(bytes: usize, seed: u8) -> Vec<u8> {
    (0..bytes)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn corrupt_byte(path: &Path, offset: usize) {
    let mut content = std::fs::read(path).expect("read snapshot");
    content[offset] ^= 0x01;
    std::fs::write(path, content).expect("write snapshot");
}

#[test]
fn absent_snapshot_reads_as_none() {
    let dir = TestDir::new("snap-absent");
    run(async {
        assert!(read_snapshot(dir.path(), 3).await.expect("read").is_none());
    });
}

#[test]
fn snapshots_round_trip_at_sizes_around_chunk_and_block_boundaries() {
    let dir = TestDir::new("snap-round-trip");
    let sizes = [
        0,
        1,
        464,
        465,
        4048,
        4049,
        SNAPSHOT_IO_CHUNK_BYTES - 48,
        SNAPSHOT_IO_CHUNK_BYTES * 2 + 7,
    ];
    run(async {
        for (shard, size) in sizes.into_iter().enumerate() {
            let shard = shard as u32;
            let expected = body(size, shard as u8);
            write_snapshot(dir.path(), shard, 100 + u64::from(shard), 7, &expected)
                .await
                .expect("write");
            let on_disk = std::fs::metadata(snapshot_path(dir.path(), shard))
                .expect("stat")
                .len();
            assert_eq!(
                on_disk,
                (SNAPSHOT_HEADER_BYTES + size) as u64,
                "no padding left at the end"
            );
            let snapshot = read_snapshot(dir.path(), shard)
                .await
                .expect("read")
                .expect("present");
            assert_eq!(
                (snapshot.shard, snapshot.applied_index, snapshot.term),
                (shard, 100 + u64::from(shard), 7)
            );
            assert_eq!(snapshot.body.as_slice(), expected.as_slice(), "size {size}");
            if size > 0 {
                assert_eq!(
                    snapshot.body.as_ptr() as usize % 16,
                    0,
                    "rkyv needs 16-byte alignment"
                );
            }
        }
    });
}

#[test]
fn a_new_snapshot_replaces_the_old_one() {
    let dir = TestDir::new("snap-replace");
    run(async {
        write_snapshot(dir.path(), 1, 10, 1, &body(100_000, 1))
            .await
            .expect("first");
        write_snapshot(dir.path(), 1, 20, 2, &body(50, 2))
            .await
            .expect("second");
        let snapshot = read_snapshot(dir.path(), 1)
            .await
            .expect("read")
            .expect("present");
        assert_eq!((snapshot.applied_index, snapshot.term), (20, 2));
        assert_eq!(snapshot.body.as_slice(), body(50, 2).as_slice());
        assert!(
            !temp_path(dir.path(), 1).exists(),
            "the temp file was renamed away"
        );
    });
}

#[test]
fn leftover_temp_file_is_ignored_and_overwritten() {
    let dir = TestDir::new("snap-leftover");
    run(async {
        write_snapshot(dir.path(), 2, 5, 1, &body(1000, 3))
            .await
            .expect("write");
        // A crash mid-write leaves a half-written temp file behind.
        std::fs::write(temp_path(dir.path(), 2), b"QSNP half written").expect("temp");
        let snapshot = read_snapshot(dir.path(), 2)
            .await
            .expect("read")
            .expect("present");
        assert_eq!(snapshot.applied_index, 5);
        std::fs::write(temp_path(dir.path(), 9), [0xFF; 10_000]).expect("temp");
        assert!(read_snapshot(dir.path(), 9).await.expect("read").is_none());
        write_snapshot(dir.path(), 9, 6, 1, &body(10, 4))
            .await
            .expect("write over leftover");
        assert_eq!(
            read_snapshot(dir.path(), 9)
                .await
                .expect("read")
                .expect("present")
                .applied_index,
            6
        );
    });
}

#[test]
fn damaged_files_are_refused_naming_the_file() {
    let dir = TestDir::new("snap-corrupt");
    run(async {
        let path = snapshot_path(dir.path(), 4);
        type Expected = fn(&SnapshotError) -> bool;
        let cases: [(usize, Expected); 4] = [
            (0, |e| matches!(e, SnapshotError::BadMagic { .. })),
            (4, |e| {
                matches!(e, SnapshotError::UnsupportedVersion { version: 0, .. })
            }),
            (20, |e| {
                matches!(e, SnapshotError::ChecksumMismatch { part: "header", .. })
            }),
            (SNAPSHOT_HEADER_BYTES + 5000, |e| {
                matches!(e, SnapshotError::ChecksumMismatch { part: "body", .. })
            }),
        ];
        for (offset, expected) in cases {
            write_snapshot(dir.path(), 4, 9, 3, &body(10_000, 5))
                .await
                .expect("write");
            // At offset 4 the flip turns version 1 into version 0.
            corrupt_byte(&path, offset);
            let error = read_snapshot(dir.path(), 4)
                .await
                .expect_err("damage must be refused");
            assert!(expected(&error), "offset {offset}: {error:?}");
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
    });
}

#[test]
fn truncated_or_misplaced_files_are_refused() {
    let dir = TestDir::new("snap-truncated");
    run(async {
        let path = snapshot_path(dir.path(), 6);
        write_snapshot(dir.path(), 6, 9, 3, &body(10_000, 6))
            .await
            .expect("write");
        let content = std::fs::read(&path).expect("read");
        std::fs::write(&path, &content[..5000]).expect("truncate");
        let error = read_snapshot(dir.path(), 6).await.expect_err("short file");
        assert!(
            matches!(error, SnapshotError::Malformed { .. }),
            "{error:?}"
        );
        std::fs::write(&path, &content[..20]).expect("truncate into the header");
        let error = read_snapshot(dir.path(), 6)
            .await
            .expect_err("shorter than a header");
        assert!(
            matches!(error, SnapshotError::Malformed { .. }),
            "{error:?}"
        );
        // Shard 6's file copied into shard 7's place.
        std::fs::write(&path, &content).expect("restore");
        std::fs::copy(&path, snapshot_path(dir.path(), 7)).expect("copy");
        let error = read_snapshot(dir.path(), 7).await.expect_err("wrong shard");
        assert!(
            matches!(
                error,
                SnapshotError::WrongShard {
                    expected: 7,
                    found: 6,
                    ..
                }
            ),
            "{error:?}"
        );
    });
}
