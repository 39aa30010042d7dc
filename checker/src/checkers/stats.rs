//! The stats checker: how many operations of each `f` ended ok, fail and
//! info. Where it judges (a test run, [`Role::Judge`]) it judges one thing:
//! a run in which no operation succeeded tested nothing, and is `unknown`.
//! Checking a history file ([`Role::Inform`]) it only counts: a history
//! whose operations all failed is what it is, and the model judges it.

use crate::operation::{Operation, Outcome};
use crate::verdict::{CheckerResult, Verdict};
use serde_json::json;
use std::collections::BTreeMap;

/// Whether the stats judge the history or only describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Judge,
    Inform,
}

pub fn check(ops: &[Operation], role: Role) -> CheckerResult {
    let mut by_f: BTreeMap<&str, [u64; 3]> = BTreeMap::new();
    for op in ops {
        let c = by_f.entry(op.f.as_str()).or_default();
        c[match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        }] += 1;
    }
    let total: [u64; 3] = by_f
        .values()
        .fold([0; 3], |a, c| [a[0] + c[0], a[1] + c[1], a[2] + c[2]]);
    let details = json!(by_f
        .iter()
        .map(|(f, c)| (
            f.to_string(),
            json!({"ok": c[0], "fail": c[1], "info": c[2]})
        ))
        .collect::<serde_json::Map<_, _>>());
    let summary = by_f
        .iter()
        .map(|(f, c)| format!("{f}: {} ok, {} fail, {} info", c[0], c[1], c[2]))
        .collect::<Vec<_>>()
        .join("; ");
    let verdict = if total[0] == 0 && role == Role::Judge {
        Verdict::unknown("no operation succeeded")
    } else {
        Verdict::Valid
    };
    CheckerResult {
        name: "stats".into(),
        verdict,
        summary,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Value;
    use crate::testutil::op;

    #[test]
    fn counts_outcomes_per_f() {
        let ops = vec![
            op(0, "read", Value::Null, Some(1.into()), 0, Some(1)),
            op(1, "write", 1, None, 2, Some(3)),
            op(2, "write", 1, None, 4, None),
        ];
        let r = check(&ops, Role::Judge);
        assert!(r.verdict.is_valid());
        assert_eq!(r.details["write"], json!({"ok": 0, "fail": 1, "info": 1}));
        let nothing_succeeded = &ops[1..];
        assert!(matches!(
            check(nothing_succeeded, Role::Judge).verdict,
            Verdict::Unknown { .. }
        ));
        assert!(check(nothing_succeeded, Role::Inform).verdict.is_valid());
    }
}
