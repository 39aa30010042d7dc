//! sim: deterministic simulation of the consensus cores.
//!
//! 3 to 7 cores run in one thread under one u64 seed and virtual time,
//! behind a network that drops, delays, duplicates, reorders and partitions
//! messages, on disks that lose unsynced writes when a node crashes. Every
//! node applies the node's own state machine through the runtime's
//! [`crate::server::applier::Applier`] (the real [`crate::state::Command`]
//! encoding, lease timers on virtual time). Clients ([`clients`]) run read /
//! write / cas on registers and, on a share of the seeds, acquire / fenced
//! write / renew / release on a lock, and record a history. After every
//! step the safety properties of Raft's Figure 3 are checked
//! ([`check::SafetyMonitor`]); the tests (nodes/tests/sim.rs) check the
//! registers' history for linearizability and the locks' with the
//! harness's `fencing` and `mutual-exclusion` checkers (checker crate).
//!
//! Every message and request crosses a simulated connection with its
//! sender's credential, admitted by the node's own access check
//! ([`connection`], server/access.rs); an impostor ([`impostor`]) tries
//! credentials that must be refused, and the tests judge its attempts with
//! the harness's `access` checker.
//!
//! A write answered definite `fail` must never commit
//! ([`failed_writes`], checked at the end of each run); with fresh register
//! values ([`clients::RegisterValues::Fresh`]) a read shows the history
//! checker any such write too.
//!
//! With [`SimOptions::membership`] (opt-in) the group also changes its
//! voters under the faults: the world asks the leader to add, remove or swap
//! voters out of a larger pool of node ids, starts joining cores on added
//! nodes and wipes removed ones a grace after they left (the node's rule),
//! and checks that every committed
//! configuration reaches the later leaders.
//!
//! Guarantees: the same seed (and options) gives the same trace, bit for
//! bit ([`world::SimOutcome::trace_hash`]). The generic parts (network,
//! storage, clients, history, state machine) know nothing of Raft; a
//! protocol plugs in through [`core::SimCore`].

pub mod check;
pub mod clients;
pub mod connection;
pub mod core;
pub mod delivery_fault;
pub mod failed_writes;
pub mod fnv;
pub mod history;
pub mod impostor;
pub mod network;
pub mod rng;
pub mod storage;
pub mod watchdog;
pub mod world;

pub use check::Violation;
pub use core::SimCore;
pub use delivery_fault::{DeliveryFaultPlan, DeliveryFaultStats};
pub use history::{History, SimEvent, SimEventKind};
pub use watchdog::SimLimits;
pub use world::{run, SimOptions, SimOutcome, SimStats};
