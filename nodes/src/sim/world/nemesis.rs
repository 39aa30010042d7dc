//! The nemesis: partitions, crashes, loss, transfers, churn, and the
//! leader delivery fault's windows.

use super::*;
use crate::server::admin::AdminAnswer;

impl<C: SimCore> World<C> {
    pub(super) fn nemesis(&mut self) -> Result<(), Violation> {
        if !self.faults_on {
            return Ok(());
        }
        if self.churn && self.rng.chance(0.6) {
            self.churn_partition();
            let d = self.rng.range(20_000, 150_000);
            self.schedule(d, Ev::Nemesis);
            return Ok(());
        }
        let n = self.hosts.len();
        let roll = self.rng.below(100);
        let up: Vec<NodeId> = self
            .hosts
            .iter()
            .filter(|h| h.core.is_some())
            .map(|h| h.id)
            .collect();
        if roll < 15 {
            // A random two-sided partition.
            let mut a = Vec::new();
            let mut b = Vec::new();
            for &v in &self.pool {
                if self.rng.chance(0.5) {
                    a.push(v)
                } else {
                    b.push(v)
                }
            }
            self.stats.partitions += 1;
            self.note(7, a.len() as u64, b.len() as u64, || {
                format!("partition {a:?} | {b:?}")
            });
            self.net.partition(&[a, b]);
        } else if roll < 25 {
            // Cut the leader off with a minority: the classic stale-read setup.
            let leader = self.first_leader();
            if let Some(l) = leader {
                let mut others: Vec<NodeId> =
                    self.pool.iter().copied().filter(|&v| v != l).collect();
                self.rng.shuffle(&mut others);
                let minority = (n - 1) / 2;
                let keep = self.rng.below(minority as u64 + 1) as usize;
                let mut a = vec![l];
                a.extend(others.drain(..keep));
                self.stats.partitions += 1;
                self.note(7, a.len() as u64, others.len() as u64, || {
                    format!("isolate leader: {a:?} | {others:?}")
                });
                self.net.partition(&[a, others]);
            }
        } else if roll < 40 {
            self.net.heal();
            self.note(8, 0, 0, || "heal".into());
        } else if roll < 58 {
            // Half the time crash the leader: leader churn is where the
            // subtle cases (§5.4.2, Fig. 8) live.
            let leader = self.first_leader();
            let victim = match leader {
                Some(l) if self.rng.chance(0.5) => Some(l),
                _ => up
                    .get(self.rng.below(up.len().max(1) as u64) as usize)
                    .copied(),
            };
            if let Some(victim) = victim {
                self.crash(victim);
                let d = self.rng.range(20_000, 400_000);
                self.schedule(d, Ev::Restart(victim));
            }
        } else if roll < 64 {
            // Power loss of a majority (or everyone) at once.
            let k = if self.rng.chance(0.5) { n } else { n / 2 + 1 };
            let mut victims = self.pool.clone();
            self.rng.shuffle(&mut victims);
            for &v in victims.iter().take(k) {
                self.crash(v);
                let d = self.rng.range(20_000, 300_000);
                self.schedule(d, Ev::Restart(v));
            }
        } else if roll < 74 {
            let leader = self.first_leader();
            if let Some(l) = leader {
                let to = self.rng.pick(&self.pool);
                // As a `transfer-leader` request to the node is answered
                // (server/admin.rs); a refused one changes nothing.
                let ok = self.transfer_leader(l, to) == AdminAnswer::Transferred;
                self.stats.transfers += 1;
                self.note(9, l.0, to.0, || {
                    format!("transfer leader {l} -> {to}: {ok}")
                });
                self.post_step(l)?;
            }
        }
        let d = self.rng.range(30_000, 400_000);
        self.schedule(d, Ev::Nemesis);
        Ok(())
    }

    /// Leadership churn ([`SimOptions::churn`]): a new partition every 20
    /// to 150 ms (two or three random sides, or the leader with one peer),
    /// now and then healed. Leaders are elected on one side and their
    /// appends reach whoever the next partition puts beside them, and the
    /// deposed leaders stay up with what they hold pending: the scenario
    /// of issue 21's finding 1 (a leader that proposes again at an index
    /// whose entry another node may still commit).
    pub(super) fn churn_partition(&mut self) {
        let roll = self.rng.below(100);
        if roll < 70 {
            let count = if self.rng.chance(0.3) { 3 } else { 2 };
            let mut sides = vec![Vec::new(); count];
            for &v in &self.pool {
                sides[self.rng.below(count as u64) as usize].push(v);
            }
            self.stats.partitions += 1;
            self.note(7, count as u64, 1, || format!("churn: partition {sides:?}"));
            self.net.partition(&sides);
        } else if roll < 85 {
            let Some(l) = self.first_leader() else {
                return;
            };
            let others: Vec<NodeId> = self.pool.iter().copied().filter(|&v| v != l).collect();
            let peer = self.rng.pick(&others);
            let rest: Vec<NodeId> = others.into_iter().filter(|&v| v != peer).collect();
            self.stats.partitions += 1;
            self.note(7, l.0, peer.0, || {
                format!("churn: isolate leader {l} with {peer}")
            });
            self.net.partition(&[vec![l, peer], rest]);
        } else {
            self.net.heal();
            self.note(8, 1, 0, || "churn: heal".into());
        }
    }

    // ----- membership -----

    /// The first live node (in host order) that believes it leads: the
    /// nemesis's target (any leader will do; a stale one is a fine victim).
    pub(super) fn first_leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .find(|h| {
                h.core
                    .as_ref()
                    .is_some_and(|c| c.status().role == Role::Leader)
            })
            .map(|h| h.id)
    }

    /// The live leader of the highest term, if any.
    pub(super) fn current_leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter_map(|h| h.core.as_ref().map(|c| (h.id, c.status())))
            .filter(|(_, st)| st.role == Role::Leader)
            .max_by_key(|(_, st)| st.term)
            .map(|(id, _)| id)
    }

    /// [`DeliveryFault`]: maybe cut a new leader off from some peers for a
    /// while, and schedule its crash at the window's end.
    pub(super) fn open_delivery_window(&mut self, id: NodeId, ss: &crate::consensus::SoftState) {
        if ss.role != Role::Leader || !self.faults_on {
            return;
        }
        let Some(end) = self
            .delivery
            .leader_elected(id, ss.term, &self.pool, self.now_us)
        else {
            return;
        };
        let inc = self.hosts[Self::idx(id)].incarnation;
        self.note(17, id.0, end.after_us, || {
            format!(
                "{id}'s messages of {} reach only {:?} for {} µs (crash at the end: {})",
                ss.term, end.reach, end.after_us, end.crash
            )
        });
        if end.crash {
            self.schedule(end.after_us, Ev::WindowCrash(id, inc, ss.term));
        }
    }
}
