//! A fake node for tests: a std TCP listener speaking the real framing
//! (`quorder_proto::frame`, `quorder_proto::codec`), answering each operation through a
//! handler chosen by the test. [`FakeStore`] is a handler with simple single-node item
//! and order semantics, enough to exercise the CLI and the typed helpers of `Client`.
//!
//! This is not the daemon: no replication, no shards, no persistence. It exists so that
//! the client, the load generator and their tests can run before and without a cluster.
//! It trusts nothing it reads (every frame is checked) but answers a broken frame by
//! closing the connection, without the daemon's error reply.

use quorder_proto::codec;
use quorder_proto::frame::{write_frame, Header};
use quorder_proto::limits::FRAME_HEADER_BYTES;
use quorder_proto::message::{
    Batch, BatchReply, ErrorReply, Item, Operation, Order, OrderLineRecord, OrderStatus, Payment,
    PlaceOrder, PutItem, RejectReason, Reply,
};
use quorder_proto::FrameKind;
use rkyv::rancor;
use rkyv::util::AlignedVec;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

/// What the fake node does with one received operation.
#[derive(Debug, Clone)]
pub enum Action {
    /// Answer with this reply.
    Reply(Reply),
    /// Never answer (the request stays in flight until the client gives up).
    NoReply,
    /// Close the connection without answering (a crash mid-request).
    Close,
}

/// A request frame as the fake node decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A `Request` frame.
    Single {
        /// The frame's request id.
        request_id: u64,
        /// Its operation.
        operation: Operation,
    },
    /// A `BatchRequest` frame.
    Batch {
        /// The frame's request id.
        request_id: u64,
        /// Its operations.
        operations: Vec<Operation>,
    },
}

fn invalid_data(error: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error.to_string())
}

/// Reads and checks one request frame. `Ok(None)` on a clean end of stream.
pub fn read_request(stream: &mut impl Read) -> io::Result<Option<Request>> {
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    match stream.read_exact(&mut header_bytes) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let header = Header::decode(&header_bytes).map_err(invalid_data)?;
    let mut body = AlignedVec::<16>::with_capacity(header.body_length as usize);
    body.resize(header.body_length as usize, 0);
    stream.read_exact(body.as_mut_slice())?;
    header.check_body(&body).map_err(invalid_data)?;
    let request_id = header.request_id;
    match header.kind {
        FrameKind::Request => {
            let archived = codec::access_operation(&body).map_err(invalid_data)?;
            let operation = codec::to_operation(archived).map_err(invalid_data)?;
            Ok(Some(Request::Single {
                request_id,
                operation,
            }))
        }
        FrameKind::BatchRequest => {
            let archived = codec::access_batch(&body).map_err(invalid_data)?;
            let batch =
                rkyv::deserialize::<Batch, rancor::Error>(archived).map_err(invalid_data)?;
            Ok(Some(Request::Batch {
                request_id,
                operations: batch.operations,
            }))
        }
        other => Err(invalid_data(format!("{other:?} frame sent to a node"))),
    }
}

/// Writes one `Reply` frame.
pub fn write_reply(stream: &mut impl Write, request_id: u64, reply: &Reply) -> io::Result<()> {
    let body = codec::encode_reply(reply).map_err(invalid_data)?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    write_frame(&mut frame, FrameKind::Reply, request_id, &body);
    stream.write_all(&frame)
}

/// Writes one `BatchReply` frame.
pub fn write_batch_reply(
    stream: &mut impl Write,
    request_id: u64,
    replies: Vec<Reply>,
) -> io::Result<()> {
    let body = codec::encode_batch_reply(&BatchReply { replies }).map_err(invalid_data)?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    write_frame(&mut frame, FrameKind::BatchReply, request_id, &body);
    stream.write_all(&frame)
}

type Handler = dyn Fn(&Operation) -> Action + Send + Sync;

/// A fake node listening on 127.0.0.1 (an ephemeral port). Each connection is served by
/// its own thread, one frame at a time. Dropping it stops the listener and closes every
/// connection.
pub struct FakeNode {
    address: String,
    stopping: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<TcpStream>>>,
    requests_received: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeNode {
    /// Starts a node that answers every operation through `handler`.
    pub fn start(
        handler: impl Fn(&Operation) -> Action + Send + Sync + 'static,
    ) -> io::Result<FakeNode> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?.to_string();
        let stopping = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let requests_received = Arc::new(AtomicUsize::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        let acceptor = {
            let stopping = Arc::clone(&stopping);
            let connections = Arc::clone(&connections);
            let requests_received = Arc::clone(&requests_received);
            thread::Builder::new()
                .name("fake-node-accept".to_string())
                .spawn(move || {
                    accept_loop(
                        &listener,
                        &stopping,
                        &connections,
                        &requests_received,
                        &handler,
                    )
                })?
        };
        Ok(FakeNode {
            address,
            stopping,
            connections,
            requests_received,
            acceptor: Some(acceptor),
        })
    }

    /// Starts a node backed by a [`FakeStore`] of `shard_count` shards.
    pub fn start_store(shard_count: u32) -> io::Result<FakeNode> {
        let store = Mutex::new(FakeStore::new(shard_count));
        FakeNode::start(move |operation| {
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            Action::Reply(store.apply(operation))
        })
    }

    /// `127.0.0.1:PORT` of the listener.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Operations received so far (a batch counts each of its operations).
    pub fn requests_received(&self) -> usize {
        self.requests_received.load(Ordering::SeqCst)
    }

    /// Closes every open connection (the listener stays up), as a crash-restart would.
    pub fn disconnect_all(&self) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for connection in connections.drain(..) {
            let _ = connection.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept; a failure means the listener is already gone.
        let _ = TcpStream::connect(&self.address);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        self.disconnect_all();
    }
}

fn accept_loop(
    listener: &TcpListener,
    stopping: &AtomicBool,
    connections: &Mutex<Vec<TcpStream>>,
    requests_received: &Arc<AtomicUsize>,
    handler: &Arc<Handler>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
        let handler = Arc::clone(handler);
        let requests_received = Arc::clone(requests_received);
        let spawned = thread::Builder::new()
            .name("fake-node-conn".to_string())
            .spawn(move || serve(stream, &*handler, &requests_received));
        // Without a thread the connection is simply never answered; tests will notice.
        drop(spawned);
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, requests_received: &AtomicUsize) {
    let _ = stream.set_nodelay(true);
    while let Ok(Some(request)) = read_request(&mut stream) {
        let written = match request {
            Request::Single {
                request_id,
                operation,
            } => {
                requests_received.fetch_add(1, Ordering::SeqCst);
                match handler(&operation) {
                    Action::Reply(reply) => write_reply(&mut stream, request_id, &reply),
                    Action::NoReply => Ok(()),
                    Action::Close => break,
                }
            }
            Request::Batch {
                request_id,
                operations,
            } => {
                requests_received.fetch_add(operations.len(), Ordering::SeqCst);
                let mut replies = Vec::with_capacity(operations.len());
                let mut answer = true;
                for operation in &operations {
                    match handler(operation) {
                        Action::Reply(reply) => replies.push(reply),
                        Action::NoReply => answer = false,
                        Action::Close => return close(&stream),
                    }
                }
                if answer {
                    write_batch_reply(&mut stream, request_id, replies)
                } else {
                    Ok(())
                }
            }
        };
        if written.is_err() {
            break;
        }
    }
    close(&stream);
}

fn close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

/// Single-node item and order semantics, deterministic, for tests. Orders are
/// idempotent by id, applied all-or-nothing; a card token `"decline"` is declined.
#[derive(Debug, Clone, Default)]
pub struct FakeStore {
    shard_count: u32,
    items: BTreeMap<u64, Item>,
    orders: BTreeMap<u128, Order>,
    /// Logical clock for the order timestamps, so results are reproducible.
    clock_ms: u64,
}

impl FakeStore {
    /// An empty store that reports `shard_count` shards in `Pong`.
    pub fn new(shard_count: u32) -> FakeStore {
        FakeStore {
            shard_count,
            ..FakeStore::default()
        }
    }

    /// Applies one operation and returns its reply.
    pub fn apply(&mut self, operation: &Operation) -> Reply {
        self.clock_ms += 1;
        match operation {
            Operation::Ping { nonce } => Reply::Pong {
                nonce: *nonce,
                shard_count: self.shard_count,
            },
            Operation::PutItem(put) => self.put_item(put),
            Operation::GetItem { sku } => self
                .items
                .get(sku)
                .map_or(Reply::Error(ErrorReply::NotFound), |item| {
                    Reply::Item(*item)
                }),
            Operation::Restock { sku, quantity } => self.restock(*sku, *quantity),
            Operation::PlaceOrder(order) => self.place_order(order),
            Operation::GetOrder { order_id } => self
                .orders
                .get(order_id)
                .map_or(Reply::Error(ErrorReply::NotFound), |order| {
                    Reply::Order(order.clone())
                }),
            Operation::CancelOrder {
                order_id,
                expected_version,
            } => self.cancel_order(*order_id, *expected_version),
        }
    }

    fn put_item(&mut self, put: &PutItem) -> Reply {
        let item = self.items.entry(put.sku).or_insert(Item {
            sku: put.sku,
            ..Item::default()
        });
        if let Some(expected) = put.expected_version {
            if expected != item.version {
                return Reply::Error(ErrorReply::VersionConflict {
                    current: item.version,
                });
            }
        }
        item.available = put.available;
        item.price_cents = put.price_cents;
        item.version += 1;
        Reply::Item(*item)
    }

    fn restock(&mut self, sku: u64, quantity: u64) -> Reply {
        if quantity == 0 {
            return Reply::Error(ErrorReply::Invalid {
                field: "quantity".to_string(),
                reason: "must be in 1..=1000000".to_string(),
            });
        }
        match self.items.get_mut(&sku) {
            None => Reply::Error(ErrorReply::NotFound),
            Some(item) => {
                item.available = item.available.saturating_add(quantity);
                item.version += 1;
                Reply::Item(*item)
            }
        }
    }

    fn place_order(&mut self, request: &PlaceOrder) -> Reply {
        if let Some(existing) = self.orders.get(&request.order_id) {
            return Reply::Order(existing.clone());
        }
        let duplicate_sku = request.lines.iter().enumerate().any(|(position, line)| {
            request.lines[..position]
                .iter()
                .any(|earlier| earlier.sku == line.sku)
        });
        if request.order_id == 0 || request.lines.is_empty() || duplicate_sku {
            return Reply::Error(ErrorReply::Invalid {
                field: "lines".to_string(),
                reason: "need a non-zero id and at least one line, each SKU once".to_string(),
            });
        }
        let mut order = Order {
            order_id: request.order_id,
            customer: request.customer,
            lines: Vec::new(),
            total_cents: 0,
            status: OrderStatus::Committed,
            reason: self.reject_reason(request),
            version: 1,
            created_ms: self.clock_ms,
            updated_ms: self.clock_ms,
        };
        if order.reason.is_some() {
            order.status = OrderStatus::Rejected;
        } else {
            for line in &request.lines {
                if let Some(item) = self.items.get_mut(&line.sku) {
                    item.available -= line.quantity;
                    item.sold += line.quantity;
                    item.version += 1;
                    order.lines.push(OrderLineRecord {
                        sku: line.sku,
                        quantity: line.quantity,
                        unit_price_cents: item.price_cents,
                    });
                    order.total_cents = order
                        .total_cents
                        .saturating_add(line.quantity.saturating_mul(item.price_cents));
                }
            }
        }
        self.orders.insert(order.order_id, order.clone());
        Reply::Order(order)
    }

    fn reject_reason(&self, request: &PlaceOrder) -> Option<RejectReason> {
        for line in &request.lines {
            match self.items.get(&line.sku) {
                None => return Some(RejectReason::UnknownSku { sku: line.sku }),
                Some(item) if item.available < line.quantity => {
                    return Some(RejectReason::InsufficientStock {
                        sku: line.sku,
                        available: item.available,
                    })
                }
                Some(_) => {}
            }
        }
        match &request.payment {
            Payment::Card { token } if token == "decline" => Some(RejectReason::PaymentDeclined {
                reason: "card declined by issuer".to_string(),
            }),
            _ => None,
        }
    }

    fn cancel_order(&mut self, order_id: u128, expected_version: Option<u64>) -> Reply {
        let Some(order) = self.orders.get_mut(&order_id) else {
            return Reply::Error(ErrorReply::NotFound);
        };
        if let Some(expected) = expected_version {
            if expected != order.version {
                return Reply::Error(ErrorReply::VersionConflict {
                    current: order.version,
                });
            }
        }
        if order.status != OrderStatus::Committed {
            return Reply::Error(ErrorReply::InvalidState {
                reason: format!("order is {}", order.status.name()),
            });
        }
        for line in &order.lines {
            if let Some(item) = self.items.get_mut(&line.sku) {
                item.sold -= line.quantity;
                item.available += line.quantity;
                item.version += 1;
            }
        }
        order.status = OrderStatus::Cancelled;
        order.version += 1;
        order.updated_ms = self.clock_ms;
        Reply::Order(order.clone())
    }
}
