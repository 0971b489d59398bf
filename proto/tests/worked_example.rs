//! The worked example of `proto/PROTOCOL.md` §10.1: one `PlaceOrder` request frame and the
//! `Order` reply frame, byte for byte, plus the shard-map and CRC reference values the
//! document quotes. If this file changes, the document must change with it.

mod common;

use common::{assert_bytes, bytes_of, hex};
use quorder_proto::codec::{access_operation, decode_reply, encode_operation, encode_reply};
use quorder_proto::frame::{crc32, decode_frame, write_frame};
use quorder_proto::shard::{colocated_order_id, fnv1a64, shard_of_order, shard_of_sku};
use quorder_proto::validate::validate_operation;
use quorder_proto::*;

const ORDER_ID: u128 = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;
const REQUEST_ID: u64 = 7;

/// The request frame exactly as PROTOCOL.md prints it.
const REQUEST_FRAME: &str = "
51 52 44 52 01 01 00 00 70 00 00 00 cd 65 8b a6  # header: magic, version 1, kind 1, flags, body_length 112, body_crc
07 00 00 00 00 00 00 00 00 00 00 00 da bb fe 9f  # header: request_id 7, reserved, header_crc
e9 03 00 00 00 00 00 00 02 00 00 00 00 00 00 00  # body 0x00: lines[0] sku 1001, quantity 2
ea 03 00 00 00 00 00 00 01 00 00 00 00 00 00 00  # body 0x10: lines[1] sku 1002, quantity 1
74 6f 6b 5f 76 69 73 61 5f 34 32 34 32 00 00 00  # body 0x20: 'tok_visa_4242', padding
04 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # body 0x30: root Operation, tag 4 = PlaceOrder
77 66 55 44 33 22 11 00 ef cd ab 89 67 45 23 01  # body 0x40: order_id
2a 00 00 00 00 00 00 00 a8 ff ff ff 02 00 00 00  # body 0x50: customer 42; lines -88 -> 0x00, 2
01 00 00 00 8d 00 00 00 bc ff ff ff 00 00 00 00  # body 0x60: Card; token 13 bytes, -68 -> 0x20
";

/// The reply frame exactly as PROTOCOL.md prints it.
const REPLY_FRAME: &str = "
51 52 44 52 01 02 00 00 b0 00 00 00 d6 01 dc 72  # header: kind 2 = Reply, body_length 176, body_crc
07 00 00 00 00 00 00 00 00 00 00 00 d3 4e 33 e8  # header: request_id 7 (echoed), header_crc
e9 03 00 00 00 00 00 00 02 00 00 00 00 00 00 00  # body 0x00: lines[0] sku 1001, quantity 2,
cf 07 00 00 00 00 00 00 ea 03 00 00 00 00 00 00  # body 0x10: unit price 1999; lines[1] sku 1002,
01 00 00 00 00 00 00 00 f4 01 00 00 00 00 00 00  # body 0x20: quantity 1, unit price 500
02 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # body 0x30: root Reply, tag 2 = Order
77 66 55 44 33 22 11 00 ef cd ab 89 67 45 23 01  # body 0x40: order_id
2a 00 00 00 00 00 00 00 a8 ff ff ff 02 00 00 00  # body 0x50: customer 42; lines -88 -> 0x00, 2
92 11 00 00 00 00 00 00 01 00 00 00 00 00 00 00  # body 0x60: total_cents 4498; status 1 = Committed
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # body 0x70: reason: tag 0 = None
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  # body 0x80: (rest of the Option)
01 00 00 00 00 00 00 00 00 a8 da 76 9b 01 00 00  # body 0x90: version 1; created_ms
00 a8 da 76 9b 01 00 00 00 00 00 00 00 00 00 00  # body 0xa0: updated_ms; padding
";

fn place_order() -> Operation {
    Operation::PlaceOrder(PlaceOrder {
        order_id: ORDER_ID,
        customer: 42,
        lines: vec![
            OrderLine {
                sku: 1001,
                quantity: 2,
            },
            OrderLine {
                sku: 1002,
                quantity: 1,
            },
        ],
        payment: Payment::Card {
            token: "tok_visa_4242".into(),
        },
    })
}

fn committed_order() -> Reply {
    Reply::Order(Order {
        order_id: ORDER_ID,
        customer: 42,
        lines: vec![
            OrderLineRecord {
                sku: 1001,
                quantity: 2,
                unit_price_cents: 1999,
            },
            OrderLineRecord {
                sku: 1002,
                quantity: 1,
                unit_price_cents: 500,
            },
        ],
        total_cents: 4498,
        status: OrderStatus::Committed,
        reason: None,
        version: 1,
        // 2026-01-01T00:00:00Z
        created_ms: 1_767_225_600_000,
        updated_ms: 1_767_225_600_000,
    })
}

#[test]
fn request_frame_bytes() {
    let body = encode_operation(&place_order()).expect("encode");
    let mut frame = Vec::new();
    write_frame(&mut frame, FrameKind::Request, REQUEST_ID, &body);
    assert_bytes("request frame", &frame, REQUEST_FRAME);
    assert_eq!(crc32(&frame[32..]), 0xa68b_65cd, "body_crc");
    assert_eq!(crc32(&frame[0..28]), 0x9ffe_bbda, "header_crc");

    let (decoded, consumed) = decode_frame(&frame).expect("decode");
    assert_eq!(consumed, frame.len());
    assert_eq!(decoded.header.kind, FrameKind::Request);
    assert_eq!(decoded.header.request_id, REQUEST_ID);
    let archived = access_operation(&decoded.body).expect("access");
    assert_eq!(validate_operation(archived), Ok(()));
    assert_eq!(codec::to_operation(archived).expect("owned"), place_order());
}

#[test]
fn reply_frame_bytes() {
    let body = encode_reply(&committed_order()).expect("encode");
    let mut frame = Vec::new();
    write_frame(&mut frame, FrameKind::Reply, REQUEST_ID, &body);
    assert_bytes("reply frame", &frame, REPLY_FRAME);

    let (decoded, _) = decode_frame(&frame).expect("decode");
    assert_eq!(decoded.header.kind, FrameKind::Reply);
    assert_eq!(decoded.header.request_id, REQUEST_ID);
    assert_eq!(
        decode_reply(&decoded.body).expect("reply"),
        committed_order()
    );
}

#[test]
fn request_frame_as_one_hex_string() {
    // The same frame as the single hex line PROTOCOL.md gives for copy and paste.
    let expected = "515244520101000070000000cd658ba6070000000000000000000000dabbfe9f\
                    e9030000000000000200000000000000ea030000000000000100000000000000\
                    746f6b5f766973615f3432343200000004000000000000000000000000000000\
                    7766554433221100efcdab89674523012a00000000000000a8ffffff02000000\
                    010000008d000000bcffffff00000000";
    assert_eq!(hex(&bytes_of(REQUEST_FRAME)), expected);
}

#[test]
fn crc_reference_value() {
    // CRC-32/ISO-HDLC, the zlib crc32(): the standard check value.
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn shard_map_reference_values() {
    assert_eq!(fnv1a64(&1001u64.to_le_bytes()), 0x2e57_41b7_3faf_0ddd);
    assert_eq!(fnv1a64(&1002u64.to_le_bytes()), 0x00a2_9fbd_bcd5_468a);
    assert_eq!(fnv1a64(&ORDER_ID.to_le_bytes()), 0xa109_653d_c7b7_4be5);
    assert_eq!(shard_of_sku(1001, 8), 5);
    assert_eq!(shard_of_sku(1002, 8), 2);
    assert_eq!(shard_of_order(ORDER_ID, 8), 5);
    // The example order is colocated with its first SKU; its second line is remote, so
    // with 8 shards it commits by two-phase commit between shards 5 and 2.
    assert_eq!(shard_of_order(ORDER_ID, 8), shard_of_sku(1001, 8));
}

#[test]
fn colocated_order_id_keeps_drawing_until_it_hits_the_sku_shard() {
    // Draws ORDER_ID + 0, + 1, ...: shards 5, 2, 3, 0, 1, 6, 7, 4 with 8 shards.
    let mut draws = 0u128;
    let id = colocated_order_id(1002, 8, || {
        let candidate = ORDER_ID + draws;
        draws += 1;
        candidate
    });
    assert_eq!(id, ORDER_ID + 1, "the first draw on shard 2");
    assert_eq!(draws, 2);
}
