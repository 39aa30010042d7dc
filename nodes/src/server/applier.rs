//! The state machine as a group's runtime drives it, sans IO: committed
//! entries applied in order, and the leader's lease timers on a clock the
//! caller reads (milliseconds as an argument, never a clock of its own).
//!
//! The real node ([`super::group::Group`]) passes its node clock; the
//! simulator passes virtual time. Both propose the lease expiries this type
//! asks for through their own core, so the rule that a leader expires a
//! lease only when its full ttl ran out on its own clock (and, with the
//! planted `lock-early-expiry`, the rule it breaks) is written once.
//!
//! Guarantees: entries apply in index order (asserted); only a leader has
//! lease timers; a new leader restarts every held lease's timer with its
//! full ttl; an expiry names the lease's token and renew count, so a renew
//! or release that commits first turns it into a no-op.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::bug::Bug;
use crate::consensus::{Entry, EntryKind, LogIndex, Role, Snapshot, SoftState, Term};
use crate::state::txn::{MicroOp, MicroOpKind};
use crate::state::{Applied, Command, LeaseChange, StateMachine};

/// How long the leader waits before proposing an expiry again if the last
/// one did not take effect.
pub const EXPIRE_RETRY_MS: f64 = 500.0;

/// The leader's timer for one lease.
#[derive(Clone, Debug, PartialEq)]
struct LeaseTimer {
    token: u64,
    renewals: u64,
    /// On the caller's clock.
    deadline_ms: f64,
}

/// What applying one committed entry did.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// A command, applied.
    Applied(Applied),
    /// A normal entry whose payload is not a command (applied as a no-op).
    Undecodable(String),
    /// A no-op or a configuration entry: nothing for the state machine.
    NotACommand,
}

/// The replicated state machine plus what the runtime keeps beside it.
#[derive(Debug)]
pub struct Applier {
    sm: StateMachine,
    applied: LogIndex,
    leading: bool,
    term: Term,
    /// A leader has applied an entry of its own term (its log is the
    /// cluster's); until then, leases it learns of were granted before it led.
    caught_up: bool,
    lease_timers: BTreeMap<String, LeaseTimer>,
    /// Planted bug `lock-early-expiry`.
    early_expiry: bool,
    /// Planted `txn-follower-read`: read-only txns answered from here.
    local_txn_reads: bool,
}

impl Applier {
    /// `sm` as of `applied` (a snapshot's index, or 0).
    pub fn new(sm: StateMachine, applied: LogIndex, early_expiry: bool) -> Applier {
        Applier {
            sm,
            applied,
            leading: false,
            term: Term(0),
            caught_up: false,
            lease_timers: BTreeMap::new(),
            early_expiry,
            local_txn_reads: false,
        }
    }

    /// A node's state machine with its planted bugs, as of `snapshot`
    /// (None: empty, at index 0).
    pub fn with_bugs(
        bugs: &[Bug],
        snapshot: Option<&Snapshot>,
    ) -> Result<Applier, serde_json::Error> {
        let mut sm = StateMachine::new(bugs.contains(&Bug::NoFence))
            .with_non_atomic_txns(bugs.contains(&Bug::TxnNonAtomic));
        let mut applied = LogIndex(0);
        if let Some(snap) = snapshot {
            sm.restore(&snap.data)?;
            applied = snap.meta.index;
        }
        let mut applier = Applier::new(sm, applied, bugs.contains(&Bug::LockEarlyExpiry));
        applier.local_txn_reads = bugs.contains(&Bug::TxnFollowerRead);
        Ok(applier)
    }

    /// The planted `txn-follower-read` bug: a read-only transaction is
    /// answered at once from this node's applied state, whatever its role,
    /// without the log (Some: the answer, or why the txn is refused).
    /// None without the bug, or for a txn that writes: it goes through the
    /// log. The node and the simulator both ask here before proposing.
    pub fn planted_local_txn(&self, mops: &[MicroOp]) -> Option<Result<Value, String>> {
        if !self.local_txn_reads || mops.iter().any(|m| m.kind != MicroOpKind::Read) {
            return None;
        }
        Some(
            self.sm.execute_txn(mops).map(|(results, _)| {
                serde_json::to_value(results).expect("micro-ops always serialize")
            }),
        )
    }

    pub fn state(&self) -> &StateMachine {
        &self.sm
    }

    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// Read a key of the applied state (null if absent).
    pub fn read(&self, key: &str) -> Value {
        self.sm.read(key)
    }

    /// How many lease timers run (a leader's only).
    pub fn lease_timer_count(&self) -> usize {
        self.lease_timers.len()
    }

    /// Apply the next committed entry at `now_ms` on the caller's clock.
    pub fn apply(&mut self, entry: &Entry, now_ms: f64) -> Outcome {
        assert_eq!(
            entry.index,
            self.applied.next(),
            "committed entries arrive in order"
        );
        self.applied = entry.index;
        if self.leading && entry.term == self.term {
            self.caught_up = true;
        }
        let EntryKind::Normal(data) = &entry.kind else {
            return Outcome::NotACommand;
        };
        match Command::decode(data) {
            Ok(cmd) => {
                let mut changes = Vec::new();
                let applied = self.sm.apply(cmd, &mut changes);
                self.on_lease_changes(changes, now_ms);
                Outcome::Applied(applied)
            }
            Err(e) => Outcome::Undecodable(e.to_string()),
        }
    }

    /// Replace the state with a snapshot's (a follower catching up: it has
    /// no lease timers).
    pub fn restore(&mut self, snap: &Snapshot) -> Result<(), serde_json::Error> {
        self.sm.restore(&snap.data)?;
        self.applied = snap.meta.index;
        self.lease_timers.clear();
        Ok(())
    }

    /// The state machine's snapshot at [`Applier::applied`].
    pub fn snapshot(&self) -> Vec<u8> {
        self.sm.snapshot()
    }

    /// The core's role or term changed: a new leader restarts the lease
    /// timers (with `lock-early-expiry`, expires every lease at once,
    /// proposing through `propose`), a node that stops leading drops them.
    pub fn role_changed(
        &mut self,
        soft_state: &SoftState,
        now_ms: f64,
        propose: impl FnMut(Vec<u8>) -> bool,
    ) {
        let was_leading = self.leading;
        self.leading = soft_state.role == Role::Leader;
        self.term = soft_state.term;
        self.caught_up = false;
        if self.leading && !was_leading {
            self.start_lease_timers(now_ms, propose);
        } else if !self.leading {
            self.lease_timers.clear();
        }
    }

    /// A tick: a leader proposes, through `propose` (false: not leader
    /// any more), the expiry of every lease whose timer ran out by `now_ms`.
    pub fn fire_lease_timers(&mut self, now_ms: f64, mut propose: impl FnMut(Vec<u8>) -> bool) {
        if !self.leading {
            return;
        }
        let due: Vec<(String, LeaseTimer)> = self
            .lease_timers
            .iter()
            .filter(|(_, t)| t.deadline_ms <= now_ms)
            .map(|(l, t)| (l.clone(), t.clone()))
            .collect();
        for (lock, timer) in due {
            let cmd = Command::Expire {
                lock: lock.clone(),
                token: timer.token,
                renewals: timer.renewals,
            };
            if !propose(cmd.encode()) {
                return; // no longer leader; the timers are cleared on the role change
            }
            if let Some(t) = self.lease_timers.get_mut(&lock) {
                t.deadline_ms = now_ms + EXPIRE_RETRY_MS;
            }
        }
    }

    fn on_lease_changes(&mut self, changes: Vec<LeaseChange>, now_ms: f64) {
        if !self.leading {
            return;
        }
        // Bug lock-early-expiry: leases granted under an earlier leader,
        // which this one applies only now, are expired at once too.
        let early = self.early_expiry && !self.caught_up;
        for c in changes {
            match c {
                LeaseChange::Started { lock, lease } => {
                    let deadline_ms = if early {
                        now_ms
                    } else {
                        now_ms + lease.ttl_ms as f64
                    };
                    self.lease_timers.insert(
                        lock,
                        LeaseTimer {
                            token: lease.token,
                            renewals: lease.renewals,
                            deadline_ms,
                        },
                    );
                }
                LeaseChange::Ended { lock } => {
                    self.lease_timers.remove(&lock);
                }
            }
        }
    }

    /// A new leader restarts every lease's timer with its full ttl, so a
    /// leader change never ends a lease early (bug `lock-early-expiry`:
    /// expire them all at once instead).
    fn start_lease_timers(&mut self, now_ms: f64, propose: impl FnMut(Vec<u8>) -> bool) {
        let early = self.early_expiry;
        self.lease_timers = self
            .sm
            .leases()
            .map(|(lock, lease)| {
                let deadline_ms = if early {
                    now_ms
                } else {
                    now_ms + lease.ttl_ms as f64
                };
                (
                    lock.to_string(),
                    LeaseTimer {
                        token: lease.token,
                        renewals: lease.renewals,
                        deadline_ms,
                    },
                )
            })
            .collect();
        if early && !self.lease_timers.is_empty() {
            tracing::warn!(
                leases = self.lease_timers.len(),
                "bug lock-early-expiry: expiring every lease at once"
            );
            self.fire_lease_timers(now_ms, propose);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::NodeId;

    fn entry(index: u64, term: u64, cmd: Command) -> Entry {
        Entry {
            index: LogIndex(index),
            term: Term(term),
            kind: EntryKind::Normal(cmd.encode()),
        }
    }

    fn leader(term: u64) -> SoftState {
        SoftState {
            role: Role::Leader,
            term: Term(term),
            leader: Some(NodeId(1)),
        }
    }

    fn acquire(ttl_ms: u64) -> Command {
        Command::Acquire {
            lock: "l".into(),
            owner: "a".into(),
            ttl_ms,
        }
    }

    #[test]
    fn a_leader_expires_a_lease_only_once_its_ttl_ran_out() {
        let mut a = Applier::new(StateMachine::new(false), LogIndex(0), false);
        a.role_changed(&leader(1), 0.0, |_| true);
        let out = a.apply(&entry(1, 1, acquire(100)), 10.0);
        assert_eq!(out, Outcome::Applied(Applied::Token(1)));
        let mut proposed = Vec::new();
        a.fire_lease_timers(109.0, |c| {
            proposed.push(c);
            true
        });
        assert!(proposed.is_empty(), "99 ms after the grant is too early");
        a.fire_lease_timers(110.0, |c| {
            proposed.push(c);
            true
        });
        let expected = Command::Expire {
            lock: "l".into(),
            token: 1,
            renewals: 0,
        };
        assert_eq!(proposed, vec![expected.encode()]);
    }

    #[test]
    fn a_new_leader_restarts_held_leases_with_their_full_ttl() {
        let mut a = Applier::new(StateMachine::new(false), LogIndex(0), false);
        a.apply(&entry(1, 1, acquire(100)), 0.0);
        let mut proposed = 0;
        a.role_changed(&leader(2), 500.0, |_| {
            proposed += 1;
            true
        });
        a.fire_lease_timers(599.0, |_| {
            proposed += 1;
            true
        });
        assert_eq!(
            proposed, 0,
            "the lease runs its full ttl under the new leader"
        );
        assert_eq!(a.lease_timer_count(), 1);
    }

    #[test]
    fn with_lock_early_expiry_a_new_leader_expires_every_lease_at_once() {
        let mut a = Applier::new(StateMachine::new(false), LogIndex(0), true);
        a.apply(&entry(1, 1, acquire(100)), 0.0);
        let mut proposed = 0;
        a.role_changed(&leader(2), 500.0, |_| {
            proposed += 1;
            true
        });
        assert_eq!(proposed, 1, "the planted bug expires the lease at once");
    }
}
