//! SimRng: the simulator's only source of randomness (splitmix64).
//!
//! Deterministic across runs and platforms: the same seed gives the same
//! numbers, so a failing seed replays exactly. No dependency on `rand`'s
//! algorithms, which may change between versions.

/// A seeded pseudo-random generator.
#[derive(Clone, Debug)]
pub struct SimRng {
    state: u64,
}

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng {
            state: seed ^ 0xD1B5_4A32_D192_ED03,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        crate::splitmix::splitmix64(&mut self.state)
    }

    /// Uniform in [0, n); n must be > 0.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no value");
        self.next_u64() % n
    }

    /// Uniform in [lo, hi); hi must be > lo.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(hi > lo, "empty range {lo}..{hi}");
        lo + self.below(hi - lo)
    }

    /// True with probability `p` (0 ≤ p ≤ 1).
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        assert!(!items.is_empty(), "pick from nothing");
        items[self.below(items.len() as u64) as usize]
    }

    /// Fisher–Yates shuffle in place (draws one number per position after
    /// the first, from the back).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// An independent generator (for a component that must not shift the
    /// main stream when it draws more or fewer numbers).
    pub fn fork(&mut self) -> SimRng {
        SimRng::new(self.next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_different_seeds_differ() {
        let a: Vec<u64> = {
            let mut r = SimRng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = SimRng::new(7);
            (0..5).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = SimRng::new(8);
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn range_and_chance_stay_in_bounds() {
        let mut r = SimRng::new(1);
        let mut hits = 0;
        for _ in 0..10_000 {
            let x = r.range(3, 9);
            assert!((3..9).contains(&x));
            if r.chance(0.25) {
                hits += 1;
            }
        }
        assert!(
            (2000..3000).contains(&hits),
            "chance(0.25) hit {hits} of 10000"
        );
        assert!(!r.chance(0.0));
        assert!(r.chance(1.0));
    }
}
