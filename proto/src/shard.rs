//! The stable key → shard map (DESIGN.md §2), shared by the daemon and every client.
//!
//! `shard = fnv1a64(little-endian bytes of the key) mod shard_count`. SKUs are u64 keys
//! (8 bytes), order ids u128 keys (16 bytes). This function is part of the protocol: a
//! client in another language must compute the same value, so it never changes.

/// Number of a shard, `0..shard_count`.
pub type ShardId = u32;

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64-bit, over `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Shard that owns the item with this SKU.
pub fn shard_of_sku(sku: u64, shard_count: u32) -> ShardId {
    assert!(shard_count > 0);
    (fnv1a64(&sku.to_le_bytes()) % u64::from(shard_count)) as ShardId
}

/// Shard that owns (and coordinates) the order with this id.
pub fn shard_of_order(order_id: u128, shard_count: u32) -> ShardId {
    assert!(shard_count > 0);
    (fnv1a64(&order_id.to_le_bytes()) % u64::from(shard_count)) as ShardId
}

/// Core that owns a shard on every node: `shard mod cores`.
pub fn core_of_shard(shard: ShardId, core_count: u32) -> u32 {
    assert!(core_count > 0);
    shard % core_count
}

/// Makes an order id that lands on the shard of `first_sku`, so that an order whose lines
/// all live on that shard commits in one step. `next_random` supplies fresh 128-bit
/// values; zero is never returned (zero is not a valid order id).
pub fn colocated_order_id(
    first_sku: u64,
    shard_count: u32,
    mut next_random: impl FnMut() -> u128,
) -> u128 {
    let target = shard_of_sku(first_sku, shard_count);
    // Each draw hits the target with probability 1/shard_count; the bound keeps the loop
    // finite even with a broken random source, in which case any id still works.
    let mut candidate = next_random().max(1);
    for _ in 0..(64 * shard_count) {
        if shard_of_order(candidate, shard_count) == target {
            return candidate;
        }
        candidate = next_random().max(1);
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_reference_values() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn colocated_ids_land_on_the_sku_shard() {
        let mut state = 0x1234_5678_u128;
        for sku in 0..200u64 {
            let id = colocated_order_id(sku, 8, || {
                state = state
                    .wrapping_mul(0x2545_f491_4f6c_dd1d)
                    .wrapping_add(0x9e37);
                state
            });
            assert_eq!(shard_of_order(id, 8), shard_of_sku(sku, 8));
        }
    }

    #[test]
    fn spread_is_even_enough() {
        let mut counts = [0u32; 8];
        for sku in 0..8000u64 {
            counts[shard_of_sku(sku, 8) as usize] += 1;
        }
        for count in counts {
            assert!(
                (700..1300).contains(&count),
                "uneven shard spread: {counts:?}"
            );
        }
    }
}
