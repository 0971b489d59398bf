//! InstallSnapshot in chunks: the leader's sending side for one follower, and the
//! follower's assembly of the body.
//!
//! One chunk is in flight per follower; it is sent again when unanswered for a while. The
//! follower accepts only the chunk at the offset it expects and answers with how far it
//! got, so lost, duplicated and reordered chunks cost a resend, never a corrupt body. The
//! announced size is checked against `RAFT_SNAPSHOT_BODY_BYTES_MAX` before any allocation.

use super::log::SnapshotMeta;
use crate::limits::RAFT_SNAPSHOT_BODY_BYTES_MAX;
use rkyv::util::AlignedVec;
use std::rc::Rc;

/// A snapshot being sent to one follower.
#[derive(Debug)]
pub(crate) struct SnapshotSend {
    meta: SnapshotMeta,
    body: Rc<AlignedVec>,
    /// Where the chunk in flight starts.
    offset: u64,
    ticks_since_sent: u64,
}

/// One chunk to send.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) meta: SnapshotMeta,
    pub(crate) total_bytes: u64,
    pub(crate) offset: u64,
    pub(crate) data: Vec<u8>,
    pub(crate) last: bool,
}

impl SnapshotSend {
    pub(crate) fn new(meta: SnapshotMeta, body: Rc<AlignedVec>) -> SnapshotSend {
        SnapshotSend {
            meta,
            body,
            offset: 0,
            ticks_since_sent: 0,
        }
    }

    pub(crate) fn meta(&self) -> SnapshotMeta {
        self.meta
    }

    /// The chunk in flight (sent again as is after a timeout).
    pub(crate) fn chunk(&mut self, chunk_bytes: usize) -> Chunk {
        self.ticks_since_sent = 0;
        let total = self.body.len();
        let start = (self.offset as usize).min(total);
        let end = start.saturating_add(chunk_bytes).min(total);
        Chunk {
            meta: self.meta,
            total_bytes: total as u64,
            offset: start as u64,
            data: self.body[start..end].to_vec(),
            last: end == total,
        }
    }

    /// The follower holds the body up to `next_offset`. Returns whether a chunk should go
    /// out now (the follower moved on, or asked for an earlier offset after losing its
    /// assembly).
    pub(crate) fn received(&mut self, next_offset: u64) -> bool {
        if next_offset == self.offset || next_offset > self.body.len() as u64 {
            return false;
        }
        self.offset = next_offset;
        true
    }

    /// Counts a tick; true when the chunk in flight is due to be sent again.
    pub(crate) fn tick(&mut self, resend_ticks: u64) -> bool {
        self.ticks_since_sent += 1;
        self.ticks_since_sent >= resend_ticks
    }
}

/// A follower's partly received snapshot.
#[derive(Debug)]
pub(crate) struct SnapshotAssembly {
    term: u64,
    meta: SnapshotMeta,
    total_bytes: u64,
    body: AlignedVec,
}

/// What a follower does with a chunk.
#[derive(Debug)]
pub(crate) enum ChunkVerdict {
    /// Answer with how far the body is assembled.
    Received { next_offset: u64 },
    /// The body is complete: install it.
    Complete(SnapshotMeta, AlignedVec),
    /// The body is larger than this member accepts.
    Refused,
}

/// Adds a chunk of the leader of `term` to `assembly`, starting it over when the chunk
/// belongs to another snapshot or another leader.
pub(crate) fn receive_chunk(
    assembly: &mut Option<SnapshotAssembly>,
    term: u64,
    meta: SnapshotMeta,
    total_bytes: u64,
    offset: u64,
    data: &[u8],
    last: bool,
) -> ChunkVerdict {
    if total_bytes > RAFT_SNAPSHOT_BODY_BYTES_MAX {
        *assembly = None;
        return ChunkVerdict::Refused;
    }
    let same = assembly.as_ref().is_some_and(|held| {
        held.term == term && held.meta == meta && held.total_bytes == total_bytes
    });
    if !same {
        *assembly = None;
        if offset != 0 {
            return ChunkVerdict::Received { next_offset: 0 };
        }
    }
    let held = assembly.get_or_insert_with(|| SnapshotAssembly {
        term,
        meta,
        total_bytes,
        body: AlignedVec::new(),
    });
    let held_bytes = held.body.len() as u64;
    if offset != held_bytes {
        return ChunkVerdict::Received {
            next_offset: held_bytes,
        };
    }
    held.body.extend_from_slice(data);
    let held_bytes = held.body.len() as u64;
    assert!(
        held_bytes <= total_bytes,
        "chunk beyond the body (checked by from_wire)"
    );
    if !last {
        return ChunkVerdict::Received {
            next_offset: held_bytes,
        };
    }
    assert_eq!(
        held_bytes, total_bytes,
        "last chunk short of the body (checked by from_wire)"
    );
    let body = std::mem::replace(&mut held.body, AlignedVec::new());
    *assembly = None;
    ChunkVerdict::Complete(meta, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: usize) -> Rc<AlignedVec> {
        let mut body = AlignedVec::new();
        body.extend_from_slice(&(0..bytes).map(|at| at as u8).collect::<Vec<u8>>());
        Rc::new(body)
    }

    #[test]
    fn chunks_reassemble_despite_duplicates_and_losses() {
        let meta = SnapshotMeta { index: 9, term: 2 };
        let original = body(25);
        let mut send = SnapshotSend::new(meta, original.clone());
        let mut assembly = None;
        let first = send.chunk(10);
        let receive = |assembly: &mut Option<SnapshotAssembly>, chunk: &Chunk| {
            receive_chunk(
                assembly,
                3,
                chunk.meta,
                chunk.total_bytes,
                chunk.offset,
                &chunk.data,
                chunk.last,
            )
        };
        assert!(matches!(
            receive(&mut assembly, &first),
            ChunkVerdict::Received { next_offset: 10 }
        ));
        // A duplicate of the first chunk changes nothing.
        assert!(matches!(
            receive(&mut assembly, &first),
            ChunkVerdict::Received { next_offset: 10 }
        ));
        assert!(send.received(10));
        assert!(!send.received(10), "a duplicated answer sends nothing new");
        let second = send.chunk(10);
        assert!(send.received(20));
        let third = send.chunk(10);
        assert!(third.last);
        // The second chunk is lost: the third is refused with where to resume.
        assert!(matches!(
            receive(&mut assembly, &third),
            ChunkVerdict::Received { next_offset: 10 }
        ));
        assert!(matches!(
            receive(&mut assembly, &second),
            ChunkVerdict::Received { next_offset: 20 }
        ));
        let ChunkVerdict::Complete(got_meta, got_body) = receive(&mut assembly, &third) else {
            panic!("body complete");
        };
        assert_eq!((got_meta, got_body.as_slice()), (meta, original.as_slice()));
    }

    #[test]
    fn oversized_bodies_are_refused_before_allocation() {
        let mut assembly = None;
        let meta = SnapshotMeta { index: 1, term: 1 };
        let verdict = receive_chunk(
            &mut assembly,
            1,
            meta,
            RAFT_SNAPSHOT_BODY_BYTES_MAX + 1,
            0,
            &[],
            false,
        );
        assert!(matches!(verdict, ChunkVerdict::Refused));
        assert!(assembly.is_none());
    }

    #[test]
    fn a_chunk_of_another_snapshot_restarts_the_assembly() {
        let mut assembly = None;
        let old = SnapshotMeta { index: 1, term: 1 };
        let new = SnapshotMeta { index: 5, term: 1 };
        receive_chunk(&mut assembly, 1, old, 10, 0, &[1; 4], false);
        let verdict = receive_chunk(&mut assembly, 1, new, 10, 4, &[1; 4], false);
        assert!(matches!(verdict, ChunkVerdict::Received { next_offset: 0 }));
        let verdict = receive_chunk(&mut assembly, 1, new, 10, 0, &[1; 4], false);
        assert!(matches!(verdict, ChunkVerdict::Received { next_offset: 4 }));
    }
}
