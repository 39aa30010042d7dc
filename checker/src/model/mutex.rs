//! `mutex`: acquire and release, no owners, no leases. The state is
//! whether it is held; acquire needs it free, release needs it held.

use super::{Ctx, Model};
use crate::operation::Operation;

#[derive(Clone, Copy, Debug, Default)]
pub struct Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MutexOp {
    Acquire,
    Release,
}

impl Model for Mutex {
    type State = bool;
    type Op = MutexOp;
    type Part = ();
    fn name(&self) -> &'static str {
        "mutex"
    }
    fn compile(&self, op: &Operation, _ctx: &mut Ctx) -> Result<MutexOp, String> {
        match op.f.as_str() {
            "acquire" | "lock" => Ok(MutexOp::Acquire),
            "release" | "unlock" => Ok(MutexOp::Release),
            other => Err(format!(
                "unknown operation {other:?}; mutex accepts acquire, release"
            )),
        }
    }
    fn init(&self, _ctx: &mut Ctx) -> bool {
        false
    }
    fn step(&self, _ctx: &mut Ctx, held: &bool, op: &MutexOp) -> Option<bool> {
        match op {
            MutexOp::Acquire => (!held).then_some(true),
            MutexOp::Release => held.then_some(false),
        }
    }
    fn read_only(&self, _op: &MutexOp) -> bool {
        false
    }
    fn show(&self, _ctx: &Ctx, held: &bool) -> String {
        if *held { "held" } else { "free" }.to_string()
    }
}
