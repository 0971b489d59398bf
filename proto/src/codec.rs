//! rkyv encoding and validated zero-copy access to message bodies.
//!
//! Bodies are always read from an `AlignedVec` (16-byte aligned: order ids are u128),
//! and always validated by bytecheck before any field is touched. Validation proves
//! memory safety only; the frame CRC is what detects corruption.

use crate::frame::{FrameError, FrameKind};
use crate::message::{
    ArchivedBatch, ArchivedBatchReply, ArchivedOperation, ArchivedReply, Batch, BatchReply,
    Operation, Reply,
};
use rkyv::rancor;
use rkyv::util::AlignedVec;

/// Error of the encoder; only possible on allocation failure or a bug.
#[derive(Debug, thiserror::Error)]
#[error("encoding failed: {0}")]
pub struct EncodeError(String);

macro_rules! encoder {
    ($name:ident, $type:ty) => {
        /// Serializes the message into a fresh aligned buffer.
        pub fn $name(value: &$type) -> Result<AlignedVec, EncodeError> {
            rkyv::to_bytes::<rancor::Error>(value).map_err(|error| EncodeError(error.to_string()))
        }
    };
}

encoder!(encode_operation, Operation);
encoder!(encode_batch, Batch);
encoder!(encode_reply, Reply);
encoder!(encode_batch_reply, BatchReply);

fn invalid(kind: FrameKind, _error: rancor::Error) -> FrameError {
    // rancor's text is empty in release builds and carries heap addresses in debug
    // builds; neither belongs in a reply, so the reason is fixed per kind.
    FrameError::InvalidBody {
        kind,
        reason: "body is not a valid archive of its kind".to_string(),
    }
}

/// Validated view of a `Request` body.
pub fn access_operation(body: &[u8]) -> Result<&ArchivedOperation, FrameError> {
    rkyv::access::<ArchivedOperation, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::Request, error))
}

/// Validated view of a `BatchRequest` body.
pub fn access_batch(body: &[u8]) -> Result<&ArchivedBatch, FrameError> {
    rkyv::access::<ArchivedBatch, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::BatchRequest, error))
}

/// Validated view of a `Reply` body.
pub fn access_reply(body: &[u8]) -> Result<&ArchivedReply, FrameError> {
    rkyv::access::<ArchivedReply, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::Reply, error))
}

/// Validated view of a `BatchReply` body.
pub fn access_batch_reply(body: &[u8]) -> Result<&ArchivedBatchReply, FrameError> {
    rkyv::access::<ArchivedBatchReply, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::BatchReply, error))
}

/// Owned copy of a `Reply` body (clients use this; the daemon reads archives in place).
pub fn decode_reply(body: &[u8]) -> Result<Reply, FrameError> {
    let archived = access_reply(body)?;
    rkyv::deserialize::<Reply, rancor::Error>(archived)
        .map_err(|error| invalid(FrameKind::Reply, error))
}

/// Owned copy of a `BatchReply` body.
pub fn decode_batch_reply(body: &[u8]) -> Result<BatchReply, FrameError> {
    let archived = access_batch_reply(body)?;
    rkyv::deserialize::<BatchReply, rancor::Error>(archived)
        .map_err(|error| invalid(FrameKind::BatchReply, error))
}

/// Owned copy of an archived operation.
pub fn to_operation(archived: &ArchivedOperation) -> Result<Operation, FrameError> {
    rkyv::deserialize::<Operation, rancor::Error>(archived)
        .map_err(|error| invalid(FrameKind::Request, error))
}

/// Serializes a peer hello.
pub fn encode_peer_hello(value: &crate::peer::PeerHello) -> Result<AlignedVec, EncodeError> {
    rkyv::to_bytes::<rancor::Error>(value).map_err(|error| EncodeError(error.to_string()))
}

/// Serializes a peer hello reply.
pub fn encode_peer_hello_reply(
    value: &crate::peer::PeerHelloReply,
) -> Result<AlignedVec, EncodeError> {
    rkyv::to_bytes::<rancor::Error>(value).map_err(|error| EncodeError(error.to_string()))
}

/// Owned copy of a `PeerHello` body.
pub fn decode_peer_hello(body: &[u8]) -> Result<crate::peer::PeerHello, FrameError> {
    let archived = rkyv::access::<crate::peer::ArchivedPeerHello, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::PeerHello, error))?;
    rkyv::deserialize::<crate::peer::PeerHello, rancor::Error>(archived)
        .map_err(|error| invalid(FrameKind::PeerHello, error))
}

/// Owned copy of a `PeerHelloReply` body.
pub fn decode_peer_hello_reply(body: &[u8]) -> Result<crate::peer::PeerHelloReply, FrameError> {
    let archived = rkyv::access::<crate::peer::ArchivedPeerHelloReply, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::PeerHelloReply, error))?;
    rkyv::deserialize::<crate::peer::PeerHelloReply, rancor::Error>(archived)
        .map_err(|error| invalid(FrameKind::PeerHelloReply, error))
}

/// Serializes a status request.
pub fn encode_status_request(
    value: &crate::status::StatusRequest,
) -> Result<AlignedVec, EncodeError> {
    rkyv::to_bytes::<rancor::Error>(value).map_err(|error| EncodeError(error.to_string()))
}

/// Serializes a cluster status.
pub fn encode_cluster_status(
    value: &crate::status::ClusterStatus,
) -> Result<AlignedVec, EncodeError> {
    rkyv::to_bytes::<rancor::Error>(value).map_err(|error| EncodeError(error.to_string()))
}

/// Owned copy of a `StatusRequest` body.
pub fn decode_status_request(body: &[u8]) -> Result<crate::status::StatusRequest, FrameError> {
    let archived = rkyv::access::<crate::status::ArchivedStatusRequest, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::StatusRequest, error))?;
    rkyv::deserialize::<crate::status::StatusRequest, rancor::Error>(archived)
        .map_err(|error| invalid(FrameKind::StatusRequest, error))
}

/// Owned copy of a `ClusterStatus` body.
pub fn decode_cluster_status(body: &[u8]) -> Result<crate::status::ClusterStatus, FrameError> {
    let archived = rkyv::access::<crate::status::ArchivedClusterStatus, rancor::Error>(body)
        .map_err(|error| invalid(FrameKind::StatusReply, error))?;
    rkyv::deserialize::<crate::status::ClusterStatus, rancor::Error>(archived)
        .map_err(|error| invalid(FrameKind::StatusReply, error))
}
