//! The node's wire protocol, docs/protocol.md: JSON Lines over TCP.
//! This is the only definition of the client and admin wire format: the
//! node, every client (nodes::client, the workload client, the harness's
//! admin requests and probes) encode and decode with these types, and
//! golden.rs pins their exact lines.
//!
//! [`Request`] and [`Reply`] are the client and admin messages; [`LineReader`]
//! reads lines of bounded length. Every decoder here takes untrusted bytes
//! and returns an error, never panics, never allocates past its limit
//! (proptest fuzzes each one).

#[cfg(test)]
mod golden;
pub mod line;
pub mod reply;
pub mod request;

pub use line::{
    LineError, LineReader, MAX_CLIENT_LINE_BYTES, MAX_PEER_LINE_BYTES, MAX_REPLY_LINE_BYTES,
};
pub use reply::{ErrorCode, Reply};
pub use request::{nesting_depth, DecodeError, Op, Request, MAX_REQUEST_DEPTH};
