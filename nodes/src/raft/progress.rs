//! What a leader knows about one follower's log (raft-rs's Progress).
//!
//! Probe: one append in flight at a time, until the leader finds where the
//! logs agree. Replicate: appends are pipelined, at most `max_inflight` of
//! them unacknowledged. Snapshot: a snapshot is being sent in chunks
//! ([`SnapshotSender`]: at most `max_inflight` chunks unanswered); no append
//! is sent until the follower acknowledges the whole snapshot.

use std::collections::VecDeque;

use crate::consensus::{LogIndex, Term};
use crate::snapshot_transfer::SnapshotSender;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    Probe,
    Replicate,
    Snapshot { index: LogIndex },
}

#[derive(Clone, Debug)]
pub struct Progress {
    /// The highest index known to be durably replicated on the follower.
    pub matched: LogIndex,
    /// The next index to send.
    pub next: LogIndex,
    pub state: ProgressState,
    /// Probe: an append is in flight, wait for an answer or a heartbeat.
    pub paused: bool,
    /// Replicate: the last index of every unacknowledged append.
    pub inflight: VecDeque<LogIndex>,
    /// Heard from during the current check-quorum period.
    pub recent_active: bool,
    /// The highest ReadIndex round the follower acknowledged.
    pub read_seq_acked: u64,
    /// The snapshot transfer (Some exactly in the Snapshot state).
    pub snapshot: Option<SnapshotSender>,
    /// The leader's number for this record: every message to the follower
    /// carries it and every answer echoes it, so answers meant for an
    /// earlier record of the same node id are told apart.
    pub session: u64,
}

impl Progress {
    pub fn new(next: LogIndex, session: u64) -> Progress {
        Progress {
            session,
            matched: LogIndex(0),
            next,
            state: ProgressState::Probe,
            paused: false,
            inflight: VecDeque::new(),
            recent_active: true,
            read_seq_acked: 0,
            snapshot: None,
        }
    }

    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.paused,
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
            ProgressState::Snapshot { .. } => true,
        }
    }

    pub fn become_probe(&mut self) {
        self.next = match self.state {
            ProgressState::Snapshot { index } => self.matched.max(index).next(),
            _ => self.matched.next(),
        };
        self.state = ProgressState::Probe;
        self.paused = false;
        self.inflight.clear();
        self.snapshot = None;
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched.next();
        self.paused = false;
        self.inflight.clear();
        self.snapshot = None;
    }

    pub fn become_snapshot(&mut self, sender: SnapshotSender) {
        self.state = ProgressState::Snapshot {
            index: sender.index(),
        };
        self.paused = false;
        self.inflight.clear();
        self.snapshot = Some(sender);
    }

    /// An append with entries up to `last` was sent.
    pub fn sent(&mut self, last: Option<LogIndex>) {
        match self.state {
            ProgressState::Replicate => {
                if let Some(last) = last {
                    assert!(last >= self.next, "pipelined append moves next forward");
                    self.next = last.next();
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Probe => self.paused = true,
            ProgressState::Snapshot { .. } => {
                unreachable!("no append while a snapshot is in flight")
            }
        }
    }

    /// The follower holds our log through `index`. Returns whether it was news.
    pub fn acked(&mut self, index: LogIndex) -> bool {
        let news = index > self.matched;
        if news {
            self.matched = index;
            if self.next <= index {
                self.next = index.next();
            }
        }
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        self.paused = false;
        news
    }

    /// The follower refused an append whose prev was `rejected`. `hint` is
    /// the next index the leader computed from the conflict hints. Returns
    /// false for a stale rejection.
    pub fn rejected(&mut self, rejected: LogIndex, hint: LogIndex) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.become_probe();
                self.next = hint.min(rejected).max(self.matched.next());
                true
            }
            ProgressState::Probe => {
                if self.next.prev() != rejected {
                    return false;
                }
                self.next = hint.min(rejected).max(self.matched.next());
                self.paused = false;
                true
            }
            ProgressState::Snapshot { .. } => false,
        }
    }

    /// A heartbeat answer: let one more append through.
    pub fn heard(&mut self) {
        self.recent_active = true;
        match self.state {
            ProgressState::Probe => self.paused = false,
            ProgressState::Replicate => {
                // A lost append would otherwise keep the window full forever.
                self.inflight.pop_front();
            }
            ProgressState::Snapshot { .. } => {}
        }
    }
}

/// The term stored with a next-index guess, for traces.
#[allow(dead_code)]
pub fn describe(p: &Progress, term: Term) -> String {
    format!("{term} matched={} next={} {:?}", p.matched, p.next, p.state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicate_pipelines_until_the_window_is_full() {
        let mut p = Progress::new(LogIndex(1), 1);
        p.become_replicate();
        p.sent(Some(LogIndex(3)));
        p.sent(Some(LogIndex(5)));
        assert!(p.is_paused(2), "two in flight fill a window of two");
        assert_eq!(p.next, LogIndex(6));
        assert!(p.acked(LogIndex(3)));
        assert!(!p.is_paused(2));
        assert_eq!(p.inflight.len(), 1);
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(LogIndex(10), 1);
        p.matched = LogIndex(4);
        p.become_replicate();
        assert!(
            !p.rejected(LogIndex(3), LogIndex(1)),
            "rejection at or below matched is stale"
        );
        assert!(p.rejected(LogIndex(7), LogIndex(6)));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!(p.next, LogIndex(6));
        assert!(
            !p.rejected(LogIndex(9), LogIndex(2)),
            "probe only takes the answer to its own prev"
        );
    }

    #[test]
    fn hint_never_goes_below_matched() {
        let mut p = Progress::new(LogIndex(10), 1);
        p.matched = LogIndex(4);
        p.next = LogIndex(8);
        assert!(p.rejected(LogIndex(7), LogIndex(1)));
        assert_eq!(p.next, LogIndex(5));
    }
}
