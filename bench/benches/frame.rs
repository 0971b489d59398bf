//! Cost of the frame layer on the request path (PROTOCOL.md §2–§5): what a client pays to
//! encode a `PlaceOrder` into a frame plus what the node's front door pays to check and
//! validate it, and what a node pays to encode a reply frame.
//!
//! Run: `cargo bench -p quorder-bench --bench frame`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use quorder_proto::codec::{access_operation, encode_operation, encode_reply};
use quorder_proto::frame::{decode_frame, write_frame};
use quorder_proto::validate::validate_operation;
use quorder_proto::{
    FrameKind, Operation, Order, OrderLine, OrderLineRecord, OrderStatus, Payment, PlaceOrder,
    Reply,
};
use std::hint::black_box;

const ORDER_ID: u128 = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;

fn place_order(line_count: u64) -> Operation {
    Operation::PlaceOrder(PlaceOrder {
        order_id: ORDER_ID,
        customer: 42,
        lines: (0..line_count)
            .map(|index| OrderLine {
                sku: 1000 + index,
                quantity: 1 + index % 3,
            })
            .collect(),
        payment: Payment::Card {
            token: "tok_visa_4242".into(),
        },
    })
}

fn committed_order(line_count: u64) -> Reply {
    let lines: Vec<OrderLineRecord> = (0..line_count)
        .map(|index| OrderLineRecord {
            sku: 1000 + index,
            quantity: 1 + index % 3,
            unit_price_cents: 1999,
        })
        .collect();
    let total_cents = lines
        .iter()
        .map(|line| line.quantity * line.unit_price_cents)
        .sum();
    Reply::Order(Order {
        order_id: ORDER_ID,
        customer: 42,
        lines,
        total_cents,
        status: OrderStatus::Committed,
        reason: None,
        version: 1,
        created_ms: 1_767_225_600_000,
        updated_ms: 1_767_225_600_000,
    })
}

/// Client encode + node check, one frame per iteration, into a reused wire buffer.
fn frame_encode_and_validate(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("frame encode + validate");
    for line_count in [1u64, 16] {
        let operation = place_order(line_count);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(
            BenchmarkId::new("place_order_lines", line_count),
            &operation,
            |bencher, operation| {
                let mut wire = Vec::with_capacity(4096);
                bencher.iter(|| {
                    wire.clear();
                    let body = encode_operation(black_box(operation)).expect("encode");
                    write_frame(&mut wire, FrameKind::Request, 1, &body);
                    let (frame, _) = decode_frame(black_box(&wire)).expect("decode");
                    let archived = access_operation(&frame.body).expect("valid archive");
                    validate_operation(archived).expect("valid ranges");
                    frame.header.request_id
                })
            },
        );
    }
    group.finish();
}

/// The node's side alone: header and body checks, archive validation, range checks.
fn frame_validate_only(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("frame validate");
    for line_count in [1u64, 16] {
        let body = encode_operation(&place_order(line_count)).expect("encode");
        let mut wire = Vec::new();
        write_frame(&mut wire, FrameKind::Request, 1, &body);
        group.bench_with_input(
            BenchmarkId::new("place_order_lines", line_count),
            &wire,
            |bencher, wire| {
                bencher.iter(|| {
                    let (frame, _) = decode_frame(black_box(wire)).expect("decode");
                    let archived = access_operation(&frame.body).expect("valid archive");
                    validate_operation(archived).expect("valid ranges");
                    frame.body.len()
                })
            },
        );
    }
    group.finish();
}

/// Node encodes the `Order` reply into a frame.
fn reply_encode(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("reply encode");
    for line_count in [1u64, 16] {
        let reply = committed_order(line_count);
        group.bench_with_input(
            BenchmarkId::new("order_lines", line_count),
            &reply,
            |bencher, reply| {
                let mut wire = Vec::with_capacity(4096);
                bencher.iter(|| {
                    wire.clear();
                    let body = encode_reply(black_box(reply)).expect("encode");
                    write_frame(&mut wire, FrameKind::Reply, 1, &body);
                    wire.len()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(
    frame,
    frame_encode_and_validate,
    frame_validate_only,
    reply_encode
);
criterion_main!(frame);
