//! Verdicts and witnesses: what a checker concludes.
//!
//! A verdict is [`Verdict::Valid`], [`Verdict::Invalid`] with a
//! [`Witness`] that shows why, or [`Verdict::Unknown`] with the reason the
//! checker could not decide (time limit, memory bound, nothing to check).
//! Every witness renders as text (`Display`) and serializes to JSON.

use crate::history::Value;
use crate::operation::Operation;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The conclusion of one checker.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "verdict", rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid { witness: Witness },
    Unknown { reason: String },
}

/// The three kinds of verdict, ordered from best to worst for aggregation
/// (invalid beats unknown beats valid).
/// It is also the verdict `results.json` stores (faultline-results uses this
/// type; there is no second definition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VerdictKind {
    Valid,
    Unknown,
    Invalid,
}

impl VerdictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictKind::Valid => "valid",
            VerdictKind::Unknown => "unknown",
            VerdictKind::Invalid => "invalid",
        }
    }
}

impl Verdict {
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Valid => VerdictKind::Valid,
            Verdict::Invalid { .. } => VerdictKind::Invalid,
            Verdict::Unknown { .. } => VerdictKind::Unknown,
        }
    }
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid)
    }
    pub fn is_invalid(&self) -> bool {
        matches!(self, Verdict::Invalid { .. })
    }
    pub fn unknown(reason: impl Into<String>) -> Verdict {
        Verdict::Unknown {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for VerdictKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid => f.write_str("valid"),
            Verdict::Unknown { reason } => write!(f, "unknown: {reason}"),
            Verdict::Invalid { witness } => write!(f, "invalid\n{witness}"),
        }
    }
}

/// Why a history is invalid, per checker.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Witness {
    Linearizability(Box<LinearizabilityWitness>),
    Set(SetWitness),
    Counter(CounterWitness),
    Fencing(FencingWitness),
    /// Transactional anomalies (list-append, rw-register).
    Txn(Box<crate::txn::TxnWitness>),
}

impl fmt::Display for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Witness::Linearizability(w) => w.fmt(f),
            Witness::Set(w) => w.fmt(f),
            Witness::Counter(w) => w.fmt(f),
            Witness::Fencing(w) => w.fmt(f),
            Witness::Txn(w) => w.fmt(f),
        }
    }
}

/// How far the linearizability search got, and where it got stuck.
#[derive(Clone, Debug, Serialize)]
pub struct LinearizabilityWitness {
    pub model: String,
    /// The key of the independent sub-history that failed, if split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Value>,
    /// The operation that cannot be placed: after the longest linearizable
    /// prefix, the earliest-completing operation left, which had to be
    /// linearized next and could not be.
    pub failing_op: Operation,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<Operation>,
    /// The model state after each operation of the prefix (the last
    /// [`Self::STATES_KEPT`] only; `prefix_states_from` says where they start).
    pub prefix_states: Vec<String>,
    pub prefix_states_from: usize,
    /// The model state after the whole prefix.
    pub final_state: String,
    /// The operations not in the prefix that overlap the failing one in real
    /// time (including it), each with what happens when it is applied to the
    /// final state.
    pub concurrent: Vec<Attempt>,
    /// Real-time window of the failure: from the earliest invoke to the
    /// latest completion among the concurrent operations (event positions).
    pub window: (u64, u64),
}

impl LinearizabilityWitness {
    pub const STATES_KEPT: usize = 32;
}

/// One candidate operation at the point of failure.
#[derive(Clone, Debug, Serialize)]
pub struct Attempt {
    pub op: Operation,
    /// The state after applying it, or `None` if it cannot be applied.
    pub next_state: Option<String>,
}

impl fmt::Display for LinearizabilityWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not linearizable ({})", self.model)?;
        if let Some(k) = &self.key {
            write!(f, " on key {k}")?;
        }
        writeln!(f)?;
        writeln!(f, "  cannot place: {}", self.failing_op)?;
        writeln!(
            f,
            "  longest linearizable prefix: {} operations; state after it: {}",
            self.prefix.len(),
            self.final_state
        )?;
        let shown = 8.min(self.prefix.len());
        if shown > 0 {
            writeln!(f, "  last {shown} of the prefix (op => state):")?;
            for (i, op) in self
                .prefix
                .iter()
                .enumerate()
                .skip(self.prefix.len() - shown)
            {
                let state = i
                    .checked_sub(self.prefix_states_from)
                    .and_then(|j| self.prefix_states.get(j))
                    .map(String::as_str)
                    .unwrap_or("?");
                writeln!(f, "    {op}  => {state}")?;
            }
        }
        writeln!(
            f,
            "  concurrent operations not yet linearized, applied to {}:",
            self.final_state
        )?;
        for a in &self.concurrent {
            match &a.next_state {
                Some(s) => writeln!(f, "    {}  => {s}", a.op)?,
                None => writeln!(f, "    {}  => impossible", a.op)?,
            }
        }
        Ok(())
    }
}

/// Set anomalies against the final read.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SetWitness {
    /// Acknowledged adds missing from the final read.
    pub lost: Vec<Value>,
    /// Elements in the final read that nobody tried to add.
    pub unexpected: Vec<Value>,
    /// Elements the final read lists more than once.
    pub duplicated: Vec<Value>,
    /// The final read.
    pub final_read: Option<Operation>,
}

impl fmt::Display for SetWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &[Value]| {
            let shown: Vec<String> = v.iter().take(20).map(Value::to_string).collect();
            let more = if v.len() > 20 {
                format!(" … ({} in all)", v.len())
            } else {
                String::new()
            };
            format!("[{}]{more}", shown.join(", "))
        };
        writeln!(f, "set anomalies against the final read:")?;
        writeln!(f, "  lost: {}", show(&self.lost))?;
        writeln!(f, "  unexpected: {}", show(&self.unexpected))?;
        writeln!(f, "  duplicated: {}", show(&self.duplicated))?;
        if let Some(op) = &self.final_read {
            writeln!(f, "  final read: event {} by p{}", op.index, op.process)?;
        }
        Ok(())
    }
}

/// Counter reads outside what the adds allow.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CounterWitness {
    pub errors: Vec<CounterError>,
}

/// One read outside its bounds.
#[derive(Clone, Debug, Serialize)]
pub struct CounterError {
    pub read: Operation,
    pub value: i64,
    /// Sum of the adds certainly applied (plus possible negative ones).
    pub lower: i64,
    /// Sum of the adds possibly applied.
    pub upper: i64,
}

impl fmt::Display for CounterWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} counter read(s) out of bounds:", self.errors.len())?;
        for e in self.errors.iter().take(20) {
            writeln!(
                f,
                "  {} read {} not in [{}, {}]",
                e.read, e.value, e.lower, e.upper
            )?;
        }
        Ok(())
    }
}

/// Lock-safety violations.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FencingWitness {
    pub violations: Vec<FencingViolation>,
}

/// One lock-safety violation, with the operations involved.
#[derive(Clone, Debug, Serialize)]
pub struct FencingViolation {
    /// `token-order`, `stale-write` or `mutual-exclusion`.
    pub rule: String,
    pub message: String,
    pub ops: Vec<Operation>,
}

impl fmt::Display for FencingWitness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} lock-safety violation(s):", self.violations.len())?;
        for v in self.violations.iter().take(20) {
            writeln!(f, "  [{}] {}", v.rule, v.message)?;
            for op in &v.ops {
                writeln!(f, "      {op}")?;
            }
        }
        Ok(())
    }
}

/// One checker's name and verdict, plus optional details (e.g. stats).
#[derive(Clone, Debug, Serialize)]
pub struct CheckerResult {
    /// `linearizable`, `set`, `counter`, `fencing`, `mutual-exclusion`, `stats`.
    pub name: String,
    #[serde(flatten)]
    pub verdict: Verdict,
    /// A one-line human summary ("valid: 4213 ops on 10 keys").
    pub summary: String,
    /// Checker-specific numbers (JSON), e.g. the counts of the stats checker.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

/// The results of every checker run on one history.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub verdict: VerdictKind,
    pub results: Vec<CheckerResult>,
}

impl Report {
    pub fn new(results: Vec<CheckerResult>) -> Report {
        let verdict = results
            .iter()
            .map(|r| r.verdict.kind())
            .max()
            .unwrap_or(VerdictKind::Unknown);
        Report { verdict, results }
    }
}
