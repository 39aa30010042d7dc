//! Knossos's multi-register: transactions of reads and writes over several
//! registers, linearizable as a whole.
//!
//! An operation is `f = txn` whose value is a list of micro-ops
//! `[f k v]`: `[:read k v]` (also `:r`) reads register `k`, `[:write k v]`
//! (also `:w`) writes `v` to it. A txn applies its micro-ops in order, so a
//! read sees the txn's own earlier writes. An `ok` txn's completion carries
//! the values its reads saw; a crashed txn's reads are unknown. Every
//! register starts at the initial value (`--initial-value`, else nil), and
//! a read of nil follows `--nil-reads` as the single registers do.
//!
//! The state is one interned value id per register, registers numbered in
//! the order the history first names them.

use super::{Ctx, Model, ModelOptions, NilReads, NIL};
use crate::history::Value;
use crate::operation::{Operation, Outcome};

/// One micro-op over interned registers and values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MicroOp {
    /// Reads `register`; the value seen, or `None` when unknown.
    Read {
        register: u32,
        value: Option<u32>,
    },
    Write {
        register: u32,
        value: u32,
    },
}

/// Knossos's `multi-register`.
#[derive(Clone, Debug, Default)]
pub struct MultiRegister {
    pub options: ModelOptions,
}

impl MultiRegister {
    pub fn new(options: &ModelOptions) -> MultiRegister {
        MultiRegister {
            options: options.clone(),
        }
    }

    fn micro_op(
        &self,
        ctx: &mut Ctx,
        invoked: &Value,
        completed: Option<&Value>,
    ) -> Result<MicroOp, String> {
        let parts = |v: &Value| -> Result<(String, Value, Value), String> {
            let a = v
                .as_array()
                .filter(|a| a.len() == 3)
                .ok_or_else(|| format!("expected a micro-op [f k v], got {v}"))?;
            let f = a[0]
                .as_str()
                .ok_or_else(|| format!("micro-op {v}: expected :read or :write first"))?;
            Ok((f.to_string(), a[1].clone(), a[2].clone()))
        };
        let (f, key, value) = parts(invoked)?;
        let seen = match completed {
            Some(c) => {
                let (cf, ck, cv) = parts(c)?;
                if cf != f || ck != key {
                    return Err(format!(
                        "the completion's micro-op {c} does not match the invoke's {invoked}"
                    ));
                }
                Some(cv)
            }
            None => None,
        };
        let register = ctx.register(&key);
        match f.as_str() {
            "read" | "r" => {
                let value = match seen {
                    Some(Value::Null) if self.options.nil_reads == NilReads::Unknown => None,
                    Some(v) => Some(ctx.intern(&v)),
                    None => None,
                };
                Ok(MicroOp::Read { register, value })
            }
            "write" | "w" => Ok(MicroOp::Write {
                register,
                value: ctx.intern(seen.as_ref().unwrap_or(&value)),
            }),
            other => Err(format!(
                "unknown micro-op {other:?}; multi-register accepts read (r) and write (w)"
            )),
        }
    }
}

impl Model for MultiRegister {
    type State = Box<[u32]>;
    type Op = Box<[MicroOp]>;
    type Part = ();

    fn name(&self) -> &'static str {
        "multi-register"
    }

    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<Self::Op, String> {
        if op.f != "txn" {
            return Err(format!(
                "unknown operation {:?}; multi-register accepts txn",
                op.f
            ));
        }
        let invoked = op
            .input
            .as_array()
            .ok_or_else(|| format!("txn: expected a list of micro-ops, got {}", op.input))?;
        let completed = match (&op.outcome, &op.output) {
            (Outcome::Ok, Some(Value::Array(c))) if c.len() == invoked.len() => Some(c),
            (Outcome::Ok, Some(other)) => {
                return Err(format!(
                    "txn: the completion {other} does not list the invoke's {} micro-ops",
                    invoked.len()
                ))
            }
            _ => None,
        };
        invoked
            .iter()
            .enumerate()
            .map(|(i, m)| self.micro_op(ctx, m, completed.map(|c| &c[i])))
            .collect()
    }

    fn init(&self, ctx: &mut Ctx) -> Self::State {
        let initial = self.options.initial_id(ctx, |ctx, v| ctx.intern(v));
        vec![initial; ctx.registers_len()].into_boxed_slice()
    }

    fn step(&self, _ctx: &mut Ctx, state: &Self::State, op: &Self::Op) -> Option<Self::State> {
        let mut next = state.clone();
        for m in op.iter() {
            match *m {
                MicroOp::Read { register, value } => {
                    if value.is_some_and(|v| v != next[register as usize]) {
                        return None;
                    }
                }
                MicroOp::Write { register, value } => next[register as usize] = value,
            }
        }
        Some(next)
    }

    fn read_only(&self, op: &Self::Op) -> bool {
        op.iter().all(|m| matches!(m, MicroOp::Read { .. }))
    }

    fn show(&self, ctx: &Ctx, state: &Self::State) -> String {
        let registers: Vec<String> = state
            .iter()
            .enumerate()
            .filter(|&(_, &v)| v != NIL)
            .map(|(r, &v)| format!("{} {}", ctx.register_key(r as u32), ctx.value(v)))
            .collect();
        format!("{{{}}}", registers.join(", "))
    }

    fn state_bytes(&self, state: &Self::State) -> usize {
        16 + 4 * state.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::op;
    use serde_json::json;

    fn run(model: &MultiRegister, ops: &[Operation]) -> Option<Box<[u32]>> {
        let mut ctx = Ctx::new();
        let compiled: Vec<_> = ops
            .iter()
            .map(|o| model.compile(o, &mut ctx).expect("fits"))
            .collect();
        let mut state = model.init(&mut ctx);
        for c in &compiled {
            state = model.step(&mut ctx, &state, c)?;
        }
        Some(state)
    }

    #[test]
    fn a_txn_reads_its_own_writes_and_others_see_them_after() {
        let m = MultiRegister::default();
        let write = op(
            0,
            "txn",
            json!([["write", "x", 1], ["read", "x", null], ["w", "y", 2]]),
            Some(json!([["write", "x", 1], ["read", "x", 1], ["w", "y", 2]])),
            0,
            Some(1),
        );
        let read = op(
            1,
            "txn",
            json!([["r", "y", null], ["r", "x", null]]),
            Some(json!([["r", "y", 2], ["r", "x", 1]])),
            2,
            Some(3),
        );
        assert!(run(&m, &[write.clone(), read.clone()]).is_some());
        let stale = op(
            1,
            "txn",
            json!([["r", "y", null]]),
            Some(json!([["r", "y", 3]])),
            2,
            Some(3),
        );
        assert!(run(&m, &[write, stale]).is_none());
        assert!(m.read_only(&m.compile(&read, &mut Ctx::new()).expect("fits")));
    }

    #[test]
    fn a_nil_read_is_absent_or_unknown_as_asked() {
        let write = op(
            0,
            "txn",
            json!([["write", "x", 1]]),
            Some(json!([["write", "x", 1]])),
            0,
            Some(1),
        );
        let nil_read = op(
            1,
            "txn",
            json!([["read", "x", null]]),
            Some(json!([["read", "x", null]])),
            2,
            Some(3),
        );
        let absent = MultiRegister::default();
        assert!(run(&absent, &[write.clone(), nil_read.clone()]).is_none());
        let unknown = MultiRegister::new(&ModelOptions {
            nil_reads: NilReads::Unknown,
            ..ModelOptions::default()
        });
        assert!(run(&unknown, &[write, nil_read]).is_some());
    }

    #[test]
    fn registers_start_at_the_initial_value() {
        let read0 = op(
            0,
            "txn",
            json!([["read", "x", null]]),
            Some(json!([["read", "x", 0]])),
            0,
            Some(1),
        );
        assert!(run(&MultiRegister::default(), std::slice::from_ref(&read0)).is_none());
        let zero = MultiRegister::new(&ModelOptions {
            initial_value: Some(Value::from(0)),
            ..ModelOptions::default()
        });
        assert!(run(&zero, &[read0]).is_some());
    }

    #[test]
    fn a_completion_that_does_not_match_its_invoke_is_refused() {
        let m = MultiRegister::default();
        let bad = op(
            0,
            "txn",
            json!([["read", "x", null]]),
            Some(json!([["read", "y", 1]])),
            0,
            Some(1),
        );
        assert!(m
            .compile(&bad, &mut Ctx::new())
            .unwrap_err()
            .contains("does not match"));
        let not_txn = op(0, "read", json!(null), Some(json!(1)), 0, Some(1));
        assert!(m
            .compile(&not_txn, &mut Ctx::new())
            .unwrap_err()
            .contains("txn"));
    }
}
