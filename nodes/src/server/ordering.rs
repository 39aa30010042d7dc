//! The ordering rule of [`crate::consensus`], written once for every
//! runtime that drives a core: the node ([`super::group`]) and the
//! simulator ([`crate::sim`]).
//!
//! For one Ready, [`process`] runs the steps in the contract's order:
//! 0. send the early messages (a leader's appends, Raft thesis §10.2.1);
//! 1. persist the Ready's snapshot, hard state and entries;
//! 2. acknowledge it (`persisted`) and send its messages, only once that
//!    write is durable: a runtime holds them in [`HeldReadys`] until its
//!    disk reports the write durable;
//! 3. apply: the snapshot, then the committed entries in order;
//! 4. the ReadIndex outcomes;
//! 5. the role change (a new leader restarts its lease timers).
//!
//! [`Persist::of`] decides what step 1 asks of the disk, for both: a Ready
//! that only moves the commit index is written but not synced (a lagging
//! commit index is always safe), and its messages go out at once, or behind
//! an earlier Ready still being synced. How a runtime writes, syncs, sends
//! and applies is its own (a [`ReadySteps`] implementation); the order and
//! the holding are this module's.

use std::collections::VecDeque;

use crate::consensus::{Entry, HardState, Message, ReadOutcome, Ready, Snapshot, SoftState};

/// What a Ready's write asks of the disk (step 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// Nothing to write.
    Nothing,
    /// Write, but no sync of its own: only the commit index moved.
    Write,
    /// Write and make durable before the Ready is acknowledged.
    Sync,
}

impl Persist {
    /// `staged` is the hard state last written (synced or not).
    pub fn of(
        snapshot: Option<&Snapshot>,
        hard_state: Option<HardState>,
        entries: &[Entry],
        staged: HardState,
    ) -> Persist {
        let new_term_or_vote =
            hard_state.is_some_and(|hs| hs.term != staged.term || hs.vote != staged.vote);
        if snapshot.is_some() || !entries.is_empty() || new_term_or_vote {
            Persist::Sync
        } else if hard_state.is_some() {
            Persist::Write
        } else {
            Persist::Nothing
        }
    }
}

/// A Ready whose write is not durable yet: its acknowledgement and its
/// messages wait for it.
#[derive(Debug)]
pub struct HeldReady {
    /// The storage write that must be durable first.
    pub seq: u64,
    /// Acknowledges this Ready and every Ready before it.
    pub persist_id: u64,
    pub messages: Vec<Message>,
}

/// What may go now: acknowledge through `persist_id`, then send `messages`.
#[derive(Debug)]
pub struct Release {
    pub persist_id: u64,
    pub messages: Vec<Message>,
}

/// The Readys waiting for their write to be durable, oldest first.
#[derive(Debug, Default)]
pub struct HeldReadys {
    queue: VecDeque<HeldReady>,
}

impl HeldReadys {
    pub fn new() -> HeldReadys {
        HeldReadys::default()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// A Ready whose write `seq` is being synced.
    pub fn hold(&mut self, seq: u64, persist_id: u64, messages: Vec<Message>) {
        assert!(
            self.queue.back().is_none_or(|last| last.seq < seq),
            "writes are synced in the order they are issued"
        );
        self.queue.push_back(HeldReady {
            seq,
            persist_id,
            messages,
        });
    }

    /// A Ready with no sync of its own: it keeps its place behind an
    /// earlier Ready still being synced, or may go at once (returned).
    pub fn after_the_held(&mut self, persist_id: u64, messages: Vec<Message>) -> Option<Release> {
        match self.queue.back_mut() {
            Some(last) => {
                last.persist_id = persist_id;
                last.messages.extend(messages);
                None
            }
            None => Some(Release {
                persist_id,
                messages,
            }),
        }
    }

    /// The held Readys whose write is durable (sequence ≤ `durable`), in order.
    pub fn release_through(&mut self, durable: u64) -> Vec<Release> {
        let mut out = Vec::new();
        while self.queue.front().is_some_and(|h| h.seq <= durable) {
            let h = self.queue.pop_front().expect("front exists");
            out.push(Release {
                persist_id: h.persist_id,
                messages: h.messages,
            });
        }
        out
    }

    /// Forget everything held (a crash: nothing of it was acknowledged).
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

/// How one runtime carries out each step; [`process`] calls them in order.
pub trait ReadySteps {
    type Error;
    /// Step 0, and step 2 for a Ready released by [`HeldReadys`].
    fn send(&mut self, message: Message);
    /// Steps 1 and 2: write what the Ready carries as `persist` says, and
    /// hold its acknowledgement and messages until it is durable.
    fn persist(&mut self, persist: Persist, ready: Persisted) -> Result<(), Self::Error>;
    /// Step 3: the state machine takes the snapshot's state.
    fn restore(&mut self, snapshot: &Snapshot) -> Result<(), Self::Error>;
    /// Step 3: one committed entry, in order.
    fn apply(&mut self, entry: Entry) -> Result<(), Self::Error>;
    /// Step 4.
    fn reads(&mut self, reads: Vec<ReadOutcome>);
    /// Step 5.
    fn role_changed(&mut self, soft_state: SoftState);
}

/// The part of a Ready that step 1 writes and step 2 releases.
#[derive(Debug)]
pub struct Persisted {
    pub persist_id: u64,
    pub snapshot: Option<Snapshot>,
    pub hard_state: Option<HardState>,
    pub entries: Vec<Entry>,
    pub messages: Vec<Message>,
}

/// Handle one Ready by the ordering rule. `staged` is the hard state the
/// runtime last wrote (see [`Persist::of`]).
pub fn process<S: ReadySteps>(rd: Ready, staged: HardState, steps: &mut S) -> Result<(), S::Error> {
    let Ready {
        persist_id,
        snapshot,
        hard_state,
        entries,
        messages,
        early_messages,
        committed,
        reads,
        soft_state,
    } = rd;
    // 0. A leader's appends go out while its own write is made durable: the
    // core counts the leader toward a commit only once `persisted` is called.
    for m in early_messages {
        steps.send(m);
    }
    // 1 and 2.
    let persist = Persist::of(snapshot.as_ref(), hard_state, &entries, staged);
    let restore = snapshot.clone();
    steps.persist(
        persist,
        Persisted {
            persist_id,
            snapshot,
            hard_state,
            entries,
            messages,
        },
    )?;
    // 3. Apply: the snapshot, then the committed entries in order.
    if let Some(snapshot) = restore {
        steps.restore(&snapshot)?;
    }
    for entry in committed {
        steps.apply(entry)?;
    }
    // 4. Reads.
    steps.reads(reads);
    // 5. Leadership.
    if let Some(soft_state) = soft_state {
        steps.role_changed(soft_state);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{GroupId, LogIndex, NodeId, Term};

    fn hs(term: u64, vote: Option<u64>, commit: u64) -> HardState {
        HardState {
            term: Term(term),
            vote: vote.map(NodeId),
            commit: LogIndex(commit),
        }
    }

    fn message(to: u64) -> Message {
        Message {
            group: GroupId(0),
            from: NodeId(1),
            to: NodeId(to),
            payload: crate::consensus::Payload::Raft(
                crate::raft::message::RaftMessage::TimeoutNow { term: Term(1) },
            ),
        }
    }

    #[test]
    fn only_a_new_term_or_vote_entries_or_a_snapshot_need_a_sync() {
        let staged = hs(2, Some(1), 5);
        assert_eq!(Persist::of(None, None, &[], staged), Persist::Nothing);
        // The commit index alone: written, not synced.
        assert_eq!(
            Persist::of(None, Some(hs(2, Some(1), 9)), &[], staged),
            Persist::Write
        );
        assert_eq!(
            Persist::of(None, Some(hs(3, Some(1), 5)), &[], staged),
            Persist::Sync
        );
        assert_eq!(
            Persist::of(None, Some(hs(2, Some(2), 5)), &[], staged),
            Persist::Sync
        );
    }

    #[test]
    fn a_ready_without_a_sync_waits_behind_one_being_synced() {
        let mut held = HeldReadys::new();
        assert!(
            held.after_the_held(1, vec![message(2)]).is_some(),
            "nothing held: goes now"
        );
        held.hold(10, 2, vec![message(2)]);
        assert!(
            held.after_the_held(3, vec![message(3)]).is_none(),
            "waits behind write 10"
        );
        held.hold(11, 4, vec![]);
        assert!(held.release_through(9).is_empty());
        let released = held.release_through(10);
        assert_eq!(released.len(), 1);
        assert_eq!(
            released[0].persist_id, 3,
            "acknowledges the Ready that waited behind it"
        );
        assert_eq!(released[0].messages.len(), 2);
        assert_eq!(held.len(), 1);
        assert_eq!(held.release_through(11)[0].persist_id, 4);
        assert!(held.is_empty());
    }

    #[test]
    #[should_panic(expected = "synced in the order")]
    fn writes_held_out_of_order_are_a_bug() {
        let mut held = HeldReadys::new();
        held.hold(5, 1, vec![]);
        held.hold(4, 2, vec![]);
    }
}
