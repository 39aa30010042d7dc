//! Any system under test through an adapter file (docs/adapters.md).
//!
//! An adapter file names, per node, the commands that set a node up and
//! start its daemons (each in its own process group, so faultline can kill,
//! pause and resume it), the ports partitions cut, and a client command
//! that faultline starts once per worker, speaking JSON Lines on stdin and
//! stdout. This module reads the file ([`file`]) and fills in its command
//! templates ([`template`]). Guarantees: no input makes it panic; every
//! refusal names the file and line.

pub mod client;
pub mod client_process;
pub mod command;
pub mod file;
pub mod node;
pub mod system;
pub mod template;

pub use file::{AdapterFile, AdapterFileError};
