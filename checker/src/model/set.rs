//! `set`: add an element, read all elements. The state is a bitset over
//! the interned elements of the history.

use super::{Ctx, Model};
use crate::history::Value;
use crate::operation::{Operation, Outcome};

#[derive(Clone, Copy, Debug, Default)]
pub struct Set;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetOp {
    /// Bit index of the element.
    Add(u32),
    /// The elements read as a bitset; `None` when unknown; `Some(None)`
    /// when the read listed an element twice (no set reads that).
    Read(Option<Option<Box<[u64]>>>),
}

fn bits_for(ctx: &mut Ctx, v: &Value) -> u32 {
    // Element ids are value ids; a bitset over them stays small because
    // only elements of this history are interned.
    ctx.intern(v)
}

fn set_bit(bits: &mut Vec<u64>, i: u32) -> bool {
    let w = (i / 64) as usize;
    if bits.len() <= w {
        bits.resize(w + 1, 0);
    }
    let was = bits[w] >> (i % 64) & 1 == 1;
    bits[w] |= 1 << (i % 64);
    !was
}

fn trim(mut v: Vec<u64>) -> Box<[u64]> {
    while v.last() == Some(&0) {
        v.pop();
    }
    v.into_boxed_slice()
}

impl Model for Set {
    type State = Box<[u64]>;
    type Op = SetOp;
    type Part = ();
    fn name(&self) -> &'static str {
        "set"
    }
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<SetOp, String> {
        match op.f.as_str() {
            "add" => Ok(SetOp::Add(bits_for(ctx, &op.input))),
            "read" => {
                if op.outcome != Outcome::Ok {
                    return Ok(SetOp::Read(None));
                }
                let out = op.output.as_ref().unwrap_or(&Value::Null);
                let list = out
                    .as_array()
                    .ok_or_else(|| format!("read: expected a list, got {out}"))?;
                let mut bits = Vec::new();
                let mut dup = false;
                for e in list {
                    let i = bits_for(ctx, e);
                    dup |= !set_bit(&mut bits, i);
                }
                Ok(SetOp::Read(Some((!dup).then(|| trim(bits)))))
            }
            other => Err(format!(
                "unknown operation {other:?}; set accepts add, read"
            )),
        }
    }
    fn init(&self, _ctx: &mut Ctx) -> Box<[u64]> {
        Box::new([])
    }
    fn step(&self, _ctx: &mut Ctx, s: &Box<[u64]>, op: &SetOp) -> Option<Box<[u64]>> {
        match op {
            SetOp::Add(i) => {
                let mut v = s.to_vec();
                set_bit(&mut v, *i);
                Some(trim(v))
            }
            SetOp::Read(None) => Some(s.clone()),
            SetOp::Read(Some(None)) => None,
            SetOp::Read(Some(Some(bits))) => (bits == s).then(|| s.clone()),
        }
    }
    fn read_only(&self, op: &SetOp) -> bool {
        matches!(op, SetOp::Read(_))
    }
    fn show(&self, ctx: &Ctx, s: &Box<[u64]>) -> String {
        let mut out = Vec::new();
        for (w, word) in s.iter().enumerate() {
            for b in 0..64 {
                if word >> b & 1 == 1 {
                    out.push(ctx.value((w * 64 + b) as u32).to_string());
                }
            }
        }
        format!("#{{{}}}", out.join(" "))
    }
    fn state_bytes(&self, s: &Box<[u64]>) -> usize {
        16 + 8 * s.len()
    }
}
