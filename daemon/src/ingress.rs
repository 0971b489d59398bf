//! The front door (DESIGN.md §4 step 1): client connections on every core.
//!
//! Each connection is read by one task: header checksum and fields, body length against
//! the limit, body checksum, archive validation, then range validation, before anything
//! reaches a shard. Requests are pipelined: each runs as its own task and its answer is
//! queued to the connection's writer by request id, in completion order. At most
//! `CONNECTION_IN_FLIGHT_MAX` requests run per connection; past that the reader waits
//! (back-pressure on the socket). A framing error gets a typed error reply and the
//! connection is closed after the replies already due have been written.

use crate::runtime::core::Core;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;
use glommio::sync::Semaphore;
use quorder_proto::codec::{
    access_batch, access_operation, decode_status_request, encode_batch_reply,
    encode_cluster_status, encode_operation, encode_reply, to_operation,
};
use quorder_proto::frame::{write_frame, FrameError, FrameKind, Header};
use quorder_proto::limits::{
    BATCH_OPERATIONS_MAX, CONNECTION_IN_FLIGHT_MAX, FRAME_HEADER_BYTES, REQUEST_BODY_BYTES_MAX,
};
use quorder_proto::validate::validate_operation;
use quorder_proto::{BatchReply, ErrorReply, Reply, PROTOCOL_VERSION};
use rkyv::util::AlignedVec;
use std::rc::Rc;

/// Bytes of the read buffer of a connection.
const CONNECTION_READ_BUFFER_BYTES: usize = 64 * 1024;

/// Serves one client connection until it closes or sends a bad frame.
pub async fn serve_connection(core: Rc<Core>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = futures_lite::io::split(stream);
    let mut reader = BufReader::with_capacity(CONNECTION_READ_BUFFER_BYTES, read_half);
    let (frames, frame_receiver) =
        local_channel::new_bounded::<Vec<u8>>(CONNECTION_IN_FLIGHT_MAX + 1);
    let frames = Rc::new(frames);
    let writer = glommio::spawn_local(write_frames(write_half, frame_receiver));
    let permits = Rc::new(Semaphore::new(CONNECTION_IN_FLIGHT_MAX as u64));
    // A framing error ends the reading; its reply is the last frame the client gets.
    let mut closing: Option<(u64, FrameError)> = None;
    loop {
        let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
        if reader.read_exact(&mut header_bytes).await.is_err() {
            break; // closed by the client (or shut down for reading by a stopping node)
        }
        let header = match Header::decode(&header_bytes) {
            Ok(header) => header,
            Err(error) => {
                closing = Some((Header::request_id_hint(&header_bytes), error));
                break;
            }
        };
        if let Err(error) = check_client_header(&header) {
            closing = Some((header.request_id, error));
            break;
        }
        let mut body = AlignedVec::with_capacity(header.body_length as usize);
        body.resize(header.body_length as usize, 0);
        if reader.read_exact(&mut body).await.is_err() {
            break;
        }
        if let Err(error) = header.check_body(&body) {
            closing = Some((header.request_id, error));
            break;
        }
        let Ok(permit) = permits.acquire_static_permit(1).await else {
            break;
        };
        let task = match header.kind {
            FrameKind::Request => run_request(&core, header.request_id, body),
            FrameKind::BatchRequest => run_batch(&core, header.request_id, body),
            FrameKind::StatusRequest => run_status(&core, header.request_id, &body),
            kind => Err(FrameError::UnexpectedKind { kind }),
        };
        match task {
            Ok(task) => {
                let frames = Rc::clone(&frames);
                glommio::spawn_local(async move {
                    let frame = task.await;
                    drop(permit);
                    let _ = frames.send(frame).await;
                })
                .detach();
            }
            Err(error) => {
                closing = Some((header.request_id, error));
                break;
            }
        }
    }
    if let Some((request_id, error)) = closing {
        // Requests already accepted are answered first; then the error, then the close.
        let _ = permits.acquire(CONNECTION_IN_FLIGHT_MAX as u64).await;
        send_frame_error(&frames, request_id, &error).await;
    }
    drop(frames);
    writer.await;
}

/// Refuses, before the body is read, kinds a client may not send and single-operation
/// bodies larger than any valid operation (they would become oversized log entries).
fn check_client_header(header: &Header) -> Result<(), FrameError> {
    match header.kind {
        FrameKind::Request if header.body_length as usize > REQUEST_BODY_BYTES_MAX => {
            Err(FrameError::BodyTooLarge {
                length: header.body_length,
            })
        }
        FrameKind::Request | FrameKind::BatchRequest | FrameKind::StatusRequest => Ok(()),
        kind => Err(FrameError::UnexpectedKind { kind }),
    }
}

type FrameTask = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>>>>;

fn run_request(
    core: &Rc<Core>,
    request_id: u64,
    body: AlignedVec,
) -> Result<FrameTask, FrameError> {
    let operation = access_operation(&body)?;
    if let Err(error) = validate_operation(operation) {
        return Ok(Box::pin(std::future::ready(reply_frame(
            request_id,
            &Reply::Error(error),
        ))));
    }
    let core = Rc::clone(core);
    Ok(Box::pin(async move {
        let reply = core.execute(body).await;
        reply_frame(request_id, &reply)
    }))
}

fn run_batch(core: &Rc<Core>, request_id: u64, body: AlignedVec) -> Result<FrameTask, FrameError> {
    let batch = access_batch(&body)?;
    let count = batch.operations.len();
    if count == 0 || count > BATCH_OPERATIONS_MAX {
        let error = ErrorReply::Invalid {
            field: "operations".to_string(),
            reason: format!("a batch holds 1..={BATCH_OPERATIONS_MAX} operations, got {count}"),
        };
        return Ok(Box::pin(std::future::ready(reply_frame(
            request_id,
            &Reply::Error(error),
        ))));
    }
    // Each operation becomes its own entry payload: one re-encoding per batched operation.
    let mut tasks = Vec::with_capacity(count);
    for operation in batch.operations.iter() {
        let prepared = validate_operation(operation)
            .map_err(Reply::Error)
            .and_then(|()| {
                let owned = to_operation(operation).map_err(|error| bad_frame_reply(&error))?;
                encode_operation(&owned).map_err(|error| {
                    Reply::Error(ErrorReply::Internal {
                        message: error.to_string(),
                    })
                })
            });
        let core = Rc::clone(core);
        tasks.push(glommio::spawn_local(async move {
            match prepared {
                Ok(payload) => core.execute(payload).await,
                Err(reply) => reply,
            }
        }));
    }
    Ok(Box::pin(async move {
        let mut replies = Vec::with_capacity(tasks.len());
        for task in tasks {
            replies.push(task.await);
        }
        let body = encode_batch_reply(&BatchReply { replies }).unwrap_or_default();
        let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
        write_frame(&mut frame, FrameKind::BatchReply, request_id, &body);
        frame
    }))
}

fn run_status(core: &Rc<Core>, request_id: u64, body: &[u8]) -> Result<FrameTask, FrameError> {
    let request = decode_status_request(body)?;
    let core = Rc::clone(core);
    Ok(Box::pin(async move {
        let status = core.cluster_status(request.include_peers).await;
        match encode_cluster_status(&status) {
            Ok(body) => {
                let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
                write_frame(&mut frame, FrameKind::StatusReply, request_id, &body);
                frame
            }
            Err(error) => reply_frame(
                request_id,
                &Reply::Error(ErrorReply::Internal {
                    message: error.to_string(),
                }),
            ),
        }
    }))
}

fn bad_frame_reply(error: &FrameError) -> Reply {
    Reply::Error(ErrorReply::BadFrame {
        reason: error.to_string(),
    })
}

/// Encodes a reply frame.
pub fn reply_frame(request_id: u64, reply: &Reply) -> Vec<u8> {
    let body = match encode_reply(reply) {
        Ok(body) => body,
        Err(error) => {
            let fallback = Reply::Error(ErrorReply::Internal {
                message: error.to_string(),
            });
            encode_reply(&fallback).unwrap_or_default()
        }
    };
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    write_frame(&mut frame, FrameKind::Reply, request_id, &body);
    frame
}

/// The typed reply to a framing error.
pub fn frame_error_reply(error: &FrameError) -> Reply {
    match error {
        FrameError::UnsupportedVersion { got } => Reply::Error(ErrorReply::UnsupportedVersion {
            got: *got,
            supported: PROTOCOL_VERSION,
        }),
        other => bad_frame_reply(other),
    }
}

async fn send_frame_error(frames: &LocalSender<Vec<u8>>, request_id: u64, error: &FrameError) {
    tracing::debug!(%error, "closing a client connection after a framing error");
    let _ = frames
        .send(reply_frame(request_id, &frame_error_reply(error)))
        .await;
}

async fn write_frames<W: futures_lite::io::AsyncWrite + Unpin>(
    mut writer: W,
    frames: LocalReceiver<Vec<u8>>,
) {
    let mut buffer = Vec::with_capacity(CONNECTION_READ_BUFFER_BYTES);
    while let Some(frame) = frames.recv().await {
        buffer.clear();
        buffer.extend_from_slice(&frame);
        // Coalesce the answers that are already due into one write.
        while buffer.len() < CONNECTION_READ_BUFFER_BYTES {
            match futures_lite::future::poll_once(frames.recv()).await {
                Some(Some(more)) => buffer.extend_from_slice(&more),
                _ => break,
            }
        }
        if writer.write_all(&buffer).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.close().await;
}
