//! Pins the archived byte layout of the status messages (frame kinds 5 and 6) and of the
//! peer hello (kinds 16 and 17), the frame kinds and their body bounds, exactly as
//! `proto/PROTOCOL.md` §3, §6.3, §7.4, §8.2, §10.2 and §12 document them (rkyv 0.8,
//! features little_endian + aligned + pointer_width_32).
//!
//! If an rkyv upgrade or a message change moves a single byte, a test here fails: that is
//! a protocol change and needs a new PROTOCOL_VERSION and a new PROTOCOL.md.

mod common;

use common::{assert_bytes, bytes_of, hex};
use quorder_proto::codec::{
    access_batch, access_batch_reply, access_operation, access_reply, decode_cluster_status,
    decode_peer_hello, decode_peer_hello_reply, decode_status_request, encode_cluster_status,
    encode_peer_hello, encode_peer_hello_reply, encode_status_request,
};
use quorder_proto::frame::{crc32, decode_frame, write_frame, FrameError, Header};
use quorder_proto::limits::{
    ERROR_TEXT_BYTES_MAX, FRAME_BODY_BYTES_MAX, OPERATION_BYTES_MAX, PEER_FRAME_BODY_BYTES_MAX,
    REQUEST_BODY_BYTES_MAX,
};
use quorder_proto::peer::{ArchivedPeerHello, ArchivedPeerHelloReply, PeerHello, PeerHelloReply};
use quorder_proto::status::{
    ArchivedClusterStatus, ArchivedMirrorRole, ArchivedMirrorStatus, ArchivedNodeStatus,
    ArchivedShardStatus, ArchivedStatusRequest, ClusterStatus, MirrorRole, MirrorStatus,
    NodeStatus, ShardStatus, StatusRequest,
};
use quorder_proto::FrameKind;
use std::mem::{align_of, offset_of, size_of};

fn aligned(bytes: &[u8]) -> rkyv::util::AlignedVec<16> {
    let mut out = rkyv::util::AlignedVec::<16>::new();
    out.extend_from_slice(bytes);
    out
}

fn status_request_bytes(include_peers: bool) -> Vec<u8> {
    let value = StatusRequest { include_peers };
    let bytes = encode_status_request(&value).expect("encode");
    assert_eq!(decode_status_request(&bytes).expect("decode"), value);
    bytes.to_vec()
}

fn cluster_status_bytes(value: &ClusterStatus) -> Vec<u8> {
    let bytes = encode_cluster_status(value).expect("encode");
    assert_eq!(&decode_cluster_status(&bytes).expect("decode"), value);
    bytes.to_vec()
}

fn peer_hello_reply_bytes(value: PeerHelloReply) -> Vec<u8> {
    let bytes = encode_peer_hello_reply(&value).expect("encode");
    assert_eq!(decode_peer_hello_reply(&bytes).expect("decode"), value);
    bytes.to_vec()
}

fn mirror(node: u64, role: MirrorRole, term: u64, commit: u64, applied: u64) -> MirrorStatus {
    MirrorStatus {
        node,
        role,
        term,
        commit_index: commit,
        applied_index: applied,
        digest: 0xd1_0000 + node,
    }
}

/// The example of PROTOCOL.md §7.4: node 1 answers for a two-node cluster in which node 2
/// did not answer, so only node 1's mirrors are listed; shard 1 is electing.
fn example_status() -> ClusterStatus {
    ClusterStatus {
        answered_by: 1,
        nodes: vec![
            NodeStatus {
                id: 1,
                region: "r1".into(),
                addr: "127.0.0.1:7000".into(),
                reachable: true,
            },
            NodeStatus {
                id: 2,
                region: "r2".into(),
                addr: "127.0.0.1:7010".into(),
                reachable: false,
            },
        ],
        shards: vec![
            ShardStatus {
                shard: 0,
                primary: Some(1),
                term: 3,
                mirrors: vec![MirrorStatus {
                    digest: 0xdead,
                    ..mirror(1, MirrorRole::Leader, 3, 10, 9)
                }],
            },
            ShardStatus {
                shard: 1,
                primary: None,
                term: 4,
                mirrors: vec![MirrorStatus {
                    digest: 0xbeef,
                    ..mirror(1, MirrorRole::Candidate, 4, 7, 7)
                }],
            },
        ],
    }
}

// ---------------------------------------------------------------------------------------
// Sizes, alignments and field offsets of the fixed parts.
// ---------------------------------------------------------------------------------------

/// Asserts `(size, alignment)` of each archived type.
macro_rules! assert_size_and_alignment {
    ($($type:ty => $size:literal, $align:literal;)*) => {
        $(
            assert_eq!(
                (size_of::<$type>(), align_of::<$type>()),
                ($size, $align),
                "(size, alignment) of {}",
                stringify!($type)
            );
        )*
    };
}

#[test]
fn sizes_and_alignments() {
    use rkyv::Archived;
    assert_size_and_alignment! {
        Archived<bool> => 1, 1;
        ArchivedStatusRequest => 1, 1;
        ArchivedNodeStatus => 32, 8;
        ArchivedMirrorRole => 1, 1;
        ArchivedMirrorStatus => 48, 8;
        ArchivedShardStatus => 40, 8;
        ArchivedClusterStatus => 24, 8;
        ArchivedPeerHello => 32, 8;
        ArchivedPeerHelloReply => 16, 8;
    }
}

#[test]
fn struct_field_offsets() {
    assert_eq!(offset_of!(ArchivedStatusRequest, include_peers), 0);

    assert_eq!(offset_of!(ArchivedNodeStatus, id), 0);
    assert_eq!(offset_of!(ArchivedNodeStatus, region), 8);
    assert_eq!(offset_of!(ArchivedNodeStatus, addr), 16);
    assert_eq!(offset_of!(ArchivedNodeStatus, reachable), 24);

    assert_eq!(offset_of!(ArchivedMirrorStatus, node), 0);
    assert_eq!(offset_of!(ArchivedMirrorStatus, role), 8);
    assert_eq!(offset_of!(ArchivedMirrorStatus, term), 16);
    assert_eq!(offset_of!(ArchivedMirrorStatus, commit_index), 24);
    assert_eq!(offset_of!(ArchivedMirrorStatus, applied_index), 32);
    assert_eq!(offset_of!(ArchivedMirrorStatus, digest), 40);

    assert_eq!(offset_of!(ArchivedShardStatus, shard), 0);
    assert_eq!(offset_of!(ArchivedShardStatus, primary), 8);
    assert_eq!(offset_of!(ArchivedShardStatus, term), 24);
    assert_eq!(offset_of!(ArchivedShardStatus, mirrors), 32);

    assert_eq!(offset_of!(ArchivedClusterStatus, answered_by), 0);
    assert_eq!(offset_of!(ArchivedClusterStatus, nodes), 8);
    assert_eq!(offset_of!(ArchivedClusterStatus, shards), 16);

    assert_eq!(offset_of!(ArchivedPeerHello, node_id), 0);
    assert_eq!(offset_of!(ArchivedPeerHello, to_node_id), 8);
    assert_eq!(offset_of!(ArchivedPeerHello, core), 16);
    assert_eq!(offset_of!(ArchivedPeerHello, cores), 20);
    assert_eq!(offset_of!(ArchivedPeerHello, shards), 24);
}

// ---------------------------------------------------------------------------------------
// StatusRequest: one bool byte.
// ---------------------------------------------------------------------------------------

#[test]
fn status_request_layout() {
    assert_bytes(
        "StatusRequest, include_peers",
        &status_request_bytes(true),
        "01",
    );
    assert_bytes(
        "StatusRequest, this node only",
        &status_request_bytes(false),
        "00",
    );
}

#[test]
fn status_request_bool_rules() {
    // A bool is 0 or 1; anything else is refused.
    for byte in 2..=u8::MAX {
        assert!(
            decode_status_request(&aligned(&[byte])).is_err(),
            "bool byte {byte:#04x}"
        );
    }
    // The root is the last byte (alignment 1): leading bytes are a gap, never read.
    assert_eq!(
        decode_status_request(&aligned(&[0xff, 0xee, 0x01])).expect("decode"),
        StatusRequest {
            include_peers: true
        }
    );
    // An empty body has no root.
    assert!(decode_status_request(&aligned(&[])).is_err());
}

// ---------------------------------------------------------------------------------------
// ClusterStatus: 24-byte root, nodes and shards behind it.
// ---------------------------------------------------------------------------------------

/// The body of PROTOCOL.md §7.4.
const EXAMPLE_STATUS_BODY: &str = "
    31 32 37 2e 30 2e 30 2e 31 3a 37 30 30 30  # 0x00 nodes[0].addr '127.0.0.1:7000'
    31 32 37 2e 30 2e 30 2e 31 3a 37 30 31 30  # 0x0e nodes[1].addr '127.0.0.1:7010'
    00 00 00 00                                # 0x1c padding to 8
    01 00*7                  # 0x20 nodes[0]: id 1
    72 31 ff ff ff ff ff ff  # 0x28 region 'r1', inline
    8e 00 00 00 d0 ff ff ff  # 0x30 addr: length 14 out-of-line, -48 -> 0x00
    01 00*7                  # 0x38 reachable = true, padding
    02 00*7                  # 0x40 nodes[1]: id 2
    72 32 ff ff ff ff ff ff  # 0x48 region 'r2'
    8e 00 00 00 be ff ff ff  # 0x50 addr: length 14, -66 -> 0x0e
    00 00*7                  # 0x58 reachable = false, padding
    01 00*7                  # 0x60 shards[0].mirrors[0]: node 1
    00 00*7                  # 0x68 role 0 = Leader, padding
    03 00*7                  # 0x70 term 3
    0a 00*7                  # 0x78 commit_index 10
    09 00*7                  # 0x80 applied_index 9
    ad de 00*6               # 0x88 digest 0xdead
    01 00*7                  # 0x90 shards[1].mirrors[0]: node 1
    02 00*7                  # 0x98 role 2 = Candidate
    04 00*7                  # 0xa0 term 4
    07 00*7                  # 0xa8 commit_index 7
    07 00*7                  # 0xb0 applied_index 7
    ef be 00*6               # 0xb8 digest 0xbeef
    00 00 00 00 00 00 00 00  # 0xc0 shards[0]: shard 0 (u32), padding
    01 00*7                  # 0xc8 primary: Option tag 1 = Some
    01 00*7                  # 0xd0 node 1
    03 00*7                  # 0xd8 term 3
    80 ff ff ff 01 00 00 00  # 0xe0 mirrors: -128 -> 0x60, length 1
    01 00 00 00 00 00 00 00  # 0xe8 shards[1]: shard 1
    00 00*7                  # 0xf0 primary: tag 0 = None
    00*8                     # 0xf8 (no value)
    04 00*7                  # 0x100 term 4
    88 ff ff ff 01 00 00 00  # 0x108 mirrors: -120 -> 0x90, length 1
    01 00*7                  # 0x110 root ClusterStatus: answered_by 1
    08 ff ff ff 02 00 00 00  # 0x118 nodes: -248 -> 0x20, length 2
    a0 ff ff ff 02 00 00 00  # 0x120 shards: -96 -> 0xc0, length 2
";

#[test]
fn cluster_status_layout() {
    assert_bytes(
        "ClusterStatus",
        &cluster_status_bytes(&example_status()),
        EXAMPLE_STATUS_BODY,
    );
}

#[test]
fn cluster_status_empty() {
    assert_bytes(
        "empty ClusterStatus",
        &cluster_status_bytes(&ClusterStatus {
            answered_by: 7,
            nodes: vec![],
            shards: vec![],
        }),
        "07 00*7                  # answered_by
         f8 ff ff ff 00 00 00 00  # nodes: -8 -> 0x00, empty
         f0 ff ff ff 00 00 00 00  # shards: -16 -> 0x00, empty",
    );
}

#[test]
fn mirror_role_bytes() {
    let roles = [
        (MirrorRole::Leader, 0u8),
        (MirrorRole::Follower, 1),
        (MirrorRole::Candidate, 2),
        (MirrorRole::PreCandidate, 3),
        (MirrorRole::Unknown, 4),
    ];
    let status = |role| ClusterStatus {
        answered_by: 1,
        nodes: vec![],
        shards: vec![ShardStatus {
            shard: 0,
            primary: None,
            term: 1,
            mirrors: vec![mirror(1, role, 1, 1, 1)],
        }],
    };
    for (role, byte) in roles {
        let bytes = cluster_status_bytes(&status(role));
        // Mirrors array at 0x00 (nothing else is out of line): role at 0x08.
        assert_eq!(bytes[8], byte, "{role:?}");
    }
    let mut bytes = cluster_status_bytes(&status(MirrorRole::Leader));
    bytes[8] = 5;
    assert!(
        decode_cluster_status(&aligned(&bytes)).is_err(),
        "MirrorRole 5"
    );
}

#[test]
fn cluster_status_decoder_rules() {
    let body = bytes_of(EXAMPLE_STATUS_BODY);
    let refused = |at: usize, byte: u8, what: &str| {
        let mut damaged = body.clone();
        damaged[at] = byte;
        assert!(decode_cluster_status(&aligned(&damaged)).is_err(), "{what}");
    };
    refused(0x38, 2, "bool 2 in reachable");
    refused(0x98, 5, "MirrorRole 5");
    refused(0xc8, 2, "Option tag 2 in primary");
    refused(0x00, 0xff, "address that is not UTF-8");
    // Padding and gaps are not read.
    let mut padded = body.clone();
    padded[0x1c] = 0xee;
    padded[0x39] = 0xee;
    padded[0xc4] = 0xee;
    assert_eq!(
        decode_cluster_status(&aligned(&padded)).expect("padding ignored"),
        example_status()
    );
    // The root is the last 24 bytes and must be 8-aligned.
    let mut trailing = body.clone();
    trailing.extend_from_slice(&[0; 4]);
    assert!(decode_cluster_status(&aligned(&trailing)).is_err());
}

/// Reads the §7.4 example with PROTOCOL.md's rules alone (§5), as a client in another
/// language would, without rkyv.
#[test]
fn hand_read_cluster_status() {
    let body = bytes_of(EXAMPLE_STATUS_BODY);
    let u32_at = |at: usize| u32::from_le_bytes(body[at..at + 4].try_into().expect("4"));
    let u64_at = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8"));
    let i32_at = |at: usize| i32::from_le_bytes(body[at..at + 4].try_into().expect("4"));
    // §5.5: a Vec is (offset from the field, count).
    let vec_at = |at: usize| {
        (
            (at as i64 + i64::from(i32_at(at))) as usize,
            u32_at(at + 4) as usize,
        )
    };
    // §5.6: inline if the first byte is not 0x80..=0xbf, else length word and offset.
    let string_at = |at: usize| -> String {
        if (0x80..=0xbf).contains(&body[at]) {
            let word = u32_at(at);
            let length = ((word & 0x3f) | ((word & !0xff) >> 2)) as usize;
            let start = (at as i64 + i64::from(i32_at(at + 4))) as usize;
            String::from_utf8(body[start..start + length].to_vec()).expect("utf-8")
        } else {
            let inline = &body[at..at + 8];
            let length = inline.iter().position(|&b| b == 0xff).unwrap_or(8);
            String::from_utf8(inline[..length].to_vec()).expect("utf-8")
        }
    };
    let role = |byte: u8| match byte {
        0 => MirrorRole::Leader,
        1 => MirrorRole::Follower,
        2 => MirrorRole::Candidate,
        3 => MirrorRole::PreCandidate,
        4 => MirrorRole::Unknown,
        other => panic!("role {other}"),
    };

    let root = body.len() - 24;
    assert_eq!(root % 8, 0);
    let (nodes_at, node_count) = vec_at(root + 8);
    let nodes = (0..node_count)
        .map(|index| {
            let at = nodes_at + 32 * index;
            NodeStatus {
                id: u64_at(at),
                region: string_at(at + 8),
                addr: string_at(at + 16),
                reachable: body[at + 24] == 1,
            }
        })
        .collect();
    let (shards_at, shard_count) = vec_at(root + 16);
    let shards = (0..shard_count)
        .map(|index| {
            let at = shards_at + 40 * index;
            let (mirrors_at, mirror_count) = vec_at(at + 32);
            ShardStatus {
                shard: u32_at(at),
                primary: (body[at + 8] == 1).then(|| u64_at(at + 16)),
                term: u64_at(at + 24),
                mirrors: (0..mirror_count)
                    .map(|index| {
                        let at = mirrors_at + 48 * index;
                        MirrorStatus {
                            node: u64_at(at),
                            role: role(body[at + 8]),
                            term: u64_at(at + 16),
                            commit_index: u64_at(at + 24),
                            applied_index: u64_at(at + 32),
                            digest: u64_at(at + 40),
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    let read = ClusterStatus {
        answered_by: u64_at(root),
        nodes,
        shards,
    };
    assert_eq!(read, example_status());
}

/// §7.4's size rule: out-of-line strings (padded to 8), then 32 per node, 48 per mirror,
/// 40 per shard and the 24-byte root.
#[test]
fn cluster_status_size_rule() {
    let shape = |nodes: usize, shards: u32, mirrors_per_shard: usize, long_addresses: bool| {
        let addr = |id: usize| {
            if long_addresses {
                format!("10.0.0.{id}:7000")
            } else {
                format!("n{id}:7")
            }
        };
        ClusterStatus {
            answered_by: 1,
            nodes: (1..=nodes)
                .map(|id| NodeStatus {
                    id: id as u64,
                    region: format!("r{id}"),
                    addr: addr(id),
                    reachable: true,
                })
                .collect(),
            shards: (0..shards)
                .map(|shard| ShardStatus {
                    shard,
                    primary: Some(1),
                    term: 1,
                    mirrors: (1..=mirrors_per_shard)
                        .map(|node| mirror(node as u64, MirrorRole::Follower, 1, 1, 1))
                        .collect(),
                })
                .collect(),
        }
    };
    let predicted = |status: &ClusterStatus| {
        let long = |text: &String| if text.len() > 8 { text.len() } else { 0 };
        let strings: usize = status
            .nodes
            .iter()
            .map(|node| long(&node.region) + long(&node.addr))
            .sum();
        let mirrors: usize = status.shards.iter().map(|shard| shard.mirrors.len()).sum();
        strings.div_ceil(8) * 8
            + 32 * status.nodes.len()
            + 48 * mirrors
            + 40 * status.shards.len()
            + 24
    };
    for (nodes, shards, mirrors, long) in [
        (1, 1, 1, false),
        (3, 8, 3, true),
        (3, 8, 2, false),
        (5, 64, 5, true),
        (9, 16, 9, true),
        (3, 4096, 3, true),
    ] {
        let status = shape(nodes, shards, mirrors, long);
        assert_eq!(
            encode_cluster_status(&status).expect("encode").len(),
            predicted(&status),
            "{nodes} nodes, {shards} shards, {mirrors} mirrors each"
        );
    }
    // 3 nodes and 4096 shards fit a frame; 5 nodes and 4096 shards do not (§14).
    assert!(predicted(&shape(3, 4096, 3, true)) <= FRAME_BODY_BYTES_MAX);
    assert!(predicted(&shape(5, 4096, 5, true)) > FRAME_BODY_BYTES_MAX);
}

// ---------------------------------------------------------------------------------------
// Peer hello and hello reply.
// ---------------------------------------------------------------------------------------

#[test]
fn peer_hello_layout() {
    let hello = PeerHello {
        node_id: 1,
        to_node_id: 2,
        core: 3,
        cores: 4,
        shards: 8,
    };
    let bytes = encode_peer_hello(&hello).expect("encode");
    assert_eq!(decode_peer_hello(&bytes).expect("decode"), hello);
    assert_bytes(
        "PeerHello",
        &bytes,
        "01 00*7                  # 0x00 node_id (the dialer)
         02 00*7                  # 0x08 to_node_id (the node it means to reach)
         03 00 00 00              # 0x10 core (the dialing core)
         04 00 00 00              # 0x14 cores
         08 00 00 00              # 0x18 shards
         00 00 00 00              # 0x1c padding",
    );
}

#[test]
fn peer_hello_reply_layout() {
    assert_bytes(
        "PeerHelloReply::Accepted",
        &peer_hello_reply_bytes(PeerHelloReply::Accepted { node_id: 2 }),
        "00 00*7                  # 0x00 tag 0 = Accepted
         02 00*7                  # 0x08 node_id (the acceptor)",
    );
    assert_bytes(
        "PeerHelloReply::Refused",
        &peer_hello_reply_bytes(PeerHelloReply::Refused {
            reason: "shard counts differ".into(),
        }),
        "73 68 61 72 64 20 63 6f 75 6e 74 73 20 64 69 66 66 65 72  # 0x00 reason text
         00*5                     # 0x13 padding to 8
         01 00 00 00              # 0x18 root: tag 1 = Refused
         93 00 00 00 e4 ff ff ff  # 0x1c reason: length 19 out-of-line, -28 -> 0x00
         00*4                     # 0x24 rest of the 16-byte root",
    );
    let mut bytes = peer_hello_reply_bytes(PeerHelloReply::Accepted { node_id: 2 });
    bytes[0] = 2;
    assert!(decode_peer_hello_reply(&aligned(&bytes)).is_err(), "tag 2");
}

// ---------------------------------------------------------------------------------------
// Frame kinds, per-kind bounds, invalid-body text.
// ---------------------------------------------------------------------------------------

#[test]
fn frame_kind_bytes_and_body_bounds() {
    let kinds = [
        (1u8, FrameKind::Request, FRAME_BODY_BYTES_MAX),
        (2, FrameKind::Reply, FRAME_BODY_BYTES_MAX),
        (3, FrameKind::BatchRequest, FRAME_BODY_BYTES_MAX),
        (4, FrameKind::BatchReply, FRAME_BODY_BYTES_MAX),
        (5, FrameKind::StatusRequest, FRAME_BODY_BYTES_MAX),
        (6, FrameKind::StatusReply, PEER_FRAME_BODY_BYTES_MAX),
        (16, FrameKind::PeerHello, FRAME_BODY_BYTES_MAX),
        (17, FrameKind::PeerHelloReply, FRAME_BODY_BYTES_MAX),
        (18, FrameKind::Peer, PEER_FRAME_BODY_BYTES_MAX),
    ];
    for byte in 0..=u8::MAX {
        let expected = kinds.iter().find(|(known, _, _)| *known == byte);
        assert_eq!(
            FrameKind::from_byte(byte),
            expected.map(|(_, kind, _)| *kind),
            "kind byte {byte}"
        );
    }
    for (byte, kind, bound) in kinds {
        assert_eq!(kind as u8, byte);
        assert_eq!(kind.body_bytes_max(), bound, "{kind:?}");
        let header = |length: usize| {
            Header {
                kind,
                body_length: length as u32,
                body_crc: 0,
                request_id: 9,
            }
            .encode()
        };
        assert!(
            Header::decode(&header(bound)).is_ok(),
            "{kind:?} at its bound"
        );
        assert_eq!(
            Header::decode(&header(bound + 1)),
            Err(FrameError::BodyTooLarge {
                length: bound as u32 + 1
            }),
            "{kind:?} over its bound"
        );
    }
}

#[test]
fn limit_values() {
    assert_eq!(FRAME_BODY_BYTES_MAX, 1_048_576);
    assert_eq!(PEER_FRAME_BODY_BYTES_MAX, 8_388_608);
    assert_eq!(OPERATION_BYTES_MAX, 1920);
    assert_eq!(REQUEST_BODY_BYTES_MAX, 7680);
}

#[test]
fn invalid_body_reason_is_fixed_text() {
    // An empty body is valid for no kind. The node's BadFrame reason is this Display.
    let empty = aligned(&[]);
    let errors = [
        (FrameKind::Request, access_operation(&empty).map(|_| ())),
        (FrameKind::BatchRequest, access_batch(&empty).map(|_| ())),
        (FrameKind::Reply, access_reply(&empty).map(|_| ())),
        (
            FrameKind::BatchReply,
            access_batch_reply(&empty).map(|_| ()),
        ),
        (
            FrameKind::StatusRequest,
            decode_status_request(&empty).map(|_| ()),
        ),
        (
            FrameKind::StatusReply,
            decode_cluster_status(&empty).map(|_| ()),
        ),
        (FrameKind::PeerHello, decode_peer_hello(&empty).map(|_| ())),
        (
            FrameKind::PeerHelloReply,
            decode_peer_hello_reply(&empty).map(|_| ()),
        ),
    ];
    for (kind, result) in errors {
        let error = result.expect_err("empty body");
        assert_eq!(
            error,
            FrameError::InvalidBody {
                kind,
                reason: "body is not a valid archive of its kind".into()
            }
        );
        let text = error.to_string();
        assert_eq!(
            text,
            format!("invalid {kind:?} body: body is not a valid archive of its kind")
        );
        assert!(text.len() <= ERROR_TEXT_BYTES_MAX);
    }
}

// ---------------------------------------------------------------------------------------
// Worked example §10.2: a status request frame.
// ---------------------------------------------------------------------------------------

/// The status request frame exactly as PROTOCOL.md §10.2 prints it.
const STATUS_REQUEST_FRAME: &str = "
51 52 44 52 01 05 00 00 01 00 00 00 1b df 05 a5  # header: magic, version 1, kind 5, flags, body_length 1, body_crc
01 00 00 00 00 00 00 00 00 00 00 00 73 69 02 0d  # header: request_id 1, reserved, header_crc
01                                               # body: include_peers = true
";

#[test]
fn status_request_frame_bytes() {
    let body = encode_status_request(&StatusRequest {
        include_peers: true,
    })
    .expect("encode");
    let mut frame = Vec::new();
    write_frame(&mut frame, FrameKind::StatusRequest, 1, &body);
    assert_bytes("status request frame", &frame, STATUS_REQUEST_FRAME);
    assert_eq!(crc32(&frame[32..]), 0xa505_df1b, "body_crc");
    assert_eq!(crc32(&frame[0..28]), 0x0d02_6973, "header_crc");
    assert_eq!(
        hex(&frame),
        "5152445201050000010000001bdf05a5\
         0100000000000000000000007369020d\
         01"
    );
    let (decoded, used) = decode_frame(&frame).expect("decode");
    assert_eq!(used, frame.len());
    assert_eq!(decoded.header.kind, FrameKind::StatusRequest);
    assert_eq!(
        decode_status_request(&decoded.body).expect("body"),
        StatusRequest {
            include_peers: true
        }
    );
}

#[test]
fn status_reply_frame_header() {
    // The §7.4 example as a kind-6 frame answering request 1.
    let body = cluster_status_bytes(&example_status());
    let mut frame = Vec::new();
    write_frame(&mut frame, FrameKind::StatusReply, 1, &body);
    let (decoded, _) = decode_frame(&frame).expect("decode");
    assert_eq!(frame[5], 6);
    assert_eq!(decoded.header.body_length, 296);
    assert_eq!(
        decode_cluster_status(&decoded.body).expect("body"),
        example_status()
    );
}
