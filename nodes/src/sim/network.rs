//! SimNetwork: what the simulated network does to one message: drop it,
//! delay it, duplicate it; partitions cut links both ways. Reordering comes
//! from independent random delays. Protocol-independent.

use std::collections::BTreeSet;

use super::rng::SimRng;
use crate::consensus::NodeId;

/// Fault rates of one run (drawn from the seed).
#[derive(Clone, Debug)]
pub struct NetworkFaults {
    pub drop_prob: f64,
    pub duplicate_prob: f64,
    pub delay_min_us: u64,
    pub delay_max_us: u64,
    /// Chance of a long delay (up to `long_delay_max_us`): reorders messages.
    pub long_delay_prob: f64,
    pub long_delay_max_us: u64,
}

impl NetworkFaults {
    pub fn none() -> NetworkFaults {
        NetworkFaults {
            drop_prob: 0.0,
            duplicate_prob: 0.0,
            delay_min_us: 100,
            delay_max_us: 1_000,
            long_delay_prob: 0.0,
            long_delay_max_us: 1_000,
        }
    }

    pub fn random(rng: &mut SimRng) -> NetworkFaults {
        NetworkFaults {
            drop_prob: rng.pick(&[0.0, 0.01, 0.05, 0.1]),
            duplicate_prob: rng.pick(&[0.0, 0.01, 0.05]),
            delay_min_us: 100,
            delay_max_us: rng.pick(&[1_000, 3_000, 10_000]),
            long_delay_prob: rng.pick(&[0.0, 0.01, 0.05]),
            long_delay_max_us: rng.pick(&[60_000, 300_000]),
        }
    }
}

/// Links and fault rates.
#[derive(Clone, Debug)]
pub struct SimNetwork {
    pub faults: NetworkFaults,
    cut: BTreeSet<(NodeId, NodeId)>,
}

impl SimNetwork {
    pub fn new(faults: NetworkFaults) -> SimNetwork {
        SimNetwork {
            faults,
            cut: BTreeSet::new(),
        }
    }

    /// Delays (µs) of each copy that will arrive: none if dropped or cut.
    pub fn plan(&self, rng: &mut SimRng, from: NodeId, to: NodeId) -> Vec<u64> {
        if self.cut.contains(&(from, to)) || rng.chance(self.faults.drop_prob) {
            return Vec::new();
        }
        let copies = if rng.chance(self.faults.duplicate_prob) {
            2
        } else {
            1
        };
        (0..copies)
            .map(|_| {
                if rng.chance(self.faults.long_delay_prob) {
                    rng.range(self.faults.delay_min_us, self.faults.long_delay_max_us + 1)
                } else {
                    rng.range(self.faults.delay_min_us, self.faults.delay_max_us + 1)
                }
            })
            .collect()
    }

    /// Cut every link between different sides.
    pub fn partition(&mut self, sides: &[Vec<NodeId>]) {
        self.cut.clear();
        for (i, a) in sides.iter().enumerate() {
            for (j, b) in sides.iter().enumerate() {
                if i != j {
                    for &x in a {
                        for &y in b {
                            self.cut.insert((x, y));
                        }
                    }
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_cuts_both_ways_and_heal_restores() {
        let mut net = SimNetwork::new(NetworkFaults::none());
        let mut rng = SimRng::new(1);
        net.partition(&[vec![NodeId(1)], vec![NodeId(2), NodeId(3)]]);
        assert!(net.plan(&mut rng, NodeId(1), NodeId(2)).is_empty());
        assert!(net.plan(&mut rng, NodeId(3), NodeId(1)).is_empty());
        assert_eq!(
            net.plan(&mut rng, NodeId(2), NodeId(3)).len(),
            1,
            "same side still talks"
        );
        net.heal();
        assert_eq!(net.plan(&mut rng, NodeId(1), NodeId(2)).len(), 1);
    }

    #[test]
    fn delays_stay_within_the_configured_bounds() {
        let net = SimNetwork::new(NetworkFaults::none());
        let mut rng = SimRng::new(2);
        for _ in 0..1000 {
            for d in net.plan(&mut rng, NodeId(1), NodeId(2)) {
                assert!((100..=1_000).contains(&d));
            }
        }
    }
}
