//! Jump consistent hash (Lamping and Veach, "A Fast, Minimal Memory,
//! Consistent Hash Algorithm", 2014), the reference point in benchmarks.
//!
//! It balances almost perfectly and needs no memory, but buckets are
//! numbered 0..n: only the last bucket can be removed, and there are no
//! weights or replica walks. The ring does not use it.

/// The bucket in `0..buckets` of `key`; 0 when `buckets` is 0 or 1.
/// Growing `buckets` by one moves a key only into the new bucket.
#[inline]
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Values of the paper's C++ code, as ClickHouse's
    /// `jumpConsistentHash` tests record them.
    #[test]
    fn jump_hash_matches_the_reference_values() {
        assert_eq!(jump_hash(1, 1), 0);
        assert_eq!(jump_hash(42, 57), 43);
        assert_eq!(jump_hash(256, 1024), 520);
        assert_eq!(jump_hash(3_735_883_980, 1), 0);
        assert_eq!(jump_hash(3_735_883_980, 666), 361);
        assert_eq!(jump_hash(16_045_690_984_833_335_023, 255), 237);
    }

    proptest! {
        #[test]
        fn growing_moves_keys_only_into_the_new_bucket(key in any::<u64>(), n in 1u32..2000) {
            let (a, b) = (jump_hash(key, n), jump_hash(key, n + 1));
            prop_assert!(a < n);
            prop_assert!(b == a || b == n);
        }
    }
}
