//! When a node has left a group and when it retires it, sans IO, written
//! once for both runtimes (the node's group.rs and host.rs, and the
//! simulator).
//!
//! Three steps. Each committed configuration applied decides anew whether
//! the group is still this node's ([`Removal::applied`]): a simple
//! configuration without it removes it, a later one with it (a re-add,
//! even in the same batch of committed entries) cancels that; joint
//! configurations and those at or below the entry that last added the
//! node (history it replays while catching up) change nothing. Then the
//! node has left only if the core's own latest configuration agrees
//! ([`Removal::has_left`]): it leaves the node out, is simple, and no
//! change is pending (a node catching up may apply an old removal before
//! the entry that re-added it reached its log).
//!
//! Then, once it has left, a grace period ([`Retirement`], the length by
//! [`retire_grace_ms`]: twice the election timeout, at least 300 ms) before
//! the runtime retires the group (so a removed leader can still tell the
//! others that the change committed); until then the group keeps running
//! as a removed member, and a re-add (or its core's configuration naming
//! it again) starts the count anew.
//!
//! What stays with each runtime: its clock (the node's [`std::time::Instant`],
//! the simulator's virtual µs) and what retiring does (the node records the
//! group as left and deletes its storage, the simulator stops and wipes
//! the node).

use std::ops::Sub;

use crate::consensus::{LogIndex, Membership, NodeId, Status};

/// The grace between leaving a group and retiring it, for an election
/// timeout of `election_timeout_ms`: twice that, at least 300 ms.
pub fn retire_grace_ms(election_timeout_ms: u64) -> u64 {
    election_timeout_ms.saturating_mul(2).max(300)
}

/// Since when a node has left a group, on a runtime's clock `T` (an
/// instant whose differences are graces `G`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retirement<T> {
    /// When the node was first seen to have left, since it last had not.
    left_since: Option<T>,
}

impl<T> Default for Retirement<T> {
    fn default() -> Self {
        Retirement { left_since: None }
    }
}

/// Whether a group that has left is to be retired now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Still within its grace.
    NotYet,
    /// The grace is over: retire it.
    Now,
}

impl<T: Copy> Retirement<T> {
    /// The node has left the group ([`Removal::has_left`]) as of `now`:
    /// retire it once `grace` has passed since it was first seen so.
    pub fn left<G: Ord>(&mut self, now: T, grace: G) -> Due
    where
        T: Sub<Output = G>,
    {
        let since = *self.left_since.get_or_insert(now);
        if now - since >= grace {
            Due::Now
        } else {
            Due::NotYet
        }
    }

    /// The node has not left (any more): a later departure waits a whole
    /// grace again.
    pub fn stayed(&mut self) {
        self.left_since = None;
    }

    /// Whether the node is within its grace (seen to have left, not
    /// retired).
    pub fn is_pending(&self) -> bool {
        self.left_since.is_some()
    }
}

/// One node's standing in one group, from the configurations it applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Removal {
    /// The index of the configuration entry that last added the node (0:
    /// a member from the start, or the runtime does not know it).
    member_from: LogIndex,
    /// The last deciding configuration applied left the node out.
    removed: bool,
}

/// Whether applying a configuration changed the node's standing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    Unchanged,
    Changed,
}

impl Removal {
    /// A node added by the configuration entry at `index`.
    pub fn added_at(index: LogIndex) -> Removal {
        Removal {
            member_from: index,
            removed: false,
        }
    }

    /// The committed configuration `membership` at `index` was applied by
    /// `node`.
    pub fn applied(&mut self, node: NodeId, index: LogIndex, membership: &Membership) -> Standing {
        if index <= self.member_from {
            return Standing::Unchanged;
        }
        let removed = !membership.is_joint() && !membership.contains(node);
        let before = std::mem::replace(&mut self.removed, removed);
        if before == removed {
            Standing::Unchanged
        } else {
            Standing::Changed
        }
    }

    /// Whether the configurations applied last left the node out.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    /// Whether `node` has left the group: removed by the configurations
    /// applied, and its core's latest configuration (`core`) agrees.
    pub fn has_left(&self, node: NodeId, core: &Status) -> bool {
        self.removed
            && !core.membership.contains(node)
            && !core.membership.is_joint()
            && !core.membership_pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{GroupId, Role, Term};

    fn voters(ids: &[u64]) -> Membership {
        Membership::simple(ids.iter().copied().map(NodeId).collect())
    }

    /// The core's status with `membership` its latest configuration.
    fn core_with(membership: Membership, membership_pending: bool) -> Status {
        Status {
            id: NodeId(1),
            group: GroupId(0),
            role: Role::Follower,
            term: Term(1),
            leader: None,
            commit_index: LogIndex(0),
            applied_index: LogIndex(0),
            last_index: LogIndex(0),
            snapshot_index: LogIndex(0),
            log_len: 0,
            membership,
            membership_pending,
        }
    }

    #[test]
    fn a_committed_simple_configuration_without_the_node_removes_it() {
        let n1 = NodeId(1);
        let mut removal = Removal::default();
        assert_eq!(
            removal.applied(n1, LogIndex(3), &voters(&[1, 2, 3])),
            Standing::Unchanged
        );
        assert_eq!(
            removal.applied(n1, LogIndex(5), &voters(&[2, 3])),
            Standing::Changed
        );
        assert!(removal.is_removed());
        assert!(removal.has_left(n1, &core_with(voters(&[2, 3]), false)));
    }

    #[test]
    fn a_joint_configuration_decides_nothing() {
        let n1 = NodeId(1);
        let joint = Membership {
            voters: vec![NodeId(2), NodeId(3)],
            outgoing: vec![NodeId(1), NodeId(2), NodeId(3)],
        };
        let mut removal = Removal::default();
        assert_eq!(
            removal.applied(n1, LogIndex(4), &joint),
            Standing::Unchanged
        );
        assert!(!removal.is_removed(), "still in the outgoing half");
    }

    /// Seed 463 of the simulator's membership sweep: n1 learned slots 1 to
    /// 3 chosen in one Ready, slot 1 removing it and slot 3 adding it back;
    /// the world wiped it although the configuration in force named it.
    #[test]
    fn a_re_add_later_in_the_same_batch_cancels_the_removal() {
        let n1 = NodeId(1);
        let mut removal = Removal::default();
        removal.applied(n1, LogIndex(1), &voters(&[2, 3, 4, 5, 7]));
        assert!(
            removal.is_removed(),
            "a configuration without n1 removes it"
        );
        assert_eq!(
            removal.applied(n1, LogIndex(3), &voters(&[1, 2, 3, 4, 5, 6])),
            Standing::Changed
        );
        assert!(!removal.is_removed(), "slot 3 names n1 again");
        assert!(!removal.has_left(n1, &core_with(voters(&[2, 3]), false)));
    }

    #[test]
    fn configurations_up_to_the_adding_entry_are_history() {
        let n7 = NodeId(7);
        let mut removal = Removal::added_at(LogIndex(5));
        // The seed configuration at 2 without n7 is history it replays.
        removal.applied(n7, LogIndex(2), &voters(&[1, 2, 3]));
        assert!(!removal.is_removed());
        removal.applied(n7, LogIndex(6), &voters(&[1, 2, 3]));
        assert!(
            removal.is_removed(),
            "a configuration after the add decides"
        );
    }

    /// The node's host: a node catching up may apply an old removal before
    /// the entry that re-added it; it has not left while its core's latest
    /// configuration names it, is joint, or a change is pending.
    #[test]
    fn a_removed_node_has_left_only_once_its_core_agrees() {
        let n1 = NodeId(1);
        let mut removal = Removal::default();
        removal.applied(n1, LogIndex(5), &voters(&[2, 3]));
        assert!(!removal.has_left(n1, &core_with(voters(&[1, 2, 3]), false)));
        let joint = Membership {
            voters: vec![NodeId(2), NodeId(3)],
            outgoing: vec![NodeId(2), NodeId(3), NodeId(4)],
        };
        assert!(!removal.has_left(n1, &core_with(joint, false)));
        assert!(!removal.has_left(n1, &core_with(voters(&[2, 3]), true)));
        assert!(removal.has_left(n1, &core_with(voters(&[2, 3]), false)));
    }

    #[test]
    fn the_grace_is_twice_the_election_timeout_and_at_least_300_ms() {
        assert_eq!(retire_grace_ms(100), 300);
        assert_eq!(retire_grace_ms(150), 300);
        assert_eq!(retire_grace_ms(1000), 2000);
        assert_eq!(retire_grace_ms(u64::MAX), u64::MAX);
    }

    /// The node's host and the simulator: a group that has left is retired
    /// only a whole grace after it was first seen so; staying in between
    /// starts the count anew.
    #[test]
    fn a_group_that_left_is_due_only_a_grace_after_it_was_first_seen_so() {
        let mut retirement = Retirement::<u64>::default();
        assert!(!retirement.is_pending());
        assert_eq!(retirement.left(1_000, 300), Due::NotYet);
        assert!(retirement.is_pending());
        assert_eq!(retirement.left(1_299, 300), Due::NotYet);
        assert_eq!(retirement.left(1_300, 300), Due::Now);
        retirement.stayed();
        assert!(!retirement.is_pending());
        assert_eq!(retirement.left(2_000, 300), Due::NotYet, "counted anew");
        assert_eq!(retirement.left(2_299, 300), Due::NotYet);
        assert_eq!(retirement.left(2_300, 300), Due::Now);
    }

    #[test]
    fn the_grace_runs_on_the_nodes_instants_too() {
        let start = std::time::Instant::now();
        let grace = std::time::Duration::from_millis(300);
        let mut retirement = Retirement::default();
        assert_eq!(retirement.left(start, grace), Due::NotYet);
        assert_eq!(
            retirement.left(start + std::time::Duration::from_millis(299), grace),
            Due::NotYet
        );
        assert_eq!(retirement.left(start + grace, grace), Due::Now);
    }
}
