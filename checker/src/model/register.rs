//! Registers: `register` (read, write), `cas-register` (+ cas) and the
//! single-key view of `kv` (+ get/put/append, the empty string equal to
//! never written).
//!
//! The state is one interned value id. `cas` takes `[expected, new]`; an
//! `ok` cas swapped (or, with the completion value `false`, completed and
//! found a different value, as Jepsen's console logs report it).

use super::{Ctx, Model, NIL};
use crate::history::Value;
use crate::operation::{Operation, Outcome};

/// One register operation over interned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegOp {
    /// Observed value, or `None` when unknown.
    Read(Option<u32>),
    Write(u32),
    /// `ok`: `Some(true)` swapped, `Some(false)` compare did not match,
    /// `None` unknown.
    Cas {
        expected: u32,
        new: u32,
        ok: Option<bool>,
    },
    /// Append a string (kv).
    Append(u32),
}

/// A register; which operations it accepts depends on the flavour.
#[derive(Clone, Copy, Debug)]
pub struct Register {
    pub cas: bool,
    /// kv flavour: get/put/append accepted; `""` is the same as never written.
    pub kv: bool,
}

impl Register {
    pub const PLAIN: Register = Register {
        cas: false,
        kv: false,
    };
    pub const CAS: Register = Register {
        cas: true,
        kv: false,
    };
    pub const KV: Register = Register {
        cas: true,
        kv: true,
    };

    fn intern(&self, ctx: &mut Ctx, v: &Value) -> u32 {
        if self.kv && v.as_str() == Some("") {
            NIL
        } else {
            ctx.intern(v)
        }
    }

    /// Shared with the whole-map kv model.
    pub(crate) fn compile_reg(&self, op: &Operation, ctx: &mut Ctx) -> Result<RegOp, String> {
        let known = op.outcome == Outcome::Ok;
        match op.f.as_str() {
            "read" | "get" if self.kv || op.f == "read" => {
                let out = op.output.as_ref().filter(|_| known);
                Ok(RegOp::Read(out.map(|v| self.intern(ctx, v))))
            }
            "write" | "put" if self.kv || op.f == "write" => {
                Ok(RegOp::Write(self.intern(ctx, &op.input)))
            }
            "cas" if self.cas => {
                let pair = op
                    .input
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| format!("cas: expected [expected, new], got {}", op.input))?;
                let ok = match (&op.outcome, &op.output) {
                    (Outcome::Ok, Some(Value::Bool(false))) => Some(false),
                    (Outcome::Ok, _) => Some(true),
                    _ => None,
                };
                Ok(RegOp::Cas {
                    expected: self.intern(ctx, &pair[0]),
                    new: self.intern(ctx, &pair[1]),
                    ok,
                })
            }
            "append" if self.kv => {
                if !op.input.is_string() {
                    return Err(format!("append: expected a string, got {}", op.input));
                }
                Ok(RegOp::Append(self.intern(ctx, &op.input)))
            }
            other => Err(format!(
                "unknown operation {other:?}; {} accepts {}",
                self.name(),
                match (self.kv, self.cas) {
                    (true, _) => "read/get, write/put, append, cas",
                    (false, true) => "read, write, cas",
                    (false, false) => "read, write",
                }
            )),
        }
    }

    /// The register's transition on one value slot.
    #[inline]
    pub(crate) fn apply(ctx: &mut Ctx, cur: u32, op: &RegOp) -> Option<u32> {
        match *op {
            RegOp::Read(None) => Some(cur),
            RegOp::Read(Some(v)) => (v == cur).then_some(cur),
            RegOp::Write(v) => Some(v),
            RegOp::Cas { expected, new, ok } => match ok {
                Some(true) => (cur == expected).then_some(new),
                Some(false) => (cur != expected).then_some(cur),
                None => Some(if cur == expected { new } else { cur }),
            },
            RegOp::Append(suffix) => Some(append(ctx, cur, suffix)),
        }
    }
}

/// Interned concatenation, cached.
fn append(ctx: &mut Ctx, cur: u32, suffix: u32) -> u32 {
    ctx.append(cur, suffix)
}

pub(crate) fn show_value(ctx: &Ctx, id: u32) -> String {
    ctx.value(id).to_string()
}

impl Model for Register {
    type State = u32;
    type Op = RegOp;
    type Part = ();

    fn name(&self) -> &'static str {
        match (self.kv, self.cas) {
            (true, _) => "kv",
            (false, true) => "cas-register",
            (false, false) => "register",
        }
    }
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<RegOp, String> {
        self.compile_reg(op, ctx)
    }
    fn init(&self, _ctx: &Ctx) -> u32 {
        NIL
    }
    #[inline]
    fn step(&self, ctx: &mut Ctx, state: &u32, op: &RegOp) -> Option<u32> {
        Register::apply(ctx, *state, op)
    }
    fn read_only(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(_))
    }
    fn show(&self, ctx: &Ctx, state: &u32) -> String {
        show_value(ctx, *state)
    }
}
