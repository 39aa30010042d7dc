//! Linearizability of a whole history: split by key (P-compositionality),
//! search each part on its own thread, stop every search as soon as one
//! part is invalid, and build the witness.
//!
//! A history is linearizable if and only if each of its independent keys'
//! sub-histories is (Herlihy & Wing's locality), so the split changes
//! speed, never the verdict. `fail` operations did not happen and are
//! dropped; crashed operations that change nothing (reads) are dropped
//! too, since they may always be linearized as if they never happened.

use crate::error::CheckError;
use crate::history::Value;
use crate::model::map::MapOf;
use crate::model::{compile_all, Ctx, Model, ModelKind, ModelVisitor};
use crate::operation::{Operation, Operations, Outcome};
use crate::options::CheckOptions;
use crate::search::{search, Limits, Scratch, SearchResult, SearchStats};
use crate::verdict::{Attempt, LinearizabilityWitness, Verdict, Witness};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Instant;

/// Steps a part may take before it yields to the others (then ×4 each round).
const FIRST_BUDGET: u64 = 1 << 20;

/// What a linearizability check found, with numbers for reports.
#[derive(Debug, Clone)]
pub struct LinearizabilityReport {
    pub verdict: Verdict,
    pub stats: SearchStats,
    /// Independent parts searched (keys, or 1 when not split).
    pub parts: usize,
    /// Operations checked (failed ones excluded).
    pub ops: usize,
}

/// Checks `ops` against `model`. With `opts.partition` and keyed
/// operations, each key is checked alone; without, a keyed history is
/// checked whole as a map of independent objects of `model`.
pub fn check_linearizable(
    ops: &Operations,
    model: ModelKind,
    opts: &CheckOptions,
) -> Result<LinearizabilityReport, CheckError> {
    let relevant: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .collect();
    let keyed = relevant.iter().any(|o| o.key.is_some());
    let groups: Vec<(Option<Value>, Vec<&Operation>)> = if keyed && opts.partition {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut groups: Vec<(Option<Value>, Vec<&Operation>)> = Vec::new();
        for op in relevant {
            let k = op.key.clone().unwrap_or(Value::Null);
            let i = *index.entry(k.to_string()).or_insert_with(|| {
                groups.push((Some(k.clone()), Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(op);
        }
        groups
    } else {
        vec![(None, relevant)]
    };
    let as_map = keyed && !opts.partition;
    model.visit(
        &opts.model_options,
        Parts {
            groups: &groups,
            as_map,
            opts,
        },
    )
}

/// Searches the parts with the model chosen at run time.
struct Parts<'a> {
    groups: &'a [(Option<Value>, Vec<&'a Operation>)],
    /// Check keyed operations as one map of independent objects.
    as_map: bool,
    opts: &'a CheckOptions,
}

impl ModelVisitor for Parts<'_> {
    type Output = Result<LinearizabilityReport, CheckError>;
    fn visit<M: Model>(self, model: &M) -> Self::Output {
        if self.as_map {
            let map = MapOf {
                inner: model.clone(),
            };
            run_groups(&map, self.groups, self.opts)
        } else {
            run_groups(model, self.groups, self.opts)
        }
    }
}

enum PartResult {
    Done(Verdict),
    Stopped,
    OutOfBudget,
    Error(CheckError),
}

fn run_groups<M: Model>(
    model: &M,
    groups: &[(Option<Value>, Vec<&Operation>)],
    opts: &CheckOptions,
) -> Result<LinearizabilityReport, CheckError> {
    let stop = AtomicBool::new(false);
    let memory_used = AtomicUsize::new(0);
    let limits = Limits {
        deadline: opts.time_limit.map(|d| Instant::now() + d),
        stop: &stop,
        memory_used: &memory_used,
        memory_limit_bytes: opts.memory_limit_bytes,
    };
    // Largest parts first, so the last to finish is a small one.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(groups[i].1.len()));
    let threads = match opts.threads {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        t => t,
    }
    .min(groups.len())
    .max(1);
    // Parts are searched with a step budget that grows fourfold each time
    // a part runs out, round-robin: a part that fails fast is found even
    // when a slow one comes first, at most doubling the total work.
    // One part alone has nothing to yield to: no budget.
    let first_budget = if groups.len() == 1 {
        u64::MAX
    } else {
        FIRST_BUDGET
    };
    let queue: StdMutex<VecDeque<(usize, u64)>> =
        StdMutex::new(order.iter().map(|&g| (g, first_budget)).collect());
    let results: StdMutex<Vec<Option<PartResult>>> =
        StdMutex::new((0..groups.len()).map(|_| None).collect());
    let totals: StdMutex<SearchStats> = StdMutex::new(SearchStats::default());

    let work = || {
        let mut stats = SearchStats::default();
        let mut scratch = Scratch::default();
        loop {
            let Some((g, budget)) = queue.lock().expect("no worker panics").pop_front() else {
                break;
            };
            if stop.load(Ordering::Relaxed) {
                results.lock().expect("no worker panics")[g] = Some(PartResult::Stopped);
                continue;
            }
            let (key, ops) = &groups[g];
            let r = check_part(
                model,
                key.clone(),
                ops,
                &limits,
                budget,
                &mut stats,
                &mut scratch,
            );
            if matches!(
                r,
                PartResult::Done(Verdict::Invalid { .. }) | PartResult::Error(_)
            ) {
                stop.store(true, Ordering::Relaxed);
            }
            if matches!(r, PartResult::OutOfBudget) {
                queue
                    .lock()
                    .expect("no worker panics")
                    .push_back((g, budget.saturating_mul(4)));
                continue;
            }
            results.lock().expect("no worker panics")[g] = Some(r);
        }
        let mut total = totals.lock().expect("no worker panics");
        total.steps += stats.steps;
        total.memo_entries += stats.memo_entries;
        total.memo_bytes += stats.memo_bytes;
    };
    if threads == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let results = results.into_inner().expect("no worker panics");
    let stats = totals.into_inner().expect("no worker panics");
    let mut unknown: Option<String> = None;
    let mut invalid: Option<Verdict> = None;
    for r in results.into_iter().flatten() {
        match r {
            PartResult::Error(e) => return Err(e),
            PartResult::Done(v @ Verdict::Invalid { .. }) => {
                invalid.get_or_insert(v);
            }
            PartResult::Done(Verdict::Unknown { reason }) => {
                unknown.get_or_insert(reason);
            }
            PartResult::Done(Verdict::Valid) | PartResult::Stopped | PartResult::OutOfBudget => {}
        }
    }
    let verdict = match (invalid, unknown) {
        (Some(v), _) => v,
        (None, Some(reason)) => Verdict::Unknown { reason },
        (None, None) => Verdict::Valid,
    };
    let ops = groups.iter().map(|g| g.1.len()).sum();
    Ok(LinearizabilityReport {
        verdict,
        stats,
        parts: groups.len(),
        ops,
    })
}

fn check_part<M: Model>(
    model: &M,
    key: Option<Value>,
    ops: &[&Operation],
    limits: &Limits<'_>,
    budget: u64,
    stats: &mut SearchStats,
    scratch: &mut Scratch<M::State>,
) -> PartResult {
    let mut ctx = Ctx::new();
    let cops = match compile_all(model, ops, &mut ctx) {
        Ok(c) => c,
        Err(e) => return PartResult::Error(e),
    };
    let (ops, cops): (Vec<&Operation>, Vec<M::Op>) = ops
        .iter()
        .zip(cops)
        .filter(|(op, cop)| !(op.crashed() && model.read_only(cop)))
        .map(|(op, cop)| (*op, cop))
        .unzip();
    let r = search(model, &mut ctx, &ops, &cops, limits, budget, stats, scratch);
    match r {
        SearchResult::Valid => PartResult::Done(Verdict::Valid),
        SearchResult::Stopped => PartResult::Stopped,
        SearchResult::OutOfBudget => PartResult::OutOfBudget,
        SearchResult::Unknown(reason) => PartResult::Done(Verdict::Unknown {
            reason: match &key {
                Some(k) => format!("key {k}: {reason}"),
                None => reason,
            },
        }),
        SearchResult::Invalid { best_prefix } => {
            let w = witness(model, &mut ctx, key, &ops, &cops, &best_prefix);
            PartResult::Done(Verdict::Invalid {
                witness: Witness::Linearizability(Box::new(w)),
            })
        }
    }
}

/// Builds the witness from the longest prefix: replays it (models are
/// deterministic), finds the operation that had to come next and could
/// not, and tries every concurrent candidate on the state reached.
fn witness<M: Model>(
    model: &M,
    ctx: &mut Ctx,
    key: Option<Value>,
    ops: &[&Operation],
    cops: &[M::Op],
    prefix: &[usize],
) -> LinearizabilityWitness {
    let mut state = model.init(ctx);
    let from = prefix
        .len()
        .saturating_sub(LinearizabilityWitness::STATES_KEPT);
    let mut prefix_states = Vec::new();
    let mut in_prefix = vec![false; ops.len()];
    for (i, &o) in prefix.iter().enumerate() {
        state = model
            .step(ctx, &state, &cops[o])
            .expect("the search found this prefix linearizable, and models are deterministic");
        in_prefix[o] = true;
        if i >= from {
            prefix_states.push(model.show(ctx, &state));
        }
    }
    let failing = (0..ops.len())
        .filter(|&o| !in_prefix[o] && !ops[o].crashed())
        .min_by_key(|&o| ops[o].complete_pos)
        .expect("an invalid history has a completed operation left after its longest prefix");
    let deadline = ops[failing].complete_pos.expect("a completed operation");
    let mut candidates: Vec<usize> = (0..ops.len())
        .filter(|&o| !in_prefix[o] && ops[o].invoke_pos < deadline)
        .collect();
    candidates.sort_by_key(|&o| (o != failing, ops[o].invoke_pos));
    candidates.truncate(64);
    let concurrent: Vec<Attempt> = candidates
        .iter()
        .map(|&o| Attempt {
            op: ops[o].clone(),
            next_state: model
                .step(ctx, &state, &cops[o])
                .map(|s| model.show(ctx, &s)),
        })
        .collect();
    let start = candidates
        .iter()
        .map(|&o| ops[o].invoke_pos)
        .min()
        .unwrap_or(0);
    let end = candidates
        .iter()
        .filter_map(|&o| ops[o].complete_pos)
        .max()
        .unwrap_or(deadline);
    LinearizabilityWitness {
        model: model.name().to_string(),
        key,
        failing_op: ops[failing].clone(),
        prefix: prefix.iter().map(|&o| ops[o].clone()).collect(),
        prefix_states,
        prefix_states_from: from,
        final_state: model.show(ctx, &state),
        concurrent,
        window: (start, end),
    }
}
