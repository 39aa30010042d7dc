//! DeliveryFault: a per-message fault of the simulated network that follows
//! leadership. For a window after a node becomes leader, the messages it
//! sends in that term reach only a seeded subset of its peers (the others
//! are dropped: a one-way cut from the new leader), and when the window
//! ends the leader may crash (restarted later, as the nemesis's crashes
//! are).
//!
//! Why: the other faults change links on their own schedule, so a new
//! leader's first append almost always reaches every peer its side of the
//! partition holds. Cases that need a leader's first append to reach only
//! some peers before the leader dies (a log truncated on one node while
//! another still holds the entry; issue 21 finding 1) were out of reach.
//!
//! The fault is data ([`DeliveryFaultPlan`]), drawn from a stream of its own
//! (the seed xor a constant), so that a seed without it replays the world's
//! draws bit for bit as before. Protocol-independent: it looks only at the
//! sender, the receiver and the message's term (a Paxos ballot's term).
//! What it did is counted ([`DeliveryFaultStats`]) for the sweeps' summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use super::rng::SimRng;
use crate::consensus::{Message, NodeId, Term};

/// What the fault does, as numbers (a run's plan; [`DeliveryFaultPlan::off`]
/// does nothing).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DeliveryFaultPlan {
    /// Chance that a new leader gets a window.
    pub leader_prob: f64,
    /// The window's length in virtual µs, drawn from `window_us.0 ..=
    /// window_us.1`.
    pub window_us: (u64, u64),
    /// How many peers the window's messages reach: uniform in `0 ..=
    /// max_reach` (at most the peers there are), which ones drawn at random.
    pub max_reach: usize,
    /// Chance that the leader crashes when its window ends.
    pub crash_prob: f64,
}

impl DeliveryFaultPlan {
    /// No windows.
    pub fn off() -> DeliveryFaultPlan {
        DeliveryFaultPlan {
            leader_prob: 0.0,
            window_us: (0, 0),
            max_reach: 0,
            crash_prob: 0.0,
        }
    }

    /// Every new leader is cut off from all but at most one peer for 50 to
    /// 400 ms, long enough for an election elsewhere, and half of them crash
    /// at the end: leader changes in which a log is truncated on some nodes
    /// only, as often as the fault can make them.
    pub fn narrow() -> DeliveryFaultPlan {
        DeliveryFaultPlan {
            leader_prob: 1.0,
            window_us: (50_000, 400_000),
            max_reach: 1,
            crash_prob: 0.5,
        }
    }

    /// The plan of a seed that does not name one: off on two thirds of the
    /// seeds; on the others, a window for some new leaders with a reach and
    /// a crash chance drawn from the seed.
    pub fn random(rng: &mut SimRng) -> DeliveryFaultPlan {
        if !rng.chance(1.0 / 3.0) {
            return DeliveryFaultPlan::off();
        }
        let longest_us = rng.pick(&[100_000, 400_000]);
        DeliveryFaultPlan {
            leader_prob: rng.pick(&[0.25, 0.5, 1.0]),
            window_us: (20_000, longest_us),
            max_reach: rng.pick(&[1, 2, 8]),
            crash_prob: rng.pick(&[0.0, 0.25, 0.5]),
        }
    }

    pub fn is_off(&self) -> bool {
        self.leader_prob <= 0.0
    }
}

/// `leader=P,window_us=A-B,reach=K,crash=Q` (what replay commands carry),
/// or `off`.
impl fmt::Display for DeliveryFaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_off() {
            return write!(f, "off");
        }
        write!(
            f,
            "leader={},window_us={}-{},reach={},crash={}",
            self.leader_prob, self.window_us.0, self.window_us.1, self.max_reach, self.crash_prob
        )
    }
}

/// Parses what [`DeliveryFaultPlan`]'s Display writes; an error names the
/// part that is wrong.
impl FromStr for DeliveryFaultPlan {
    type Err = String;

    fn from_str(text: &str) -> Result<DeliveryFaultPlan, String> {
        let text = text.trim();
        match text {
            "off" => return Ok(DeliveryFaultPlan::off()),
            "narrow" => return Ok(DeliveryFaultPlan::narrow()),
            _ => {}
        }
        let mut plan = DeliveryFaultPlan::off();
        let mut seen = BTreeSet::new();
        for part in text.split(',') {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} in {text:?} is not name=value"))?;
            let bad = |what: &str| format!("{name}={value:?} in {text:?}: {what}");
            let probability = |v: &str| -> Result<f64, String> {
                v.parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| bad("not a probability from 0 to 1"))
            };
            match name.trim() {
                "leader" => plan.leader_prob = probability(value)?,
                "crash" => plan.crash_prob = probability(value)?,
                "reach" => plan.max_reach = value.parse().map_err(|_| bad("not a count"))?,
                "window_us" => {
                    let (a, b) = value
                        .split_once('-')
                        .ok_or_else(|| bad("not a range A-B"))?;
                    let a: u64 = a.parse().map_err(|_| bad("A is not a number"))?;
                    let b: u64 = b.parse().map_err(|_| bad("B is not a number"))?;
                    if a > b {
                        return Err(bad("A is larger than B"));
                    }
                    plan.window_us = (a, b);
                }
                other => {
                    return Err(format!(
                        "{other:?} in {text:?} is not leader, window_us, reach or crash"
                    ))
                }
            }
            if !seen.insert(name.trim().to_string()) {
                return Err(format!("{name} given twice in {text:?}"));
            }
        }
        for needed in ["leader", "window_us", "reach", "crash"] {
            if !seen.contains(needed) {
                return Err(format!("{text:?} lacks {needed}="));
            }
        }
        Ok(plan)
    }
}

/// What the fault did in a run (or a sweep, added up).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeliveryFaultStats {
    /// Windows opened (new leaders whose messages reached only some peers).
    pub windows: u64,
    /// Of those, windows that reached no peer at all.
    pub windows_reaching_none: u64,
    /// Messages dropped because their receiver was outside the window.
    pub messages_withheld: u64,
    /// Leaders crashed at their window's end.
    pub crashes: u64,
}

impl DeliveryFaultStats {
    pub fn add(&mut self, other: &DeliveryFaultStats) {
        self.windows += other.windows;
        self.windows_reaching_none += other.windows_reaching_none;
        self.messages_withheld += other.messages_withheld;
        self.crashes += other.crashes;
    }
}

/// One leader's window.
#[derive(Clone, Debug)]
struct Window {
    term: Term,
    until_us: u64,
    reach: BTreeSet<NodeId>,
}

/// A window just opened: when it ends, and whether its leader crashes then
/// (if it still runs that term).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowEnd {
    pub leader: NodeId,
    pub term: Term,
    /// The peers the window's messages reach.
    pub reach: Vec<NodeId>,
    /// Virtual µs from now until the window ends.
    pub after_us: u64,
    pub crash: bool,
}

/// The fault's state in one run.
#[derive(Clone, Debug)]
pub struct DeliveryFault {
    plan: DeliveryFaultPlan,
    rng: SimRng,
    windows: BTreeMap<NodeId, Window>,
    stats: DeliveryFaultStats,
}

/// The fault's own random stream: its draws never shift the world's.
const STREAM: u64 = 0xC6u64 << 56;

impl DeliveryFault {
    /// The fault of seed `seed`: `plan`, or (None) drawn from the seed.
    pub fn new(seed: u64, plan: Option<DeliveryFaultPlan>) -> DeliveryFault {
        let mut rng = SimRng::new(seed ^ STREAM);
        let plan = plan.unwrap_or_else(|| DeliveryFaultPlan::random(&mut rng));
        DeliveryFault {
            plan,
            rng,
            windows: BTreeMap::new(),
            stats: DeliveryFaultStats::default(),
        }
    }

    pub fn plan(&self) -> DeliveryFaultPlan {
        self.plan
    }

    pub fn stats(&self) -> &DeliveryFaultStats {
        &self.stats
    }

    /// `leader` became leader of `term` at `now_us`; `peers` are the other
    /// node ids in play. Maybe opens a window; returns when it ends.
    pub fn leader_elected(
        &mut self,
        leader: NodeId,
        term: Term,
        peers: &[NodeId],
        now_us: u64,
    ) -> Option<WindowEnd> {
        if self.plan.is_off() || !self.rng.chance(self.plan.leader_prob) {
            return None;
        }
        let mut peers: Vec<NodeId> = peers.iter().copied().filter(|&p| p != leader).collect();
        self.rng.shuffle(&mut peers);
        let most = self.plan.max_reach.min(peers.len());
        let reached = self.rng.below(most as u64 + 1) as usize;
        let reach: BTreeSet<NodeId> = peers.into_iter().take(reached).collect();
        let (shortest, longest) = self.plan.window_us;
        let after_us = self.rng.range(shortest, longest + 1);
        let crash = self.rng.chance(self.plan.crash_prob);
        self.stats.windows += 1;
        self.stats.windows_reaching_none += u64::from(reach.is_empty());
        let reached: Vec<NodeId> = reach.iter().copied().collect();
        self.windows.insert(
            leader,
            Window {
                term,
                until_us: now_us + after_us,
                reach,
            },
        );
        Some(WindowEnd {
            leader,
            term,
            reach: reached,
            after_us,
            crash,
        })
    }

    /// Whether `msg`, sent at `now_us`, is dropped: its sender has an open
    /// window for the message's term and the receiver is outside it.
    pub fn withholds(&mut self, msg: &Message, now_us: u64) -> bool {
        let Some(w) = self.windows.get(&msg.from) else {
            return false;
        };
        if now_us >= w.until_us || msg.payload.term() != w.term || w.reach.contains(&msg.to) {
            return false;
        }
        self.stats.messages_withheld += 1;
        true
    }

    /// The window ended with a crash of its leader.
    pub fn crashed(&mut self) {
        self.stats.crashes += 1;
    }

    /// A virtual-µs delay before a crashed leader restarts.
    pub fn restart_after_us(&mut self) -> u64 {
        self.rng.range(20_000, 400_000)
    }

    /// The faults end: every window closes.
    pub fn heal(&mut self) {
        self.windows.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{GroupId, Payload};
    use crate::raft::message::RaftMessage;

    fn message(from: u64, to: u64, term: u64) -> Message {
        Message {
            group: GroupId(1),
            from: NodeId(from),
            to: NodeId(to),
            payload: Payload::Raft(RaftMessage::TimeoutNow { term: Term(term) }),
        }
    }

    #[test]
    fn a_window_lets_through_only_its_reach_in_its_term_until_it_ends() {
        let peers: Vec<NodeId> = (1..=5).map(NodeId).collect();
        let mut fault = DeliveryFault::new(3, Some(DeliveryFaultPlan::narrow()));
        let end = fault
            .leader_elected(NodeId(1), Term(4), &peers, 1_000)
            .expect("narrow opens a window for every leader");
        assert!((50_000..=400_000).contains(&end.after_us));
        let through: Vec<u64> = (2..=5)
            .filter(|&to| !fault.withholds(&message(1, to, 4), 1_000))
            .collect();
        assert!(through.len() <= 1, "reach at most one peer: {through:?}");
        assert_eq!(fault.stats().messages_withheld, 4 - through.len() as u64);
        for to in 2..=5 {
            assert!(
                !fault.withholds(&message(1, to, 5), 1_000),
                "another term's messages pass"
            );
            assert!(
                !fault.withholds(&message(1, to, 4), 1_000 + end.after_us),
                "the window has ended"
            );
            assert!(
                !fault.withholds(&message(to, 1, 4), 1_000),
                "the cut is one way"
            );
        }
        fault.heal();
        assert!(!fault.withholds(&message(1, 2, 4), 1_000));
    }

    #[test]
    fn off_opens_no_window() {
        let mut fault = DeliveryFault::new(1, Some(DeliveryFaultPlan::off()));
        let peers = [NodeId(1), NodeId(2), NodeId(3)];
        assert_eq!(fault.leader_elected(NodeId(1), Term(1), &peers, 0), None);
        assert!(!fault.withholds(&message(1, 2, 1), 0));
        assert_eq!(fault.stats(), &DeliveryFaultStats::default());
    }

    #[test]
    fn a_plan_reads_back_what_it_prints_and_bad_text_is_named() {
        for plan in [DeliveryFaultPlan::off(), DeliveryFaultPlan::narrow()] {
            let text = plan.to_string();
            assert_eq!(text.parse::<DeliveryFaultPlan>(), Ok(plan), "{text}");
        }
        let mut rng = SimRng::new(9);
        for _ in 0..50 {
            let plan = DeliveryFaultPlan::random(&mut rng);
            assert_eq!(plan.to_string().parse::<DeliveryFaultPlan>(), Ok(plan));
        }
        let err = "leader=2,window_us=1-2,reach=1,crash=0"
            .parse::<DeliveryFaultPlan>()
            .expect_err("2 is no probability");
        assert!(err.contains("leader=\"2\""), "{err}");
        let err = "leader=1,window_us=5-2,reach=1,crash=0"
            .parse::<DeliveryFaultPlan>()
            .expect_err("an empty range");
        assert!(err.contains("A is larger than B"), "{err}");
        let err = "leader=1,reach=1,crash=0"
            .parse::<DeliveryFaultPlan>()
            .expect_err("no window");
        assert!(err.contains("lacks window_us="), "{err}");
    }
}
