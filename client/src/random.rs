//! A small xorshift generator for order ids and retry jitter. Not cryptographic: order
//! ids only need to be unique with overwhelming probability, not unpredictable.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Distinguishes generators made in the same process within the clock's resolution.
static INSTANCE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// xorshift64* (Vigna), seeded from the clock, the process id and an instance counter.
#[derive(Debug, Clone)]
pub(crate) struct Xorshift {
    state: u64,
}

impl Xorshift {
    /// A generator seeded so that two processes, or two clients in one process, differ.
    pub(crate) fn from_entropy() -> Xorshift {
        let clock_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos() as u64);
        let instance = INSTANCE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let seed = clock_ns
            ^ (u64::from(std::process::id()) << 32)
            ^ instance.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Xorshift::from_seed(seed)
    }

    /// A generator with a fixed seed (tests).
    pub(crate) fn from_seed(seed: u64) -> Xorshift {
        // Scramble with splitmix64 once so that close seeds give unrelated streams;
        // the state must never be zero.
        let mut mixed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^= mixed >> 31;
        Xorshift {
            state: mixed.max(1),
        }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn next_u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// Uniform enough in `0..=bound` for jitter.
    pub(crate) fn below_or_equal(&mut self, bound: u64) -> u64 {
        match bound.checked_add(1) {
            Some(modulus) => self.next_u64() % modulus,
            None => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generators_made_together_differ() {
        let mut first = Xorshift::from_entropy();
        let mut second = Xorshift::from_entropy();
        assert_ne!(first.next_u128(), second.next_u128());
    }

    #[test]
    fn a_seed_replays_its_stream() {
        let mut first = Xorshift::from_seed(7);
        let mut second = Xorshift::from_seed(7);
        for _ in 0..100 {
            assert_eq!(first.next_u64(), second.next_u64());
        }
        assert!(Xorshift::from_seed(7).below_or_equal(10) <= 10);
    }
}
