//! Sequential specifications: what each kind of object may do.
//!
//! A [`Model`] is deterministic: given a state and an operation's input, the
//! next state and the output are fixed, so an operation whose outcome is
//! unknown (crashed) is simply applied without checking an output. States
//! are small and hashable (interned value ids, integers, bitsets), which is
//! what makes memoizing the search cheap. Values are interned once, before
//! the search, in a [`Ctx`].
//!
//! `step` returns `None` when the operation cannot take effect in that state
//! with the output that was observed.

pub mod counter;
pub mod map;
pub mod lock;
pub mod mutex;
pub mod queue;
pub mod register;
pub mod set;

use crate::error::CheckError;
use crate::history::Value;
use crate::operation::Operation;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

/// Value id of `null` (never written); every [`Ctx`] interns it first.
pub const NIL: u32 = 0;

/// Interned values and per-search caches, shared by every model.
#[derive(Debug, Default, Clone)]
pub struct Ctx {
    ids: HashMap<String, u32>,
    values: Vec<Value>,
    /// kv `append`: (current value, suffix) -> concatenation.
    pub(crate) append_cache: HashMap<(u32, u32), u32>,
    /// kv as one map: key -> slot.
    pub(crate) slots: HashMap<String, u32>,
    pub(crate) slot_keys: Vec<Value>,
}

impl Ctx {
    pub fn new() -> Ctx {
        let mut c = Ctx::default();
        let nil = c.intern(&Value::Null);
        debug_assert_eq!(nil, NIL);
        c
    }

    /// The id of a value; equal values (as JSON) get equal ids.
    pub fn intern(&mut self, v: &Value) -> u32 {
        let k = v.to_string();
        if let Some(&id) = self.ids.get(&k) {
            return id;
        }
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        self.ids.insert(k, id);
        self.values.push(v.clone());
        id
    }

    pub fn value(&self, id: u32) -> &Value {
        &self.values[id as usize]
    }

    /// The slot of a key for models over a whole map.
    pub(crate) fn slot(&mut self, key: &Value) -> u32 {
        let k = key.to_string();
        if let Some(&s) = self.slots.get(&k) {
            return s;
        }
        let s = u32::try_from(self.slot_keys.len()).expect("fewer than 2^32 keys");
        self.slots.insert(k, s);
        self.slot_keys.push(key.clone());
        s
    }
}

/// A sequential specification. See the module docs.
pub trait Model: Sync {
    type State: Clone + Eq + Hash + Send + Sync + fmt::Debug;
    type Op: Clone + Send + Sync + fmt::Debug;

    fn name(&self) -> &'static str;
    /// Translates one operation, interning its values; an error says why
    /// the operation does not fit this model.
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<Self::Op, String>;
    /// The initial state, once every operation has been compiled.
    fn init(&self, ctx: &Ctx) -> Self::State;
    fn step(&self, ctx: &mut Ctx, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// True when a crashed instance of `op` changes nothing (a read): such
    /// operations are dropped before the search.
    fn read_only(&self, op: &Self::Op) -> bool;
    /// A short rendering of a state, for witnesses.
    fn show(&self, ctx: &Ctx, state: &Self::State) -> String;
    /// Bytes a state holds, for the memory bound.
    fn state_bytes(&self, _state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>()
    }
}

/// Compiles every operation or names the first one that does not fit.
pub(crate) fn compile_all<M: Model>(
    model: &M,
    ops: &[&Operation],
    ctx: &mut Ctx,
) -> Result<Vec<M::Op>, CheckError> {
    ops.iter()
        .map(|op| {
            model.compile(op, ctx).map_err(|message| CheckError::Op {
                model: model.name().to_string(),
                index: op.index,
                op: op.to_string(),
                message,
            })
        })
        .collect()
}

/// The models `faultline check --model` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    Register,
    CasRegister,
    Kv,
    Mutex,
    Lock,
    Set,
    Counter,
    Queue,
}

impl ModelKind {
    pub const ALL: [ModelKind; 8] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::Mutex,
        ModelKind::Lock,
        ModelKind::Set,
        ModelKind::Counter,
        ModelKind::Queue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::Mutex => "mutex",
            ModelKind::Lock => "lock",
            ModelKind::Set => "set",
            ModelKind::Counter => "counter",
            ModelKind::Queue => "queue",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| CheckError::UnknownName {
                what: "model",
                name: s.to_string(),
                expected: ModelKind::ALL.map(ModelKind::name).join(", "),
            })
    }
}

/// Helpers shared by the models' `compile`.
pub(crate) fn as_i64(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64().ok_or_else(|| format!("{what}: expected an integer, got {v}"))
}

/// `{"k": ...}` field of an object value.
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.get(name))
}
