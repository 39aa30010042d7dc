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
pub mod lock;
pub mod map;
pub mod multi_register;
pub mod mutex;
pub mod queue;
pub mod register;
pub mod set;

use crate::error::CheckError;
use crate::fxhash::FxBuildHasher;
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
///
/// Every value carries a fingerprint of its text (polynomial hash and
/// length), so that `append` builds its result in O(1) as a node (prefix
/// id, suffix id) and finds an equal string already interned by
/// fingerprint; a fingerprint match is confirmed by comparing the texts,
/// so ids stay exact: two ids are equal if and only if the values are.
#[derive(Debug, Default, Clone)]
pub struct Ctx {
    /// Integers by value, anything else but strings by its JSON text.
    ints: HashMap<i64, u32, FxBuildHasher>,
    ids: HashMap<String, u32, FxBuildHasher>,
    /// Strings by fingerprint: the first id with it; the others chain
    /// through `same_fingerprint`.
    strings: HashMap<(u64, u32), u32, FxBuildHasher>,
    values: Vec<Slot>,
    /// Per id: its text's fingerprint, and the next string id with the
    /// same fingerprint (`NO_ID` at the end of a chain).
    fingerprints: Vec<Fingerprint>,
    same_fingerprint: Vec<u32>,
    /// Per id: where its text's prefix hashes start in `prefix_hashes`
    /// (`NO_ID` until asked for): entry `i` is the hash of its first `i`
    /// bytes, for [`Ctx::may_be_prefix`].
    prefix_at: Vec<u32>,
    prefix_hashes: Vec<u64>,
    /// kv `append`: (current value, suffix) -> concatenation.
    pub(crate) append_cache: HashMap<(u32, u32), u32, FxBuildHasher>,
    /// Models over a whole map: key -> slot.
    pub(crate) slots: HashMap<String, u32>,
    pub(crate) slot_keys: Vec<Value>,
    /// The multi-register's registers: key -> number, and back.
    registers: HashMap<String, u32>,
    register_keys: Vec<Value>,
}

#[derive(Debug, Clone)]
enum Slot {
    Plain(Value),
    /// A string made by `append`.
    Concat {
        prefix: u32,
        suffix: u32,
    },
}

/// (hash, length, BASE^length) of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    hash: u64,
    len: u32,
    power: u64,
}

const BASE: u64 = 0x100_0000_01b3;
/// No id (the end of a fingerprint chain).
const NO_ID: u32 = u32::MAX;

impl Fingerprint {
    fn of(s: &str) -> Fingerprint {
        let (mut hash, mut power) = (0u64, 1u64);
        for b in s.bytes() {
            hash = hash.wrapping_mul(BASE).wrapping_add(b as u64 + 1);
            power = power.wrapping_mul(BASE);
        }
        Fingerprint {
            hash,
            len: s.len() as u32,
            power,
        }
    }

    /// The fingerprint of the concatenation.
    fn then(self, suffix: Fingerprint) -> Fingerprint {
        Fingerprint {
            hash: self
                .hash
                .wrapping_mul(suffix.power)
                .wrapping_add(suffix.hash),
            len: self.len + suffix.len,
            power: self.power.wrapping_mul(suffix.power),
        }
    }
}

impl Ctx {
    pub fn new() -> Ctx {
        let mut c = Ctx::default();
        let nil = c.intern(&Value::Null);
        debug_assert_eq!(nil, NIL);
        c
    }

    fn push(&mut self, slot: Slot, fingerprint: Fingerprint) -> u32 {
        let id = u32::try_from(self.values.len()).expect("fewer than 2^32 distinct values");
        assert_ne!(id, NO_ID, "fewer than 2^32 - 1 distinct values");
        self.values.push(slot);
        self.fingerprints.push(fingerprint);
        self.same_fingerprint.push(NO_ID);
        self.prefix_at.push(NO_ID);
        id
    }

    /// A string id with this fingerprint whose text is `text()`, if any
    /// (`text` is called only on a fingerprint match).
    fn find_string(&self, fingerprint: Fingerprint, text: impl FnOnce() -> String) -> Option<u32> {
        let mut id = *self.strings.get(&(fingerprint.hash, fingerprint.len))?;
        let want = text();
        while id != NO_ID {
            if self.text(id) == want {
                return Some(id);
            }
            id = self.same_fingerprint[id as usize];
        }
        None
    }

    /// Files a new string id under its fingerprint.
    fn index_string(&mut self, id: u32, fingerprint: Fingerprint) {
        let key = (fingerprint.hash, fingerprint.len);
        if let Some(first) = self.strings.insert(key, id) {
            self.same_fingerprint[id as usize] = first;
        }
    }

    /// The id of a value; equal values (as JSON) get equal ids.
    pub fn intern(&mut self, v: &Value) -> u32 {
        match v {
            Value::String(s) => {
                let fingerprint = Fingerprint::of(s);
                if let Some(id) = self.find_string(fingerprint, || s.clone()) {
                    return id;
                }
                let id = self.push(Slot::Plain(v.clone()), fingerprint);
                self.index_string(id, fingerprint);
                id
            }
            Value::Number(n) if n.is_i64() => {
                let k = n.as_i64().expect("is_i64");
                if let Some(&id) = self.ints.get(&k) {
                    return id;
                }
                let id = self.push(Slot::Plain(v.clone()), Fingerprint::of(&k.to_string()));
                self.ints.insert(k, id);
                id
            }
            other => {
                let k = other.to_string();
                if let Some(&id) = self.ids.get(&k) {
                    return id;
                }
                let text = if other.is_null() {
                    String::new()
                } else {
                    k.clone()
                };
                let id = self.push(Slot::Plain(v.clone()), Fingerprint::of(&text));
                self.ids.insert(k, id);
                id
            }
        }
    }

    /// The value of an id (strings made by `append` are put together).
    pub fn value(&self, id: u32) -> Value {
        match &self.values[id as usize] {
            Slot::Plain(v) => v.clone(),
            Slot::Concat { .. } => Value::String(self.text(id)),
        }
    }

    /// The text of an id: a string's, `null`'s is empty, any other
    /// value's its JSON.
    fn text(&self, id: u32) -> String {
        let mut pieces = Vec::new();
        let mut cur = id;
        while let Slot::Concat { prefix, suffix } = &self.values[cur as usize] {
            pieces.push(*suffix);
            cur = *prefix;
        }
        pieces.push(cur);
        let mut out = String::new();
        for &p in pieces.iter().rev() {
            match &self.values[p as usize] {
                Slot::Plain(Value::String(s)) => out.push_str(s),
                Slot::Plain(Value::Null) => {}
                Slot::Plain(other) => out.push_str(&other.to_string()),
                Slot::Concat { .. } => out.push_str(&self.text(p)),
            }
        }
        out
    }

    /// `cur` with the string `suffix` appended, interned; cached.
    pub(crate) fn append(&mut self, cur: u32, suffix: u32) -> u32 {
        if let Some(&id) = self.append_cache.get(&(cur, suffix)) {
            return id;
        }
        let id = if cur == NIL {
            suffix
        } else if suffix == NIL {
            cur
        } else {
            let fingerprint =
                self.fingerprints[cur as usize].then(self.fingerprints[suffix as usize]);
            match self.find_string(fingerprint, || self.text(cur) + &self.text(suffix)) {
                Some(found) => found,
                None => {
                    let id = self.push(
                        Slot::Concat {
                            prefix: cur,
                            suffix,
                        },
                        fingerprint,
                    );
                    self.index_string(id, fingerprint);
                    id
                }
            }
        };
        self.append_cache.insert((cur, suffix), id);
        id
    }

    /// False when the text of `prefix` is certainly not a prefix of the
    /// text of `whole`: their fingerprints disagree. True may be wrong
    /// (two texts with one fingerprint), so a caller may prune on false
    /// only. Exact when the texts are as long: then only `prefix ==
    /// whole` is true, since appending grows a text and only equal ids
    /// are equal values.
    pub(crate) fn may_be_prefix(&mut self, prefix: u32, whole: u32) -> bool {
        if prefix == whole || prefix == NIL {
            return true;
        }
        let (short, long) = (
            self.fingerprints[prefix as usize],
            self.fingerprints[whole as usize],
        );
        if short.len >= long.len {
            return false;
        }
        let mut at = self.prefix_at[whole as usize];
        if at == NO_ID {
            at = u32::try_from(self.prefix_hashes.len()).expect("fewer than 2^32 prefix hashes");
            let text = self.text(whole);
            let mut hash = 0u64;
            self.prefix_hashes.push(hash);
            for b in text.bytes() {
                hash = hash.wrapping_mul(BASE).wrapping_add(b as u64 + 1);
                self.prefix_hashes.push(hash);
            }
            debug_assert_eq!(hash, long.hash, "prefix hashes end at the fingerprint");
            self.prefix_at[whole as usize] = at;
        }
        self.prefix_hashes[at as usize + short.len as usize] == short.hash
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

impl Ctx {
    /// The number of a multi-register's register `key`, numbered in the
    /// order first seen.
    pub(crate) fn register(&mut self, key: &Value) -> u32 {
        let k = key.to_string();
        if let Some(&r) = self.registers.get(&k) {
            return r;
        }
        let r = u32::try_from(self.register_keys.len()).expect("fewer than 2^32 registers");
        self.registers.insert(k, r);
        self.register_keys.push(key.clone());
        r
    }

    pub(crate) fn registers_len(&self) -> usize {
        self.register_keys.len()
    }

    pub(crate) fn register_key(&self, r: u32) -> &Value {
        &self.register_keys[r as usize]
    }
}

/// How an `ok` read that returned nil (null) is understood.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NilReads {
    /// The register held no value (never written, or written nil): what
    /// faultline's recorder and Porcupine mean by it. A nil read after an
    /// acknowledged write is then an anomaly (a lost write, a stale read).
    #[default]
    Absent,
    /// The read's value is not known: it constrains nothing. Knossos's
    /// registers read it so (its histories record nil for reads whose value
    /// the client never got).
    Unknown,
}

impl NilReads {
    pub fn name(self) -> &'static str {
        match self {
            NilReads::Absent => "absent",
            NilReads::Unknown => "unknown",
        }
    }
}

/// The register models' choices: where registers start, what a nil read
/// means. Knossos's models are these with `nil_reads: Unknown`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelOptions {
    /// Every register (each key's, each of a multi-register's) starts at
    /// this value; `None` starts them empty (nil).
    pub initial_value: Option<Value>,
    pub nil_reads: NilReads,
}

impl ModelOptions {
    /// The interned initial value (`intern` as the model interns values),
    /// or [`NIL`].
    pub(crate) fn initial_id(
        &self,
        ctx: &mut Ctx,
        intern: impl Fn(&mut Ctx, &Value) -> u32,
    ) -> u32 {
        match &self.initial_value {
            Some(v) => intern(ctx, v),
            None => NIL,
        }
    }
}

/// What an operation may do to a state, whatever the state: the search's
/// look-ahead follows a state through operations that grow it or set it
/// to a value, to the reads after them (see `search`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reach<S> {
    /// Leaves the state as it was (a read, a cas that did not swap) or
    /// grows it, never undoing what is in it (a kv `append`).
    Grows,
    /// Leaves it or grows it, or sets it to this state (a write; a cas
    /// that may swap).
    Sets(S),
    /// Anything else.
    Any,
}

/// A sequential specification. See the module docs.
pub trait Model: Sync + Clone {
    type State: Clone + Eq + Hash + Send + Sync + fmt::Debug;
    type Op: Clone + Send + Sync + fmt::Debug;

    fn name(&self) -> &'static str;
    /// Translates one operation, interning its values; an error says why
    /// the operation does not fit this model.
    fn compile(&self, op: &Operation, ctx: &mut Ctx) -> Result<Self::Op, String>;
    /// The initial state, once every operation has been compiled.
    fn init(&self, ctx: &mut Ctx) -> Self::State;
    fn step(&self, ctx: &mut Ctx, state: &Self::State, op: &Self::Op) -> Option<Self::State>;
    /// True when `op` never changes the state when it succeeds (a read):
    /// `step` returns the state it was given, or `None`. Crashed such
    /// operations are dropped before the search, and a succeeding one is
    /// linearized at once (see `search`).
    fn read_only(&self, op: &Self::Op) -> bool;
    /// What `op` may do to the state, for the search's look-ahead to the
    /// reads left ([`Reach`]). `Any` (the default) ends the look-ahead.
    fn reach(&self, _op: &Self::Op) -> Reach<Self::State> {
        Reach::Any
    }
    /// True when `op` is a read that [`Model::may_grow_into`] may refuse.
    fn pins(&self, _op: &Self::Op) -> bool {
        false
    }
    /// For a read that [`Model::pins`]: false only when no sequence of
    /// operations that [`Reach::Grows`] takes `state` to one that `read`
    /// accepts. True when it may (a guess that errs towards true costs
    /// speed, never a verdict).
    fn may_grow_into(&self, _ctx: &mut Ctx, _state: &Self::State, _read: &Self::Op) -> bool {
        true
    }
    /// The independent component (key) an operation touches, for models
    /// that are maps of independent objects; `None` otherwise. Operations
    /// of different components commute, which the search uses to jump
    /// back over them (see `search`).
    fn component(&self, _op: &Self::Op) -> Option<u32> {
        None
    }
    /// One component's share of a state (maps of independent objects; `()`
    /// for the others). Two states with equal parts on component `c` behave
    /// the same for every operation of `c`, which lets the search remember
    /// that a component alone is stuck (see `search`).
    type Part: Clone + Eq + Hash + Send + Sync + fmt::Debug;
    /// The part of `state` on component `c`; `None` for models that are not
    /// maps (those whose `component` is always `None`).
    fn part(&self, _state: &Self::State, _c: u32) -> Option<Self::Part> {
        None
    }
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
    MultiRegister,
}

impl ModelKind {
    pub const ALL: [ModelKind; 9] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::Mutex,
        ModelKind::Lock,
        ModelKind::Set,
        ModelKind::Counter,
        ModelKind::Queue,
        ModelKind::MultiRegister,
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
            ModelKind::MultiRegister => "multi-register",
        }
    }

    /// Whether the model's objects are registers, which start at
    /// [`ModelOptions::initial_value`] and read nil per
    /// [`ModelOptions::nil_reads`].
    pub fn has_registers(self) -> bool {
        matches!(
            self,
            ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv | ModelKind::MultiRegister
        )
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

/// Code to run with a model whose type is known only at run time
/// ([`ModelKind::visit`]).
pub trait ModelVisitor {
    type Output;
    fn visit<M: Model>(self, model: &M) -> Self::Output;
}

impl ModelKind {
    /// Runs `visitor` with the model of this kind, made with `options`.
    pub fn visit<V: ModelVisitor>(self, options: &ModelOptions, visitor: V) -> V::Output {
        use register::{Flavour, Register};
        match self {
            ModelKind::Register => visitor.visit(&Register::new(Flavour::Plain, options)),
            ModelKind::CasRegister => visitor.visit(&Register::new(Flavour::Cas, options)),
            ModelKind::Kv => visitor.visit(&Register::new(Flavour::Kv, options)),
            ModelKind::Mutex => visitor.visit(&mutex::Mutex),
            ModelKind::Lock => visitor.visit(&lock::Lock),
            ModelKind::Set => visitor.visit(&set::Set),
            ModelKind::Counter => visitor.visit(&counter::Counter),
            ModelKind::Queue => visitor.visit(&queue::Queue),
            ModelKind::MultiRegister => visitor.visit(&multi_register::MultiRegister::new(options)),
        }
    }
}

/// Helpers shared by the models' `compile`.
pub(crate) fn as_i64(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("{what}: expected an integer, got {v}"))
}

/// `{"k": ...}` field of an object value.
pub(crate) fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.get(name))
}
