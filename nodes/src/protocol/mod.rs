//! The node's wire protocol, docs/protocol.md: JSON Lines over TCP.
//!
//! [`Request`] and [`Reply`] are the client and admin messages; [`LineReader`]
//! reads lines of bounded length. Every decoder here takes untrusted bytes
//! and returns an error, never panics, never allocates past its limit
//! (proptest fuzzes each one).

pub mod line;
pub mod reply;
pub mod request;

pub use line::{LineError, LineReader, MAX_CLIENT_LINE_BYTES, MAX_PEER_LINE_BYTES};
pub use reply::{ErrorCode, Reply};
pub use request::{nesting_depth, DecodeError, Op, Request, MAX_REQUEST_DEPTH};
