//! The outgoing side of a peer link: one task per (peer node, core) that dials the
//! peer's same-numbered core, greets it, and writes the frames queued for it, in order,
//! reconnecting with backoff when the connection drops.
//!
//! Queued frames carry the time they may leave: now, or now plus the simulated
//! inter-region delay (`[wan] delay_ms`), which is how tests and benchmarks give links
//! between regions a WAN's latency without kernel support. A frame that waited longer
//! than `PEER_FRAME_STALE_MS` (the peer was unreachable) is dropped instead of sent: the
//! protocols above re-send what still matters.

use crate::limits::{
    PEER_BACKOFF_MAX_MS, PEER_BACKOFF_MIN_MS, PEER_FRAME_STALE_MS, PEER_WRITE_BATCH_BYTES,
};
use futures_lite::io::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::LocalReceiver;
use glommio::net::TcpStream;
use quorder_proto::codec::{decode_peer_hello_reply, encode_peer_hello};
use quorder_proto::frame::{write_frame, FrameKind, Header};
use quorder_proto::limits::FRAME_HEADER_BYTES;
use quorder_proto::peer::{PeerHello, PeerHelloReply};
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A frame waiting to be written: the whole frame (header and body) and when it may go.
#[derive(Debug)]
pub struct QueuedFrame {
    /// Earliest time to write it.
    pub due: Instant,
    /// When it was queued.
    pub queued: Instant,
    /// Header and body.
    pub bytes: Vec<u8>,
}

/// State of a link shared with the transport (read by status and health).
#[derive(Debug, Default)]
pub struct LinkState {
    /// True while a greeted connection is up.
    pub connected: Cell<bool>,
    /// Connections established so far.
    pub connects: Cell<u64>,
    /// Frames written.
    pub frames_sent: Cell<u64>,
    /// Frames dropped because they went stale.
    pub frames_stale: Cell<u64>,
}

/// Runs the link until the queue's sender is dropped.
pub async fn run_link(
    address: SocketAddr,
    hello: PeerHello,
    queue: LocalReceiver<QueuedFrame>,
    state: Rc<LinkState>,
) {
    let mut backoff = Duration::from_millis(PEER_BACKOFF_MIN_MS);
    let mut pending: Option<QueuedFrame> = None;
    loop {
        match connect_and_greet(address, &hello).await {
            Ok(stream) => {
                backoff = Duration::from_millis(PEER_BACKOFF_MIN_MS);
                state.connected.set(true);
                state.connects.set(state.connects.get() + 1);
                let outcome = write_queued(stream, &queue, &state, &mut pending).await;
                state.connected.set(false);
                if outcome.is_none() {
                    return; // the transport is gone
                }
            }
            Err(error) => {
                tracing::debug!(peer = hello.to_node_id, %address, %error, "peer link not up");
                glommio::timer::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(PEER_BACKOFF_MAX_MS));
            }
        }
    }
}

async fn connect_and_greet(address: SocketAddr, hello: &PeerHello) -> Result<TcpStream, String> {
    let connect = TcpStream::connect_timeout(address, Duration::from_millis(PEER_BACKOFF_MAX_MS));
    let mut stream = connect.await.map_err(|error| format!("connect: {error}"))?;
    let _ = stream.set_nodelay(true);
    let body = encode_peer_hello(hello).map_err(|error| error.to_string())?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    write_frame(&mut frame, FrameKind::PeerHello, 0, &body);
    stream
        .write_all(&frame)
        .await
        .map_err(|error| format!("send hello: {error}"))?;
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    stream
        .read_exact(&mut header_bytes)
        .await
        .map_err(|error| format!("read hello reply: {error}"))?;
    let header = Header::decode(&header_bytes).map_err(|error| error.to_string())?;
    if header.kind != FrameKind::PeerHelloReply {
        return Err(format!("expected a hello reply, got {:?}", header.kind));
    }
    let mut body = vec![0u8; header.body_length as usize];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|error| format!("read hello reply: {error}"))?;
    header
        .check_body(&body)
        .map_err(|error| error.to_string())?;
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(body.len());
    aligned.extend_from_slice(&body);
    match decode_peer_hello_reply(&aligned).map_err(|error| error.to_string())? {
        PeerHelloReply::Accepted { node_id } if node_id == hello.to_node_id => Ok(stream),
        PeerHelloReply::Accepted { node_id } => Err(format!(
            "reached node {node_id}, expected node {}",
            hello.to_node_id
        )),
        PeerHelloReply::Refused { reason } => {
            tracing::warn!(peer = hello.to_node_id, %address, reason, "peer refused the connection");
            Err(format!("refused: {reason}"))
        }
    }
}

/// Writes queued frames until the connection fails (Some) or the queue closes (None).
async fn write_queued(
    mut stream: TcpStream,
    queue: &LocalReceiver<QueuedFrame>,
    state: &LinkState,
    pending: &mut Option<QueuedFrame>,
) -> Option<()> {
    let mut batch = Vec::with_capacity(PEER_WRITE_BATCH_BYTES);
    loop {
        let first = match pending.take() {
            Some(frame) => frame,
            None => queue.recv().await?,
        };
        batch.clear();
        let mut next = Some(first);
        while let Some(frame) = next.take() {
            if frame.queued.elapsed() > Duration::from_millis(PEER_FRAME_STALE_MS) {
                state.frames_stale.set(state.frames_stale.get() + 1);
            } else {
                let wait = frame.due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    if !batch.is_empty() {
                        // Send what is due now; this frame waits for its time.
                        *pending = Some(frame);
                        break;
                    }
                    glommio::timer::sleep(wait).await;
                }
                batch.extend_from_slice(&frame.bytes);
                state.frames_sent.set(state.frames_sent.get() + 1);
            }
            if batch.len() >= PEER_WRITE_BATCH_BYTES {
                break;
            }
            if let Some(Some(more)) = futures_lite::future::poll_once(queue.recv()).await {
                next = Some(more);
            }
        }
        if batch.is_empty() {
            continue;
        }
        if stream.write_all(&batch).await.is_err() || stream.flush().await.is_err() {
            return Some(());
        }
    }
}
