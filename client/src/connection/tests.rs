//! Request-id matching, connection loss, timeouts, batches and bounds, against fake nodes.

use super::*;
use crate::testing::{read_request, write_reply, Action, FakeNode, Request};
use quorder_proto::message::{Operation, PutItem, Reply};
use std::net::TcpListener;
use std::sync::mpsc::Receiver;
use std::time::Instant;

const WAIT: Duration = Duration::from_secs(5);

fn ping(nonce: u64) -> Operation {
    Operation::Ping { nonce }
}

fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        thread::sleep(Duration::from_millis(2));
    }
}

/// Submits pings with nonces `nonces`; each result arrives on the receiver tagged with
/// the nonce it was sent with.
fn submit_pings(
    connection: &Connection,
    nonces: impl IntoIterator<Item = u64>,
) -> Receiver<(u64, Result<Reply, ClientError>)> {
    let (sender, receiver) = mpsc::channel();
    for nonce in nonces {
        let sender = sender.clone();
        connection
            .submit(&ping(nonce), move |result| {
                let _ = sender.send((nonce, result));
            })
            .expect("submit");
    }
    receiver
}

#[test]
fn out_of_order_replies_complete_the_matching_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut received = Vec::new();
        for _ in 0..8 {
            match read_request(&mut stream).expect("read") {
                Some(Request::Single {
                    request_id,
                    operation: Operation::Ping { nonce },
                }) => received.push((request_id, nonce)),
                other => panic!("unexpected request {other:?}"),
            }
        }
        // Answer last first, and the rest interleaved.
        received.reverse();
        received.sort_by_key(|(request_id, _)| request_id % 3);
        for (request_id, nonce) in received {
            let pong = Reply::Pong {
                nonce,
                shard_count: 8,
            };
            write_reply(&mut stream, request_id, &pong).expect("write");
        }
        stream
    });
    let connection = Connection::connect(&address, WAIT).expect("connect");
    let results = submit_pings(&connection, 100..108);
    for _ in 0..8 {
        let (sent, result) = results.recv_timeout(WAIT).expect("a reply");
        match result {
            Ok(Reply::Pong { nonce, .. }) => {
                assert_eq!(nonce, sent, "reply matched to wrong request")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(connection.in_flight(), 0);
    drop(server.join().expect("server"));
}

#[test]
fn connection_loss_completes_every_pending_request_with_an_error() {
    let node = FakeNode::start(|_| Action::NoReply).expect("node");
    let connection = Connection::connect(node.address(), WAIT).expect("connect");
    let results = submit_pings(&connection, 0..10);
    wait_until(|| node.requests_received() == 10);
    assert_eq!(connection.in_flight(), 10);
    node.disconnect_all();
    let mut failed = Vec::new();
    for _ in 0..10 {
        let (nonce, result) = results.recv_timeout(WAIT).expect("every callback runs");
        let error = result.expect_err("no reply was sent");
        assert!(error.is_retryable(), "{error} should be retryable");
        failed.push(nonce);
    }
    failed.sort_unstable();
    assert_eq!(failed, (0..10).collect::<Vec<_>>());
    assert!(
        results.recv_timeout(Duration::from_millis(50)).is_err(),
        "a callback ran twice"
    );
    assert_eq!(connection.in_flight(), 0);
    assert!(connection.is_closed());
    assert!(connection.close_reason().is_some());
    let refused = connection.submit(&ping(1), |_| panic!("callback of a refused submit ran"));
    assert!(matches!(refused, Err(ClientError::ConnectionClosed)));
}

#[test]
fn a_node_closing_mid_request_fails_that_request() {
    let node = FakeNode::start(|_| Action::Close).expect("node");
    let connection = Connection::connect(node.address(), WAIT).expect("connect");
    let result = connection.call(&ping(1), WAIT);
    assert!(
        matches!(result, Err(ClientError::ConnectionClosed)),
        "{result:?}"
    );
}

#[test]
fn dropping_the_connection_completes_pending_requests() {
    let node = FakeNode::start(|_| Action::NoReply).expect("node");
    let connection = Connection::connect(node.address(), WAIT).expect("connect");
    let results = submit_pings(&connection, 0..3);
    wait_until(|| node.requests_received() == 3);
    drop(connection);
    for _ in 0..3 {
        let (_, result) = results.recv_timeout(WAIT).expect("every callback runs");
        assert!(matches!(result, Err(ClientError::ConnectionClosed)));
    }
}

#[test]
fn call_times_out_and_frees_the_slot() {
    let node = FakeNode::start(|_| Action::NoReply).expect("node");
    let connection = Connection::connect(node.address(), WAIT).expect("connect");
    let started = Instant::now();
    let result = connection.call(&ping(1), Duration::from_millis(100));
    assert!(matches!(result, Err(ClientError::Timeout)), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert!(started.elapsed() < WAIT);
    assert_eq!(connection.in_flight(), 0);
    assert!(
        !connection.is_closed(),
        "a timeout does not close the connection"
    );
}

#[test]
fn replies_and_batches_round_trip_through_a_store() {
    let node = FakeNode::start_store(8).expect("node");
    let connection = Connection::connect(node.address(), WAIT).expect("connect");
    let pong = connection.call(&ping(42), WAIT).expect("pong");
    assert_eq!(
        pong,
        Reply::Pong {
            nonce: 42,
            shard_count: 8
        }
    );
    let put = Operation::PutItem(PutItem {
        sku: 5,
        available: 10,
        price_cents: 199,
        expected_version: None,
    });
    let replies = connection
        .call_batch(
            &[
                put,
                Operation::GetItem { sku: 5 },
                Operation::GetItem { sku: 6 },
            ],
            WAIT,
        )
        .expect("batch");
    assert_eq!(replies.len(), 3);
    assert!(matches!(&replies[0], Reply::Item(item) if item.version == 1));
    assert!(matches!(&replies[1], Reply::Item(item) if item.available == 10));
    assert_eq!(replies[2], Reply::Error(ErrorReply::NotFound));
}

#[test]
fn a_batch_refused_as_a_whole_is_a_server_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let Ok(Some(Request::Batch { request_id, .. })) = read_request(&mut stream) else {
            panic!("expected a batch");
        };
        write_reply(
            &mut stream,
            request_id,
            &Reply::Error(ErrorReply::Overloaded),
        )
        .expect("write");
        stream
    });
    let connection = Connection::connect(&address, WAIT).expect("connect");
    let result = connection.call_batch(&[ping(1), ping(2)], WAIT);
    assert!(
        matches!(result, Err(ClientError::Server(ErrorReply::Overloaded))),
        "{result:?}"
    );
    drop(server.join().expect("server"));
}

#[test]
fn batches_out_of_bounds_are_refused_locally() {
    let node = FakeNode::start_store(8).expect("node");
    let connection = Connection::connect(node.address(), WAIT).expect("connect");
    let empty = connection.call_batch(&[], WAIT);
    assert!(matches!(empty, Err(ClientError::InvalidRequest(_))));
    let too_many = vec![ping(1); BATCH_OPERATIONS_MAX + 1];
    let refused = connection.call_batch(&too_many, WAIT);
    assert!(matches!(refused, Err(ClientError::InvalidRequest(_))));
    assert_eq!(node.requests_received(), 0);
}

#[test]
fn the_in_flight_bound_refuses_without_sending() {
    let node = FakeNode::start(|_| Action::NoReply).expect("node");
    let connection = Connection::connect(node.address(), WAIT).expect("connect");
    let _results = submit_pings(&connection, 0..IN_FLIGHT_MAX as u64);
    assert_eq!(connection.in_flight(), IN_FLIGHT_MAX);
    let refused = connection.submit(&ping(0), |_| panic!("callback of a refused submit ran"));
    assert!(
        matches!(refused, Err(ClientError::Overloaded)),
        "{refused:?}"
    );
    assert!(refused.is_err_and(|error| error.is_retryable()));
    assert!(connection.abandon(1));
    assert!(!connection.abandon(1));
    connection
        .submit(&ping(0), |_| {})
        .expect("a slot was freed");
}

#[test]
fn a_corrupted_reply_closes_the_connection_with_a_frame_error() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let Ok(Some(Request::Single { request_id, .. })) = read_request(&mut stream) else {
            panic!("expected a request");
        };
        let mut frame = Vec::new();
        let pong = Reply::Pong {
            nonce: 1,
            shard_count: 8,
        };
        let mut body = quorder_proto::codec::encode_reply(&pong)
            .expect("encode")
            .to_vec();
        let header = Header::for_body(FrameKind::Reply, request_id, &body);
        body[0] ^= 0x40; // corrupted in transit, after the checksum was computed
        frame.extend_from_slice(&header.encode());
        frame.extend_from_slice(&body);
        stream.write_all(&frame).expect("write");
        stream
    });
    let connection = Connection::connect(&address, WAIT).expect("connect");
    let result = connection.call(&ping(1), WAIT);
    assert!(
        matches!(
            result,
            Err(ClientError::Frame(FrameError::BodyChecksumMismatch { .. }))
        ),
        "{result:?}"
    );
    assert!(connection.is_closed());
    drop(server.join().expect("server"));
}

#[test]
fn a_reply_of_the_wrong_shape_fails_only_its_request() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        for _ in 0..2 {
            let Ok(Some(request)) = read_request(&mut stream) else {
                panic!("expected a request");
            };
            match request {
                Request::Batch { request_id, .. } => {
                    // One reply for a batch of two.
                    crate::testing::write_batch_reply(
                        &mut stream,
                        request_id,
                        vec![Reply::Pong {
                            nonce: 1,
                            shard_count: 1,
                        }],
                    )
                    .expect("write");
                }
                Request::Single { request_id, .. } => {
                    let pong = Reply::Pong {
                        nonce: 3,
                        shard_count: 1,
                    };
                    write_reply(&mut stream, request_id, &pong).expect("write");
                }
            }
        }
        stream
    });
    let connection = Connection::connect(&address, WAIT).expect("connect");
    let batch = connection.call_batch(&[ping(1), ping(2)], WAIT);
    assert!(
        matches!(batch, Err(ClientError::Unexpected(_))),
        "{batch:?}"
    );
    let single = connection
        .call(&ping(3), WAIT)
        .expect("the connection still works");
    assert!(matches!(single, Reply::Pong { nonce: 3, .. }));
    drop(server.join().expect("server"));
}

#[test]
fn connecting_to_a_closed_port_is_an_io_error() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let result = Connection::connect(&format!("127.0.0.1:{port}"), WAIT);
    match result {
        Err(ClientError::Io(error)) => {
            assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused)
        }
        other => panic!("expected connection refused, got {other:?}"),
    }
}

#[test]
fn connections_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Connection>();
}

#[test]
fn a_callback_may_submit_on_its_own_connection() {
    let node = FakeNode::start_store(4).expect("node");
    let connection = Arc::new(Connection::connect(node.address(), WAIT).expect("connect"));
    let (sender, receiver) = mpsc::channel();
    let chained = Arc::clone(&connection);
    connection
        .submit(&ping(1), move |first| {
            assert!(first.is_ok());
            chained
                .submit(&ping(2), move |second| {
                    let _ = sender.send(second);
                })
                .expect("submit from the reader thread");
        })
        .expect("submit");
    let second = receiver
        .recv_timeout(WAIT)
        .expect("the chained request completes");
    assert!(
        matches!(second, Ok(Reply::Pong { nonce: 2, .. })),
        "{second:?}"
    );
}
