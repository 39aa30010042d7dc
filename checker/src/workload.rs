//! Which checkers judge which workload, and guessing the workload of a
//! history that does not say.

use crate::error::CheckError;
use crate::history::Value;
use crate::model::ModelKind;
use crate::operation::Operations;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The workloads the harness runs; each names the checkers that judge it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Linearizability against `cas-register` (split by key if keyed).
    Register,
    /// Linearizability against `kv`, split by key.
    Kv,
    /// The set checker.
    Set,
    /// The counter checker.
    Counter,
    /// Fencing and mutual exclusion of leases; with kept-alive leases
    /// (`"keepalive": true` in the acquires), Jepsen's linearizable mutex too.
    Lock,
    /// The counter checker, over a counter that holders of a lock
    /// read-modify-write without any other guard: a lost update is a lost
    /// exclusion.
    LockCounter,
    /// Transactions of appends and list reads: isolation (Elle's list-append).
    ListAppend,
    /// Transactions of register writes and reads: isolation (rw-register).
    RwRegister,
}

impl Workload {
    pub const ALL: [Workload; 8] = [
        Workload::Register,
        Workload::Kv,
        Workload::Set,
        Workload::Counter,
        Workload::Lock,
        Workload::ListAppend,
        Workload::RwRegister,
        Workload::LockCounter,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Register => "register",
            Workload::Kv => "kv",
            Workload::Set => "set",
            Workload::Counter => "counter",
            Workload::Lock => "lock",
            Workload::ListAppend => "list-append",
            Workload::RwRegister => "rw-register",
            Workload::LockCounter => "lock-counter",
        }
    }

    /// The linearizability model it is checked with, if any.
    pub fn model(self) -> Option<ModelKind> {
        match self {
            Workload::Register => Some(ModelKind::CasRegister),
            Workload::Kv => Some(ModelKind::Kv),
            Workload::Set
            | Workload::Counter
            | Workload::Lock
            | Workload::LockCounter
            | Workload::ListAppend
            | Workload::RwRegister => None,
        }
    }

    /// The transactional model it is checked with, if any.
    pub fn txn_model(self) -> Option<crate::txn::TxnModel> {
        match self {
            Workload::ListAppend => Some(crate::txn::TxnModel::ListAppend),
            Workload::RwRegister => Some(crate::txn::TxnModel::RwRegister),
            _ => None,
        }
    }

    /// Guesses from the operations' names and values: txn → list-append
    /// when some micro-op appends, else rw-register; acquire → lock;
    /// add with a list read → set, with a number read → counter;
    /// get/put/append → kv; otherwise register.
    pub fn infer(ops: &Operations) -> Workload {
        let has = |f: &str| ops.ops.iter().any(|o| o.f == f);
        if has("txn") {
            let appends = ops.ops.iter().filter(|o| o.f == "txn").any(|o| {
                o.input.as_array().is_some_and(|mops| {
                    mops.iter()
                        .any(|m| m.get(0).and_then(Value::as_str) == Some("append"))
                })
            });
            return if appends {
                Workload::ListAppend
            } else {
                Workload::RwRegister
            };
        }
        if has("acquire") || has("fenced-write") {
            return Workload::Lock;
        }
        if has("add") {
            let list_read = ops
                .ops
                .iter()
                .any(|o| o.f == "read" && o.output.as_ref().is_some_and(|v| v.is_array()));
            return if list_read {
                Workload::Set
            } else {
                Workload::Counter
            };
        }
        if has("get") || has("put") || has("append") {
            return Workload::Kv;
        }
        Workload::Register
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<Self, CheckError> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| CheckError::UnknownName {
                what: "workload",
                name: s.to_string(),
                expected: Workload::ALL.map(Workload::name).join(", "),
            })
    }
}
