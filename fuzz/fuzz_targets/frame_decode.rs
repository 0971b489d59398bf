//! Fuzzes what a quorder node does with bytes from the network: `decode_frame`, then
//! validated access to the body for the frame's kind, then the range checks.
//!
//! Random bytes almost never carry two matching CRC-32s, so each input is also decoded a
//! second time with its checksums (and body length) repaired: that copy gets past the
//! frame layer and exercises the archive validator and `validate_operation`, which is
//! where the interesting parsing is. Neither path may panic, hang or allocate without
//! bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quorder_proto::codec;
use quorder_proto::frame::{crc32, decode_frame, FrameKind, Header};
use quorder_proto::limits::{FRAME_BODY_BYTES_MAX, FRAME_HEADER_BYTES};
use quorder_proto::validate::validate_operation;

fuzz_target!(|data: &[u8]| {
    receive(data);
    if data.len() >= FRAME_HEADER_BYTES {
        receive(&with_checksums_repaired(data));
    }
});

/// Everything the front door does with one frame's bytes.
fn receive(bytes: &[u8]) {
    let _ = Header::request_id_hint(bytes);
    let Ok((frame, used)) = decode_frame(bytes) else {
        return;
    };
    assert!(used >= FRAME_HEADER_BYTES && used <= bytes.len());
    assert_eq!(used - FRAME_HEADER_BYTES, frame.body.len());
    match frame.header.kind {
        FrameKind::Request => {
            if let Ok(operation) = codec::access_operation(&frame.body) {
                let _ = validate_operation(operation);
                // Deserializing a validated archive must always succeed.
                assert!(codec::to_operation(operation).is_ok());
            }
        }
        FrameKind::BatchRequest => {
            if let Ok(batch) = codec::access_batch(&frame.body) {
                for operation in batch.operations.iter() {
                    let _ = validate_operation(operation);
                }
            }
        }
        FrameKind::Reply => {
            if codec::access_reply(&frame.body).is_ok() {
                assert!(codec::decode_reply(&frame.body).is_ok());
            }
        }
        FrameKind::BatchReply => {
            if codec::access_batch_reply(&frame.body).is_ok() {
                assert!(codec::decode_batch_reply(&frame.body).is_ok());
            }
        }
        FrameKind::PeerHello => {
            let _ = codec::decode_peer_hello(&frame.body);
        }
        FrameKind::PeerHelloReply => {
            let _ = codec::decode_peer_hello_reply(&frame.body);
        }
        FrameKind::StatusRequest => {
            let _ = codec::decode_status_request(&frame.body);
        }
        FrameKind::StatusReply => {
            let _ = codec::decode_cluster_status(&frame.body);
        }
        // Peer message bodies are validated by the daemon's peer module.
        FrameKind::Peer => {}
    }
}

/// The input with `body_length` set to the bytes that follow the header (capped at the
/// limit) and both checksums recomputed; magic, version, kind and flags stay as given.
fn with_checksums_repaired(data: &[u8]) -> Vec<u8> {
    let body_length = (data.len() - FRAME_HEADER_BYTES).min(FRAME_BODY_BYTES_MAX);
    let mut bytes = data[..FRAME_HEADER_BYTES + body_length].to_vec();
    bytes[8..12].copy_from_slice(&(body_length as u32).to_le_bytes());
    let body_crc = crc32(&bytes[FRAME_HEADER_BYTES..]);
    bytes[12..16].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32(&bytes[0..28]);
    bytes[28..32].copy_from_slice(&header_crc.to_le_bytes());
    bytes
}
