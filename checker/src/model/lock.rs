//! `lock`: a lease lock with fencing tokens, as a sequential spec.
//!
//! Leases may expire at any moment (the spec has no clock), so `acquire` is
//! always possible; what it guarantees is that the tokens it grants
//! increase in linearization order. `renew` and `release` succeed only for
//! the current grant (its owner and token): once another acquire has been
//! granted, the old holder's renew or release must fail. Real-time mutual
//! exclusion of leases is the `mutual-exclusion` checker's job.
//!
//! Values (docs/history-format.md): acquire `{"owner":o,"ttl_ms":t}`, ok
//! `{…,"token":n}`; renew and release `{"owner":o,"token":n,…}`.

use super::{field, Ctx, Model};
use crate::history::Value;
use crate::operation::{Operation, Outcome};

#[derive(Clone, Copy, Debug, Default)]
pub struct Lock;

/// The current grant and the highest token ever granted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LockState {
    /// Interned owner of the current grant, or `None` if free.
    pub holder: Option<u32>,
    pub token: u64,
    /// Highest token granted so far (tokens must exceed it).
    pub last: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockOp {
    /// Token granted, `None` when unknown (crashed).
    Acquire {
        owner: u32,
        token: Option<u64>,
    },
    Renew {
        owner: u32,
        token: u64,
    },
    Release {
        owner: u32,
        token: u64,
    },
}

fn token(v: Option<&Value>) -> Option<u64> {
    v.and_then(|v| field(v, "token")).and_then(Value::as_u64)
}

impl Model for Lock {
    type State = LockState;
    type Op = LockOp;
    type Part = ();
    fn name(&self) -> &'static str {
        "lock"
    }
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<LockOp, String> {
        let owner = field(&op.input, "owner")
            .ok_or_else(|| format!("expected an object with \"owner\", got {}", op.input))?;
        let owner = ctx.intern(owner);
        let given = token(Some(&op.input)).or_else(|| token(op.output.as_ref()));
        match op.f.as_str() {
            "acquire" => {
                let token = if op.outcome == Outcome::Ok {
                    Some(token(op.output.as_ref()).ok_or_else(|| {
                        format!(
                            "ok acquire without a \"token\" in its value {:?}",
                            op.output
                        )
                    })?)
                } else {
                    None
                };
                Ok(LockOp::Acquire { owner, token })
            }
            "renew" => Ok(LockOp::Renew {
                owner,
                token: given.ok_or("renew without a \"token\"")?,
            }),
            "release" => Ok(LockOp::Release {
                owner,
                token: given.ok_or("release without a \"token\"")?,
            }),
            other => Err(format!(
                "unknown operation {other:?}; lock accepts acquire, renew, release"
            )),
        }
    }
    fn init(&self, _ctx: &mut Ctx) -> LockState {
        LockState {
            holder: None,
            token: 0,
            last: 0,
        }
    }
    fn step(&self, _ctx: &mut Ctx, s: &LockState, op: &LockOp) -> Option<LockState> {
        match *op {
            LockOp::Acquire {
                owner,
                token: Some(t),
            } => (t > s.last).then_some(LockState {
                holder: Some(owner),
                token: t,
                last: t,
            }),
            // A crashed acquire: if it took effect, its token is unknown but
            // larger than every earlier one; later tokens must only exceed
            // the known ones.
            LockOp::Acquire { owner, token: None } => Some(LockState {
                holder: Some(owner),
                token: u64::MAX,
                last: s.last,
            }),
            LockOp::Renew { owner, token } => {
                (s.holder == Some(owner) && (s.token == token || s.token == u64::MAX)).then_some(*s)
            }
            LockOp::Release { owner, token } => (s.holder == Some(owner)
                && (s.token == token || s.token == u64::MAX))
                .then_some(LockState {
                    holder: None,
                    token: 0,
                    last: s.last.max(token),
                }),
        }
    }
    fn read_only(&self, op: &LockOp) -> bool {
        matches!(op, LockOp::Renew { .. })
    }
    fn show(&self, ctx: &Ctx, s: &LockState) -> String {
        match s.holder {
            Some(o) => format!(
                "held by {} (token {}, max {})",
                ctx.value(o),
                s.token,
                s.last
            ),
            None => format!("free (max token {})", s.last),
        }
    }
}
