//! faultline-nodes: the system under test.
//!
//! One node holds a consistent-hash ring, two consensus protocols (Raft and
//! Multi-Paxos) and a replicated key-value and lock service with fencing
//! tokens. Protocol cores are sans-IO state machines; the real node wraps
//! them in a tokio TCP transport and a file WAL, and the deterministic
//! simulator (`sim`) runs the same cores in one thread with virtual time.
//! This crate depends on no other crate of the workspace (its tests use the
//! checker).

pub mod bug;
pub mod client;
pub mod consensus;
pub mod election_timer;
pub mod paxos;
pub mod protocol;
pub mod quorum;
pub mod raft;
pub mod ring;
pub mod server;
pub mod sim;
pub mod snapshot_transfer;
pub mod splitmix;
pub mod state;
pub mod storage;
pub mod tls;
pub mod transport;
pub mod wire_bytes;
