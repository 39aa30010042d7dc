//! The brute-force reference: tries every order. For testing the search on
//! small histories (up to ~10 operations), never for real ones.
//!
//! A history is linearizable if some order of a subset of its operations
//! (every `ok` one, any of the crashed ones; never a `fail` one) respects
//! real time (an operation that completed before another began comes
//! first) and is accepted by the model step by step. No memo, no pruning
//! beyond real time, no dropping of crashed reads: as plain as can be.

use crate::error::CheckError;
use crate::model::map::MapOf;
use crate::model::{compile_all, Ctx, Model, ModelKind, ModelOptions, ModelVisitor};
use crate::operation::{Operation, Operations, Outcome};

/// Is `ops` linearizable against `model` (made with `options`)? Keyed
/// operations are checked as one map of independent objects (never split).
pub fn linearizable(
    ops: &Operations,
    model: ModelKind,
    options: &ModelOptions,
) -> Result<bool, CheckError> {
    let keep: Vec<&Operation> = ops
        .ops
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .collect();
    assert!(keep.len() <= 16, "brute force is for small histories");
    model.visit(options, Brute(&keep))
}

struct Brute<'a>(&'a [&'a Operation]);

impl ModelVisitor for Brute<'_> {
    type Output = Result<bool, CheckError>;
    fn visit<M: Model>(self, model: &M) -> Self::Output {
        let map = MapOf {
            inner: model.clone(),
        };
        run(&map, self.0)
    }
}

fn run<M: Model>(model: &M, ops: &[&Operation]) -> Result<bool, CheckError> {
    let mut ctx = Ctx::new();
    let cops = compile_all(model, ops, &mut ctx)?;
    let state = model.init(&mut ctx);
    Ok(dfs(model, &mut ctx, ops, &cops, 0, &state))
}

fn dfs<M: Model>(
    model: &M,
    ctx: &mut Ctx,
    ops: &[&Operation],
    cops: &[M::Op],
    used: u32,
    state: &M::State,
) -> bool {
    let done = (0..ops.len()).all(|i| used >> i & 1 == 1 || ops[i].crashed());
    if done {
        return true;
    }
    for i in 0..ops.len() {
        if used >> i & 1 == 1 {
            continue;
        }
        // Every unused operation that completed before this one began
        // would come after it: not allowed.
        let blocked = (0..ops.len())
            .any(|j| j != i && used >> j & 1 == 0 && ops[j].precedes(ops[i]) && !ops[j].crashed());
        if blocked {
            continue;
        }
        if let Some(next) = model.step(ctx, state, &cops[i]) {
            if dfs(model, ctx, ops, cops, used | 1 << i, &next) {
                return true;
            }
        }
    }
    false
}
