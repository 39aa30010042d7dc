//! The counter checker: every read lies between the sum of the adds that
//! certainly happened before it and the sum of those that possibly did.
//!
//! For a read R: an `ok` add that completed before R began certainly
//! counts; an `ok` add that overlaps R, or an `info` add invoked before R
//! completed, may count (its delta widens the bounds on its side: positive
//! deltas raise the upper bound, negative ones lower the lower bound).
//! `fail` adds never count.

use super::by_key;
use crate::history::Value;
use crate::operation::{Operation, Outcome};
use crate::verdict::{CheckerResult, CounterError, CounterWitness, Verdict, Witness};

pub fn check(ops: &[Operation]) -> CheckerResult {
    let mut errors = Vec::new();
    let mut reads_checked = 0;
    for (_key, ops) in by_key(ops.iter().filter(|o| o.f == "add" || o.f == "read")) {
        // Adds sorted by completion (certain) and by invoke (possible).
        let mut certain: Vec<(u64, i64)> = Vec::new();
        let mut possible: Vec<(u64, i64)> = Vec::new();
        for a in ops.iter().filter(|o| o.f == "add") {
            let Some(d) = a.input.as_i64() else { continue };
            match a.outcome {
                Outcome::Ok => {
                    certain.push((a.complete_pos.expect("ok ops complete"), d));
                    possible.push((a.invoke_pos, d));
                }
                Outcome::Info => possible.push((a.invoke_pos, d)),
                Outcome::Fail => {}
            }
        }
        certain.sort_unstable();
        possible.sort_unstable();
        let prefix = |v: &[(u64, i64)], f: fn(i64) -> i64| -> Vec<i64> {
            let mut acc = 0i64;
            let mut out = vec![0];
            for &(_, d) in v {
                acc = acc.saturating_add(f(d));
                out.push(acc);
            }
            out
        };
        let certain_sum = prefix(&certain, |d| d);
        let certain_pos = prefix(&certain, |d| d.max(0));
        let certain_neg = prefix(&certain, |d| d.min(0));
        let possible_pos = prefix(&possible, |d| d.max(0));
        let possible_neg = prefix(&possible, |d| d.min(0));
        for r in ops
            .iter()
            .filter(|o| o.f == "read" && o.outcome == Outcome::Ok)
        {
            let Some(v) = r.output.as_ref().and_then(Value::as_i64) else {
                continue;
            };
            reads_checked += 1;
            let (inv, comp) = (r.invoke_pos, r.complete_pos.expect("ok ops complete"));
            // Certain: completed before the read began.
            let c = certain.partition_point(|&(p, _)| p < inv);
            // Possible: invoked before the read completed.
            let p = possible.partition_point(|&(p, _)| p < comp);
            // Possible adds that are not certain contribute their sign.
            let lower = certain_sum[c] + (possible_neg[p] - certain_neg[c]);
            let upper = certain_sum[c] + (possible_pos[p] - certain_pos[c]);
            if v < lower || v > upper {
                errors.push(CounterError {
                    read: (*r).clone(),
                    value: v,
                    lower,
                    upper,
                });
            }
        }
    }
    let summary = format!(
        "{reads_checked} reads checked, {} out of bounds",
        errors.len()
    );
    let verdict = if !errors.is_empty() {
        Verdict::Invalid {
            witness: Witness::Counter(CounterWitness { errors }),
        }
    } else if reads_checked == 0 {
        Verdict::unknown("no successful read of the counter")
    } else {
        Verdict::Valid
    };
    CheckerResult {
        name: "counter".into(),
        summary,
        verdict,
        details: Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::op;

    #[test]
    fn reads_must_lie_between_certain_and_possible_sums() {
        let ops = vec![
            op(0, "add", 5, Some(5.into()), 0, Some(1)),
            op(1, "add", 3, None, 2, None),
            op(2, "read", Value::Null, Some(8.into()), 4, Some(5)),
            op(3, "read", Value::Null, Some(5.into()), 6, Some(7)),
        ];
        assert!(check(&ops).verdict.is_valid());
        let mut bad = ops.clone();
        bad[3].output = Some(4.into());
        let r = check(&bad);
        let Verdict::Invalid {
            witness: Witness::Counter(w),
        } = r.verdict
        else {
            panic!()
        };
        assert_eq!((w.errors[0].lower, w.errors[0].upper), (5, 8));
        let mut bad = ops;
        bad[2].output = Some(9.into());
        assert!(check(&bad).verdict.is_invalid());
    }
}
