//! raft: the Raft consensus core, sans-IO (see [`crate::consensus`] for the
//! contract with the runtime).

pub mod log;
pub mod message;
pub mod node;
pub mod progress;

pub use node::RaftNode;
