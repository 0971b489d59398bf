//! Bad input at a running node's front door (DESIGN.md §6, PROTOCOL.md §2, §4 and §8.1),
//! sent over raw TCP streams.
//!
//! Framing errors get exactly one error reply (`BadFrame`, or `UnsupportedVersion` for a
//! foreign version), carrying the request id only when the header checksum matched, after
//! the answers to requests already accepted, and then a closed connection. Range errors get `Invalid { field }` and the connection stays
//! usable. Throughout, a well-behaved client keeps being served, a watched item and order
//! stay byte-for-byte identical, and the node never dies.

use quorder_client::{Client, ClientError};
use quorder_proto::codec::{
    decode_batch_reply, decode_reply, encode_batch, encode_batch_reply, encode_operation,
    encode_reply,
};
use quorder_proto::frame::{crc32, Header, MAGIC, PROTOCOL_VERSION};
use quorder_proto::limits::{
    BATCH_OPERATIONS_MAX, ERROR_TEXT_BYTES_MAX, FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES,
    LINE_QUANTITY_MAX, PRICE_CENTS_MAX, REQUEST_BODY_BYTES_MAX, STOCK_MAX,
};
use quorder_proto::{
    Batch, BatchReply, ErrorReply, FrameError, FrameKind, Item, Operation, Order, OrderLine,
    OrderStatus, Payment, PlaceOrder, PutItem, Reply,
};
use quorder_tests::process::{scratch_dir, Node};
use quorder_tests::rng::Rng;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

const SHARDS: u32 = 8;
const CORES: u32 = 2;
/// The item every abuse tries to change.
const WATCHED_SKU: u64 = 4242;
const WATCHED_AVAILABLE: u64 = 100;
const WATCHED_PRICE_CENTS: u64 = 250;
/// Generous for a loaded machine; a node that waits for bytes it must not need never
/// answers, and the read then fails instead of hanging the suite.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
const SEED: u64 = 0x0bad_1e55_f00d;

/// Every header field, settable one by one (`Header::encode` only writes valid headers).
#[derive(Debug, Clone, Copy)]
struct RawHeader {
    magic: [u8; 4],
    version: u8,
    kind: u8,
    flags: u16,
    body_length: u32,
    body_crc: u32,
    request_id: u64,
    reserved: u32,
}

impl RawHeader {
    fn for_body(kind: FrameKind, request_id: u64, body: &[u8]) -> RawHeader {
        RawHeader {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            kind: kind as u8,
            flags: 0,
            body_length: u32::try_from(body.len()).expect("test bodies fit a u32"),
            body_crc: crc32(body),
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
        bytes[12..16].copy_from_slice(&self.body_crc.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.request_id.to_le_bytes());
        bytes[24..28].copy_from_slice(&self.reserved.to_le_bytes());
        let header_crc = crc32(&bytes[0..28]);
        bytes[28..32].copy_from_slice(&header_crc.to_le_bytes());
        bytes
    }
}

fn frame(header: &RawHeader, body: &[u8]) -> Vec<u8> {
    let mut bytes = header.encode().to_vec();
    bytes.extend_from_slice(body);
    bytes
}

fn request_frame(request_id: u64, operation: &Operation) -> Vec<u8> {
    let body = encode_operation(operation).expect("encode operation");
    frame(
        &RawHeader::for_body(FrameKind::Request, request_id, &body),
        &body,
    )
}

fn batch_frame(request_id: u64, operations: Vec<Operation>) -> Vec<u8> {
    let body = encode_batch(&Batch { operations }).expect("encode batch");
    frame(
        &RawHeader::for_body(FrameKind::BatchRequest, request_id, &body),
        &body,
    )
}

/// A write of the watched item that must never be applied.
fn overwrite_watched() -> Operation {
    Operation::PutItem(PutItem {
        sku: WATCHED_SKU,
        available: 7,
        price_cents: 1,
        expected_version: None,
    })
}

fn order_of(order_id: u128, lines: Vec<OrderLine>) -> Operation {
    Operation::PlaceOrder(PlaceOrder {
        order_id,
        customer: 9,
        lines,
        payment: Payment::None,
    })
}

fn connect(node: &Node) -> TcpStream {
    let stream = TcpStream::connect(&node.addr).expect("connect to quorderd");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("set read timeout");
    stream.set_nodelay(true).expect("set nodelay");
    stream
}

/// Reads one whole frame from the node and checks it as a client must.
fn read_frame(stream: &mut TcpStream, case: &str) -> (Header, Vec<u8>) {
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    stream
        .read_exact(&mut header_bytes)
        .unwrap_or_else(|error| panic!("{case}: no reply frame from the node: {error}"));
    let header = Header::decode(&header_bytes)
        .unwrap_or_else(|error| panic!("{case}: the node sent a bad header: {error}"));
    let mut body = vec![0u8; header.body_length as usize];
    stream
        .read_exact(&mut body)
        .unwrap_or_else(|error| panic!("{case}: reply body cut short: {error}"));
    header
        .check_body(&body)
        .unwrap_or_else(|error| panic!("{case}: reply body corrupt: {error}"));
    (header, body)
}

/// Reads one kind-2 reply and checks its request id.
fn read_reply(stream: &mut TcpStream, request_id: u64, case: &str) -> Reply {
    let (header, body) = read_frame(stream, case);
    assert_eq!(header.kind, FrameKind::Reply, "{case}: reply frame kind");
    assert_eq!(header.request_id, request_id, "{case}: reply request id");
    decode_reply(&body).unwrap_or_else(|error| panic!("{case}: undecodable reply: {error}"))
}

fn read_error(stream: &mut TcpStream, request_id: u64, case: &str) -> ErrorReply {
    match read_reply(stream, request_id, case) {
        Reply::Error(error) => error,
        other => panic!("{case}: expected an error reply, got {other:?}"),
    }
}

/// The node closed the connection: end of stream with nothing more sent. A reset also
/// means closed (the kernel resets when the node closes with bytes still unread).
fn expect_closed(stream: &mut TcpStream, case: &str) {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => panic!("{case}: the node sent more after the error reply"),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => {}
        Err(error) => panic!("{case}: the node did not close the connection: {error}"),
    }
}

/// Sends `bytes` on a fresh connection; expects one error reply with `request_id`, then
/// a closed connection. Returns the error.
fn expect_framing_error(node: &Node, bytes: &[u8], request_id: u64, case: &str) -> ErrorReply {
    let mut stream = connect(node);
    stream.write_all(bytes).expect("send abuse");
    let error = read_error(&mut stream, request_id, case);
    expect_closed(&mut stream, case);
    error
}

/// Like `expect_framing_error`, for a `BadFrame` reply; returns its reason.
fn expect_bad_frame(node: &Node, bytes: &[u8], request_id: u64, case: &str) -> String {
    match expect_framing_error(node, bytes, request_id, case) {
        ErrorReply::BadFrame { reason } => {
            assert!(!reason.is_empty(), "{case}: empty BadFrame reason");
            assert!(
                reason.len() <= ERROR_TEXT_BYTES_MAX,
                "{case}: BadFrame reason of {} bytes is over the limit",
                reason.len()
            );
            reason
        }
        other => panic!("{case}: expected BadFrame, got {other:?}"),
    }
}

/// The fixed reason PROTOCOL.md §4 gives for a body that is no archive of its kind.
fn invalid_body_reason(kind: FrameKind) -> String {
    format!("invalid {kind:?} body: body is not a valid archive of its kind")
}

/// Sends `bytes`, half-closes, and expects the node to close without any reply.
fn expect_silent_close(node: &Node, bytes: &[u8], case: &str) {
    let mut stream = connect(node);
    stream.write_all(bytes).expect("send abuse");
    stream.shutdown(Shutdown::Write).expect("half-close");
    expect_closed(&mut stream, case);
}

/// A well-behaved client and the records that no abuse may change.
struct Watch {
    client: Client,
    item: Item,
    order: Order,
}

impl Watch {
    fn new(node: &Node) -> Watch {
        let mut client = node.client();
        let item = client
            .put_item(WATCHED_SKU, WATCHED_AVAILABLE, WATCHED_PRICE_CENTS, None)
            .expect("create the watched item");
        let order_id = client.new_order_id(WATCHED_SKU);
        let placed = client
            .place_order(&PlaceOrder {
                order_id,
                customer: 1,
                lines: vec![OrderLine {
                    sku: WATCHED_SKU,
                    quantity: 3,
                }],
                payment: Payment::None,
            })
            .expect("place the watched order");
        assert_eq!(placed.status, OrderStatus::Committed);
        let item = client.get_item(item.sku).expect("read the watched item");
        assert_eq!(item.sold, 3);
        Watch {
            client,
            item,
            order: placed,
        }
    }

    /// The good client is served and nothing changed.
    fn check(&mut self, node: &mut Node, after: &str) {
        assert!(node.is_running(), "quorderd died after {after}");
        let pong = self
            .client
            .ping()
            .unwrap_or_else(|error| panic!("ping failed after {after}: {error}"));
        assert_eq!(pong.shard_count, SHARDS);
        let item = self
            .client
            .get_item(WATCHED_SKU)
            .unwrap_or_else(|error| panic!("item read failed after {after}: {error}"));
        assert_eq!(item, self.item, "watched item changed after {after}");
        let order = self
            .client
            .get_order(self.order.order_id)
            .unwrap_or_else(|error| panic!("order read failed after {after}: {error}"));
        assert_eq!(order, self.order, "watched order changed after {after}");
    }
}

fn start(name: &str) -> (Node, Watch) {
    let node = Node::start(&scratch_dir(name), SHARDS, CORES);
    let watch = Watch::new(&node);
    (node, watch)
}

#[test]
fn truncated_frames_are_dropped_without_a_reply() {
    let (mut node, mut watch) = start("bad-input-truncated");
    let full = request_frame(21, &overwrite_watched());

    expect_silent_close(&node, &full[..10], "header truncated then closed");
    watch.check(&mut node, "a truncated header");

    expect_silent_close(&node, &full[..FRAME_HEADER_BYTES + 20], "body truncated");
    watch.check(&mut node, "a truncated body");

    expect_silent_close(&node, &[], "connect then close");
    watch.check(&mut node, "an empty connection");
}

#[test]
fn header_errors_get_one_reply_then_close() {
    let (mut node, mut watch) = start("bad-input-header");
    let body = encode_operation(&overwrite_watched()).expect("encode");
    let good = RawHeader::for_body(FrameKind::Request, 31, &body);

    // Any flipped header bit fails the checksum; then nothing in it is believed, not
    // even the request id.
    let mut corrupt = good.encode();
    corrupt[16] ^= 0x01;
    expect_bad_frame(&node, &corrupt, 0, "bad header checksum");
    watch.check(&mut node, "a bad header checksum");
    let mut corrupt = good.encode();
    corrupt[29] ^= 0x80;
    expect_bad_frame(&node, &corrupt, 0, "bad header checksum field");
    watch.check(&mut node, "a bad header checksum field");

    let bad_magic = RawHeader {
        magic: *b"QRDX",
        ..good
    };
    expect_bad_frame(&node, &bad_magic.encode(), 31, "bad magic");
    watch.check(&mut node, "a bad magic");

    for version in [0u8, 2, 255] {
        let header = RawHeader { version, ..good };
        let case = format!("version {version}");
        let error = expect_framing_error(&node, &header.encode(), 31, &case);
        assert_eq!(
            error,
            ErrorReply::UnsupportedVersion {
                got: version,
                supported: PROTOCOL_VERSION
            },
            "{case}"
        );
        watch.check(&mut node, &case);
    }

    // Kinds this build's decoder knows none of (the set of kinds grows with the protocol).
    for kind in [0u8, 7, 9, 15, 19, 255] {
        assert!(
            FrameKind::from_byte(kind).is_none(),
            "test premise: kind {kind} is unassigned"
        );
        let header = RawHeader { kind, ..good };
        let case = format!("unknown kind {kind}");
        expect_bad_frame(&node, &header.encode(), 31, &case);
        watch.check(&mut node, &case);
    }

    for (flags, reserved) in [(1u16, 0u32), (0x8000, 0), (0, 1), (0, 0x8000_0000)] {
        let header = RawHeader {
            flags,
            reserved,
            ..good
        };
        let case = format!("flags {flags:#x}, reserved {reserved:#x}");
        expect_bad_frame(&node, &header.encode(), 31, &case);
        watch.check(&mut node, &case);
    }
}

/// A `Batch` of one operation in a body of exactly `FRAME_BODY_BYTES_MAX` bytes: zeros,
/// then the 64-byte operation (16-aligned), 8 bytes of gap, and the 8-byte root.
fn batch_at_the_limit(operation: Operation) -> Vec<u8> {
    let encoded = encode_operation(&operation).expect("encode");
    assert_eq!(
        encoded.len(),
        64,
        "test premise: an operation without pointees"
    );
    let root = FRAME_BODY_BYTES_MAX - 8;
    let element = root - 72;
    let mut body = vec![0u8; FRAME_BODY_BYTES_MAX];
    body[element..element + 64].copy_from_slice(&encoded);
    body[root..root + 4].copy_from_slice(&(-72i32).to_le_bytes());
    body[root + 4..].copy_from_slice(&1u32.to_le_bytes());
    assert!(
        quorder_proto::codec::access_batch(&aligned(&body)).is_ok(),
        "test premise: a valid batch"
    );
    body
}

#[test]
fn oversized_bodies_are_refused_before_reading() {
    let (mut node, mut watch) = start("bad-input-oversized");
    // Only headers are sent: an answer proves the node neither waited for the body nor
    // (since it is still alive and serving) tried to hold 4 GiB of it. A single-operation
    // `Request` has the tighter bound `REQUEST_BODY_BYTES_MAX`, a batch the frame bound.
    let oversized = [
        (FrameKind::Request, REQUEST_BODY_BYTES_MAX as u32 + 1),
        (FrameKind::Request, FRAME_BODY_BYTES_MAX as u32 + 1),
        (FrameKind::BatchRequest, FRAME_BODY_BYTES_MAX as u32 + 1),
        (FrameKind::BatchRequest, u32::MAX),
    ];
    for (kind, body_length) in oversized {
        let header = RawHeader {
            body_length,
            ..RawHeader::for_body(kind, 41, &[])
        };
        let case = format!("{kind:?} with body_length {body_length}");
        expect_bad_frame(&node, &header.encode(), 41, &case);
        watch.check(&mut node, &case);
    }

    // The bounds themselves are allowed, and the connection stays open. Leading gaps are
    // never read: a `Request` body of zeros is a `Ping { nonce: 0 }`.
    let mut stream = connect(&node);
    let body = vec![0u8; REQUEST_BODY_BYTES_MAX];
    let header = RawHeader::for_body(FrameKind::Request, 42, &body);
    stream
        .write_all(&frame(&header, &body))
        .expect("send a request at the limit");
    let reply = read_reply(&mut stream, 42, "request at the limit");
    assert_eq!(
        reply,
        Reply::Pong {
            nonce: 0,
            shard_count: SHARDS
        }
    );
    let body = batch_at_the_limit(Operation::Ping { nonce: 6 });
    let header = RawHeader::for_body(FrameKind::BatchRequest, 43, &body);
    stream
        .write_all(&frame(&header, &body))
        .expect("send a batch at the limit");
    let (header, reply) = read_frame(&mut stream, "batch at the limit");
    assert_eq!(
        (header.kind, header.request_id),
        (FrameKind::BatchReply, 43)
    );
    let replies = decode_batch_reply(&reply).expect("decode").replies;
    assert!(
        matches!(replies[..], [Reply::Pong { nonce: 6, .. }]),
        "{replies:?}"
    );
    stream
        .write_all(&request_frame(44, &Operation::Ping { nonce: 5 }))
        .expect("send a ping");
    let reply = read_reply(&mut stream, 44, "ping after bodies at the limit");
    assert!(matches!(reply, Reply::Pong { nonce: 5, .. }), "{reply:?}");
    watch.check(&mut node, "bodies at the limit");
}

#[test]
fn body_errors_get_one_reply_then_close() {
    let (mut node, mut watch) = start("bad-input-body");
    let body = encode_operation(&overwrite_watched()).expect("encode");

    let header = RawHeader {
        body_crc: crc32(&body) ^ 1,
        ..RawHeader::for_body(FrameKind::Request, 51, &body)
    };
    expect_bad_frame(&node, &frame(&header, &body), 51, "bad body checksum");
    watch.check(&mut node, "a bad body checksum");

    // Good checksums, bodies that are no `Operation` archive: an unknown Operation tag, an
    // Option tag of 7 in the PutItem's expected_version, a body too short for the root,
    // a misaligned root, an empty body.
    let mut unknown_tag = body.to_vec();
    unknown_tag[0] = 200;
    let mut bad_option = body.to_vec();
    bad_option[32] = 7;
    let cases: [(&str, Vec<u8>); 5] = [
        ("unknown operation tag", unknown_tag),
        ("bad Option tag", bad_option),
        ("body shorter than the root", body[..48].to_vec()),
        ("misaligned root", body[..63].to_vec()),
        ("empty body", Vec::new()),
    ];
    for (case, invalid) in cases {
        assert!(
            quorder_proto::codec::access_operation(&aligned(&invalid)).is_err(),
            "test premise: {case} is not a valid Operation"
        );
        let header = RawHeader::for_body(FrameKind::Request, 52, &invalid);
        let reason = expect_bad_frame(&node, &frame(&header, &invalid), 52, case);
        assert_eq!(reason, invalid_body_reason(FrameKind::Request), "{case}");
        watch.check(&mut node, case);
    }

    // Valid archives of the wrong root type.
    let batch = encode_batch(&Batch {
        operations: vec![overwrite_watched()],
    })
    .expect("encode batch");
    let batch_reply = encode_batch_reply(&BatchReply {
        replies: vec![Reply::Error(ErrorReply::NotFound)],
    })
    .expect("encode batch reply");
    let item = rkyv::to_bytes::<rkyv::rancor::Error>(&Item {
        version: (1 << 32) | 0x10,
        ..Item::default()
    })
    .expect("encode item");
    let cases: [(&str, FrameKind, Vec<u8>); 3] = [
        (
            "Request carrying a Batch",
            FrameKind::Request,
            batch.to_vec(),
        ),
        (
            "Request carrying a BatchReply",
            FrameKind::Request,
            batch_reply.to_vec(),
        ),
        (
            "BatchRequest carrying an Item",
            FrameKind::BatchRequest,
            item.to_vec(),
        ),
    ];
    for (case, kind, wrong) in cases {
        let refused = match kind {
            FrameKind::Request => quorder_proto::codec::access_operation(&aligned(&wrong)).is_err(),
            _ => quorder_proto::codec::access_batch(&aligned(&wrong)).is_err(),
        };
        assert!(refused, "test premise: {case} does not validate");
        let header = RawHeader::for_body(kind, 53, &wrong);
        let reason = expect_bad_frame(&node, &frame(&header, &wrong), 53, case);
        assert_eq!(reason, invalid_body_reason(kind), "{case}");
        watch.check(&mut node, case);
    }
}

#[test]
fn kinds_a_client_may_not_send_are_refused_before_the_body() {
    let (mut node, mut watch) = start("bad-input-node-kinds");
    // Kinds a node or a peer sends (PROTOCOL.md §3): refused on the client port from the
    // header alone, so only the header is sent. The body of a `Reply` is announced.
    let reply = encode_reply(&Reply::Pong {
        nonce: 1,
        shard_count: SHARDS,
    })
    .expect("encode reply");
    let node_kinds = [
        FrameKind::Reply,
        FrameKind::BatchReply,
        FrameKind::StatusReply,
        FrameKind::PeerHello,
        FrameKind::PeerHelloReply,
        FrameKind::Peer,
    ];
    for kind in node_kinds {
        let header = RawHeader::for_body(kind, 54, &reply);
        let case = format!("client sends {kind:?}");
        expect_bad_frame(&node, &header.encode(), 54, &case);
        watch.check(&mut node, &case);
    }
}

fn aligned(bytes: &[u8]) -> rkyv::util::AlignedVec {
    let mut buffer = rkyv::util::AlignedVec::with_capacity(bytes.len());
    buffer.extend_from_slice(bytes);
    buffer
}

#[test]
fn random_bytes_are_refused() {
    let (mut node, mut watch) = start("bad-input-random");
    let mut rng = Rng::new(SEED);
    for size in [1usize, 7, 31, 32, 33, 64, 100, 1000, 4096] {
        let bytes: Vec<u8> = (0..size).map(|_| rng.next_u64() as u8).collect();
        let case = format!("{size} random bytes (seed {SEED:#x})");
        if size < FRAME_HEADER_BYTES {
            expect_silent_close(&node, &bytes, &case);
        } else {
            // The protocol's own decoder says what the node must answer.
            let expected = Header::decode(&bytes)
                .expect_err("test premise: random bytes are not a valid header");
            let request_id = Header::request_id_hint(&bytes);
            let error = expect_framing_error(&node, &bytes, request_id, &case);
            match expected {
                FrameError::UnsupportedVersion { got } => assert_eq!(
                    error,
                    ErrorReply::UnsupportedVersion {
                        got,
                        supported: PROTOCOL_VERSION
                    },
                    "{case}"
                ),
                _ => assert!(
                    matches!(error, ErrorReply::BadFrame { .. }),
                    "{case}: expected BadFrame, got {error:?}"
                ),
            }
        }
        watch.check(&mut node, &case);
    }
}

fn expect_invalid(stream: &mut TcpStream, request_id: u64, field: &str, case: &str) {
    match read_error(stream, request_id, case) {
        ErrorReply::Invalid { field: got, reason } => {
            assert_eq!(got, field, "{case}: field named");
            assert!(!reason.is_empty(), "{case}: empty reason");
            assert!(reason.len() <= ERROR_TEXT_BYTES_MAX, "{case}: long reason");
        }
        other => panic!("{case}: expected Invalid {{ field: {field} }}, got {other:?}"),
    }
}

#[test]
fn range_errors_keep_the_connection_open() {
    let (mut node, mut watch) = start("bad-input-range");
    let line = |sku, quantity| OrderLine { sku, quantity };
    let refused_order_ids = [0x51u128, 0x52, 0x53];
    let cases: Vec<(&str, Operation, &str)> = vec![
        (
            "order with no lines",
            order_of(refused_order_ids[0], vec![]),
            "lines",
        ),
        (
            "order line of quantity 0",
            order_of(refused_order_ids[1], vec![line(WATCHED_SKU, 0)]),
            "lines.quantity",
        ),
        (
            "order line over the quantity limit",
            order_of(
                refused_order_ids[2],
                vec![line(WATCHED_SKU, LINE_QUANTITY_MAX + 1)],
            ),
            "lines.quantity",
        ),
        (
            "order with a repeated SKU",
            order_of(
                refused_order_ids[2],
                vec![line(WATCHED_SKU, 1), line(WATCHED_SKU, 1)],
            ),
            "lines.sku",
        ),
        (
            "order over the line limit",
            order_of(
                refused_order_ids[2],
                (1..=65).map(|sku| line(sku, 1)).collect(),
            ),
            "lines",
        ),
        (
            "order id 0",
            order_of(0, vec![line(WATCHED_SKU, 1)]),
            "order_id",
        ),
        (
            "restock of 0",
            Operation::Restock {
                sku: WATCHED_SKU,
                quantity: 0,
            },
            "quantity",
        ),
        (
            "put over the stock limit",
            Operation::PutItem(PutItem {
                sku: WATCHED_SKU,
                available: STOCK_MAX + 1,
                price_cents: 1,
                expected_version: None,
            }),
            "available",
        ),
        (
            "put over the price limit",
            Operation::PutItem(PutItem {
                sku: WATCHED_SKU,
                available: 1,
                price_cents: PRICE_CENTS_MAX + 1,
                expected_version: None,
            }),
            "price_cents",
        ),
    ];
    // All on one connection: each refusal leaves it open and usable.
    let mut stream = connect(&node);
    for (number, (case, operation, field)) in cases.into_iter().enumerate() {
        let request_id = 100 + number as u64;
        stream
            .write_all(&request_frame(request_id, &operation))
            .expect("send");
        expect_invalid(&mut stream, request_id, field, case);
        stream
            .write_all(&request_frame(7, &Operation::Ping { nonce: 77 }))
            .expect("send ping");
        let pong = read_reply(&mut stream, 7, case);
        assert!(matches!(pong, Reply::Pong { nonce: 77, .. }), "{case}");
        watch.check(&mut node, case);
    }
    for order_id in refused_order_ids {
        let error = watch.client.get_order(order_id).expect_err("not recorded");
        assert!(
            matches!(error, ClientError::Server(ErrorReply::NotFound)),
            "a refused order was recorded: {error}"
        );
    }

    // The same through the client library: a typed error, and the client stays usable.
    let error = watch
        .client
        .execute(&order_of(0x54, vec![line(WATCHED_SKU, 0)]))
        .expect_err("refused");
    assert!(
        matches!(
            error,
            ClientError::Server(ErrorReply::Invalid { ref field, .. }) if field == "lines.quantity"
        ),
        "{error}"
    );
    watch.check(&mut node, "an invalid order through the client");
}

#[test]
fn batch_errors_keep_the_connection_open() {
    let (mut node, mut watch) = start("bad-input-batch");
    let mut stream = connect(&node);

    stream
        .write_all(&batch_frame(201, Vec::new()))
        .expect("send empty batch");
    expect_invalid(&mut stream, 201, "operations", "empty batch");
    watch.check(&mut node, "an empty batch");

    let too_many = vec![overwrite_watched(); BATCH_OPERATIONS_MAX + 1];
    stream
        .write_all(&batch_frame(202, too_many))
        .expect("send oversized batch");
    expect_invalid(&mut stream, 202, "operations", "batch over the limit");
    watch.check(&mut node, "a batch over the limit");

    // Each operation of a batch is checked on its own; the rest are served.
    let mixed = vec![
        Operation::Ping { nonce: 3 },
        order_of(0x61, vec![]),
        Operation::GetItem { sku: WATCHED_SKU },
    ];
    stream
        .write_all(&batch_frame(203, mixed))
        .expect("send mixed batch");
    let (header, body) = read_frame(&mut stream, "mixed batch");
    assert_eq!(header.kind, FrameKind::BatchReply);
    assert_eq!(header.request_id, 203);
    let replies = decode_batch_reply(&body)
        .expect("decode batch reply")
        .replies;
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(
        matches!(replies[0], Reply::Pong { nonce: 3, .. }),
        "{replies:?}"
    );
    assert!(
        matches!(&replies[1], Reply::Error(ErrorReply::Invalid { field, .. }) if field == "lines"),
        "{replies:?}"
    );
    assert_eq!(replies[2], Reply::Item(watch.item), "{replies:?}");

    stream
        .write_all(&request_frame(204, &Operation::Ping { nonce: 4 }))
        .expect("send ping");
    let pong = read_reply(&mut stream, 204, "ping after batches");
    assert!(matches!(pong, Reply::Pong { nonce: 4, .. }), "{pong:?}");
    watch.check(&mut node, "a mixed batch");
}

/// PROTOCOL.md §4: after a framing error the node answers the requests it had already
/// accepted on that connection, then sends the error reply, then closes: the error reply
/// is the last frame.
#[test]
fn accepted_requests_are_answered_before_the_framing_error() {
    let (mut node, mut watch) = start("bad-input-in-flight");
    let mut bytes = Vec::new();
    for request_id in 1..=8u64 {
        let put = Operation::PutItem(PutItem {
            sku: 9000 + request_id,
            available: 1,
            price_cents: 1,
            expected_version: None,
        });
        bytes.extend_from_slice(&request_frame(request_id, &put));
    }
    let mut corrupt = RawHeader::for_body(FrameKind::Request, 9, &[]).encode();
    corrupt[28] ^= 0x01;
    bytes.extend_from_slice(&corrupt);
    let mut stream = connect(&node);
    stream.write_all(&bytes).expect("send");
    // The 8 puts were read before the bad header: each is answered, in any order,
    // and then the error reply (request id 0: its header checksum failed) comes last.
    let mut answered = Vec::new();
    for _ in 1..=8 {
        let (header, body) = read_frame(&mut stream, "accepted puts");
        match decode_reply(&body).expect("decode reply") {
            Reply::Item(item) => {
                assert_eq!(item.sku, 9000 + header.request_id, "{item:?}");
                answered.push(header.request_id);
            }
            other => panic!("request {} answered {other:?}", header.request_id),
        }
    }
    answered.sort_unstable();
    assert_eq!(answered, (1..=8).collect::<Vec<u64>>());
    let error = read_error(&mut stream, 0, "bad header after accepted puts");
    assert!(matches!(error, ErrorReply::BadFrame { .. }), "{error:?}");
    expect_closed(&mut stream, "after the error reply");
    for request_id in 1..=8u64 {
        let item = watch
            .client
            .get_item(9000 + request_id)
            .expect("answered put applied");
        assert_eq!(item.available, 1);
    }
    watch.check(&mut node, "accepted puts then a bad header");
}
