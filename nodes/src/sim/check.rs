//! SafetyMonitor: the Raft paper's safety properties (Figure 3), checked
//! after every step of the simulation, one check per property.
//!
//! "Committed" here means "applied by some node": a sound under-approximation
//! (every applied entry was committed), so a violation is always real.

use std::collections::{BTreeMap, HashMap};

use super::core::{Checks, CoreView};
use super::fnv::Fnv;
use crate::consensus::{Entry, EntryKind, LogIndex, NodeId, Role, Term};

/// A broken safety property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    pub detail: String,
    pub time_us: u64,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} violated at {} µs: {}",
            self.property, self.time_us, self.detail
        )
    }
}

pub const ELECTION_SAFETY: &str = "election safety (Raft §5.2, Fig. 3)";
pub const LOG_MATCHING: &str = "log matching (Raft §5.3, Fig. 3)";
pub const LEADER_COMPLETENESS: &str = "leader completeness (Raft §5.4, Fig. 3)";
pub const STATE_MACHINE_SAFETY: &str = "state machine safety (Raft §5.4.3, Fig. 3)";
pub const LINEARIZABILITY: &str = "linearizability (clients' history)";

pub fn digest(kind: &EntryKind) -> u64 {
    let mut h = Fnv::new();
    match kind {
        EntryKind::Normal(b) => {
            h.u64(1);
            h.bytes(b);
        }
        EntryKind::Noop => h.u64(2),
        EntryKind::ConfigChange(v) => {
            h.u64(3);
            for n in &v.voters {
                h.u64(n.0);
            }
            h.u64(u64::MAX);
            for n in &v.outgoing {
                h.u64(n.0);
            }
        }
    }
    h.finish()
}

#[derive(Debug)]
pub struct SafetyMonitor {
    checks: Checks,
    leader_of_term: HashMap<Term, NodeId>,
    /// (index, term) → (digest, term of the previous entry).
    seen: HashMap<(LogIndex, Term), (u64, Option<Term>)>,
    /// index → (term, digest, first node, bound) of the entry some node
    /// applied there; `bound` is the highest term any node had reached when
    /// it was first applied: it was committed in a term ≤ bound.
    applied: BTreeMap<LogIndex, (Term, u64, NodeId, Term)>,
    /// The highest term any node reached so far.
    max_term: Term,
    last_role: HashMap<NodeId, (Role, Term)>,
}

impl SafetyMonitor {
    pub fn new(checks: Checks) -> SafetyMonitor {
        SafetyMonitor {
            checks,
            leader_of_term: HashMap::new(),
            seen: HashMap::new(),
            applied: BTreeMap::new(),
            max_term: Term(0),
            last_role: HashMap::new(),
        }
    }

    fn violation(property: &'static str, detail: String, now_us: u64) -> Violation {
        Violation {
            property,
            detail,
            time_us: now_us,
        }
    }

    /// After any step of `node`: election safety, and leader completeness
    /// when it just became leader.
    pub fn after_step(
        &mut self,
        node: NodeId,
        view: &CoreView<'_>,
        now_us: u64,
    ) -> Result<(), Violation> {
        self.max_term = self.max_term.max(view.term);
        let prev = self.last_role.insert(node, (view.role, view.term));
        if view.role != Role::Leader {
            return Ok(());
        }
        match self.leader_of_term.get(&view.term) {
            Some(&other) if other != node => {
                return Err(Self::violation(
                    ELECTION_SAFETY,
                    format!("{node} and {other} both lead term {}", view.term),
                    now_us,
                ));
            }
            Some(_) => return Ok(()),
            None => {
                self.leader_of_term.insert(view.term, node);
            }
        }
        if prev == Some((Role::Leader, view.term)) || !self.checks.leader_completeness {
            return Ok(());
        }
        // A new leader: it must hold every entry applied anywhere that was
        // committed in an earlier term (§5.4). A leader elected late in a
        // stale term (delayed votes) need not hold what later terms committed.
        for (&index, &(term, d, by, bound)) in self.applied.range(view.snapshot_index.next()..) {
            if bound >= view.term {
                continue;
            }
            match view.term_at(index) {
                Some(t) if t == term => {
                    let e = &view.entries[(index.0 - view.snapshot_index.0 - 1) as usize];
                    if digest(&e.kind) != d {
                        return Err(Self::violation(LEADER_COMPLETENESS, format!("new leader {node} of {} holds another entry at {index} than {by} applied", view.term), now_us));
                    }
                }
                other => {
                    return Err(Self::violation(
                        LEADER_COMPLETENESS,
                        format!("new leader {node} of {} lacks the entry {index} (term {term}) that {by} applied; it has {other:?}", view.term),
                        now_us,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Entries a node is about to persist (its log already holds them).
    pub fn appended(
        &mut self,
        node: NodeId,
        entries: &[Entry],
        view: &CoreView<'_>,
        now_us: u64,
    ) -> Result<(), Violation> {
        if !self.checks.log_matching {
            return Ok(());
        }
        let mut prev_term = entries.first().and_then(|e| view.term_at(e.index.prev()));
        for e in entries {
            let d = digest(&e.kind);
            match self.seen.get(&(e.index, e.term)) {
                Some(&(d0, p0)) => {
                    if d0 != d {
                        return Err(Self::violation(
                            LOG_MATCHING,
                            format!(
                                "{node} holds a different entry at ({}, {})",
                                e.index, e.term
                            ),
                            now_us,
                        ));
                    }
                    if let (Some(p0), Some(p)) = (p0, prev_term) {
                        if p0 != p {
                            return Err(Self::violation(
                                LOG_MATCHING,
                                format!(
                                    "{node}: entry ({}, {}) follows term {p}, elsewhere term {p0}",
                                    e.index, e.term
                                ),
                                now_us,
                            ));
                        }
                    }
                }
                None => {
                    self.seen.insert((e.index, e.term), (d, prev_term));
                }
            }
            prev_term = Some(e.term);
        }
        Ok(())
    }

    /// A node applied `entry`: every node applies the same entry at an index.
    pub fn applied(&mut self, node: NodeId, entry: &Entry, now_us: u64) -> Result<(), Violation> {
        let d = digest(&entry.kind);
        match self.applied.get(&entry.index) {
            Some(&(t, d0, by, _)) if t != entry.term || d0 != d => Err(Self::violation(
                STATE_MACHINE_SAFETY,
                format!(
                    "{node} applied ({}, {}) at {} but {by} applied term {t} there",
                    entry.index, entry.term, entry.index
                ),
                now_us,
            )),
            Some(_) => Ok(()),
            None => {
                let bound = self.max_term.max(entry.term);
                self.applied
                    .insert(entry.index, (entry.term, d, node, bound));
                Ok(())
            }
        }
    }

    /// The highest term any node reached so far.
    pub fn max_term(&self) -> Term {
        self.max_term
    }

    /// The term of the entry some node applied at `index`, if any.
    pub fn applied_term(&self, index: LogIndex) -> Option<Term> {
        self.applied.get(&index).map(|&(term, ..)| term)
    }

    pub fn applied_count(&self) -> usize {
        self.applied.len()
    }

    pub fn terms_with_leader(&self) -> usize {
        self.leader_of_term.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(role: Role, term: u64, entries: &'a [Entry]) -> CoreView<'a> {
        CoreView {
            role,
            term: Term(term),
            snapshot_index: LogIndex(0),
            snapshot_term: Term(0),
            entries,
        }
    }

    fn e(i: u64, t: u64, b: u8) -> Entry {
        Entry {
            index: LogIndex(i),
            term: Term(t),
            kind: EntryKind::Normal(vec![b]),
        }
    }

    const ALL: Checks = Checks {
        log_matching: true,
        leader_completeness: true,
    };

    #[test]
    fn two_leaders_in_one_term_are_caught() {
        let mut m = SafetyMonitor::new(ALL);
        m.after_step(NodeId(1), &view(Role::Leader, 2, &[]), 0)
            .expect("first leader");
        let v = m
            .after_step(NodeId(2), &view(Role::Leader, 2, &[]), 1)
            .expect_err("second leader");
        assert_eq!(v.property, ELECTION_SAFETY);
    }

    #[test]
    fn different_entries_applied_at_one_index_are_caught() {
        let mut m = SafetyMonitor::new(ALL);
        m.applied(NodeId(1), &e(1, 1, 1), 0).expect("first");
        m.applied(NodeId(2), &e(1, 1, 1), 0).expect("same entry");
        let v = m
            .applied(NodeId(3), &e(1, 1, 2), 0)
            .expect_err("different entry");
        assert_eq!(v.property, STATE_MACHINE_SAFETY);
    }

    #[test]
    fn a_leader_missing_an_applied_entry_is_caught() {
        let mut m = SafetyMonitor::new(ALL);
        m.applied(NodeId(1), &e(1, 1, 1), 0).expect("first");
        let log = [e(1, 2, 9)];
        let v = m
            .after_step(NodeId(2), &view(Role::Leader, 3, &log), 1)
            .expect_err("lacks entry");
        assert_eq!(v.property, LEADER_COMPLETENESS);
    }

    #[test]
    fn a_late_leader_of_a_stale_term_need_not_hold_later_commits() {
        let mut m = SafetyMonitor::new(ALL);
        m.after_step(NodeId(1), &view(Role::Leader, 3, &[]), 0)
            .expect("leader of 3");
        m.applied(NodeId(1), &e(1, 3, 1), 0)
            .expect("committed in 3");
        // Delayed votes of term 2 arrive: n2 leads term 2, a stale term.
        m.after_step(NodeId(2), &view(Role::Leader, 2, &[]), 1)
            .expect("§5.4 only binds leaders of later terms");
        let v = m
            .after_step(NodeId(3), &view(Role::Leader, 4, &[]), 2)
            .expect_err("a leader of term 4 must hold it");
        assert_eq!(v.property, LEADER_COMPLETENESS);
    }

    #[test]
    fn log_matching_catches_same_index_and_term_with_other_content() {
        let mut m = SafetyMonitor::new(ALL);
        let a = [e(1, 1, 1)];
        m.appended(NodeId(1), &a, &view(Role::Follower, 1, &a), 0)
            .expect("first");
        let b = [e(1, 1, 2)];
        let v = m
            .appended(NodeId(2), &b, &view(Role::Follower, 1, &b), 0)
            .expect_err("conflict");
        assert_eq!(v.property, LOG_MATCHING);
    }
}
