//! What a run counted and what it returns.

use super::*;

/// Counters of one run, to see that a run did something.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub transfers: u64,
    pub terms_with_leader: u64,
    pub entries_applied: u64,
    /// ReadIndex rounds issued (one per read: the simulator's batches are
    /// of one).
    pub read_rounds: u64,
    /// InstallSnapshot messages sent (one per chunk).
    pub snapshots_sent: u64,
    /// Snapshots installed from their last chunk after earlier ones (a
    /// snapshot assembled from more than one chunk).
    pub multi_chunk_installs: u64,
    /// Paxos Promise parts sent with a chunk of a snapshot that took more
    /// than one chunk, and of those the last chunks: each is a Promise
    /// snapshot the candidate took chunk by chunk (the acceptor cuts a
    /// chunk only where the candidate asks, after the one before).
    pub promise_snapshot_chunks: u64,
    pub chunked_promise_snapshots: u64,
    pub unsynced_writes_lost: u64,
    /// Client writes proposed at an index where the same host still held
    /// an older term's pending write (issue 21, finding 1's scenario: both
    /// wait for the commit there; the planted early-fail bug fails the
    /// older at once).
    pub writes_at_reused_index: u64,
    /// With the planted early-fail bug: writes it answered definite fail at
    /// once, and how many of those committed after all (applied by some
    /// node at their (index, term)): each is a fail that took effect.
    pub writes_failed_early: u64,
    pub failed_early_committed: u64,
    /// Of the writes failed early: those another live node held at
    /// (index, term) at that moment (they could still commit).
    pub failed_early_held_elsewhere: u64,
    /// `change_membership` calls the world made / the leader accepted.
    pub membership_requested: u64,
    pub membership_accepted: u64,
    /// Committed simple configurations applied somewhere (each is a
    /// finished change: the initial configuration is not in the log).
    pub membership_done: u64,
    /// Joining cores started on added nodes.
    pub joins: u64,
    /// Joining cores that got their first configuration from a snapshot /
    /// from log entries.
    pub joined_by_snapshot: u64,
    pub joined_by_log: u64,
    /// Nodes seen to have left the group (server/removal.rs's rule): their
    /// grace began.
    pub departures: u64,
    /// Nodes stopped and wiped a grace after they left (a re-add or a crash
    /// within the grace, or the run's end, spares the others).
    pub removals: u64,
    /// Removed leaders among those (they stepped down first).
    pub leader_removals: u64,
    /// Wiped node ids added again (only with `reuse_ids`).
    pub rejoins: u64,
    /// The watchdog's peaks: how close the run came to its bounds.
    pub peak_messages_in_flight: u64,
    pub peak_readys_per_step: u64,
    pub peak_events_per_virtual_ms: u64,
    /// What the leader delivery fault did.
    pub delivery: DeliveryFaultStats,
}

impl SimStats {
    /// Adds another run's counters to these (the peaks: the larger one).
    pub fn add(&mut self, other: &SimStats) {
        self.events += other.events;
        self.messages_sent += other.messages_sent;
        self.messages_delivered += other.messages_delivered;
        self.crashes += other.crashes;
        self.partitions += other.partitions;
        self.transfers += other.transfers;
        self.terms_with_leader += other.terms_with_leader;
        self.entries_applied += other.entries_applied;
        self.read_rounds += other.read_rounds;
        self.snapshots_sent += other.snapshots_sent;
        self.multi_chunk_installs += other.multi_chunk_installs;
        self.promise_snapshot_chunks += other.promise_snapshot_chunks;
        self.chunked_promise_snapshots += other.chunked_promise_snapshots;
        self.unsynced_writes_lost += other.unsynced_writes_lost;
        self.writes_at_reused_index += other.writes_at_reused_index;
        self.writes_failed_early += other.writes_failed_early;
        self.failed_early_committed += other.failed_early_committed;
        self.failed_early_held_elsewhere += other.failed_early_held_elsewhere;
        self.membership_requested += other.membership_requested;
        self.membership_accepted += other.membership_accepted;
        self.membership_done += other.membership_done;
        self.joins += other.joins;
        self.joined_by_snapshot += other.joined_by_snapshot;
        self.joined_by_log += other.joined_by_log;
        self.departures += other.departures;
        self.removals += other.removals;
        self.leader_removals += other.leader_removals;
        self.rejoins += other.rejoins;
        self.peak_messages_in_flight = self
            .peak_messages_in_flight
            .max(other.peak_messages_in_flight);
        self.peak_readys_per_step = self.peak_readys_per_step.max(other.peak_readys_per_step);
        self.peak_events_per_virtual_ms = self
            .peak_events_per_virtual_ms
            .max(other.peak_events_per_virtual_ms);
        self.delivery.add(&other.delivery);
    }
}

/// The result of one run.
#[derive(Clone, Debug)]
pub struct SimOutcome {
    pub seed: u64,
    /// Node ids in play (with membership: the whole pool).
    pub nodes: usize,
    /// The initial voters.
    pub initial_voters: usize,
    pub protocol: &'static str,
    pub violation: Option<Violation>,
    pub history: History,
    pub trace_hash: u64,
    pub trace: Vec<String>,
    pub stats: SimStats,
    /// The impostor's attempts and how the nodes took them
    /// ([`crate::sim::impostor`]).
    pub impostor: Vec<crate::sim::impostor::ImpostorAttempt>,
}
