//! paxos: the Multi-Paxos consensus core, sans-IO, behind the same
//! [`crate::consensus::Consensus`] contract as Raft, so the real node and
//! the simulator run it unchanged (`faultline node --consensus paxos`).
//!
//! # How Multi-Paxos maps onto the contract
//! - **Ballots** are (round, node id), packed in a u64 ([`ballot::Ballot`]).
//!   `HardState::term` is the acceptor's promised ballot; `HardState::vote`
//!   is always None. `Status::term` / `SoftState::term` are the promise.
//! - **Accepted values** are the log. Each acceptor keeps its accepted
//!   values as a *contiguous* log after its snapshot: it accepts slot `i`
//!   only while it holds every slot below `i` (an Accept that skips slots is
//!   refused with what the acceptor holds, and the leader resends from
//!   there). An entry's `term` is a [`ballot::Stamp`]: the ballot that
//!   accepted it and the ballot that first proposed the value (origin).
//! - **Persistence** follows the contract's rule "truncate from the first
//!   entry, then append": a re-accept at a higher ballot of slot `i`
//!   rewrites slot `i` in place and the next Ready carries every slot from
//!   `i` to the end, so storage ends up with exactly the per-slot values and
//!   no accepted value is forgotten. The same holds when a snapshot is
//!   installed: the accepted slots after it come along in the same Ready.
//!   The promise (hard state) and the accepted values are in the Ready whose
//!   messages (Promise, Accepted) may go out only after the fsync.
//! - **Proposals** return (slot, leader's ballot). A value keeps its origin
//!   ballot when a later leader re-proposes it, and committed entries carry
//!   the origin as their term: the runtime's "same (index, term) ⇒ mine"
//!   holds across leader changes, and another origin at the index means the
//!   proposal lost the slot for good.
//! - **Chosen prefix**: `HardState::commit` and `Status::commit_index` are
//!   the slots learned chosen; `Ready::committed` hands them out in order.
//!
//! # The protocol (see [`node`] for the guarantees)
//! A stable leader runs phase 1 once for all slots after its commit
//! (Prepare/Promise carry whole log suffixes), re-proposes at its ballot the
//! highest-ballot value of every slot the promisers hold, fills slots no
//! promiser holds with no-ops, then runs only phase 2: Accepts batched
//! (`max_batch_entries`) and pipelined (`max_inflight_appends` messages per
//! acceptor), commit notifications piggybacked on Accepts and heartbeats.
//! Lagging acceptors catch up from the leader's log, or by snapshot once the
//! slots they lack were compacted. Because acceptor logs are contiguous, a
//! hole in the merged range arises only from a promise that skips slots.
//!
//! # Reads
//! Linearizable reads use a quorum round confirming leadership
//! (read-index style): the leader notes `max(commit, last slot phase 1
//! re-proposed)`, sends a heartbeat round, and answers `ReadOutcome::Ready`
//! once a quorum acknowledged that round at its ballot and that index is
//! chosen. Leases (`CoreConfig::lease_reads`) are not used by this core.
//! `Bug::StaleRead` answers at once from the local applied index on any node.

//!
//! # Simulation
//! [`sim`] plugs the core into the deterministic simulator
//! ([`crate::sim::SimCore`]): after every step the world checks the core's
//! own invariants ([`PaxosNode::invariants`]) and feeds what the core
//! journaled (durable promises and accepts, learned values) to the
//! [`sim::PaxosOracle`]: at most one value chosen per slot, one value per
//! (slot, ballot), no acceptor breaks a durable promise, learners agree.
//! nodes/tests/sim_paxos.rs runs the seeds and checks linearizability.

pub mod ballot;
pub mod log;
pub mod message;
pub mod node;
pub mod sim;

pub use ballot::{Ballot, Stamp};
pub use node::PaxosNode;
