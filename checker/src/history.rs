//! The history: the contract between the harness and the checker.
//!
//! Jepsen's model. Each operation is an `invoke` event followed by one
//! completion from the same process: `ok` (it happened, result observed),
//! `fail` (it definitely did not happen) or `info` (unknown: it may take
//! effect at any time after its invoke, or never). An invoke with no
//! completion is the same as `info`. Faults are events of the `nemesis`
//! process. The native format is JSON Lines, one [`Event`] a line; its schema
//! is documented in docs/history-format.md.

use serde::{Deserialize, Serialize};
use std::fmt;

pub use serde_json::Value;

/// Who issued an event: a client process (a number) or the nemesis.
///
/// Serialized as a JSON number for clients and the string `"nemesis"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    Client(u64),
    Nemesis,
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Process;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative process number or \"nemesis\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Process, E> {
                Ok(Process::Client(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Process, E> {
                u64::try_from(v)
                    .map(Process::Client)
                    .map_err(|_| E::custom(format!("process {v} is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Process, E> {
                match v {
                    "nemesis" => Ok(Process::Nemesis),
                    other => Err(E::custom(format!(
                        "process {other:?} is neither a number nor \"nemesis\""
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The type of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        })
    }
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history, from 0, strictly increasing.
    pub index: u64,
    /// Nanoseconds since the start of the test (monotonic clock).
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The function: `read`, `write`, `cas`, `acquire`, `start-partition`, …
    pub f: String,
    /// The key, for workloads over independent keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// Argument on invoke, result on completion (see docs/history-format.md).
    #[serde(default)]
    pub value: Value,
    /// The node the client sent the operation to, or the nodes a fault hit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Why an operation failed or is unknown (an error code or a message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
