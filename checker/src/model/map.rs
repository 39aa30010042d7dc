//! A map of independent objects as one model: `MapOf<M>` holds one state
//! of `M` per key, for checking a keyed history whole (`--no-partition`)
//! rather than split by key. With `M` the kv register this is the `kv`
//! model as one map.
//!
//! The search over the whole map is genuine: it interleaves operations of
//! every key over whole-map states. It uses that operations of different
//! keys commute (backjumping, nogoods on one key's share of a state: see
//! `search`), which skips only configurations proven infeasible.

use super::{Ctx, Model};
use crate::operation::Operation;

/// One `M` per key.
#[derive(Clone, Copy, Debug)]
pub struct MapOf<M> {
    pub inner: M,
}

/// An operation on one slot (key) of the map.
#[derive(Clone, Debug)]
pub struct SlotOp<O> {
    pub slot: u32,
    pub op: O,
}

impl<M: Model> Model for MapOf<M> {
    type State = Box<[M::State]>;
    type Op = SlotOp<M::Op>;
    type Part = M::State;

    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<Self::Op, String> {
        let slot = match &op.key {
            Some(k) => ctx.slot(k),
            None => ctx.slot(&crate::history::Value::Null),
        };
        Ok(SlotOp {
            slot,
            op: self.inner.compile(op, ctx)?,
        })
    }
    fn init(&self, ctx: &mut Ctx) -> Self::State {
        vec![self.inner.init(ctx); ctx.slot_keys.len().max(1)].into_boxed_slice()
    }
    #[inline]
    fn step(&self, ctx: &mut Ctx, state: &Self::State, op: &Self::Op) -> Option<Self::State> {
        let next = self.inner.step(ctx, &state[op.slot as usize], &op.op)?;
        let mut s = state.clone();
        s[op.slot as usize] = next;
        Some(s)
    }
    fn component(&self, op: &Self::Op) -> Option<u32> {
        Some(op.slot)
    }
    #[inline]
    fn part(&self, state: &Self::State, c: u32) -> Option<M::State> {
        Some(state[c as usize].clone())
    }
    fn read_only(&self, op: &Self::Op) -> bool {
        self.inner.read_only(&op.op)
    }
    fn show(&self, ctx: &Ctx, state: &Self::State) -> String {
        let parts: Vec<String> = state
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let key = ctx
                    .slot_keys
                    .get(i)
                    .map(ToString::to_string)
                    .unwrap_or_default();
                format!("{key}: {}", self.inner.show(ctx, s))
            })
            .collect();
        format!("{{{}}}", parts.join(", "))
    }
    fn state_bytes(&self, state: &Self::State) -> usize {
        16 + state
            .iter()
            .map(|s| self.inner.state_bytes(s))
            .sum::<usize>()
    }
}
