//! The incoming side of peer links: every core accepts on the node's peer address; the
//! first frame (a hello) says which core of the dialing node this is, and the connection
//! is served by this node's core of the same number — handed over through the core mesh
//! when another core accepted it.

use crate::limits::PEER_READ_BUFFER_BYTES;
use futures_lite::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use glommio::net::TcpStream;
use quorder_proto::codec::{decode_peer_hello, encode_peer_hello_reply};
use quorder_proto::frame::{write_frame, FrameError, FrameKind, Header};
use quorder_proto::limits::FRAME_HEADER_BYTES;
use quorder_proto::peer::{PeerHello, PeerHelloReply};
use rkyv::util::AlignedVec;

/// Largest hello body accepted (a hello is a few dozen bytes).
const PEER_HELLO_BYTES_MAX: usize = 1024;

/// What this node expects of a dialing peer.
#[derive(Debug, Clone)]
pub struct LocalShape {
    /// This node.
    pub node_id: u64,
    /// Its cores.
    pub cores: u32,
    /// The cluster's shards.
    pub shards: u32,
    /// Node ids of the cluster.
    pub members: Vec<u64>,
}

/// Reads one whole frame (header, then body into an aligned buffer).
pub async fn read_frame<R: futures_lite::io::AsyncRead + Unpin>(
    reader: &mut R,
) -> Result<(Header, AlignedVec), String> {
    read_frame_checked(reader, |_| Ok(())).await
}

/// Reads one whole frame; `check` sees the decoded header before any body byte is read.
async fn read_frame_checked<R: futures_lite::io::AsyncRead + Unpin>(
    reader: &mut R,
    check: impl Fn(&Header) -> Result<(), String>,
) -> Result<(Header, AlignedVec), String> {
    let mut header_bytes = [0u8; FRAME_HEADER_BYTES];
    reader
        .read_exact(&mut header_bytes)
        .await
        .map_err(|error| format!("read: {error}"))?;
    let header = Header::decode(&header_bytes).map_err(|error: FrameError| error.to_string())?;
    check(&header)?;
    let mut body = AlignedVec::with_capacity(header.body_length as usize);
    body.resize(header.body_length as usize, 0);
    reader
        .read_exact(&mut body)
        .await
        .map_err(|error| format!("read: {error}"))?;
    header
        .check_body(&body)
        .map_err(|error| error.to_string())?;
    Ok((header, body))
}

/// Reads and answers the hello of a new incoming connection. Returns the hello when the
/// peer is accepted; refuses (and the caller drops the connection) otherwise.
pub async fn greet(stream: &mut TcpStream, shape: &LocalShape) -> Result<PeerHello, String> {
    // Unbuffered on purpose: nothing past the hello may be consumed here, because the
    // connection may move to another core after it. Nothing is trusted yet either, so
    // the kind and a small length are checked before the body is read.
    let (_, body) = read_frame_checked(stream, |header| {
        if header.kind != FrameKind::PeerHello || header.body_length as usize > PEER_HELLO_BYTES_MAX
        {
            return Err(format!(
                "expected a peer hello, got {:?} of {} bytes",
                header.kind, header.body_length
            ));
        }
        Ok(())
    })
    .await?;
    let hello = decode_peer_hello(&body).map_err(|error| error.to_string())?;
    let refusal = check_hello(&hello, shape);
    let reply = match &refusal {
        Some(reason) => PeerHelloReply::Refused {
            reason: reason.clone(),
        },
        None => PeerHelloReply::Accepted {
            node_id: shape.node_id,
        },
    };
    let body = encode_peer_hello_reply(&reply).map_err(|error| error.to_string())?;
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    write_frame(&mut frame, FrameKind::PeerHelloReply, 0, &body);
    stream
        .write_all(&frame)
        .await
        .map_err(|error| format!("write: {error}"))?;
    match refusal {
        Some(reason) => Err(format!("refused node {}: {reason}", hello.node_id)),
        None => Ok(hello),
    }
}

/// Why a hello is refused, if it is.
pub fn check_hello(hello: &PeerHello, shape: &LocalShape) -> Option<String> {
    if hello.to_node_id != shape.node_id {
        return Some(format!(
            "this is node {}, not node {}",
            shape.node_id, hello.to_node_id
        ));
    }
    if hello.node_id == shape.node_id || !shape.members.contains(&hello.node_id) {
        return Some(format!(
            "node {} is not a peer in this node's cluster map",
            hello.node_id
        ));
    }
    if hello.cores != shape.cores {
        return Some(format!(
            "cores differ: this node runs {}, node {} runs {}",
            shape.cores, hello.node_id, hello.cores
        ));
    }
    if hello.shards != shape.shards {
        return Some(format!(
            "shard counts differ: {} here, {} at node {}",
            shape.shards, hello.shards, hello.node_id
        ));
    }
    if hello.core >= shape.cores {
        return Some(format!("core {} does not exist here", hello.core));
    }
    None
}

/// Reads peer frames from an accepted, greeted connection and hands each body to
/// `deliver` until the connection ends or sends a bad frame.
pub async fn serve_peer_connection(
    stream: TcpStream,
    from: u64,
    mut deliver: impl FnMut(u64, AlignedVec),
) {
    let mut reader = BufReader::with_capacity(PEER_READ_BUFFER_BYTES, stream);
    loop {
        match read_frame(&mut reader).await {
            Ok((header, body)) if header.kind == FrameKind::Peer => deliver(from, body),
            Ok((header, _)) => {
                tracing::warn!(peer = from, kind = ?header.kind, "unexpected frame on a peer link; closing it");
                return;
            }
            Err(error) => {
                tracing::debug!(peer = from, error, "peer connection closed");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> LocalShape {
        LocalShape {
            node_id: 2,
            cores: 2,
            shards: 8,
            members: vec![1, 2, 3],
        }
    }

    fn hello() -> PeerHello {
        PeerHello {
            node_id: 1,
            to_node_id: 2,
            core: 1,
            cores: 2,
            shards: 8,
        }
    }

    #[test]
    fn accepts_a_matching_peer() {
        assert_eq!(check_hello(&hello(), &shape()), None);
    }

    #[test]
    fn refuses_mismatches_with_the_reason() {
        let cases = [
            (
                PeerHello {
                    to_node_id: 3,
                    ..hello()
                },
                "this is node 2",
            ),
            (
                PeerHello {
                    node_id: 9,
                    ..hello()
                },
                "not a peer",
            ),
            (
                PeerHello {
                    node_id: 2,
                    ..hello()
                },
                "not a peer",
            ),
            (
                PeerHello {
                    cores: 1,
                    ..hello()
                },
                "cores differ",
            ),
            (
                PeerHello {
                    shards: 16,
                    ..hello()
                },
                "shard counts differ",
            ),
            (PeerHello { core: 2, ..hello() }, "core 2"),
        ];
        for (hello, expected) in cases {
            let reason = check_hello(&hello, &shape()).expect("refused");
            assert!(reason.contains(expected), "{reason}");
        }
    }
}
