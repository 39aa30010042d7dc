//! splitmix64: the crate's one pseudo-random step (Steele, Lea and Flood,
//! "Fast splittable pseudorandom number generators", 2014).
//!
//! Deterministic and dependency-free: the cores' election timeouts and the
//! simulator's `SimRng` draw from it, so a seed replays the same on every
//! platform and every version of every crate.

/// Advances `state` and returns the next well-mixed 64-bit value.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::splitmix64;

    #[test]
    fn the_stream_is_the_published_one() {
        // The reference implementation's first outputs for seed 0
        // (Vigna's splitmix64.c).
        let mut s = 0u64;
        assert_eq!(splitmix64(&mut s), 0xE220_A839_7B1D_CDAF);
        assert_eq!(splitmix64(&mut s), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(splitmix64(&mut s), 0x06C4_5D18_8009_454F);
    }
}
