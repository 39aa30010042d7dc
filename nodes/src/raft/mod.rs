//! raft: the Raft consensus core, sans-IO (see [`crate::consensus`] for the
//! contract with the runtime).

pub mod message;
pub mod log;
pub mod node;
pub mod progress;

pub use node::RaftNode;
