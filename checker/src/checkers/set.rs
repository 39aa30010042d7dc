//! The set checker: every acknowledged add must be in the final read, and
//! the final read holds nothing that was never added, and nothing twice.
//!
//! The final read is the `ok` read that completed last (per key). An add
//! counts as lost only if it was acknowledged before that read began; adds
//! still running when it began may or may not be in it.

use super::by_key;
use crate::history::Value;
use crate::operation::{Operation, Outcome};
use crate::verdict::{CheckerResult, SetWitness, Verdict, Witness};
use std::collections::{HashMap, HashSet};

pub fn check(ops: &[Operation]) -> CheckerResult {
    let mut witness = SetWitness::default();
    let mut summary = Vec::new();
    let mut unknown = None;
    for (key, ops) in by_key(ops.iter().filter(|o| o.f == "add" || o.f == "read")) {
        let Some(final_read) = ops
            .iter()
            .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
            .max_by_key(|o| o.complete_pos)
        else {
            unknown = Some(match &key {
                Some(k) => format!("no successful read of set {k}"),
                None => "no successful read of the set".to_string(),
            });
            continue;
        };
        let read: Vec<Value> = final_read
            .output
            .as_ref()
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let attempted: HashSet<String> = ops
            .iter()
            .filter(|o| o.f == "add")
            .map(|o| o.input.to_string())
            .collect();
        let mut count: HashMap<String, usize> = HashMap::new();
        for e in &read {
            *count.entry(e.to_string()).or_default() += 1;
        }
        let mut lost = 0;
        for add in ops
            .iter()
            .filter(|o| o.f == "add" && o.outcome == Outcome::Ok && o.precedes(final_read))
        {
            if !count.contains_key(&add.input.to_string()) {
                witness.lost.push(add.input.clone());
                lost += 1;
            }
        }
        let mut seen = HashSet::new();
        for e in &read {
            let s = e.to_string();
            if !attempted.contains(&s) {
                witness.unexpected.push(e.clone());
            }
            if count[&s] > 1 && seen.insert(s) {
                witness.duplicated.push(e.clone());
            }
        }
        let acked = ops
            .iter()
            .filter(|o| o.f == "add" && o.outcome == Outcome::Ok)
            .count();
        summary.push(format!(
            "{} acknowledged adds, {} in the final read, {lost} lost",
            acked,
            read.len()
        ));
        if witness.final_read.is_none() {
            witness.final_read = Some((*final_read).clone());
        }
    }
    let bad = !(witness.lost.is_empty()
        && witness.unexpected.is_empty()
        && witness.duplicated.is_empty());
    let verdict = if bad {
        Verdict::Invalid {
            witness: Witness::Set(witness),
        }
    } else if let Some(reason) = unknown {
        Verdict::Unknown { reason }
    } else {
        Verdict::Valid
    };
    CheckerResult {
        name: "set".into(),
        summary: summary.join("; "),
        verdict,
        details: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::op;

    #[test]
    fn finds_lost_unexpected_and_duplicated_elements() {
        let ops = vec![
            op(0, "add", 1, Some(1.into()), 0, Some(1)),
            op(1, "add", 2, Some(2.into()), 2, Some(3)),
            op(2, "add", 3, None, 4, None),
            op(
                3,
                "read",
                Value::Null,
                Some(serde_json::json!([1, 3, 9, 3])),
                10,
                Some(11),
            ),
        ];
        let r = check(&ops);
        let Verdict::Invalid {
            witness: Witness::Set(w),
        } = r.verdict
        else {
            panic!("{:?}", r.verdict)
        };
        assert_eq!(w.lost, vec![Value::from(2)]);
        assert_eq!(w.unexpected, vec![Value::from(9)]);
        assert_eq!(w.duplicated, vec![Value::from(3)]);
    }

    #[test]
    fn an_add_concurrent_with_the_final_read_may_be_missing() {
        let ops = vec![
            op(0, "add", 1, Some(1.into()), 0, Some(1)),
            op(1, "add", 2, Some(2.into()), 2, Some(9)),
            op(
                2,
                "read",
                Value::Null,
                Some(serde_json::json!([1])),
                5,
                Some(6),
            ),
        ];
        assert!(check(&ops).verdict.is_valid());
        assert!(matches!(check(&ops[..2]).verdict, Verdict::Unknown { .. }));
    }
}
