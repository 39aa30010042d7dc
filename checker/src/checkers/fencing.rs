//! Lock safety: fencing tokens and mutual exclusion of leases.
//!
//! `fencing` (per lock key, and per protected resource key):
//! - token order: an acquire that began after another acquire was granted
//!   gets a strictly larger token, and no token is granted twice;
//! - stale writes: a resource never accepts (`ok`) a `fenced-write` whose
//!   token is smaller than that of a write it had already accepted (one
//!   that completed before this one began).
//!
//! `mutual-exclusion` (per lock key), in real time: a holder certainly
//! holds its lease from its acquire's completion until its acquire's invoke
//! time plus `ttl_ms` (the server granted no earlier than the invoke),
//! extended the same way by each successful renew, and cut at the invoke of
//! its release. Another owner's acquire that both began and completed `ok`
//! inside that window was granted while the lease was certainly held.

use super::by_key;
use crate::history::Value;
use crate::model::field;
use crate::operation::{Operation, Outcome};
use crate::verdict::{CheckerResult, FencingViolation, FencingWitness, Verdict, Witness};
use std::collections::HashMap;

fn token(op: &Operation) -> Option<u64> {
    op.output
        .as_ref()
        .and_then(|v| field(v, "token"))
        .or_else(|| field(&op.input, "token"))
        .and_then(Value::as_u64)
}

fn owner(op: &Operation) -> Option<String> {
    field(&op.input, "owner").map(Value::to_string)
}

fn ttl_ns(op: &Operation) -> Option<u64> {
    field(&op.input, "ttl_ms")
        .or_else(|| op.output.as_ref().and_then(|v| field(v, "ttl_ms")))
        .and_then(Value::as_u64)
        .map(|ms| ms.saturating_mul(1_000_000))
}

/// Violations of "a later op's token is at least (or more than) every
/// token of the ops that completed before it began".
fn monotonic<'a>(ops: &[&'a Operation], strict: bool, rule: &str, out: &mut Vec<FencingViolation>) {
    let mut by_completion: Vec<(u64, u64, &Operation)> = ops
        .iter()
        .filter_map(|o| Some((o.complete_pos?, token(o)?, *o)))
        .collect();
    by_completion.sort_unstable_by_key(|&(c, _, _)| c);
    // Running maximum token (and its op) over completions.
    let mut best: Vec<(u64, &Operation)> = Vec::with_capacity(by_completion.len());
    for &(_, t, o) in &by_completion {
        match best.last() {
            Some(&(m, _)) if m >= t => best.push(*best.last().expect("non-empty")),
            _ => best.push((t, o)),
        }
    }
    for b in ops {
        let Some(tb) = token(b) else { continue };
        let k = by_completion.partition_point(|&(c, _, _)| c < b.invoke_pos);
        if k == 0 {
            continue;
        }
        let (max, a) = best[k - 1];
        let bad = if strict { max >= tb } else { max > tb };
        if bad {
            out.push(FencingViolation {
                rule: rule.to_string(),
                message: if rule == "token-order" {
                    format!("acquire got token {tb}, but token {max} had already been granted before it began")
                } else {
                    format!("resource accepted a write with token {tb} after accepting token {max}")
                },
                ops: vec![a.clone(), (*b).clone()],
            });
        }
    }
}

/// Runs both lock checkers: `fencing` and `mutual-exclusion`.
pub fn check(ops: &[Operation]) -> Vec<CheckerResult> {
    let mut fencing = Vec::new();
    let mut exclusion = Vec::new();
    let (mut acquires, mut writes) = (0usize, 0usize);
    let lock_ops = ops
        .iter()
        .filter(|o| matches!(o.f.as_str(), "acquire" | "renew" | "release"));
    for (key, ops) in by_key(lock_ops) {
        let granted: Vec<&Operation> = ops
            .iter()
            .copied()
            .filter(|o| o.f == "acquire" && o.outcome == Outcome::Ok)
            .collect();
        acquires += granted.len();
        // No token granted twice.
        let mut seen: HashMap<u64, &Operation> = HashMap::new();
        for a in &granted {
            let Some(t) = token(a) else { continue };
            if let Some(first) = seen.insert(t, a) {
                fencing.push(FencingViolation {
                    rule: "token-order".into(),
                    message: format!(
                        "token {t} of lock {} granted twice",
                        key.clone().unwrap_or(Value::Null)
                    ),
                    ops: vec![first.clone(), (*a).clone()],
                });
            }
        }
        monotonic(&granted, true, "token-order", &mut fencing);
        mutual_exclusion(&ops, &granted, &mut exclusion);
    }
    let write_ops = ops
        .iter()
        .filter(|o| o.f == "fenced-write" && o.outcome == Outcome::Ok);
    for (_key, ws) in by_key(write_ops) {
        writes += ws.len();
        monotonic(&ws, false, "stale-write", &mut fencing);
    }
    let result = |name: &str, violations: Vec<FencingViolation>, summary: String| {
        let verdict = if !violations.is_empty() {
            Verdict::Invalid {
                witness: Witness::Fencing(FencingWitness { violations }),
            }
        } else if acquires == 0 {
            Verdict::unknown("no acquire succeeded")
        } else {
            Verdict::Valid
        };
        CheckerResult {
            name: name.into(),
            verdict,
            summary,
            details: Value::Null,
        }
    };
    let fsum = format!(
        "{acquires} grants, {writes} accepted fenced writes, {} violations",
        fencing.len()
    );
    let esum = format!("{acquires} grants, {} overlapping leases", exclusion.len());
    vec![
        result("fencing", fencing, fsum),
        result("mutual-exclusion", exclusion, esum),
    ]
}

fn mutual_exclusion(ops: &[&Operation], granted: &[&Operation], out: &mut Vec<FencingViolation>) {
    // Renewals and releases per (owner, token).
    let mut renews: HashMap<(String, u64), Vec<&Operation>> = HashMap::new();
    let mut releases: HashMap<(String, u64), Vec<&Operation>> = HashMap::new();
    for o in ops {
        let (Some(w), Some(t)) = (owner(o), token(o)) else {
            continue;
        };
        match o.f.as_str() {
            "renew" if o.outcome == Outcome::Ok => renews.entry((w, t)).or_default().push(o),
            "release" => releases.entry((w, t)).or_default().push(o),
            _ => {}
        }
    }
    let mut by_invoke: Vec<&Operation> = granted.to_vec();
    by_invoke.sort_by_key(|o| o.invoke_time);
    for a in granted {
        let (Some(ttl), Some(w), Some(t), Some(done)) =
            (ttl_ns(a), owner(a), token(a), a.complete_time)
        else {
            continue;
        };
        let mut end = a.invoke_time.saturating_add(ttl);
        if let Some(rs) = renews.get(&(w.clone(), t)) {
            let mut rs = rs.clone();
            rs.sort_by_key(|r| r.invoke_time);
            for r in rs {
                if r.invoke_time <= end {
                    end = end.max(r.invoke_time.saturating_add(ttl_ns(r).unwrap_or(ttl)));
                }
            }
        }
        if let Some(rel) = releases.get(&(w.clone(), t)) {
            for r in rel.iter().filter(|r| r.invoke_time >= a.invoke_time) {
                end = end.min(r.invoke_time);
            }
        }
        if end <= done {
            continue;
        }
        let start = by_invoke.partition_point(|o| o.invoke_time < done);
        for b in &by_invoke[start..] {
            if b.invoke_time >= end {
                break;
            }
            if b.id == a.id || owner(b).as_ref() == Some(&w) {
                continue;
            }
            if b.complete_time.is_some_and(|c| c <= end) {
                out.push(FencingViolation {
                    rule: "mutual-exclusion".into(),
                    message: format!(
                        "owner {} was granted the lock ({} ms after {w}'s grant) while {w}'s lease certainly held for {} ms more",
                        owner(b).unwrap_or_default(),
                        (b.complete_time.unwrap_or(0).saturating_sub(done)) / 1_000_000,
                        end.saturating_sub(b.complete_time.unwrap_or(0)) / 1_000_000
                    ),
                    ops: vec![(*a).clone(), (*b).clone()],
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::op;
    use serde_json::json;

    fn acq(id: usize, owner: &str, token: u64, inv: u64, done: u64) -> Operation {
        let mut o = op(
            id,
            "acquire",
            json!({"owner": owner, "ttl_ms": 100}),
            Some(json!({"owner": owner, "ttl_ms": 100, "token": token})),
            inv,
            Some(done),
        );
        o.key = Some(json!("l"));
        o
    }

    #[test]
    fn tokens_must_increase_for_successive_holders() {
        let ops = vec![acq(0, "a", 5, 0, 1), acq(1, "b", 4, 200, 201)];
        let r = check(&ops);
        assert!(r[0].verdict.is_invalid(), "{:?}", r[0]);
        assert!(r[1].verdict.is_valid(), "leases did not overlap");
        let ok = vec![acq(0, "a", 5, 0, 1), acq(1, "b", 6, 200, 201)];
        assert!(check(&ok).iter().all(|r| r.verdict.is_valid()));
    }

    #[test]
    fn a_grant_inside_a_live_lease_breaks_mutual_exclusion() {
        // a holds from 1 ms until 100 ms; b begins at 50 ms, done at 60 ms.
        let ops = vec![acq(0, "a", 5, 0, 1), acq(1, "b", 6, 50, 60)];
        let r = check(&ops);
        assert!(r[0].verdict.is_valid());
        assert!(r[1].verdict.is_invalid(), "{:?}", r[1]);
        // Released at 40 ms: no overlap.
        let mut rel = op(
            2,
            "release",
            json!({"owner": "a", "token": 5}),
            Some(json!({"owner": "a", "token": 5})),
            40,
            Some(41),
        );
        rel.key = Some(json!("l"));
        let ops = vec![acq(0, "a", 5, 0, 1), acq(1, "b", 6, 50, 60), rel];
        assert!(check(&ops)[1].verdict.is_valid());
    }

    #[test]
    fn a_resource_never_accepts_a_stale_token() {
        let w = |id: usize, t: u64, inv: u64| {
            let mut o = op(
                id,
                "fenced-write",
                json!({"token": t, "value": id}),
                Some(json!({"token": t, "value": id})),
                inv,
                Some(inv + 1),
            );
            o.key = Some(json!("r"));
            o
        };
        let ops = vec![acq(9, "a", 1, 0, 1), w(0, 7, 2), w(1, 7, 4), w(2, 6, 6)];
        let r = check(&ops);
        let Verdict::Invalid {
            witness: Witness::Fencing(f),
        } = &r[0].verdict
        else {
            panic!("{r:?}")
        };
        assert_eq!(f.violations.len(), 1);
        assert_eq!(f.violations[0].rule, "stale-write");
    }
}
