//! A small seeded pseudo-random generator, so that a run replays bit-identically from its
//! seed (STYLE.md example 3) without pulling in a randomness crate.
//!
//! SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
//! 2014): 64 bits of state, passes BigCrush, and any seed (zero included) is fine. It is
//! not cryptographic and does not need to be: it picks SKUs, customers and order ids.

/// Added to the state at every step (the golden ratio in 64-bit fixed point).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Most draws `below` makes before accepting a (negligibly) biased value; keeps the loop
/// bounded even though a rejection happens with probability below `bound / 2^64`.
const REJECTION_DRAWS_MAX: u32 = 64;

/// SplitMix64 generator. One per thread; it is cheap to copy and to fork.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// Generator whose sequence is fixed by `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// Generator for sub-stream `stream` of `seed`: connection `n` of a run draws from
    /// stream `n`, so each connection's orders depend only on the seed and its index.
    pub fn stream(seed: u64, stream: u64) -> SplitMix64 {
        let mut mixer = SplitMix64::new(seed ^ stream.wrapping_mul(GAMMA).rotate_left(17));
        // Two rounds decorrelate neighbouring (seed, stream) pairs.
        let first = mixer.next_u64();
        SplitMix64::new(first ^ mixer.next_u64().rotate_left(32) ^ stream)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    /// Next 128 random bits (two draws, high half first).
    pub fn next_u128(&mut self) -> u128 {
        let high = u128::from(self.next_u64());
        let low = u128::from(self.next_u64());
        (high << 64) | low
    }

    /// Uniform value in `0..bound` (Lemire's multiply-and-reject method). `bound > 0`.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0) has no value to return");
        let mut product = u128::from(self.next_u64()) * u128::from(bound);
        let mut low = product as u64;
        if low < bound {
            let threshold = bound.wrapping_neg() % bound;
            let mut draws = 1;
            while low < threshold && draws < REJECTION_DRAWS_MAX {
                product = u128::from(self.next_u64()) * u128::from(bound);
                low = product as u64;
                draws += 1;
            }
        }
        (product >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // Output of the reference splitmix64.c seeded with 1234567.
        let mut random = SplitMix64::new(1_234_567);
        let expected = [
            6_457_827_717_110_365_317,
            3_203_168_211_198_807_973,
            9_817_491_932_198_370_423,
            4_593_380_528_125_082_431,
            16_408_922_859_458_223_821,
        ];
        for value in expected {
            assert_eq!(random.next_u64(), value);
        }
    }

    #[test]
    fn same_seed_same_sequence_and_streams_differ() {
        let mut first = SplitMix64::stream(42, 3);
        let mut again = SplitMix64::stream(42, 3);
        let mut other = SplitMix64::stream(42, 4);
        let a: Vec<u64> = (0..8).map(|_| first.next_u64()).collect();
        let b: Vec<u64> = (0..8).map(|_| again.next_u64()).collect();
        let c: Vec<u64> = (0..8).map(|_| other.next_u64()).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut random = SplitMix64::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            let value = random.below(10);
            assert!(value < 10);
            seen[value as usize] += 1;
        }
        for count in seen {
            assert!((800..1200).contains(&count), "skewed: {seen:?}");
        }
        assert_eq!(random.below(1), 0);
        assert!(random.below(u64::MAX) < u64::MAX);
    }

    #[test]
    fn u128_uses_both_halves() {
        let mut random = SplitMix64::new(9);
        let value = random.next_u128();
        assert_ne!(value >> 64, 0);
        assert_ne!(value & u128::from(u64::MAX), 0);
    }
}
