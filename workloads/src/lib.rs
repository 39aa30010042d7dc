//! faultline-workloads: what clients do.
//!
//! Per workload: the operation generator (a [`workload::WorkerGen`] per
//! client worker, seeded, so a seed gives the same schedule), the
//! system-neutral [`call::Call`] that carries each operation out, how a
//! client's [`call::Answer`] becomes a completion of the history
//! (docs/history-format.md), and which checkers judge it.
//!
//! Guarantees: a completion is `ok` only on an `ok` answer; `fail` only
//! when the operation certainly did not take effect or when it is a read;
//! everything else is `info`. The [`client::Client`] trait (Jepsen's Client
//! protocol) is what every system under test implements, in the harness;
//! [`fake_client`] executes calls in memory (for tests and the generator
//! benchmark). [`tcp_client`] is faultline's own node's wire client (the
//! home-node policy over `faultline_nodes::client::Connection`, speaking
//! `faultline_nodes::protocol`, the only definition of that wire format),
//! which the harness's faultline system wraps.

pub mod call;
pub mod client;
pub mod counter;
pub mod fake_client;
pub mod kv;
pub mod lock;
pub mod lock_counter;
pub mod op;
pub mod register;
pub mod set;
pub mod tcp_client;
pub mod txn;
pub mod value_shape;
pub mod workload;

pub use call::{apply_micro_ops, Answer, Call, MicroOp, MicroOpKind};
pub use client::{BoxFuture, Client};
pub use op::{Completion, Op, Outcome, Planned};
pub use value_shape::{ShapedClient, ValueShape};
pub use workload::{workload_for, WorkerGen, Workload, WorkloadKind, WorkloadOptions};
