//! `queue`: FIFO enqueue and dequeue. The state is the queue of interned
//! values; a dequeue of an empty queue returns `null`.

use super::{Ctx, Model, NIL};
use crate::operation::{Operation, Outcome};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, Default)]
pub struct Queue;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueOp {
    Enqueue(u32),
    /// The value dequeued (`NIL`: the queue was empty), `None` if unknown.
    Dequeue(Option<u32>),
}

impl Model for Queue {
    type State = VecDeque<u32>;
    type Op = QueueOp;
    type Part = ();
    fn name(&self) -> &'static str {
        "queue"
    }
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<QueueOp, String> {
        match op.f.as_str() {
            "enqueue" => {
                if op.input.is_null() {
                    return Err("enqueue null: null stands for an empty dequeue".into());
                }
                Ok(QueueOp::Enqueue(ctx.intern(&op.input)))
            }
            "dequeue" => Ok(QueueOp::Dequeue(match (&op.outcome, &op.output) {
                (Outcome::Ok, Some(v)) => Some(ctx.intern(v)),
                (Outcome::Ok, None) => Some(NIL),
                _ => None,
            })),
            other => Err(format!(
                "unknown operation {other:?}; queue accepts enqueue, dequeue"
            )),
        }
    }
    fn init(&self, _ctx: &mut Ctx) -> VecDeque<u32> {
        VecDeque::new()
    }
    fn step(&self, _ctx: &mut Ctx, s: &VecDeque<u32>, op: &QueueOp) -> Option<VecDeque<u32>> {
        match *op {
            QueueOp::Enqueue(v) => {
                let mut q = s.clone();
                q.push_back(v);
                Some(q)
            }
            QueueOp::Dequeue(seen) => {
                let head = s.front().copied().unwrap_or(NIL);
                if seen.is_some_and(|v| v != head) {
                    return None;
                }
                let mut q = s.clone();
                q.pop_front();
                Some(q)
            }
        }
    }
    fn read_only(&self, _op: &QueueOp) -> bool {
        false
    }
    fn show(&self, ctx: &Ctx, s: &VecDeque<u32>) -> String {
        let v: Vec<String> = s.iter().map(|i| ctx.value(*i).to_string()).collect();
        format!("[{}]", v.join(" "))
    }
    fn state_bytes(&self, s: &VecDeque<u32>) -> usize {
        32 + 4 * s.capacity()
    }
}
