//! Pins the archived byte layout of every message body, exactly as `proto/PROTOCOL.md`
//! documents it (rkyv 0.8, features little_endian + aligned + pointer_width_32).
//!
//! If an rkyv upgrade or a message change moves a single byte, a test here fails: that is
//! a protocol change and needs a new PROTOCOL_VERSION and a new PROTOCOL.md.

mod common;

use common::assert_bytes;
use quorder_proto::codec::{
    access_batch, access_operation, access_reply, encode_batch, encode_batch_reply,
    encode_operation, encode_reply, to_operation,
};
use quorder_proto::*;
use std::mem::{align_of, offset_of, size_of};

fn operation_bytes(operation: Operation) -> Vec<u8> {
    let bytes = encode_operation(&operation).expect("encode");
    // Every sample must also read back to itself.
    let archived = access_operation(&bytes).expect("access");
    assert_eq!(to_operation(archived).expect("deserialize"), operation);
    bytes.to_vec()
}

fn reply_bytes(reply: Reply) -> Vec<u8> {
    let bytes = encode_reply(&reply).expect("encode");
    assert_eq!(codec::decode_reply(&bytes).expect("decode"), reply);
    bytes.to_vec()
}

fn error_bytes(error: ErrorReply) -> Vec<u8> {
    reply_bytes(Reply::Error(error))
}

fn line(sku: u64, quantity: u64) -> OrderLine {
    OrderLine { sku, quantity }
}

// ---------------------------------------------------------------------------------------
// Sizes, alignments and field offsets of the fixed parts.
// ---------------------------------------------------------------------------------------

/// Asserts `(size, alignment)` of each archived type.
macro_rules! assert_size_and_alignment {
    ($($type:ty => $size:literal, $align:literal;)*) => {
        $(
            assert_eq!(
                (size_of::<$type>(), align_of::<$type>()),
                ($size, $align),
                "(size, alignment) of {}",
                stringify!($type)
            );
        )*
    };
}

#[test]
fn sizes_and_alignments() {
    use rkyv::Archived;
    assert_size_and_alignment! {
        Archived<u32> => 4, 4;
        Archived<u64> => 8, 8;
        Archived<u128> => 16, 16;
        Archived<String> => 8, 4;
        Archived<Vec<OrderLine>> => 8, 4;
        Archived<Option<u64>> => 16, 8;
        Archived<Option<String>> => 12, 4;
        Archived<Option<RejectReason>> => 32, 8;
        ArchivedOperation => 64, 16;
        ArchivedPutItem => 40, 8;
        ArchivedOrderLine => 16, 8;
        ArchivedPayment => 12, 4;
        ArchivedPlaceOrder => 48, 16;
        ArchivedBatch => 8, 4;
        ArchivedItem => 48, 8;
        ArchivedOrderStatus => 1, 1;
        ArchivedRejectReason => 24, 8;
        ArchivedOrderLineRecord => 24, 8;
        ArchivedOrder => 112, 16;
        ArchivedErrorReply => 24, 8;
        ArchivedReply => 128, 16;
        ArchivedBatchReply => 8, 4;
    }
}

#[test]
fn struct_field_offsets() {
    assert_eq!(offset_of!(ArchivedPutItem, sku), 0);
    assert_eq!(offset_of!(ArchivedPutItem, available), 8);
    assert_eq!(offset_of!(ArchivedPutItem, price_cents), 16);
    assert_eq!(offset_of!(ArchivedPutItem, expected_version), 24);

    assert_eq!(offset_of!(ArchivedOrderLine, sku), 0);
    assert_eq!(offset_of!(ArchivedOrderLine, quantity), 8);

    assert_eq!(offset_of!(ArchivedPlaceOrder, order_id), 0);
    assert_eq!(offset_of!(ArchivedPlaceOrder, customer), 16);
    assert_eq!(offset_of!(ArchivedPlaceOrder, lines), 24);
    assert_eq!(offset_of!(ArchivedPlaceOrder, payment), 32);

    assert_eq!(offset_of!(ArchivedBatch, operations), 0);

    assert_eq!(offset_of!(ArchivedItem, sku), 0);
    assert_eq!(offset_of!(ArchivedItem, available), 8);
    assert_eq!(offset_of!(ArchivedItem, reserved), 16);
    assert_eq!(offset_of!(ArchivedItem, sold), 24);
    assert_eq!(offset_of!(ArchivedItem, price_cents), 32);
    assert_eq!(offset_of!(ArchivedItem, version), 40);

    assert_eq!(offset_of!(ArchivedOrderLineRecord, sku), 0);
    assert_eq!(offset_of!(ArchivedOrderLineRecord, quantity), 8);
    assert_eq!(offset_of!(ArchivedOrderLineRecord, unit_price_cents), 16);

    assert_eq!(offset_of!(ArchivedOrder, order_id), 0);
    assert_eq!(offset_of!(ArchivedOrder, customer), 16);
    assert_eq!(offset_of!(ArchivedOrder, lines), 24);
    assert_eq!(offset_of!(ArchivedOrder, total_cents), 32);
    assert_eq!(offset_of!(ArchivedOrder, status), 40);
    assert_eq!(offset_of!(ArchivedOrder, reason), 48);
    assert_eq!(offset_of!(ArchivedOrder, version), 80);
    assert_eq!(offset_of!(ArchivedOrder, created_ms), 88);
    assert_eq!(offset_of!(ArchivedOrder, updated_ms), 96);

    assert_eq!(offset_of!(ArchivedBatchReply, replies), 0);
}

// ---------------------------------------------------------------------------------------
// Operation: 64 bytes, align 16, tag at 0. Bodies without out-of-line data are the root
// alone.
// ---------------------------------------------------------------------------------------

#[test]
fn operation_ping() {
    let bytes = operation_bytes(Operation::Ping {
        nonce: 0x1122_3344_5566_7788,
    });
    assert_bytes(
        "Ping",
        &bytes,
        "00 00*7                  # 0x00 tag 0 = Ping, padding
         88 77 66 55 44 33 22 11  # 0x08 nonce
         00*48                    # 0x10 unused by this variant (zero)",
    );
}

#[test]
fn operation_put_item() {
    let put = |expected_version| {
        operation_bytes(Operation::PutItem(PutItem {
            sku: 1,
            available: 2,
            price_cents: 3,
            expected_version,
        }))
    };
    assert_bytes(
        "PutItem with expected_version",
        &put(Some(9)),
        "01 00*7   # 0x00 tag 1 = PutItem; PutItem at 0x08 (align 8)
         01 00*7   # 0x08 sku
         02 00*7   # 0x10 available
         03 00*7   # 0x18 price_cents
         01 00*7   # 0x20 expected_version: Option tag 1 = Some
         09 00*7   # 0x28 the u64
         00*16     # 0x30 unused",
    );
    assert_bytes(
        "PutItem without expected_version",
        &put(None),
        "01 00*7 01 00*7 02 00*7 03 00*7
         00 00*7   # 0x20 Option tag 0 = None
         00*8      # 0x28 no value (zero)
         00*16",
    );
}

#[test]
fn operation_get_item_and_restock() {
    assert_bytes(
        "GetItem",
        &operation_bytes(Operation::GetItem { sku: 0x0102 }),
        "02 00*7                  # 0x00 tag 2 = GetItem
         02 01 00*6               # 0x08 sku
         00*48",
    );
    assert_bytes(
        "Restock",
        &operation_bytes(Operation::Restock {
            sku: 5,
            quantity: 6,
        }),
        "03 00*7                  # 0x00 tag 3 = Restock
         05 00*7                  # 0x08 sku
         06 00*7                  # 0x10 quantity
         00*40",
    );
}

#[test]
fn operation_get_and_cancel_order() {
    assert_bytes(
        "GetOrder",
        &operation_bytes(Operation::GetOrder {
            order_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
        }),
        "05 00*15                 # 0x00 tag 5 = GetOrder; u128 aligned to 16
         10 0f 0e 0d 0c 0b 0a 09 08 07 06 05 04 03 02 01  # 0x10 order_id
         00*32",
    );
    assert_bytes(
        "CancelOrder with expected_version",
        &operation_bytes(Operation::CancelOrder {
            order_id: 7,
            expected_version: Some(3),
        }),
        "06 00*15                 # 0x00 tag 6 = CancelOrder
         07 00*15                 # 0x10 order_id
         01 00*7                  # 0x20 Option tag 1 = Some
         03 00*7                  # 0x28 expected_version
         00*16",
    );
    assert_bytes(
        "CancelOrder without expected_version",
        &operation_bytes(Operation::CancelOrder {
            order_id: 7,
            expected_version: None,
        }),
        "06 00*15 07 00*15 00*32",
    );
}

#[test]
fn operation_place_order_one_line_no_payment() {
    let bytes = operation_bytes(Operation::PlaceOrder(PlaceOrder {
        order_id: 7,
        customer: 8,
        lines: vec![line(0xaa, 2)],
        payment: Payment::None,
    }));
    assert_bytes(
        "PlaceOrder, 1 line, Payment::None",
        &bytes,
        "aa 00*7 02 00*7          # 0x00 lines[0]: sku, quantity (out-of-line, before the root)
         04 00*15                 # 0x10 root: tag 4 = PlaceOrder; PlaceOrder at 0x20
         07 00*15                 # 0x20 order_id
         08 00*7                  # 0x30 customer
         c8 ff ff ff 01 00 00 00  # 0x38 lines: offset -56 (0x38 - 56 = 0x00), length 1
         00 00*11                 # 0x40 payment: tag 0 = None, 11 unused bytes
         00*4                     # 0x4c padding of PlaceOrder to 48 bytes",
    );
}

#[test]
fn operation_place_order_inline_token() {
    let bytes = operation_bytes(Operation::PlaceOrder(PlaceOrder {
        order_id: 7,
        customer: 8,
        lines: vec![line(0xaa, 2), line(0xbb, 3)],
        payment: Payment::Card {
            token: "tok".into(),
        },
    }));
    assert_bytes(
        "PlaceOrder, 2 lines, 3-byte token",
        &bytes,
        "aa 00*7 02 00*7          # 0x00 lines[0]
         bb 00*7 03 00*7          # 0x10 lines[1]
         04 00*15                 # 0x20 root: tag 4
         07 00*15                 # 0x30 order_id
         08 00*7                  # 0x40 customer
         b8 ff ff ff 02 00 00 00  # 0x48 lines: offset -72 -> 0x00, length 2
         01 00 00 00              # 0x50 payment: tag 1 = Card, padding to the string
         74 6f 6b ff ff ff ff ff  # 0x54 token, inline: 'tok' then 0xff filler
         00*4                     # 0x5c padding",
    );
}

#[test]
fn operation_place_order_out_of_line_token() {
    let bytes = operation_bytes(Operation::PlaceOrder(PlaceOrder {
        order_id: 7,
        customer: 8,
        lines: vec![line(0xaa, 2)],
        payment: Payment::Card {
            token: "tok_0123456789".into(),
        },
    }));
    assert_bytes(
        "PlaceOrder, 1 line, 14-byte token",
        &bytes,
        "aa 00*7 02 00*7          # 0x00 lines[0]
         74 6f 6b 5f 30 31 32 33 34 35 36 37 38 39  # 0x10 token bytes (after the lines)
         00 00                    # 0x1e padding to the root's alignment
         04 00*15                 # 0x20 root: tag 4
         07 00*15                 # 0x30 order_id
         08 00*7                  # 0x40 customer
         b8 ff ff ff 01 00 00 00  # 0x48 lines: -72 -> 0x00, length 1
         01 00 00 00              # 0x50 payment tag 1 = Card
         8e 00 00 00              # 0x54 token length 14, marked out-of-line (0x80)
         bc ff ff ff              # 0x58 offset -68 from the string at 0x54 -> 0x10
         00*4                     # 0x5c padding",
    );
}

#[test]
fn operation_place_order_without_lines() {
    // Invalid for validate_operation, but a valid archive: an empty Vec still has an
    // in-range, aligned pointer (here to the root's own start).
    let bytes = operation_bytes(Operation::PlaceOrder(PlaceOrder {
        order_id: 7,
        customer: 8,
        lines: vec![],
        payment: Payment::None,
    }));
    assert_bytes(
        "PlaceOrder, no lines",
        &bytes,
        "04 00*15
         07 00*15
         08 00*7
         d8 ff ff ff 00 00 00 00  # 0x28 lines: offset -40 -> 0x00, length 0
         00*16",
    );
}

#[test]
fn batch_layout() {
    let batch = Batch {
        operations: vec![
            Operation::Ping { nonce: 1 },
            Operation::PlaceOrder(PlaceOrder {
                order_id: 7,
                customer: 8,
                lines: vec![line(0xaa, 2)],
                payment: Payment::Card {
                    token: "tok_0123456789".into(),
                },
            }),
        ],
    };
    let bytes = encode_batch(&batch).expect("encode");
    assert_eq!(access_batch(&bytes).expect("access").operations.len(), 2);
    assert_bytes(
        "Batch",
        &bytes,
        "aa 00*7 02 00*7          # 0x00 operations[1].lines[0]
         74 6f 6b 5f 30 31 32 33 34 35 36 37 38 39 00 00  # 0x10 operations[1] token
         00 00*7                  # 0x20 operations[0]: tag 0 = Ping
         01 00*7                  # 0x28 nonce
         00*48                    # 0x30 rest of the 64-byte slot
         04 00*15                 # 0x60 operations[1]: tag 4 = PlaceOrder
         07 00*15                 # 0x70 order_id
         08 00*7                  # 0x80 customer
         78 ff ff ff 01 00 00 00  # 0x88 lines: -136 -> 0x00, length 1
         01 00 00 00              # 0x90 payment tag 1 = Card
         8e 00 00 00 7c ff ff ff  # 0x94 token: length 14 out-of-line, -132 -> 0x10
         00*4                     # 0x9c padding
         80 ff ff ff 02 00 00 00  # 0xa0 root Batch: operations at -128 -> 0x20, length 2",
    );
    let empty = encode_batch(&Batch { operations: vec![] }).expect("encode");
    assert_bytes(
        "empty Batch",
        &empty,
        "00 00 00 00 00 00 00 00  # offset 0 (to itself), length 0",
    );
}

// ---------------------------------------------------------------------------------------
// Reply: 128 bytes, align 16, tag at 0.
// ---------------------------------------------------------------------------------------

#[test]
fn reply_pong_and_item() {
    assert_bytes(
        "Pong",
        &reply_bytes(Reply::Pong {
            nonce: 5,
            shard_count: 8,
        }),
        "00 00*7                  # 0x00 tag 0 = Pong
         05 00*7                  # 0x08 nonce
         08 00 00 00              # 0x10 shard_count (u32)
         00*108",
    );
    assert_bytes(
        "Item",
        &reply_bytes(Reply::Item(Item {
            sku: 1,
            available: 2,
            reserved: 3,
            sold: 4,
            price_cents: 5,
            version: 6,
        })),
        "01 00*7                  # 0x00 tag 1 = Item; Item at 0x08
         01 00*7 02 00*7          # 0x08 sku, 0x10 available
         03 00*7 04 00*7          # 0x18 reserved, 0x20 sold
         05 00*7 06 00*7          # 0x28 price_cents, 0x30 version
         00*72",
    );
}

#[test]
fn reply_order_rejected_with_text_reason() {
    let bytes = reply_bytes(Reply::Order(Order {
        order_id: 7,
        customer: 8,
        lines: vec![OrderLineRecord {
            sku: 0xaa,
            quantity: 2,
            unit_price_cents: 0x10,
        }],
        total_cents: 0x20,
        status: OrderStatus::Rejected,
        reason: Some(RejectReason::PaymentDeclined {
            reason: "card expired".into(),
        }),
        version: 1,
        created_ms: 2,
        updated_ms: 3,
    }));
    assert_bytes(
        "Order, rejected, payment declined",
        &bytes,
        "aa 00*7 02 00*7 10 00*7  # 0x00 lines[0]: sku, quantity, unit_price_cents
         63 61 72 64 20 65 78 70 69 72 65 64  # 0x18 'card expired'
         00*12                    # 0x24 padding to 0x30
         02 00*15                 # 0x30 root: tag 2 = Order; Order at 0x40
         07 00*15                 # 0x40 order_id
         08 00*7                  # 0x50 customer
         a8 ff ff ff 01 00 00 00  # 0x58 lines: -88 -> 0x00, length 1
         20 00*7                  # 0x60 total_cents
         02 00*7                  # 0x68 status 2 = Rejected, padding
         01 00*7                  # 0x70 reason: Option tag 1 = Some
         02 00 00 00              # 0x78 RejectReason tag 2 = PaymentDeclined
         8c 00 00 00 9c ff ff ff  # 0x7c reason text: length 12 out-of-line, -100 -> 0x18
         00*12                    # 0x84 rest of the Option
         01 00*7                  # 0x90 version
         02 00*7                  # 0x98 created_ms
         03 00*7                  # 0xa0 updated_ms
         00*8                     # 0xa8 padding of Order to 112 bytes",
    );
}

#[test]
fn reply_order_reject_reasons_without_text() {
    let order = |reason| {
        reply_bytes(Reply::Order(Order {
            order_id: 7,
            customer: 8,
            lines: vec![],
            total_cents: 0x20,
            status: OrderStatus::Rejected,
            reason: Some(reason),
            version: 1,
            created_ms: 2,
            updated_ms: 3,
        }))
    };
    assert_bytes(
        "Order, insufficient stock",
        &order(RejectReason::InsufficientStock {
            sku: 0xaa,
            available: 1,
        }),
        "02 00*15                 # 0x00 tag 2 = Order
         07 00*15                 # 0x10 order_id
         08 00*7                  # 0x20 customer
         d8 ff ff ff 00 00 00 00  # 0x28 lines: -40 -> 0x00, empty
         20 00*7                  # 0x30 total_cents
         02 00*7                  # 0x38 status
         01 00*7                  # 0x40 Some
         00 00*7                  # 0x48 RejectReason tag 0 = InsufficientStock
         aa 00*7                  # 0x50 sku
         01 00*7                  # 0x58 available
         01 00*7 02 00*7 03 00*7  # 0x60 version, created_ms, updated_ms
         00*8",
    );
    assert_bytes(
        "Order, unknown sku",
        &order(RejectReason::UnknownSku { sku: 0xbb }),
        "02 00*15 07 00*15 08 00*7 d8 ff ff ff 00 00 00 00 20 00*7 02 00*7
         01 00*7                  # 0x40 Some
         01 00*7                  # 0x48 RejectReason tag 1 = UnknownSku
         bb 00*7                  # 0x50 sku
         00*8                     # 0x58 unused
         01 00*7 02 00*7 03 00*7 00*8",
    );
}

#[test]
fn order_status_bytes() {
    let statuses = [
        (OrderStatus::Preparing, 0u8),
        (OrderStatus::Committed, 1),
        (OrderStatus::Rejected, 2),
        (OrderStatus::Queued, 3),
        (OrderStatus::Cancelled, 4),
    ];
    for (status, byte) in statuses {
        let bytes = reply_bytes(Reply::Order(Order {
            order_id: 1,
            customer: 1,
            lines: vec![],
            total_cents: 0,
            status,
            reason: None,
            version: 0,
            created_ms: 0,
            updated_ms: 0,
        }));
        // Root at 0, Order at 16, status at Order + 40.
        assert_eq!(bytes[16 + 40], byte, "{status:?}");
        assert_eq!(bytes[16 + 48], 0, "reason None");
    }
}

#[test]
fn error_replies_without_text() {
    assert_bytes(
        "NotFound",
        &error_bytes(ErrorReply::NotFound),
        "03 00*7                  # 0x00 Reply tag 3 = Error; ErrorReply at 0x08
         00 00*7                  # 0x08 ErrorReply tag 0 = NotFound
         00*112",
    );
    assert_bytes(
        "VersionConflict",
        &error_bytes(ErrorReply::VersionConflict { current: 5 }),
        "03 00*7 01 00*7          # tag 1 = VersionConflict
         05 00*7                  # 0x10 current
         00*104",
    );
    assert_bytes(
        "InsufficientStock",
        &error_bytes(ErrorReply::InsufficientStock {
            sku: 0xaa,
            available: 3,
        }),
        "03 00*7 02 00*7          # tag 2 = InsufficientStock
         aa 00*7                  # 0x10 sku
         03 00*7                  # 0x18 available
         00*96",
    );
    assert_bytes(
        "Overloaded",
        &error_bytes(ErrorReply::Overloaded),
        "03 00*7 04 00*119",
    );
    assert_bytes(
        "Unavailable",
        &error_bytes(ErrorReply::Unavailable),
        "03 00*7 06 00*119",
    );
    assert_bytes(
        "UnsupportedVersion",
        &error_bytes(ErrorReply::UnsupportedVersion {
            got: 2,
            supported: 1,
        }),
        "03 00*7
         09 02 01                 # 0x08 tag 9 = UnsupportedVersion, got, supported (u8 each)
         00*117",
    );
}

#[test]
fn error_replies_with_text() {
    let one_string = |tag: u8, error: ErrorReply| {
        let bytes = error_bytes(error);
        let spec = format!(
            "03 00*7
             {tag:02x} 00 00 00       # 0x08 ErrorReply tag
             6f 6f 70 73 ff ff ff ff  # 0x0c text 'oops', inline
             00*108"
        );
        assert_bytes(&format!("error tag {tag}"), &bytes, &spec);
    };
    one_string(
        7,
        ErrorReply::Internal {
            message: "oops".into(),
        },
    );
    one_string(
        8,
        ErrorReply::BadFrame {
            reason: "oops".into(),
        },
    );
    one_string(
        10,
        ErrorReply::InvalidState {
            reason: "oops".into(),
        },
    );
    assert_bytes(
        "Invalid",
        &error_bytes(ErrorReply::Invalid {
            field: "lines".into(),
            reason: "must have 1..=64 lines".into(),
        }),
        "6d 75 73 74 20 68 61 76 65 20 31 2e 2e 3d 36 34 20 6c 69 6e 65 73  # 0x00 reason
         00*10                    # 0x16 padding to 0x20
         03 00*7                  # 0x20 root: tag 3 = Error
         03 00 00 00              # 0x28 ErrorReply tag 3 = Invalid
         6c 69 6e 65 73 ff ff ff  # 0x2c field 'lines', inline
         96 00 00 00 cc ff ff ff  # 0x34 reason: length 22 out-of-line, -52 -> 0x00
         00*100",
    );
    assert_bytes(
        "NotPrimary with hint",
        &error_bytes(ErrorReply::NotPrimary {
            hint: Some("10.0.0.1:7000".into()),
        }),
        "31 30 2e 30 2e 30 2e 31 3a 37 30 30 30  # 0x00 hint text
         00 00 00                 # 0x0d padding
         03 00*7                  # 0x10 root: tag 3 = Error
         05 00 00 00              # 0x18 ErrorReply tag 5 = NotPrimary
         01 00 00 00              # 0x1c hint: Option tag 1 = Some
         8d 00 00 00 e0 ff ff ff  # 0x20 string: length 13 out-of-line, -32 -> 0x00
         00*104",
    );
    assert_bytes(
        "NotPrimary without hint",
        &error_bytes(ErrorReply::NotPrimary { hint: None }),
        "03 00*7 05 00 00 00 00 00*115",
    );
}

#[test]
fn batch_reply_layout() {
    let bytes = encode_batch_reply(&BatchReply {
        replies: vec![
            Reply::Pong {
                nonce: 1,
                shard_count: 8,
            },
            Reply::Error(ErrorReply::Internal {
                message: "0123456789".into(),
            }),
        ],
    })
    .expect("encode");
    assert_eq!(
        codec::decode_batch_reply(&bytes)
            .expect("decode")
            .replies
            .len(),
        2
    );
    assert_bytes(
        "BatchReply",
        &bytes,
        "30 31 32 33 34 35 36 37 38 39  # 0x00 replies[1] message text
         00*6                     # 0x0a padding to 16
         00 00*7                  # 0x10 replies[0]: tag 0 = Pong
         01 00*7                  # 0x18 nonce
         08 00 00 00              # 0x20 shard_count
         00*108                   # 0x24 rest of the 128-byte slot
         03 00*7                  # 0x90 replies[1]: tag 3 = Error
         07 00 00 00              # 0x98 ErrorReply tag 7 = Internal
         8a 00 00 00 64 ff ff ff  # 0x9c message: length 10 out-of-line, -156 -> 0x00
         00*108                   # 0xa4 rest of the slot
         00 ff ff ff 02 00 00 00  # 0x110 root BatchReply: replies at -256 -> 0x10, length 2",
    );
}

// ---------------------------------------------------------------------------------------
// Strings: inline up to 8 bytes, out-of-line above, with the length's marker bits.
// ---------------------------------------------------------------------------------------

/// The 8-byte string representation of an `Internal` error's message, and the body.
fn internal_message_repr(message: &str) -> ([u8; 8], Vec<u8>) {
    let bytes = error_bytes(ErrorReply::Internal {
        message: message.into(),
    });
    let root = bytes.len() - 128;
    let at = root + 12;
    let mut repr = [0u8; 8];
    repr.copy_from_slice(&bytes[at..at + 8]);
    (repr, bytes)
}

#[test]
fn string_inline_representation() {
    let (empty, _) = internal_message_repr("");
    assert_eq!(empty, [0xff; 8], "empty string: all filler");
    let (full, _) = internal_message_repr("12345678");
    assert_eq!(&full, b"12345678", "8 bytes: inline, no filler");
    let (accented, _) = internal_message_repr("é");
    assert_eq!(accented, [0xc3, 0xa9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn string_out_of_line_length_encoding() {
    // Length word (little-endian u32): (len & 0x3f) | 0x80 | ((len & !0x3f) << 2).
    for (length, word) in [
        (9usize, 0x89u32),
        (63, 0xbf),
        (64, 0x180),
        (100, 0x1a4),
        (256, 0x480),
        (512, 0x880),
    ] {
        let text = "x".repeat(length);
        let (repr, bytes) = internal_message_repr(&text);
        let encoded = u32::from_le_bytes([repr[0], repr[1], repr[2], repr[3]]);
        assert_eq!(encoded, word, "length {length}");
        let offset = i32::from_le_bytes([repr[4], repr[5], repr[6], repr[7]]);
        let repr_position = bytes.len() - 128 + 12;
        let target = (repr_position as i64 + i64::from(offset)) as usize;
        assert_eq!(target, 0, "the only out-of-line data sits at the front");
        assert_eq!(&bytes[target..target + length], text.as_bytes());
    }
}

// ---------------------------------------------------------------------------------------
// Rules a decoder enforces (bytecheck), as PROTOCOL.md lists them.
// ---------------------------------------------------------------------------------------

fn place_order_with_long_token() -> Vec<u8> {
    operation_bytes(Operation::PlaceOrder(PlaceOrder {
        order_id: 7,
        customer: 8,
        lines: vec![line(0xaa, 2)],
        payment: Payment::Card {
            token: "tok_0123456789".into(),
        },
    }))
}

fn accepts_operation(bytes: &[u8]) -> bool {
    access_operation(&aligned(bytes)).is_ok()
}

fn aligned(bytes: &[u8]) -> rkyv::util::AlignedVec<16> {
    let mut out = rkyv::util::AlignedVec::<16>::new();
    out.extend_from_slice(bytes);
    out
}

#[test]
fn unknown_tags_are_refused() {
    let mut ping = operation_bytes(Operation::Ping { nonce: 1 });
    ping[0] = 7;
    assert!(!accepts_operation(&ping), "Operation tag 7");

    let mut cancel = operation_bytes(Operation::CancelOrder {
        order_id: 7,
        expected_version: None,
    });
    cancel[32] = 2;
    assert!(!accepts_operation(&cancel), "Option tag 2");

    let mut order = place_order_with_long_token();
    order[0x50] = 2;
    assert!(!accepts_operation(&order), "Payment tag 2");

    let mut status = reply_bytes(Reply::Order(Order {
        order_id: 1,
        customer: 1,
        lines: vec![],
        total_cents: 0,
        status: OrderStatus::Committed,
        reason: None,
        version: 0,
        created_ms: 0,
        updated_ms: 0,
    }));
    status[16 + 40] = 5;
    assert!(access_reply(&aligned(&status)).is_err(), "OrderStatus 5");
}

#[test]
fn padding_is_not_checked() {
    // Writers send zero padding; readers ignore it (the body CRC is what protects it).
    let mut ping = operation_bytes(Operation::Ping { nonce: 1 });
    ping[1] = 0xee;
    ping[40] = 0xee;
    assert!(accepts_operation(&ping));
}

#[test]
fn strings_must_use_the_right_representation() {
    let mut order = place_order_with_long_token();
    assert!(accepts_operation(&order));
    // Out-of-line marker with a length of 8 or less is refused.
    order[0x54] = 0x88;
    assert!(!accepts_operation(&order), "out-of-line string of 8 bytes");
    order[0x54] = 0x8e;
    // Invalid UTF-8 is refused.
    order[0x10] = 0xff;
    assert!(!accepts_operation(&order), "invalid UTF-8");
}

#[test]
fn pointers_must_stay_behind_their_holder() {
    let mut order = place_order_with_long_token();
    // Token offset pointing forward into the root (0x54 + 4 = 0x58) is refused.
    order[0x58..0x5c].copy_from_slice(&4i32.to_le_bytes());
    assert!(!accepts_operation(&order), "pointer into the root");

    let mut order = place_order_with_long_token();
    // Lines pointing past the buffer.
    order[0x48..0x4c].copy_from_slice(&1000i32.to_le_bytes());
    assert!(!accepts_operation(&order), "pointer out of the buffer");
}

#[test]
fn arrays_must_be_aligned() {
    // Two lines at 0x00..0x20, root at 0x20, lines pointer at 0x48.
    let two_lines = operation_bytes(Operation::PlaceOrder(PlaceOrder {
        order_id: 7,
        customer: 8,
        lines: vec![line(0xaa, 2), line(0xbb, 3)],
        payment: Payment::None,
    }));
    let one_line_at = |position: i32| {
        let mut body = two_lines.clone();
        body[0x48..0x4c].copy_from_slice(&(position - 0x48).to_le_bytes());
        body[0x4c..0x50].copy_from_slice(&1u32.to_le_bytes());
        accepts_operation(&body)
    };
    assert!(
        one_line_at(0x10),
        "one line at 0x10: in range and 8-aligned"
    );
    assert!(!one_line_at(0x04), "one line at 0x04: misaligned");
}

#[test]
fn pointees_must_not_overlap_and_come_in_field_order() {
    // Lines at 0x00..0x10, token at 0x10..0x1e. Make the first 14 bytes valid UTF-8 and
    // point the token at 0x00: the lines already claimed those bytes.
    let mut order = place_order_with_long_token();
    order[0..14].copy_from_slice(b"abcdefghijklmn");
    order[0x58..0x5c].copy_from_slice(&(-0x54i32).to_le_bytes());
    assert!(!accepts_operation(&order), "token overlapping the lines");
    // Control: with no lines, nothing claims 0x00 and the same token pointer is fine.
    order[0x4c..0x50].copy_from_slice(&0u32.to_le_bytes());
    assert!(
        accepts_operation(&order),
        "same token pointer without lines"
    );
}

#[test]
fn root_is_found_from_the_end() {
    // The root sits in the last 64 bytes of a Request body; leading bytes are allowed
    // and, because offsets are relative, the rest of the archive may shift with them.
    let order = place_order_with_long_token();
    let mut shifted = vec![0u8; 16];
    shifted.extend_from_slice(&order);
    let body = aligned(&shifted);
    let operation = to_operation(access_operation(&body).expect("access")).expect("owned");
    assert_eq!(
        operation,
        to_operation(access_operation(&aligned(&order)).expect("a")).expect("b")
    );

    // A body whose root would not be 16-aligned is refused.
    let mut trailing = order.clone();
    trailing.extend_from_slice(&[0u8; 8]);
    assert!(
        !accepts_operation(&trailing),
        "root misaligned by trailing bytes"
    );
    // A body shorter than the root is refused.
    assert!(!accepts_operation(&order[order.len() - 48..]), "short body");
}

/// Builds a PlaceOrder body by hand from PROTOCOL.md's rules alone, as a client in
/// another language would, and checks that quorder reads it and that rkyv writes the
/// same bytes.
#[test]
fn hand_built_place_order_is_accepted() {
    let token: String = (0..100)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let lines = [(11u64, 1u64), (22, 2), (33, 3)];
    let order_id: u128 = 0xfeed_0000_0000_0000_0000_0000_0000_beef;

    let mut body = vec![0u8; 0xe0];
    // Out-of-line data first, in field order: lines array at 0x00 (3 × 16 bytes) ...
    for (index, (sku, quantity)) in lines.iter().enumerate() {
        body[index * 16..index * 16 + 8].copy_from_slice(&sku.to_le_bytes());
        body[index * 16 + 8..index * 16 + 16].copy_from_slice(&quantity.to_le_bytes());
    }
    // ... then the token bytes at 0x30 (100 bytes, up to 0x94), zero padding to 0xa0.
    body[0x30..0x94].copy_from_slice(token.as_bytes());
    // Root Operation at 0xa0 = len - 64: tag 4, PlaceOrder at 0xb0.
    body[0xa0] = 4;
    body[0xb0..0xc0].copy_from_slice(&order_id.to_le_bytes());
    body[0xc0..0xc8].copy_from_slice(&99u64.to_le_bytes());
    body[0xc8..0xcc].copy_from_slice(&(0x00i32 - 0xc8).to_le_bytes());
    body[0xcc..0xd0].copy_from_slice(&3u32.to_le_bytes());
    body[0xd0] = 1; // Payment::Card
    let length = 100u32;
    let length_word = (length & 0x3f) | 0x80 | ((length & !0x3f) << 2);
    body[0xd4..0xd8].copy_from_slice(&length_word.to_le_bytes());
    body[0xd8..0xdc].copy_from_slice(&(0x30i32 - 0xd4).to_le_bytes());

    let expected = Operation::PlaceOrder(PlaceOrder {
        order_id,
        customer: 99,
        lines: lines
            .iter()
            .map(|&(sku, quantity)| line(sku, quantity))
            .collect(),
        payment: Payment::Card { token },
    });
    let aligned_body = aligned(&body);
    let archived = access_operation(&aligned_body).expect("hand-built body validates");
    assert_eq!(to_operation(archived).expect("owned"), expected);
    assert_eq!(validate::validate_operation(archived), Ok(()));
    assert_eq!(
        operation_bytes(expected),
        body,
        "rkyv writes the same bytes"
    );
}
