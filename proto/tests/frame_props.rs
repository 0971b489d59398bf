//! Property tests of the frame layer (PROTOCOL.md §2–§5): round trips of arbitrary
//! messages, and refusal of every truncation, every single-bit flip, every header field
//! out of range and every ill-formed body, without a panic.
//!
//! Runs are seeded: the seed is fixed (`SEED_DEFAULT`) unless `PROPTEST_RNG_SEED` is set,
//! so a failure replays bit-identically; proptest prints the minimal failing input.

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use quorder_proto::codec::{
    access_batch, access_batch_reply, access_operation, access_reply, decode_batch_reply,
    decode_cluster_status, decode_peer_hello, decode_peer_hello_reply, decode_reply,
    decode_status_request, encode_batch, encode_batch_reply, encode_operation, encode_reply,
    to_operation,
};
use quorder_proto::frame::{crc32, decode_frame, write_frame, Header, MAGIC};
use quorder_proto::limits::{FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES};
use quorder_proto::validate::validate_operation;
use quorder_proto::*;
use rkyv::rancor;
use rkyv::util::AlignedVec;

const SEED_DEFAULT: u64 = 0x5152_4452_0001;

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(cases);
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(SEED_DEFAULT);
    }
    config
}

// ---------------------------------------------------------------------------------------
// Strategies for every message type.
// ---------------------------------------------------------------------------------------

/// Text of any Unicode, lengths on both sides of the 8-byte inline limit.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{0,9}",
        "\\PC{0,12}",
        "[ -~]{60,70}", // around the 64-byte step of the length word
    ]
}

fn order_line() -> impl Strategy<Value = OrderLine> {
    (any::<u64>(), any::<u64>()).prop_map(|(sku, quantity)| OrderLine { sku, quantity })
}

fn payment() -> impl Strategy<Value = Payment> {
    prop_oneof![
        Just(Payment::None),
        text().prop_map(|token| Payment::Card { token }),
    ]
}

fn place_order() -> impl Strategy<Value = PlaceOrder> {
    (
        any::<u128>(),
        any::<u64>(),
        vec(order_line(), 0..6),
        payment(),
    )
        .prop_map(|(order_id, customer, lines, payment)| PlaceOrder {
            order_id,
            customer,
            lines,
            payment,
        })
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        any::<u64>().prop_map(|nonce| Operation::Ping { nonce }),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<Option<u64>>()
        )
            .prop_map(
                |(sku, available, price_cents, expected_version)| Operation::PutItem(PutItem {
                    sku,
                    available,
                    price_cents,
                    expected_version,
                })
            ),
        any::<u64>().prop_map(|sku| Operation::GetItem { sku }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(sku, quantity)| Operation::Restock { sku, quantity }),
        place_order().prop_map(Operation::PlaceOrder),
        any::<u128>().prop_map(|order_id| Operation::GetOrder { order_id }),
        (any::<u128>(), any::<Option<u64>>()).prop_map(|(order_id, expected_version)| {
            Operation::CancelOrder {
                order_id,
                expected_version,
            }
        }),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    vec(operation(), 0..5).prop_map(|operations| Batch { operations })
}

fn item() -> impl Strategy<Value = Item> {
    any::<[u64; 6]>().prop_map(
        |[sku, available, reserved, sold, price_cents, version]| Item {
            sku,
            available,
            reserved,
            sold,
            price_cents,
            version,
        },
    )
}

fn order_status() -> impl Strategy<Value = OrderStatus> {
    prop_oneof![
        Just(OrderStatus::Preparing),
        Just(OrderStatus::Committed),
        Just(OrderStatus::Rejected),
        Just(OrderStatus::Queued),
        Just(OrderStatus::Cancelled),
    ]
}

fn reject_reason() -> impl Strategy<Value = RejectReason> {
    prop_oneof![
        (any::<u64>(), any::<u64>())
            .prop_map(|(sku, available)| RejectReason::InsufficientStock { sku, available }),
        any::<u64>().prop_map(|sku| RejectReason::UnknownSku { sku }),
        text().prop_map(|reason| RejectReason::PaymentDeclined { reason }),
    ]
}

fn order() -> impl Strategy<Value = Order> {
    let line = any::<[u64; 3]>().prop_map(|[sku, quantity, unit_price_cents]| OrderLineRecord {
        sku,
        quantity,
        unit_price_cents,
    });
    (
        (any::<u128>(), any::<u64>(), vec(line, 0..6), any::<u64>()),
        (order_status(), proptest::option::of(reject_reason())),
        any::<[u64; 3]>(),
    )
        .prop_map(
            |(
                (order_id, customer, lines, total_cents),
                (status, reason),
                [version, created_ms, updated_ms],
            )| Order {
                order_id,
                customer,
                lines,
                total_cents,
                status,
                reason,
                version,
                created_ms,
                updated_ms,
            },
        )
}

fn error_reply() -> impl Strategy<Value = ErrorReply> {
    prop_oneof![
        Just(ErrorReply::NotFound),
        any::<u64>().prop_map(|current| ErrorReply::VersionConflict { current }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(sku, available)| ErrorReply::InsufficientStock { sku, available }),
        (text(), text()).prop_map(|(field, reason)| ErrorReply::Invalid { field, reason }),
        Just(ErrorReply::Overloaded),
        proptest::option::of(text()).prop_map(|hint| ErrorReply::NotPrimary { hint }),
        Just(ErrorReply::Unavailable),
        text().prop_map(|message| ErrorReply::Internal { message }),
        text().prop_map(|reason| ErrorReply::BadFrame { reason }),
        (any::<u8>(), any::<u8>())
            .prop_map(|(got, supported)| ErrorReply::UnsupportedVersion { got, supported }),
        text().prop_map(|reason| ErrorReply::InvalidState { reason }),
    ]
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        (any::<u64>(), any::<u32>())
            .prop_map(|(nonce, shard_count)| Reply::Pong { nonce, shard_count }),
        item().prop_map(Reply::Item),
        order().prop_map(Reply::Order),
        error_reply().prop_map(Reply::Error),
    ]
}

fn batch_reply() -> impl Strategy<Value = BatchReply> {
    vec(reply(), 0..5).prop_map(|replies| BatchReply { replies })
}

// ---------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------

fn request_frame(operation: &Operation, request_id: u64) -> Vec<u8> {
    let body = encode_operation(operation).expect("encode");
    let mut frame = Vec::new();
    write_frame(&mut frame, FrameKind::Request, request_id, &body);
    frame
}

/// Frame of any kind with a valid header and body checksum around `body`.
fn frame_around(kind: FrameKind, request_id: u64, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::new();
    write_frame(&mut frame, kind, request_id, body);
    frame
}

/// The raw header fields, for building headers that `Header::encode` would never make.
struct RawHeader {
    magic: [u8; 4],
    version: u8,
    kind: u8,
    flags: u16,
    body_length: u32,
    request_id: u64,
    reserved: u32,
}

impl RawHeader {
    fn valid(request_id: u64) -> RawHeader {
        RawHeader {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            kind: FrameKind::Request as u8,
            flags: 0,
            body_length: 0,
            request_id,
            reserved: 0,
        }
    }

    /// Serializes with a correct header checksum.
    fn encode(&self) -> [u8; FRAME_HEADER_BYTES] {
        let mut bytes = [0u8; FRAME_HEADER_BYTES];
        bytes[0..4].copy_from_slice(&self.magic);
        bytes[4] = self.version;
        bytes[5] = self.kind;
        bytes[6..8].copy_from_slice(&self.flags.to_le_bytes());
        bytes[8..12].copy_from_slice(&self.body_length.to_le_bytes());
        bytes[12..16].copy_from_slice(&crc32(&[]).to_le_bytes());
        bytes[16..24].copy_from_slice(&self.request_id.to_le_bytes());
        bytes[24..28].copy_from_slice(&self.reserved.to_le_bytes());
        let header_crc = crc32(&bytes[0..28]);
        bytes[28..32].copy_from_slice(&header_crc.to_le_bytes());
        bytes
    }
}

fn aligned(bytes: &[u8]) -> AlignedVec {
    let mut body = AlignedVec::with_capacity(bytes.len());
    body.extend_from_slice(bytes);
    body
}

/// Runs everything a receiver runs on a checked body of `kind`; must never panic.
fn receive_body(kind: FrameKind, body: &[u8]) -> Result<(), FrameError> {
    match kind {
        FrameKind::Request => {
            let operation = access_operation(body)?;
            let _ = validate_operation(operation);
        }
        FrameKind::BatchRequest => {
            for operation in access_batch(body)?.operations.iter() {
                let _ = validate_operation(operation);
            }
        }
        FrameKind::Reply => {
            decode_reply(body)?;
        }
        FrameKind::BatchReply => {
            decode_batch_reply(body)?;
        }
        FrameKind::PeerHello => {
            decode_peer_hello(body)?;
        }
        FrameKind::PeerHelloReply => {
            decode_peer_hello_reply(body)?;
        }
        FrameKind::StatusRequest => {
            decode_status_request(body)?;
        }
        FrameKind::StatusReply => {
            decode_cluster_status(body)?;
        }
        // Peer bodies are the node's internal protocol, validated by the daemon.
        FrameKind::Peer => {}
    }
    Ok(())
}

fn any_kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![
        Just(FrameKind::Request),
        Just(FrameKind::Reply),
        Just(FrameKind::BatchRequest),
        Just(FrameKind::BatchReply),
    ]
}

// ---------------------------------------------------------------------------------------
// Round trips.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn operation_round_trip(operation in operation(), request_id in any::<u64>()) {
        let frame = request_frame(&operation, request_id);
        let (decoded, consumed) = decode_frame(&frame).expect("decode");
        prop_assert_eq!(consumed, frame.len());
        prop_assert_eq!(decoded.header.kind, FrameKind::Request);
        prop_assert_eq!(decoded.header.request_id, request_id);
        let archived = access_operation(&decoded.body).expect("access");
        prop_assert_eq!(to_operation(archived).expect("owned"), operation);
    }

    #[test]
    fn batch_round_trip(batch in batch(), request_id in any::<u64>()) {
        let body = encode_batch(&batch).expect("encode");
        let frame = frame_around(FrameKind::BatchRequest, request_id, &body);
        let (decoded, consumed) = decode_frame(&frame).expect("decode");
        prop_assert_eq!(consumed, frame.len());
        prop_assert_eq!(decoded.header.kind, FrameKind::BatchRequest);
        let archived = access_batch(&decoded.body).expect("access");
        let owned = rkyv::deserialize::<Batch, rancor::Error>(archived).expect("owned");
        prop_assert_eq!(owned, batch);
    }

    #[test]
    fn reply_round_trip(reply in reply(), request_id in any::<u64>()) {
        let body = encode_reply(&reply).expect("encode");
        let frame = frame_around(FrameKind::Reply, request_id, &body);
        let (decoded, consumed) = decode_frame(&frame).expect("decode");
        prop_assert_eq!(consumed, frame.len());
        prop_assert_eq!(decoded.header.request_id, request_id);
        prop_assert!(access_reply(&decoded.body).is_ok());
        prop_assert_eq!(decode_reply(&decoded.body).expect("decode reply"), reply);
    }

    #[test]
    fn batch_reply_round_trip(batch_reply in batch_reply(), request_id in any::<u64>()) {
        let body = encode_batch_reply(&batch_reply).expect("encode");
        let frame = frame_around(FrameKind::BatchReply, request_id, &body);
        let (decoded, _) = decode_frame(&frame).expect("decode");
        prop_assert!(access_batch_reply(&decoded.body).is_ok());
        prop_assert_eq!(decode_batch_reply(&decoded.body).expect("decode"), batch_reply);
    }

    /// Pipelined frames on one stream: each decode consumes exactly one frame.
    #[test]
    fn back_to_back_frames(first in operation(), second in reply()) {
        let mut stream = request_frame(&first, 1);
        let reply_body = encode_reply(&second).expect("encode");
        write_frame(&mut stream, FrameKind::Reply, 2, &reply_body);
        let (one, used) = decode_frame(&stream).expect("first frame");
        let (two, rest) = decode_frame(&stream[used..]).expect("second frame");
        prop_assert_eq!(used + rest, stream.len());
        prop_assert_eq!(one.header.request_id, 1);
        prop_assert_eq!(two.header.request_id, 2);
        prop_assert_eq!(decode_reply(&two.body).expect("reply"), second);
    }
}

// ---------------------------------------------------------------------------------------
// Damaged frames.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn every_truncation_is_refused(operation in operation(), request_id in any::<u64>()) {
        let frame = request_frame(&operation, request_id);
        for length in 0..frame.len() {
            let needed = if length < FRAME_HEADER_BYTES { FRAME_HEADER_BYTES } else { frame.len() };
            prop_assert_eq!(
                decode_frame(&frame[..length]).map(|(_, used)| used),
                Err(FrameError::Truncated { needed, got: length }),
                "prefix of {} bytes", length
            );
        }
    }

    #[test]
    fn every_single_bit_flip_is_refused(
        message in prop_oneof![
            operation().prop_map(|operation| request_frame(&operation, 9)),
            reply().prop_map(|reply| {
                frame_around(FrameKind::Reply, 9, &encode_reply(&reply).expect("encode"))
            }),
        ]
    ) {
        let mut frame = message;
        for bit in 0..frame.len() * 8 {
            frame[bit / 8] ^= 1 << (bit % 8);
            let result = decode_frame(&frame).map(|(_, used)| used);
            if bit < FRAME_HEADER_BYTES * 8 {
                prop_assert!(
                    matches!(result, Err(FrameError::HeaderChecksumMismatch { .. })),
                    "header bit {}: {:?}", bit, result
                );
            } else {
                prop_assert!(
                    matches!(result, Err(FrameError::BodyChecksumMismatch { .. })),
                    "body bit {}: {:?}", bit, result
                );
            }
            frame[bit / 8] ^= 1 << (bit % 8);
        }
        prop_assert!(decode_frame(&frame).is_ok(), "the undamaged frame still decodes");
    }
}

proptest! {
    #![proptest_config(config(2048))]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..400)) {
        if let Ok((frame, used)) = decode_frame(&bytes) {
            prop_assert!(used <= bytes.len());
            let _ = receive_body(frame.header.kind, &frame.body);
        }
        let _ = Header::request_id_hint(&bytes);
    }

    /// Random bodies behind a valid header reach the archive validator (their checksum
    /// matches): each is either a valid archive or an `InvalidBody`, never a panic.
    #[test]
    fn random_bodies_behind_valid_headers_never_panic(
        kind in any_kind(),
        body in vec(any::<u8>(), 0..300),
    ) {
        let frame = frame_around(kind, 3, &body);
        let (decoded, _) = decode_frame(&frame).expect("checksums match");
        match receive_body(kind, &decoded.body) {
            Ok(()) => {}
            Err(FrameError::InvalidBody { kind: reported, .. }) => prop_assert_eq!(reported, kind),
            Err(other) => prop_assert!(false, "unexpected error {:?}", other),
        }
    }

    /// A body damaged *before* the checksum was computed (a sender bug, not line noise)
    /// passes the CRC and must be refused by the validator with a typed error.
    #[test]
    fn damaged_archives_with_valid_checksums_are_invalid_bodies(
        operation in operation(),
        bad_tag in 7u8..=255,
        // A cut by a multiple of 16 could leave an aligned root over other valid bytes.
        cut in (1usize..64).prop_filter("misaligns the root", |cut| cut % 16 != 0),
    ) {
        let body = encode_operation(&operation).expect("encode");
        let root = body.len() - 64;

        let mut wrong_tag = body.to_vec();
        wrong_tag[root] = bad_tag;
        let mut short = body.to_vec();
        short.truncate(body.len() - cut);
        let mut shifted = vec![0u8; 8];
        shifted.extend_from_slice(&body);

        for damaged in [wrong_tag, short, shifted] {
            let frame = frame_around(FrameKind::Request, 5, &damaged);
            let (decoded, _) = decode_frame(&frame).expect("checksums match");
            let result = access_operation(&decoded.body).map(|_| ());
            prop_assert!(
                matches!(
                    result,
                    Err(FrameError::InvalidBody { kind: FrameKind::Request, .. })
                ),
                "{:?}", result
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Header fields out of range, each with a correct header checksum.
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn oversized_lengths_are_refused_before_the_body(
        length in (FRAME_BODY_BYTES_MAX as u32 + 1)..=u32::MAX,
        request_id in any::<u64>(),
    ) {
        let header = RawHeader { body_length: length, ..RawHeader::valid(request_id) }.encode();
        // Only the 32 header bytes are given: the refusal must not wait for a body.
        prop_assert_eq!(
            decode_frame(&header).map(|(_, used)| used),
            Err(FrameError::BodyTooLarge { length })
        );
        prop_assert_eq!(Header::decode(&header), Err(FrameError::BodyTooLarge { length }));
        prop_assert_eq!(Header::request_id_hint(&header), request_id);
    }

    #[test]
    fn unknown_versions_are_refused(
        version in any::<u8>().prop_filter("not ours", |v| *v != PROTOCOL_VERSION),
    ) {
        let header = RawHeader { version, ..RawHeader::valid(4) }.encode();
        prop_assert_eq!(
            Header::decode(&header),
            Err(FrameError::UnsupportedVersion { got: version })
        );
        prop_assert_eq!(Header::request_id_hint(&header), 4);
    }

    #[test]
    fn unknown_kinds_are_refused(
        kind in prop_oneof![Just(0u8), 7u8..=15, 19u8..=255],
    ) {
        let header = RawHeader { kind, ..RawHeader::valid(4) }.encode();
        prop_assert_eq!(Header::decode(&header), Err(FrameError::UnknownKind { got: kind }));
    }

    #[test]
    fn nonzero_flags_or_reserved_are_refused(
        flags in any::<u16>(),
        reserved in any::<u32>(),
    ) {
        prop_assume!(flags != 0 || reserved != 0);
        let header = RawHeader { flags, reserved, ..RawHeader::valid(4) }.encode();
        prop_assert_eq!(
            Header::decode(&header),
            Err(FrameError::ReservedBitsSet { flags, reserved })
        );
    }

    #[test]
    fn bad_magic_is_refused(magic in any::<[u8; 4]>()) {
        prop_assume!(magic != MAGIC);
        let header = RawHeader { magic, ..RawHeader::valid(4) }.encode();
        prop_assert_eq!(Header::decode(&header), Err(FrameError::BadMagic { got: magic }));
    }
}

#[test]
fn header_checks_run_in_the_documented_order() {
    // Everything wrong at once: the checksum is looked at first ...
    let mut header = RawHeader {
        magic: *b"XXXX",
        version: 9,
        kind: 77,
        flags: 1,
        body_length: u32::MAX,
        request_id: 1,
        reserved: 1,
    }
    .encode();
    header[28] ^= 1;
    assert!(matches!(
        Header::decode(&header),
        Err(FrameError::HeaderChecksumMismatch { .. })
    ));
    assert_eq!(
        Header::request_id_hint(&header),
        0,
        "untrusted header: id 0"
    );
    // ... then magic, version, kind, flags/reserved, length.
    let mut raw = RawHeader {
        magic: *b"XXXX",
        version: 9,
        kind: 77,
        flags: 1,
        body_length: u32::MAX,
        request_id: 1,
        reserved: 1,
    };
    let expectations = [
        FrameError::BadMagic { got: *b"XXXX" },
        FrameError::UnsupportedVersion { got: 9 },
        FrameError::UnknownKind { got: 77 },
        FrameError::ReservedBitsSet {
            flags: 1,
            reserved: 1,
        },
        FrameError::BodyTooLarge { length: u32::MAX },
    ];
    for (step, expected) in expectations.into_iter().enumerate() {
        assert_eq!(Header::decode(&raw.encode()), Err(expected), "step {step}");
        match step {
            0 => raw.magic = MAGIC,
            1 => raw.version = PROTOCOL_VERSION,
            2 => raw.kind = FrameKind::Reply as u8,
            3 => {
                raw.flags = 0;
                raw.reserved = 0;
            }
            _ => raw.body_length = 0,
        }
    }
    assert!(Header::decode(&raw.encode()).is_ok());
}

#[test]
fn largest_allowed_length_waits_for_its_body() {
    let header = RawHeader {
        body_length: FRAME_BODY_BYTES_MAX as u32,
        ..RawHeader::valid(1)
    }
    .encode();
    assert_eq!(
        decode_frame(&header).map(|(_, used)| used),
        Err(FrameError::Truncated {
            needed: FRAME_HEADER_BYTES + FRAME_BODY_BYTES_MAX,
            got: FRAME_HEADER_BYTES,
        })
    );
}

#[test]
fn empty_body_with_valid_checksum_is_an_invalid_body() {
    for kind in [
        FrameKind::Request,
        FrameKind::Reply,
        FrameKind::BatchRequest,
        FrameKind::BatchReply,
    ] {
        let frame = frame_around(kind, 1, &[]);
        let (decoded, used) = decode_frame(&frame).expect("header and empty body are fine");
        assert_eq!(used, FRAME_HEADER_BYTES);
        assert!(
            matches!(
                receive_body(kind, &aligned(&decoded.body)),
                Err(FrameError::InvalidBody { kind: reported, .. }) if reported == kind
            ),
            "{kind:?}"
        );
    }
}
