//! Errors: only for input that cannot be read or does not fit a model.
//!
//! "Not linearizable" is never an error; it is a [`crate::Verdict`]. Every
//! error names where the problem is (file, line or event index) and what was
//! expected, so a user can fix the input.

use thiserror::Error;

/// A history that cannot be read, or that breaks the history's rules.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HistoryError {
    /// A line or form that does not parse.
    #[error("{source_name}:{line}: {message}")]
    Parse {
        source_name: String,
        line: usize,
        message: String,
    },
    /// Blank input, or a history with no event at all.
    #[error("{0}: empty history: no operation in it")]
    Empty(String),
    /// Input that is no history at all (a README, a binary, some other
    /// JSON): its first meaningful line, and why it is not one.
    #[error("{source_name}:{line}: not a history: {reason}; its first line: {first_line:?}")]
    NotAHistory {
        source_name: String,
        line: usize,
        first_line: String,
        reason: String,
    },
    /// The input could not be read at all.
    #[error("{source_name}: cannot read: {message}")]
    Read {
        source_name: String,
        message: String,
    },
    /// A completion whose process has no outstanding invoke.
    #[error("{source_name}:{line}: process {process} completes {f:?} ({kind}) but has no outstanding invoke")]
    CompletionWithoutInvoke {
        source_name: String,
        line: usize,
        process: u64,
        f: String,
        kind: String,
    },
    /// An invoke from a process that still has an operation outstanding.
    #[error("{source_name}:{line}: process {process} invokes {f:?} while its invoke of {outstanding:?} (line {outstanding_line}) has not completed")]
    DoubleInvoke {
        source_name: String,
        line: usize,
        process: u64,
        f: String,
        outstanding: String,
        outstanding_line: usize,
    },
    /// A completion whose `f` differs from its invoke's.
    #[error("{source_name}:{line}: process {process} completes {got:?} but invoked {invoked:?} (line {invoke_line})")]
    MismatchedCompletion {
        source_name: String,
        line: usize,
        process: u64,
        got: String,
        invoked: String,
        invoke_line: usize,
    },
}

/// An operation that the chosen model cannot interpret (bad input too).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CheckError {
    #[error(transparent)]
    History(#[from] HistoryError),
    /// An operation whose `f` or value does not fit the model.
    #[error("model {model}: operation at event {index} ({op}): {message}")]
    Op {
        model: String,
        index: u64,
        op: String,
        message: String,
    },
    /// An unknown model or workload name.
    #[error("unknown {what} {name:?}; expected one of: {expected}")]
    UnknownName {
        what: &'static str,
        name: String,
        expected: String,
    },
}
