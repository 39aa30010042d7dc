//! raft: the Raft consensus core, sans-IO (see [`crate::consensus`] for the
//! contract with the runtime).

pub mod message;
