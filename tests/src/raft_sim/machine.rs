//! The simulated store: a rolling digest of every entry applied, in order. Two members
//! that applied the same sequence hold the same digest; a snapshot body carries the digest
//! (padded so that it spans several InstallSnapshot chunks).

use quorder_daemon::raft::log::LogEntry;
use rkyv::util::AlignedVec;

/// Applied state of one member of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Machine {
    pub(crate) applied_index: u64,
    pub(crate) digest: u64,
}

/// A fingerprint of an entry's position and content.
pub(crate) fn fingerprint(entry: &LogEntry) -> u64 {
    let mut hash = mix(entry.term ^ mix(entry.index) ^ (u64::from(entry.kind) << 56));
    for chunk in entry.payload.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        hash = mix(hash ^ u64::from_le_bytes(word));
    }
    hash
}

fn mix(value: u64) -> u64 {
    let mut mixed = value.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    mixed ^ (mixed >> 31)
}

impl Machine {
    /// The digest after applying an entry with `fingerprint` to one with `digest`.
    pub(crate) fn chain(digest: u64, fingerprint: u64) -> u64 {
        mix(digest ^ fingerprint.rotate_left(17))
    }

    pub(crate) fn apply(&mut self, entry: &LogEntry) {
        assert_eq!(
            entry.index,
            self.applied_index + 1,
            "entries applied out of order"
        );
        self.digest = Machine::chain(self.digest, fingerprint(entry));
        self.applied_index = entry.index;
    }

    /// The snapshot body: index, digest, then filler of a size that depends on both.
    pub(crate) fn snapshot_body(&self) -> AlignedVec {
        let mut body = AlignedVec::new();
        body.extend_from_slice(&self.applied_index.to_le_bytes());
        body.extend_from_slice(&self.digest.to_le_bytes());
        let filler = (mix(self.digest ^ self.applied_index) % 200) as usize;
        body.extend_from_slice(&vec![0x5a; filler]);
        body
    }

    pub(crate) fn from_snapshot_body(body: &[u8]) -> Machine {
        if body.is_empty() {
            return Machine::default();
        }
        assert!(body.len() >= 16, "snapshot body of {} bytes", body.len());
        let word = |at: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&body[at..at + 8]);
            u64::from_le_bytes(bytes)
        };
        Machine {
            applied_index: word(0),
            digest: word(8),
        }
    }
}
