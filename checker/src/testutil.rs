//! Helpers for unit tests: operations written tersely.

use crate::history::Value;
use crate::operation::{Operation, Outcome};

/// Operation `id` (also its process) with invoke and completion positions
/// (times are positions × 1 ms). `output: None` with `complete: None` is a
/// crashed op; with `complete: Some` it is a failed one.
pub fn op(
    id: usize,
    f: &str,
    input: impl Into<Value>,
    output: Option<Value>,
    invoke: u64,
    complete: Option<u64>,
) -> Operation {
    let outcome = match (&output, complete) {
        (Some(_), Some(_)) => Outcome::Ok,
        (None, Some(_)) => Outcome::Fail,
        _ => Outcome::Info,
    };
    Operation {
        id,
        process: id as u64,
        f: f.to_string(),
        key: None,
        input: input.into(),
        output: if outcome == Outcome::Ok { output } else { None },
        outcome,
        invoke_pos: invoke,
        complete_pos: if outcome == Outcome::Info {
            None
        } else {
            complete
        },
        invoke_time: invoke * 1_000_000,
        complete_time: if outcome == Outcome::Info {
            None
        } else {
            complete.map(|c| c * 1_000_000)
        },
        index: invoke,
        line: invoke as usize + 1,
    }
}
