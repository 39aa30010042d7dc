//! `counter`: add a delta, read the sum. The state is the sum.

use super::{as_i64, Ctx, Model};
use crate::operation::{Operation, Outcome};

#[derive(Clone, Copy, Debug, Default)]
pub struct Counter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterOp {
    Add(i64),
    Read(Option<i64>),
}

impl Model for Counter {
    type State = i64;
    type Op = CounterOp;
    type Part = ();
    fn name(&self) -> &'static str {
        "counter"
    }
    fn compile(&self, op: &Operation, _ctx: &mut Ctx) -> Result<CounterOp, String> {
        match op.f.as_str() {
            "add" | "incr" => Ok(CounterOp::Add(as_i64(&op.input, "add")?)),
            "read" => match (&op.outcome, &op.output) {
                (Outcome::Ok, Some(v)) if !v.is_null() => {
                    Ok(CounterOp::Read(Some(as_i64(v, "read")?)))
                }
                (Outcome::Ok, _) => Ok(CounterOp::Read(Some(0))),
                _ => Ok(CounterOp::Read(None)),
            },
            other => Err(format!(
                "unknown operation {other:?}; counter accepts add, read"
            )),
        }
    }
    fn init(&self, _ctx: &mut Ctx) -> i64 {
        0
    }
    fn step(&self, _ctx: &mut Ctx, s: &i64, op: &CounterOp) -> Option<i64> {
        match *op {
            CounterOp::Add(d) => Some(s.wrapping_add(d)),
            CounterOp::Read(None) => Some(*s),
            CounterOp::Read(Some(v)) => (v == *s).then_some(*s),
        }
    }
    fn read_only(&self, op: &CounterOp) -> bool {
        matches!(op, CounterOp::Read(_))
    }
    fn show(&self, _ctx: &Ctx, s: &i64) -> String {
        s.to_string()
    }
}
