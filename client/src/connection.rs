//! One pipelined TCP connection to one node (DESIGN.md §6).
//!
//! Many requests may be in flight; each carries a request id in its frame header and the
//! node echoes it in the reply, in whatever order replies complete. A reader thread owned
//! by the connection reads every frame, checks header CRC, body CRC and the rkyv archive
//! (through `quorder_proto::codec`) before touching it, and completes the pending request
//! with the same id by running its callback.
//!
//! Guarantees:
//! - `submit` returning `Ok(id)` means the callback runs exactly once: with the reply, or
//!   with an error when the connection dies. `submit` returning `Err` means the callback
//!   is dropped without running and the request was not applied (nothing, or only a
//!   partial frame that no node decodes, reached the socket).
//! - On connection loss every pending callback is completed with an error; none is left
//!   hanging. Dropping the `Connection` closes the socket and joins the reader thread.
//! - The in-flight bound (`CONNECTION_IN_FLIGHT_MAX`) is enforced without blocking:
//!   `submit` returns `ClientError::Overloaded` when it is reached. An open-loop load
//!   generator wants to count that, not to stall; a caller that prefers to wait can back
//!   off and retry (`is_retryable` is true).
//!
//! Callbacks run on the reader thread: they must be short and must not block on another
//! reply of the same connection (that reply can only be read after the callback returns).
//! They may call `submit` on the same connection. A callback that panics kills the reader
//! thread; every other pending request is then completed with `ConnectionClosed`.

use crate::error::ClientError;
use crate::limits::{IN_FLIGHT_MAX, WRITE_STALL_MS_MAX};
use quorder_proto::codec;
use quorder_proto::frame::{write_frame, Header};
use quorder_proto::limits::{BATCH_OPERATIONS_MAX, FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES};
use quorder_proto::message::{Batch, Operation, Reply};
use quorder_proto::status::{ClusterStatus, StatusRequest};
use quorder_proto::{ErrorReply, FrameError, FrameKind};
use rkyv::util::AlignedVec;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

type SingleCallback = Box<dyn FnOnce(Result<Reply, ClientError>) + Send>;
type BatchCallback = Box<dyn FnOnce(Result<Vec<Reply>, ClientError>) + Send>;
type StatusCallback = Box<dyn FnOnce(Result<ClusterStatus, ClientError>) + Send>;

/// A request waiting for its reply.
enum Pending {
    Single(SingleCallback),
    Batch {
        operation_count: usize,
        callback: BatchCallback,
    },
    Status(StatusCallback),
}

impl Pending {
    fn fail(self, error: ClientError) {
        match self {
            Pending::Single(callback) => callback(Err(error)),
            Pending::Batch { callback, .. } => callback(Err(error)),
            Pending::Status(callback) => callback(Err(error)),
        }
    }
}

/// Why a connection closed; the first cause recorded wins.
#[derive(Debug, Clone)]
enum CloseCause {
    /// The `Connection` was dropped.
    Dropped,
    /// The node closed the socket at a frame boundary.
    PeerClosed,
    /// A read or write failed.
    Io(io::ErrorKind, String),
    /// A frame failed its checks; the stream cannot be trusted past it.
    Frame(FrameError),
    /// The node sent a connection-level error reply (request id 0), then closes.
    Server(ErrorReply),
    /// The node broke the protocol in a way the frame checks do not name.
    Protocol(String),
}

impl CloseCause {
    fn from_io(error: &io::Error) -> CloseCause {
        if error.kind() == io::ErrorKind::UnexpectedEof {
            // End of stream inside a frame: the node went away mid-reply.
            return CloseCause::PeerClosed;
        }
        CloseCause::Io(error.kind(), error.to_string())
    }

    /// The error every request pending at close time completes with.
    fn to_error(&self) -> ClientError {
        match self {
            CloseCause::Dropped | CloseCause::PeerClosed => ClientError::ConnectionClosed,
            CloseCause::Io(kind, text) => ClientError::Io(io::Error::new(*kind, text.clone())),
            CloseCause::Frame(error) => ClientError::Frame(error.clone()),
            CloseCause::Server(reply) => ClientError::Server(reply.clone()),
            CloseCause::Protocol(text) => ClientError::Unexpected(text.clone()),
        }
    }

    fn describe(&self) -> String {
        match self {
            CloseCause::Dropped => "closed by this client".to_string(),
            CloseCause::PeerClosed => "closed by the node".to_string(),
            other => other.to_error().to_string(),
        }
    }
}

struct State {
    pending: HashMap<u64, Pending>,
    /// Next request id; ids start at 1 because 0 means "unknown request" in a reply.
    next_request_id: u64,
    closed: Option<CloseCause>,
}

/// State shared by the submitting threads and the reader thread.
struct Shared {
    state: Mutex<State>,
    /// A handle on the socket used only to shut it down.
    socket: TcpStream,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Callbacks never run under these locks, so a poisoned lock means a panic inside a
    // few lines of bookkeeping; the data is still consistent enough to fail requests.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn register(&self, pending: Pending) -> Result<u64, ClientError> {
        let mut state = lock(&self.state);
        if let Some(cause) = &state.closed {
            return Err(cause.to_error());
        }
        if state.pending.len() >= IN_FLIGHT_MAX {
            return Err(ClientError::Overloaded);
        }
        let request_id = state.next_request_id;
        state.next_request_id = state.next_request_id.wrapping_add(1).max(1);
        let previous = state.pending.insert(request_id, pending);
        assert!(
            previous.is_none(),
            "request id {request_id} reused while in flight"
        );
        Ok(request_id)
    }

    fn take(&self, request_id: u64) -> Option<Pending> {
        lock(&self.state).pending.remove(&request_id)
    }

    /// Records the cause (if first) and shuts the socket down, which wakes the reader.
    fn close(&self, cause: CloseCause) {
        let mut state = lock(&self.state);
        if state.closed.is_none() {
            state.closed = Some(cause);
        }
        drop(state);
        // Already shut down or disconnected is fine: the goal is only a closed socket.
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// Closes and completes every pending request with the close error, outside the lock.
    fn fail_all(&self, cause: CloseCause) {
        let mut state = lock(&self.state);
        let cause = state.closed.get_or_insert(cause).clone();
        let pending: Vec<Pending> = state.pending.drain().map(|(_, pending)| pending).collect();
        drop(state);
        let _ = self.socket.shutdown(Shutdown::Both);
        for request in pending {
            request.fail(cause.to_error());
        }
    }
}

/// Completes every pending request when the reader thread ends, even by a panic.
struct ReaderExit<'a> {
    shared: &'a Shared,
    cause: CloseCause,
}

impl Drop for ReaderExit<'_> {
    fn drop(&mut self) {
        self.shared.fail_all(self.cause.clone());
    }
}

/// One pipelined connection to one node. `Send + Sync`: share it across threads in an
/// `Arc`; submissions from many threads are serialized on the socket one frame at a time.
pub struct Connection {
    shared: Arc<Shared>,
    writer: Mutex<TcpStream>,
    peer: String,
    reader: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Connection")
            .field("peer", &self.peer)
            .field("in_flight", &self.in_flight())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` (`host:port`; every resolved address is tried in turn, each with
    /// `timeout`), sets TCP_NODELAY and starts the reader thread.
    pub fn connect(addr: &str, timeout: Duration) -> Result<Connection, ClientError> {
        let stream = connect_stream(addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(Some(Duration::from_millis(WRITE_STALL_MS_MAX)))?;
        let read_half = stream.try_clone()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                pending: HashMap::new(),
                next_request_id: 1,
                closed: None,
            }),
            socket: stream.try_clone()?,
        });
        let reader_shared = Arc::clone(&shared);
        let reader = thread::Builder::new()
            .name("quorder-client-reader".to_string())
            .spawn(move || run_reader(&reader_shared, read_half))?;
        Ok(Connection {
            shared,
            writer: Mutex::new(stream),
            peer: addr.to_string(),
            reader: Some(reader),
        })
    }

    /// The address this connection was opened to, as given to `connect`.
    pub fn peer_address(&self) -> &str {
        &self.peer
    }

    /// Sends one operation in a `Request` frame; `on_reply` runs on the reader thread with
    /// the reply (a `Reply::Error` is passed as `Ok`, the caller decides) or an error.
    /// Returns the request id. See the module docs for the exactly-once guarantee.
    pub fn submit(
        &self,
        operation: &Operation,
        on_reply: impl FnOnce(Result<Reply, ClientError>) + Send + 'static,
    ) -> Result<u64, ClientError> {
        let body = codec::encode_operation(operation)
            .map_err(|error| ClientError::InvalidRequest(error.to_string()))?;
        self.send(
            FrameKind::Request,
            &body,
            Pending::Single(Box::new(on_reply)),
        )
    }

    /// Sends `1..=BATCH_OPERATIONS_MAX` operations in one `BatchRequest` frame;
    /// `on_reply` gets one reply per operation, in order. A node that refuses the whole
    /// batch with one error reply completes it with `Err(ClientError::Server(..))`.
    pub fn submit_batch(
        &self,
        operations: &[Operation],
        on_reply: impl FnOnce(Result<Vec<Reply>, ClientError>) + Send + 'static,
    ) -> Result<u64, ClientError> {
        if operations.is_empty() || operations.len() > BATCH_OPERATIONS_MAX {
            return Err(ClientError::InvalidRequest(format!(
                "a batch holds 1..={BATCH_OPERATIONS_MAX} operations, got {}",
                operations.len()
            )));
        }
        let batch = Batch {
            operations: operations.to_vec(),
        };
        let body = codec::encode_batch(&batch)
            .map_err(|error| ClientError::InvalidRequest(error.to_string()))?;
        let pending = Pending::Batch {
            operation_count: operations.len(),
            callback: Box::new(on_reply),
        };
        self.send(FrameKind::BatchRequest, &body, pending)
    }

    /// Asks the node for the cluster's status (with `include_peers`, it asks its peers
    /// too) and waits up to `timeout`.
    pub fn status(
        &self,
        include_peers: bool,
        timeout: Duration,
    ) -> Result<ClusterStatus, ClientError> {
        let body = codec::encode_status_request(&StatusRequest { include_peers })
            .map_err(|error| ClientError::InvalidRequest(error.to_string()))?;
        let (sender, receiver) = mpsc::sync_channel(1);
        let pending = Pending::Status(Box::new(move |result| {
            let _ = sender.send(result);
        }));
        let request_id = self.send(FrameKind::StatusRequest, &body, pending)?;
        self.wait(request_id, &receiver, timeout)
    }

    /// Sends one operation and waits up to `timeout` for its reply. On timeout the
    /// request is abandoned (its in-flight slot freed); it may still be applied.
    pub fn call(&self, operation: &Operation, timeout: Duration) -> Result<Reply, ClientError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let request_id = self.submit(operation, move |result| {
            // The waiter may have given up; then nobody needs the result.
            let _ = sender.send(result);
        })?;
        self.wait(request_id, &receiver, timeout)
    }

    /// Sends a batch and waits up to `timeout` for its replies (see `call`).
    pub fn call_batch(
        &self,
        operations: &[Operation],
        timeout: Duration,
    ) -> Result<Vec<Reply>, ClientError> {
        let (sender, receiver) = mpsc::sync_channel(1);
        let request_id = self.submit_batch(operations, move |result| {
            let _ = sender.send(result);
        })?;
        self.wait(request_id, &receiver, timeout)
    }

    /// Forgets a pending request: its callback is dropped without running and its
    /// in-flight slot is freed; a late reply is ignored. Returns false if the request is
    /// not pending (already completed, or its callback is running now).
    pub fn abandon(&self, request_id: u64) -> bool {
        self.shared.take(request_id).is_some()
    }

    /// Requests sent and not yet completed.
    pub fn in_flight(&self) -> usize {
        lock(&self.shared.state).pending.len()
    }

    /// Whether the connection is closed: every later `submit` fails.
    pub fn is_closed(&self) -> bool {
        lock(&self.shared.state).closed.is_some()
    }

    /// Why the connection closed, in words, if it has.
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.shared.state)
            .closed
            .as_ref()
            .map(CloseCause::describe)
    }

    pub(crate) fn wait<T>(
        &self,
        request_id: u64,
        receiver: &mpsc::Receiver<Result<T, ClientError>>,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        match receiver.recv_timeout(timeout) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if self.abandon(request_id) {
                    return Err(ClientError::Timeout);
                }
                // The reader took the callback just now and is about to run it.
                receiver
                    .recv()
                    .unwrap_or(Err(ClientError::ConnectionClosed))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(ClientError::ConnectionClosed),
        }
    }

    fn send(&self, kind: FrameKind, body: &[u8], pending: Pending) -> Result<u64, ClientError> {
        if body.len() > FRAME_BODY_BYTES_MAX {
            return Err(ClientError::InvalidRequest(format!(
                "encoded request of {} bytes exceeds the frame limit of {FRAME_BODY_BYTES_MAX}",
                body.len()
            )));
        }
        // Registered before writing: the reply may arrive before `write_all` returns.
        let request_id = self.shared.register(pending)?;
        let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
        write_frame(&mut frame, kind, request_id, body);
        let written = lock(&self.writer).write_all(&frame);
        if let Err(error) = written {
            // A partial frame may be on the socket: the stream is unusable from here on.
            let ours = self.shared.take(request_id);
            self.shared.close(CloseCause::from_io(&error));
            if ours.is_some() {
                return Err(ClientError::Io(error));
            }
            // The reader already completed our callback (with an error, or a reply).
        }
        Ok(request_id)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shared.close(CloseCause::Dropped);
        if let Some(reader) = self.reader.take() {
            // A callback may own the last handle on this connection; the reader thread
            // cannot join itself, and it exits on its own once the socket is shut down.
            if reader.thread().id() != thread::current().id() {
                // An error here is a callback's panic, already reported by the panic hook.
                let _ = reader.join();
            }
        }
    }
}

fn connect_stream(addr: &str, timeout: Duration) -> Result<TcpStream, ClientError> {
    let mut last_error = None;
    for socket_address in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket_address, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = Some(error),
        }
    }
    Err(ClientError::Io(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "address resolved to nothing")
    })))
}

fn run_reader(shared: &Shared, mut stream: TcpStream) {
    let mut exit = ReaderExit {
        shared,
        cause: CloseCause::PeerClosed,
    };
    exit.cause = read_replies(shared, &mut stream);
    // `exit` drops here and completes every pending request.
}

/// Reads frames until the stream ends or breaks; returns why.
fn read_replies(shared: &Shared, stream: &mut TcpStream) -> CloseCause {
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    loop {
        match read_header(stream, &mut header_bytes) {
            Ok(true) => {}
            Ok(false) => return CloseCause::PeerClosed,
            Err(error) => return CloseCause::from_io(&error),
        }
        let header = match Header::decode(&header_bytes) {
            Ok(header) => header,
            Err(error) => return CloseCause::Frame(error),
        };
        if !matches!(
            header.kind,
            FrameKind::Reply | FrameKind::BatchReply | FrameKind::StatusReply
        ) {
            return CloseCause::Frame(FrameError::UnexpectedKind { kind: header.kind });
        }
        // The length was bounded by `Header::decode` (FRAME_BODY_BYTES_MAX).
        let mut body = AlignedVec::<16>::with_capacity(header.body_length as usize);
        body.resize(header.body_length as usize, 0);
        if let Err(error) = stream.read_exact(body.as_mut_slice()) {
            return CloseCause::from_io(&error);
        }
        if let Err(error) = header.check_body(&body) {
            return CloseCause::Frame(error);
        }
        if header.request_id == 0 {
            return connection_level_reply(header.kind, &body);
        }
        // Unknown ids are replies to abandoned (timed-out) requests.
        if let Some(pending) = shared.take(header.request_id) {
            complete(pending, header.kind, &body);
        }
    }
}

/// Reads a whole header. `Ok(false)` on a clean end of stream before its first byte.
fn read_header(stream: &mut TcpStream, header: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < header.len() {
        match stream.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(count) => filled += count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(true)
}

/// A reply with request id 0 answers no request: the node refused something it could not
/// attribute (a frame whose header it could not trust) and is closing the connection.
fn connection_level_reply(kind: FrameKind, body: &[u8]) -> CloseCause {
    if kind == FrameKind::Reply {
        if let Ok(Reply::Error(reply)) = codec::decode_reply(body) {
            return CloseCause::Server(reply);
        }
    }
    CloseCause::Protocol(format!("{kind:?} frame with request id 0"))
}

fn complete(pending: Pending, kind: FrameKind, body: &[u8]) {
    match pending {
        Pending::Single(callback) => callback(single_result(kind, body)),
        Pending::Batch {
            operation_count,
            callback,
        } => callback(batch_result(kind, body, operation_count)),
        Pending::Status(callback) => callback(status_result(kind, body)),
    }
}

fn status_result(kind: FrameKind, body: &[u8]) -> Result<ClusterStatus, ClientError> {
    match kind {
        FrameKind::StatusReply => Ok(codec::decode_cluster_status(body)?),
        FrameKind::Reply => match codec::decode_reply(body)? {
            Reply::Error(reply) => Err(ClientError::Server(reply)),
            other => Err(ClientError::Unexpected(format!(
                "reply {other:?} to a status request"
            ))),
        },
        _ => Err(ClientError::Unexpected(format!(
            "{kind:?} frame in answer to a status request"
        ))),
    }
}

fn single_result(kind: FrameKind, body: &[u8]) -> Result<Reply, ClientError> {
    match kind {
        FrameKind::Reply => Ok(codec::decode_reply(body)?),
        _ => Err(ClientError::Unexpected(format!(
            "{kind:?} frame in answer to a single request"
        ))),
    }
}

fn batch_result(
    kind: FrameKind,
    body: &[u8],
    operation_count: usize,
) -> Result<Vec<Reply>, ClientError> {
    match kind {
        FrameKind::BatchReply => {
            let replies = codec::decode_batch_reply(body)?.replies;
            if replies.len() != operation_count {
                return Err(ClientError::Unexpected(format!(
                    "batch of {operation_count} operations answered with {} replies",
                    replies.len()
                )));
            }
            Ok(replies)
        }
        FrameKind::Reply => match codec::decode_reply(body)? {
            Reply::Error(reply) => Err(ClientError::Server(reply)),
            other => Err(ClientError::Unexpected(format!(
                "single reply {other:?} in answer to a batch"
            ))),
        },
        _ => Err(ClientError::Unexpected(format!(
            "{kind:?} frame in answer to a batch"
        ))),
    }
}

#[cfg(test)]
mod tests;
