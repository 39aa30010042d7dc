//! Checkers that are not linearizability searches: set, counter, fencing
//! and mutual exclusion of leases, stats, and access (the impostor's
//! attempts). Each is a single pass (plus a sort) over the operations or
//! events, so it scales to any history.

pub mod access;
pub mod counter;
pub mod fencing;
pub mod mutex;
pub mod set;
pub mod stats;

use crate::history::Value;
use crate::operation::Operation;
use std::collections::HashMap;

/// Groups operations by key, in order of first appearance (no key: one
/// group with key `None`).
pub(crate) fn by_key<'a>(
    ops: impl Iterator<Item = &'a Operation>,
) -> Vec<(Option<Value>, Vec<&'a Operation>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(Option<Value>, Vec<&Operation>)> = Vec::new();
    for op in ops {
        let k = op.key.as_ref().map(Value::to_string).unwrap_or_default();
        let i = *index.entry(k).or_insert_with(|| {
            groups.push((op.key.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(op);
    }
    groups
}
