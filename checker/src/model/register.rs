//! Registers: `register` (read, write), `cas-register` (+ cas) and the
//! single-key view of `kv` (+ get/put/append, the empty string equal to
//! never written).
//!
//! The state is one interned value id. `cas` takes `[expected, new]`; an
//! `ok` cas swapped (or, with the completion value `false`, completed and
//! found a different value, as Jepsen's console logs report it).
//!
//! A register starts at [`ModelOptions::initial_value`] (nil without one)
//! and reads an `ok` read of nil per [`ModelOptions::nil_reads`]: as "no
//! value" (faultline, Porcupine) or as "not known" (Knossos).

use super::{Ctx, Model, ModelOptions, NilReads, Reach, NIL};
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

/// Which operations a register accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// read, write.
    Plain,
    /// read, write, cas.
    Cas,
    /// get/read, put/write, append, cas on strings; `""` is the same as
    /// never written.
    Kv,
}

/// A register of one flavour, with its initial value and nil reads.
#[derive(Clone, Debug)]
pub struct Register {
    pub flavour: Flavour,
    pub options: ModelOptions,
}

impl Register {
    pub fn new(flavour: Flavour, options: &ModelOptions) -> Register {
        Register {
            flavour,
            options: options.clone(),
        }
    }

    fn intern(&self, ctx: &mut Ctx, v: &Value) -> u32 {
        if self.flavour == Flavour::Kv && v.as_str() == Some("") {
            NIL
        } else {
            ctx.intern(v)
        }
    }

    /// What an `ok` read saw: `None` when unknown (a nil read, with
    /// [`NilReads::Unknown`]).
    fn read_value(&self, ctx: &mut Ctx, seen: &Value) -> Option<u32> {
        match seen {
            Value::Null if self.options.nil_reads == NilReads::Unknown => None,
            v => Some(self.intern(ctx, v)),
        }
    }

    /// Shared with the whole-map kv model.
    pub(crate) fn compile_reg(&self, op: &Operation, ctx: &mut Ctx) -> Result<RegOp, String> {
        let known = op.outcome == Outcome::Ok;
        let kv = self.flavour == Flavour::Kv;
        match op.f.as_str() {
            "read" | "get" if kv || op.f == "read" => {
                let out = op.output.as_ref().filter(|_| known);
                Ok(RegOp::Read(out.and_then(|v| self.read_value(ctx, v))))
            }
            "write" | "put" if kv || op.f == "write" => {
                Ok(RegOp::Write(self.intern(ctx, &op.input)))
            }
            "cas" if self.flavour != Flavour::Plain => {
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
            "append" if kv => {
                if !op.input.is_string() {
                    return Err(format!("append: expected a string, got {}", op.input));
                }
                Ok(RegOp::Append(self.intern(ctx, &op.input)))
            }
            other => Err(format!(
                "unknown operation {other:?}; {} accepts {}",
                self.name(),
                match self.flavour {
                    Flavour::Kv => "read/get, write/put, append, cas",
                    Flavour::Cas => "read, write, cas",
                    Flavour::Plain => "read, write",
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
        match self.flavour {
            Flavour::Kv => "kv",
            Flavour::Cas => "cas-register",
            Flavour::Plain => "register",
        }
    }
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<RegOp, String> {
        self.compile_reg(op, ctx)
    }
    fn init(&self, ctx: &mut Ctx) -> u32 {
        self.options.initial_id(ctx, |ctx, v| self.intern(ctx, v))
    }
    #[inline]
    fn step(&self, ctx: &mut Ctx, state: &u32, op: &RegOp) -> Option<u32> {
        Register::apply(ctx, *state, op)
    }
    fn read_only(&self, op: &RegOp) -> bool {
        matches!(op, RegOp::Read(_))
    }
    fn reach(&self, op: &RegOp) -> Reach<u32> {
        match *op {
            RegOp::Read(_) | RegOp::Append(_) => Reach::Grows,
            RegOp::Cas {
                ok: Some(false), ..
            } => Reach::Grows,
            RegOp::Write(v) | RegOp::Cas { new: v, .. } => Reach::Sets(v),
        }
    }
    /// Only a kv's reads: on the etcd logs (cas-registers, many crashed
    /// writes) the look-ahead costs more than it saves.
    fn pins(&self, op: &RegOp) -> bool {
        self.flavour == Flavour::Kv && matches!(op, RegOp::Read(Some(_)))
    }
    /// Through reads and appends, the text read must start with the
    /// state's text (appends), or be the state itself (no appends: the
    /// register and cas-register have none).
    #[inline]
    fn may_grow_into(&self, ctx: &mut Ctx, state: &u32, read: &RegOp) -> bool {
        match *read {
            RegOp::Read(Some(v)) if self.flavour == Flavour::Kv => ctx.may_be_prefix(*state, v),
            RegOp::Read(Some(v)) => *state == v,
            _ => true,
        }
    }
    fn show(&self, ctx: &Ctx, state: &u32) -> String {
        show_value(ctx, *state)
    }
}
