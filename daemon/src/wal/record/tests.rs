use super::*;
use proptest::prelude::*;

fn header(shard: u32, index: u64) -> RecordHeader {
    RecordHeader {
        shard,
        kind: 3,
        term: 7,
        index,
        timestamp_ms: 1_700_000_000_000,
    }
}

fn encode_all(records: &[(RecordHeader, Vec<u8>)]) -> (Vec<u8>, Vec<usize>) {
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    for (header, payload) in records {
        offsets.push(bytes.len());
        encode_record(&mut bytes, header, payload);
    }
    (bytes, offsets)
}

fn scan_all(data: &[u8]) -> (Vec<(RecordHeader, Vec<u8>, usize)>, ScanEnd) {
    let mut scanner = RecordScanner::new(data);
    let records = scanner
        .by_ref()
        .map(|r| (r.header, r.payload.to_vec(), r.offset))
        .collect();
    let end = scanner.end().expect("an exhausted scanner knows its end");
    (records, end)
}

#[test]
fn header_layout_is_the_documented_one() {
    let mut bytes = Vec::new();
    let header = RecordHeader {
        shard: 0x0102_0304,
        kind: 9,
        term: 0x1112_1314_1516_1718,
        index: 0x2122_2324_2526_2728,
        timestamp_ms: 0x3132_3334_3536_3738,
    };
    encode_record(&mut bytes, &header, b"abc");
    assert_eq!(bytes.len(), RECORD_HEADER_BYTES + 3);
    assert_eq!(bytes[0..4], 43u32.to_le_bytes());
    assert_eq!(bytes[4..8], crc32fast::hash(&bytes[8..]).to_le_bytes());
    assert_eq!(bytes[8..12], header.shard.to_le_bytes());
    assert_eq!(bytes[12], 9);
    assert_eq!(bytes[13..16], [0, 0, 0]);
    assert_eq!(bytes[16..24], header.term.to_le_bytes());
    assert_eq!(bytes[24..32], header.index.to_le_bytes());
    assert_eq!(bytes[32..40], header.timestamp_ms.to_le_bytes());
    assert_eq!(&bytes[40..], b"abc");
}

#[test]
fn empty_and_zeroed_data_end_clean() {
    assert_eq!(scan_all(&[]).1, ScanEnd::Clean { offset: 0 });
    assert_eq!(scan_all(&[0; 4096]).1, ScanEnd::Clean { offset: 0 });
    let (mut bytes, _) = encode_all(&[(header(1, 1), vec![5; 10])]);
    let length = bytes.len();
    bytes.resize(length + 1000, 0);
    let (records, end) = scan_all(&bytes);
    assert_eq!(records.len(), 1);
    assert_eq!(end, ScanEnd::Clean { offset: length });
}

#[test]
fn partial_record_at_the_tail_is_torn() {
    let (bytes, offsets) =
        encode_all(&[(header(1, 1), vec![1; 100]), (header(1, 2), vec![2; 100])]);
    for cut in offsets[1] + 1..bytes.len() {
        let (records, end) = scan_all(&bytes[..cut]);
        assert_eq!(records.len(), 1, "cut at {cut}");
        assert!(
            matches!(end, ScanEnd::TornTail { offset, .. } if offset == offsets[1]),
            "cut at {cut}: {end:?}"
        );
    }
}

#[test]
fn huge_length_field_is_a_bad_record_not_an_allocation() {
    let (mut bytes, offsets) =
        encode_all(&[(header(1, 1), vec![1; 8]), (header(1, 2), vec![2; 8])]);
    bytes[offsets[1]..offsets[1] + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let (records, end) = scan_all(&bytes);
    assert_eq!(records.len(), 1);
    assert_eq!(
        end,
        ScanEnd::TornTail {
            offset: offsets[1],
            reason: BadRecordReason::LengthTooLarge { length: u32::MAX }
        }
    );
}

#[test]
fn length_below_the_header_is_a_bad_record() {
    let (mut bytes, _) = encode_all(&[(header(1, 1), vec![1; 8])]);
    bytes[0..4].copy_from_slice(&39u32.to_le_bytes());
    assert_eq!(
        scan_all(&bytes).1,
        ScanEnd::TornTail {
            offset: 0,
            reason: BadRecordReason::LengthTooSmall { length: 39 }
        }
    );
}

#[test]
fn bad_record_followed_by_a_valid_one_is_corruption() {
    let records: Vec<_> = (0..4)
        .map(|i| (header(i, u64::from(i)), vec![i as u8; 64]))
        .collect();
    let (mut bytes, offsets) = encode_all(&records);
    // Zero a region in the middle, as a lost sector would.
    bytes[offsets[1]..offsets[1] + 50].fill(0);
    let (found, end) = scan_all(&bytes);
    assert_eq!(found.len(), 1);
    assert!(
        matches!(end, ScanEnd::Corrupt { offset, next_valid_offset, .. }
            if offset == offsets[1] && next_valid_offset == offsets[2]),
        "{end:?}"
    );
}

#[test]
fn finish_reports_the_same_end_as_iteration() {
    let (mut bytes, _) = encode_all(&[(header(1, 1), vec![1; 8])]);
    bytes.extend_from_slice(&[0xff; 7]);
    let end = RecordScanner::new(&bytes).finish();
    assert_eq!(end, scan_all(&bytes).1);
    assert!(matches!(end, ScanEnd::TornTail { offset: 48, .. }));
}

fn arbitrary_records() -> impl Strategy<Value = Vec<(RecordHeader, Vec<u8>)>> {
    let header = (
        any::<u32>(),
        any::<u8>(),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(shard, kind, term, index, timestamp_ms)| RecordHeader {
            shard,
            kind,
            term,
            index,
            timestamp_ms,
        });
    prop::collection::vec((header, prop::collection::vec(any::<u8>(), 0..300)), 1..20)
}

proptest! {
    #[test]
    fn random_record_sequences_round_trip(records in arbitrary_records(), padding in 0usize..600) {
        let (mut bytes, offsets) = encode_all(&records);
        let length = bytes.len();
        bytes.resize(length + padding, 0);
        let (found, end) = scan_all(&bytes);
        prop_assert_eq!(end, ScanEnd::Clean { offset: length });
        prop_assert_eq!(found.len(), records.len());
        for ((header, payload), (found_header, found_payload, offset)) in records.iter().zip(&found) {
            prop_assert_eq!(header, found_header);
            prop_assert_eq!(payload, found_payload);
            prop_assert!(offsets.contains(offset));
        }
    }

    #[test]
    fn a_single_bit_flip_is_never_accepted(
        records in arbitrary_records(),
        victim in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let (mut bytes, offsets) = encode_all(&records);
        let victim = victim.index(records.len());
        let victim_bytes = RECORD_HEADER_BYTES + records[victim].1.len();
        let bit = bit.index(victim_bytes * 8);
        bytes[offsets[victim] + bit / 8] ^= 1 << (bit % 8);
        let (found, end) = scan_all(&bytes);
        // Every record before the victim survives; the victim is never yielded.
        prop_assert_eq!(found.len(), victim);
        prop_assert!(found.iter().all(|(_, _, offset)| *offset != offsets[victim]));
        if victim + 1 < records.len() {
            let is_corrupt = matches!(end, ScanEnd::Corrupt { offset, .. } if offset == offsets[victim]);
            prop_assert!(is_corrupt, "{:?}", end);
        } else {
            let is_torn = matches!(end, ScanEnd::TornTail { offset, .. } if offset == offsets[victim]);
            prop_assert!(is_torn, "{:?}", end);
        }
    }
}
