//! A core's randomized election timeout and the leader lease it honours,
//! written once for Raft and Paxos: a pseudo-random stream of its own (the
//! core's seed, salted per protocol), a timeout drawn from [t, 2t) ticks
//! at every reset ([`CoreConfig::randomized_timeout_ticks`]), and whether
//! a check-quorum core is inside a leader's lease.

use crate::consensus::CoreConfig;

/// The randomized election timeout of one core.
#[derive(Clone, Debug)]
pub struct ElectionTimer {
    rng_state: u64,
    timeout_ticks: u64,
}

impl ElectionTimer {
    /// A timer whose stream starts at `seed ^ salt`; call
    /// [`ElectionTimer::reset`] before the first tick.
    pub fn new(seed: u64, salt: u64) -> ElectionTimer {
        ElectionTimer {
            rng_state: seed ^ salt,
            timeout_ticks: 0,
        }
    }

    /// Draw the next timeout, in [t, 2t) ticks.
    pub fn reset(&mut self, cfg: &CoreConfig) {
        let random = crate::splitmix::splitmix64(&mut self.rng_state);
        self.timeout_ticks = cfg.randomized_timeout_ticks(random);
    }

    /// The timeout drawn last, in ticks.
    pub fn timeout_ticks(&self) -> u64 {
        self.timeout_ticks
    }
}

/// Whether a core is inside a leader's lease: with check-quorum on, a core
/// that knows a leader (or has just restarted, and may have promised one a
/// lease it no longer remembers) and heard from it within an election
/// timeout refuses to help depose it.
pub fn in_lease(cfg: &CoreConfig, knows_leader: bool, election_elapsed_ticks: u64) -> bool {
    cfg.check_quorum && knows_leader && election_elapsed_ticks < cfg.election_timeout_ticks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{GroupId, NodeId};

    fn config() -> CoreConfig {
        let mut cfg = CoreConfig::new(NodeId(1), GroupId(0), vec![NodeId(1)]);
        cfg.election_timeout_ticks = 10;
        cfg.check_quorum = true;
        cfg
    }

    #[test]
    fn timeouts_are_drawn_in_one_to_two_election_timeouts_and_vary() {
        let cfg = config();
        let mut timer = ElectionTimer::new(7, 0x9E37_79B9_7F4A_7C15);
        let drawn: Vec<u64> = (0..50)
            .map(|_| {
                timer.reset(&cfg);
                timer.timeout_ticks()
            })
            .collect();
        assert!(drawn.iter().all(|t| (10..20).contains(t)), "{drawn:?}");
        assert!(drawn.iter().any(|t| *t != drawn[0]), "{drawn:?}");
    }

    #[test]
    fn the_lease_holds_only_with_check_quorum_a_leader_and_time_left() {
        let mut cfg = config();
        assert!(in_lease(&cfg, true, 9));
        assert!(!in_lease(&cfg, true, 10), "an election timeout passed");
        assert!(!in_lease(&cfg, false, 0), "no leader known");
        cfg.check_quorum = false;
        assert!(!in_lease(&cfg, true, 0), "no lease without check-quorum");
    }
}
