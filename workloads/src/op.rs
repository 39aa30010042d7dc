//! Operations as the history sees them.

use crate::call::Call;
use serde_json::Value;
use std::time::Duration;

/// An operation a worker invokes: the `f`, `key` and `value` of its invoke
/// event (docs/history-format.md).
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub f: &'static str,
    pub key: Option<Value>,
    pub value: Value,
}

/// What the generator hands a worker: the operation (as the history records
/// it), the system-neutral call that carries it out, and how long the worker waits before invoking it (a slow
/// client; zero for almost every operation).
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub op: Op,
    pub call: Call,
    pub delay_before: Duration,
}

/// The three ways an operation ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It happened; `value` holds what was observed.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Unknown: it may take effect at any time, or never.
    Info,
}

/// The completion event's content.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    pub outcome: Outcome,
    pub value: Value,
    pub error: Option<String>,
    /// The node that answered (or was last tried).
    pub node: Option<String>,
}
