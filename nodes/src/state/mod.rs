//! The replicated state machine of the real node and the simulator.
//!
//! [`Command`]s are serialized into log entries; [`StateMachine`] applies
//! committed ones deterministically and snapshots/restores itself whole.

pub mod command;
pub mod machine;
pub mod txn;

pub use command::Command;
pub use machine::{Applied, Lease, LeaseChange, Lock, StateMachine};
pub use txn::{MicroOp, MicroOpKind};
