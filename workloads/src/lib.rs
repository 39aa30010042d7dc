//! faultline-workloads: what clients do.
//!
//! Per workload: the operation generator (a [`workload::WorkerGen`] per
//! client worker, seeded, so a seed gives the same schedule), how an
//! operation becomes a request of the node protocol (docs/protocol.md) and
//! how a reply becomes a completion of the history
//! (docs/history-format.md), and which checkers judge it.
//!
//! Guarantees: a completion is `ok` only on an `ok` reply; `fail` only when
//! the operation certainly did not take effect (a definite error, or the
//! request never reached a node) or when it is a read; everything else is
//! `info`. The [`client::Client`] trait hides the transport: [`tcp_client`]
//! speaks the protocol over TCP, [`fake_client`] executes requests in memory
//! (for tests and the generator benchmark).

pub mod client;
pub mod counter;
pub mod fake_client;
pub mod kv;
pub mod lock;
pub mod op;
pub mod protocol;
pub mod register;
pub mod set;
pub mod tcp_client;
pub mod workload;

pub use client::{CallResult, Client};
pub use op::{Completion, Op, Outcome, Planned};
pub use protocol::{Reply, Request};
pub use workload::{workload_by_name, WorkerGen, Workload, WORKLOADS};
