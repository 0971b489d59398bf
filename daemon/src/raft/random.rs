//! The seeded randomness of a group: election timeouts only.
//!
//! The core reads no clock and no entropy; the shell gives each `RaftNode` a seed (in the
//! daemon derived from the node and shard ids, in the simulator from the run's seed), so a
//! run replays bit-identically from its seeds.

/// SplitMix64: tiny, fast, and good enough to spread election timeouts.
#[derive(Debug, Clone)]
pub(crate) struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// Generator for `seed`.
    pub(crate) fn new(seed: u64) -> SeededRandom {
        SeededRandom { state: seed }
    }

    /// Next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in `low..high` (`low < high`).
    pub(crate) fn in_range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low < high, "empty random range {low}..{high}");
        low + self.next_u64() % (high - low)
    }
}

#[cfg(test)]
mod tests {
    use super::SeededRandom;

    #[test]
    fn same_seed_same_sequence_and_values_stay_in_range() {
        let mut first = SeededRandom::new(7);
        let mut second = SeededRandom::new(7);
        for _ in 0..1000 {
            let value = first.in_range(10, 20);
            assert_eq!(value, second.in_range(10, 20));
            assert!((10..20).contains(&value));
        }
    }
}
