//! The transactional history in compact form: every transaction an index,
//! every key a dense number, every value a `u64`.
//!
//! A transaction's value is a list of micro-ops, Jepsen's
//! `[[:append k v] [:r k [1 2]] [:w k v]]` (EDN keywords arrive as strings
//! after import). Keys and values may be any scalar: integers in
//! `0..2^62` are stored as themselves, anything else (strings, negative or
//! huge numbers, floats, booleans) is interned, so the analyses compare
//! plain integers and never hash a JSON value.
//!
//! [`TxnHistoryBuilder`] takes events one at a time (so a streaming reader
//! need not keep the file), or a batch of them on two cores
//! ([`TxnHistoryBuilder::push_batch`], the same history), and pairs
//! invokes with completions by the history's rules
//! (docs/history-format.md). An `ok` transaction's micro-ops
//! come from its completion (reads filled in); a `fail` or `info` one keeps
//! its invoke's, whose reads are unknown.

use crate::error::{CheckError, HistoryError};
use crate::fxhash::FxBuildHasher;
use crate::history::{Event, EventType, Process, Value};
use crate::operation::{Operations, Outcome};
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

mod batch;

/// A key or value, encoded: small non-negative integers as themselves,
/// anything else as an interned id with the top bit set.
pub type Scalar = u64;

/// The `nil` register value (and the initial state of every register).
pub const NIL: Scalar = u64::MAX;

const INTERNED: u64 = 1 << 63;
const DIRECT_MAX: u64 = (1 << 62) - 1;

/// Which transactional workload a history is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxnModel {
    /// Micro-ops `append` and `r` over lists (Elle's list-append).
    ListAppend,
    /// Micro-ops `w` and `r` over registers (Elle's rw-register).
    RwRegister,
}

impl TxnModel {
    pub const ALL: [TxnModel; 2] = [TxnModel::ListAppend, TxnModel::RwRegister];
    pub fn name(self) -> &'static str {
        match self {
            TxnModel::ListAppend => "list-append",
            TxnModel::RwRegister => "rw-register",
        }
    }
}

impl fmt::Display for TxnModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TxnModel {
    type Err = CheckError;
    fn from_str(s: &str) -> Result<Self, CheckError> {
        TxnModel::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| CheckError::UnknownName {
                what: "transactional model",
                name: s.to_string(),
                expected: "list-append, rw-register".into(),
            })
    }
}

/// What a micro-op does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MopKind {
    /// `[:append k v]`: appends `v` to the list at `k`.
    Append,
    /// `[:w k v]`: sets the register `k` to `v`.
    Write,
    /// `[:r k v]`: reads `k`.
    Read,
}

/// One micro-op, 16 bytes (every pass over the micro-ops is memory
/// traffic): a value, or for a known list read where its elements are.
/// For a list read, [`Mop::start`] and [`Mop::read_len`] index
/// [`TxnHistory::elems`]; for a register read [`Mop::value`] is what was
/// read. A read whose result is unknown (an invoke, or a `fail`/`info`
/// transaction) has `known == false`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mop {
    pub kind: MopKind,
    pub known: bool,
    /// A known list read: `word` is its elements' `start | len << 32`.
    list: bool,
    /// Dense key number: [`TxnHistory::key_name`] gives it back.
    pub key: u32,
    /// The appended or written value, a register read's value, or a list
    /// read's elements.
    word: u64,
}

impl Mop {
    /// A micro-op with a value (`NIL` for a read not known).
    fn with_value(kind: MopKind, key: u32, value: Scalar, known: bool) -> Mop {
        Mop {
            kind,
            known,
            list: false,
            key,
            word: value,
        }
    }

    /// A known list read of `elems[start..start + len]`.
    fn list_read(key: u32, (start, len): (u32, u32)) -> Mop {
        Mop {
            kind: MopKind::Read,
            known: true,
            list: true,
            key,
            word: start as u64 | (len as u64) << 32,
        }
    }

    pub fn is_write(&self) -> bool {
        matches!(self.kind, MopKind::Append | MopKind::Write)
    }

    /// The appended or written value, or a register read's value (`NIL`
    /// for a list read, and for a read not known).
    pub fn value(&self) -> Scalar {
        if self.list {
            NIL
        } else {
            self.word
        }
    }

    /// Whether this is a known list read (its elements in `elems`).
    pub fn is_list_read(&self) -> bool {
        self.list
    }

    /// A known list read's first element in [`TxnHistory::elems`];
    /// `u32::MAX` for any other micro-op.
    pub fn start(&self) -> u32 {
        if self.list {
            self.word as u32
        } else {
            u32::MAX
        }
    }

    /// A known list read's length; `u32::MAX` for any other micro-op.
    pub fn read_len(&self) -> u32 {
        if self.list {
            (self.word >> 32) as u32
        } else {
            u32::MAX
        }
    }

    /// The same micro-op with its list read's elements moved on by
    /// `shift` (other micro-ops unchanged).
    fn with_elems_moved(self, shift: u32) -> Mop {
        if self.list {
            Mop::list_read(self.key, (self.start() + shift, self.read_len()))
        } else {
            self
        }
    }
}

/// One transaction: 64 bytes (it was 104 with three `Option<u64>`s and
/// two timestamps nothing read), since every pass of the check walks
/// all of them and building a big history is dominated by memory traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct Txn {
    pub process: u64,
    pub outcome: Outcome,
    /// Position of the invoke among all events.
    pub invoke_pos: u64,
    /// Position of the completion, or `NEVER_COMPLETED` (+infinity) for
    /// crashed transactions: read it through [`Txn::complete_pos`].
    complete_pos: u64,
    /// The `index` field of the invoke, for messages.
    pub invoke_index: u64,
    /// The `index` field of the completion, meaningful only when
    /// `complete_index_known`: read it through [`Txn::complete_index`].
    complete_index: u64,
    complete_index_known: bool,
    /// Source line of the invoke (1-based).
    pub line: usize,
    /// Its micro-ops, as a range of [`TxnHistory::mops`].
    pub mops: Range<u32>,
}

/// [`Txn`]'s completion position of a transaction that never completed.
/// Positions count events, so no real one reaches it.
const NEVER_COMPLETED: u64 = u64::MAX;

impl Txn {
    /// An invoked transaction, not (yet) completed.
    fn invoked(process: u64, invoke_pos: u64, invoke_index: u64, line: usize) -> Txn {
        Txn {
            process,
            outcome: Outcome::Info,
            invoke_pos,
            complete_pos: NEVER_COMPLETED,
            invoke_index,
            complete_index: 0,
            complete_index_known: false,
            line,
            mops: 0..0,
        }
    }

    /// Position of the completion among all events; `None` (+infinity)
    /// for crashed transactions.
    pub fn complete_pos(&self) -> Option<u64> {
        (self.complete_pos != NEVER_COMPLETED).then_some(self.complete_pos)
    }

    /// The `index` field of the completion, when known.
    pub fn complete_index(&self) -> Option<u64> {
        self.complete_index_known.then_some(self.complete_index)
    }

    fn set_complete_pos(&mut self, pos: u64) {
        assert!(pos != NEVER_COMPLETED, "event position {pos} out of range");
        self.complete_pos = pos;
    }
}

/// A whole transactional history.
#[derive(Clone, Debug, Default)]
pub struct TxnHistory {
    pub source_name: String,
    /// In invoke order (transaction `i` was the `i`th invoked).
    pub txns: Vec<Txn>,
    pub mops: Vec<Mop>,
    /// Elements of every known list read, concatenated.
    pub elems: Vec<Scalar>,
    /// Key number → encoded key.
    keys: Vec<Scalar>,
    interned: Vec<Value>,
    /// Events read, nemesis included.
    pub event_count: u64,
}

impl TxnHistory {
    pub fn mops_of(&self, t: usize) -> &[Mop] {
        let r = &self.txns[t].mops;
        &self.mops[r.start as usize..r.end as usize]
    }

    /// The elements of a known list read.
    pub fn read_elems(&self, m: &Mop) -> &[Scalar] {
        let start = m.start() as usize;
        &self.elems[start..start + m.read_len() as usize]
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// A scalar as the JSON value it came from.
    pub fn value_of(&self, s: Scalar) -> Value {
        if s == NIL {
            Value::Null
        } else if s & INTERNED != 0 {
            self.interned[(s & !INTERNED) as usize].clone()
        } else {
            Value::from(s)
        }
    }

    pub fn key_name(&self, key: u32) -> Value {
        self.value_of(self.keys[key as usize])
    }

    /// A scalar as text: `3`, `"x"`, `nil`.
    pub fn show(&self, s: Scalar) -> String {
        match self.value_of(s) {
            Value::Null => "nil".into(),
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    pub fn show_key(&self, key: u32) -> String {
        self.show(self.keys[key as usize])
    }

    /// A micro-op as Jepsen writes it: `[append x 3]`, `[r x [1 2]]`.
    pub fn show_mop(&self, m: &Mop) -> String {
        let key = self.show_key(m.key);
        match m.kind {
            MopKind::Append => format!("[append {key} {}]", self.show(m.value())),
            MopKind::Write => format!("[w {key} {}]", self.show(m.value())),
            MopKind::Read if !m.known => format!("[r {key} nil]"),
            MopKind::Read if !m.is_list_read() => {
                format!("[r {key} {}]", self.show(m.value()))
            }
            MopKind::Read => format!("[r {key} {}]", self.show_list(self.read_elems(m))),
        }
    }

    /// A list as `[1 2 3]`, long ones elided in the middle.
    pub fn show_list(&self, elems: &[Scalar]) -> String {
        let shown: Vec<String> = if elems.len() <= 12 {
            elems.iter().map(|e| self.show(*e)).collect()
        } else {
            let mut v: Vec<String> = elems[..4].iter().map(|e| self.show(*e)).collect();
            v.push(format!("…{} more…", elems.len() - 8));
            v.extend(elems[elems.len() - 4..].iter().map(|e| self.show(*e)));
            v
        };
        format!("[{}]", shown.join(" "))
    }

    /// A transaction as one line: `p3 ok [[append x 3] [r y [1]]] (event 12, line 25)`.
    pub fn show_txn(&self, t: usize) -> String {
        let txn = &self.txns[t];
        let mops: Vec<String> = self.mops_of(t).iter().map(|m| self.show_mop(m)).collect();
        let outcome = match txn.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        format!(
            "p{} {outcome} [{}] (event {}, line {})",
            txn.process,
            mops.join(" "),
            txn.invoke_index,
            txn.line
        )
    }

    /// Builds from operations already paired (the harness's path).
    pub fn from_operations(ops: &Operations, model: TxnModel) -> Result<TxnHistory, CheckError> {
        let mut b = TxnHistoryBuilder::new(&ops.source_name, model);
        for op in &ops.ops {
            let outcome = op.outcome;
            let value = match (outcome, &op.output) {
                (Outcome::Ok, Some(v)) => v,
                _ => &op.input,
            };
            let start = b.history.mops.len() as u32;
            b.parse_into_history(value, outcome == Outcome::Ok, op.index, &op.f)?;
            let mut txn = Txn::invoked(op.process, op.invoke_pos, op.index, op.line);
            txn.outcome = outcome;
            if let Some(pos) = op.complete_pos {
                txn.set_complete_pos(pos);
            }
            txn.mops = start..b.history.mops.len() as u32;
            b.history.txns.push(txn);
        }
        b.history.event_count = ops.event_count;
        Ok(b.history)
    }
}

/// Builds a [`TxnHistory`] from events, one at a time.
///
/// List reads share storage: Elle's list-append reads of a key are
/// almost all prefixes of one another, so each key keeps its longest
/// read so far (its canonical list) in [`TxnHistory::elems`], and a read
/// that is a prefix of it points into it instead of copying its
/// elements; a read that extends it extends it in place (each canonical
/// list has spare room, doubled when it runs out). Only a read that
/// disagrees with the canonical list gets its own copy. This is storage
/// only: every read's `read_elems` is exactly what it read.
pub struct TxnHistoryBuilder {
    model: TxnModel,
    history: TxnHistory,
    /// Per process: its slot in `pending`.
    process_slots: HashMap<u64, u32, FxBuildHasher>,
    /// Per slot: the process's outstanding transaction (if any) and that
    /// invoke's micro-ops (the buffer is kept and reused).
    pending: Vec<(u64, u32, Vec<Mop>)>,
    /// Key numbers of small integer keys, by the key itself (no hashing
    /// for Elle's generators' keys); other keys go to `key_ids`.
    dense_key_ids: Vec<u32>,
    key_ids: HashMap<Scalar, u32, FxBuildHasher>,
    interned_ids: HashMap<String, u64, FxBuildHasher>,
    /// Per key number: its canonical list in `history.elems`.
    lists: Vec<ListRegion>,
    position: u64,
    /// Set only in a builder taking the second half of a batch
    /// ([`TxnHistoryBuilder::push_batch`]): completions whose invoke is in
    /// the first half.
    orphans: Option<Vec<batch::Orphan>>,
}

const IDLE: u32 = u32::MAX;

/// Keys below this are looked up by index (at most 4 MiB of table).
const DENSE_KEYS: u64 = 1 << 20;

/// A key's canonical list: `elems[start..start + len]`, with room up to
/// `start + cap` that no read points into yet.
#[derive(Clone, Copy, Default)]
struct ListRegion {
    start: u32,
    len: u32,
    cap: u32,
}

impl TxnHistoryBuilder {
    pub fn new(source_name: &str, model: TxnModel) -> TxnHistoryBuilder {
        TxnHistoryBuilder {
            model,
            history: TxnHistory {
                source_name: source_name.to_string(),
                ..TxnHistory::default()
            },
            process_slots: HashMap::default(),
            pending: Vec::new(),
            dense_key_ids: Vec::new(),
            key_ids: HashMap::default(),
            interned_ids: HashMap::default(),
            lists: Vec::new(),
            position: 0,
            orphans: None,
        }
    }

    /// Takes the next event of the history; `line` is its source line.
    /// Nemesis events are counted and skipped.
    pub fn push(&mut self, ev: &Event, line: usize) -> Result<(), CheckError> {
        let pos = self.position;
        self.position += 1;
        self.history.event_count = self.position;
        let Process::Client(process) = ev.process else {
            return Ok(());
        };
        let slot = match self.process_slots.get(&process) {
            Some(&slot) => slot as usize,
            None => {
                let slot = self.pending.len();
                self.process_slots.insert(process, slot as u32);
                self.pending.push((process, IDLE, Vec::new()));
                if self.orphans.is_some() && ev.kind != EventType::Invoke {
                    return self.orphan(ev, line, pos, slot);
                }
                slot
            }
        };
        let outstanding = self.pending[slot].1;
        let mut invoke_mops = std::mem::take(&mut self.pending[slot].2);
        let result = self.take(ev, line, pos, process, outstanding, &mut invoke_mops);
        let entry = &mut self.pending[slot];
        entry.2 = invoke_mops;
        entry.1 = result?;
        Ok(())
    }

    /// Handles one client event; returns the process's outstanding
    /// transaction afterwards.
    fn take(
        &mut self,
        ev: &Event,
        line: usize,
        pos: u64,
        process: u64,
        outstanding: u32,
        invoke_mops: &mut Vec<Mop>,
    ) -> Result<u32, CheckError> {
        let source_name = &self.history.source_name;
        match ev.kind {
            EventType::Invoke => {
                if outstanding != IDLE {
                    return Err(HistoryError::DoubleInvoke {
                        source_name: source_name.clone(),
                        line,
                        process,
                        f: ev.f.clone(),
                        outstanding: "txn".into(),
                        outstanding_line: self.history.txns[outstanding as usize].line,
                    }
                    .into());
                }
                invoke_mops.clear();
                let mut no_elems = Vec::new();
                self.parse_value(
                    &ev.value,
                    false,
                    ev.index,
                    &ev.f,
                    invoke_mops,
                    &mut no_elems,
                )?;
                let t = self.history.txns.len() as u32;
                self.history
                    .txns
                    .push(Txn::invoked(process, pos, ev.index, line));
                Ok(t)
            }
            kind => {
                if outstanding == IDLE {
                    return Err(HistoryError::CompletionWithoutInvoke {
                        source_name: source_name.clone(),
                        line,
                        process,
                        f: ev.f.clone(),
                        kind: kind.to_string(),
                    }
                    .into());
                }
                let t = outstanding as usize;
                if ev.f != "txn" {
                    return Err(HistoryError::MismatchedCompletion {
                        source_name: source_name.clone(),
                        line,
                        process,
                        got: ev.f.clone(),
                        invoked: "txn".into(),
                        invoke_line: self.history.txns[t].line,
                    }
                    .into());
                }
                let start = self.history.mops.len() as u32;
                if kind == EventType::Ok {
                    self.parse_into_history(&ev.value, true, ev.index, &ev.f)?;
                } else {
                    self.history.mops.extend_from_slice(invoke_mops);
                }
                let txn = &mut self.history.txns[t];
                txn.mops = start..self.history.mops.len() as u32;
                if kind != EventType::Info {
                    txn.outcome = if kind == EventType::Ok {
                        Outcome::Ok
                    } else {
                        Outcome::Fail
                    };
                    txn.set_complete_pos(pos);
                    txn.complete_index = ev.index;
                    txn.complete_index_known = true;
                }
                Ok(IDLE)
            }
        }
    }

    /// The history; invokes never completed become `info` transactions.
    pub fn finish(mut self) -> Result<TxnHistory, CheckError> {
        let mut left: Vec<(u32, Vec<Mop>)> = self
            .pending
            .drain(..)
            .map(|(_, t, mops)| (t, mops))
            .filter(|p| p.0 != IDLE)
            .collect();
        left.sort_by_key(|p| p.0);
        for (t, mops) in left {
            let start = self.history.mops.len() as u32;
            self.history.mops.extend_from_slice(&mops);
            self.history.txns[t as usize].mops = start..self.history.mops.len() as u32;
        }
        if self.history.txns.is_empty() {
            return Err(HistoryError::Empty(self.history.source_name.clone()).into());
        }
        Ok(self.history)
    }

    /// Parses a transaction's value into the history's own micro-ops and
    /// read elements.
    fn parse_into_history(
        &mut self,
        value: &Value,
        completed: bool,
        index: u64,
        f: &str,
    ) -> Result<(), CheckError> {
        let mut mops = std::mem::take(&mut self.history.mops);
        let mut elems = std::mem::take(&mut self.history.elems);
        let parsed = self.parse_value(value, completed, index, f, &mut mops, &mut elems);
        self.history.mops = mops;
        self.history.elems = elems;
        parsed
    }

    fn encode(&mut self, v: &Value) -> Option<Scalar> {
        match v {
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    if u <= DIRECT_MAX {
                        return Some(u);
                    }
                }
                Some(self.intern(v))
            }
            Value::String(_) | Value::Bool(_) => Some(self.intern(v)),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        }
    }

    fn intern(&mut self, v: &Value) -> Scalar {
        let text = v.to_string();
        if let Some(&id) = self.interned_ids.get(&text) {
            return id;
        }
        let id = INTERNED | self.history.interned.len() as u64;
        self.history.interned.push(v.clone());
        self.interned_ids.insert(text, id);
        id
    }

    fn key_id(&mut self, k: Scalar) -> u32 {
        if k < DENSE_KEYS {
            if let Some(&id) = self.dense_key_ids.get(k as usize) {
                if id != IDLE {
                    return id;
                }
            }
        } else if let Some(&id) = self.key_ids.get(&k) {
            return id;
        }
        let id = self.history.keys.len() as u32;
        self.history.keys.push(k);
        self.lists.push(ListRegion::default());
        if k < DENSE_KEYS {
            if self.dense_key_ids.len() <= k as usize {
                let len = (k as usize + 1).max(2 * self.dense_key_ids.len());
                self.dense_key_ids
                    .resize(len.min(DENSE_KEYS as usize), IDLE);
            }
            self.dense_key_ids[k as usize] = id;
        } else {
            self.key_ids.insert(k, id);
        }
        id
    }

    /// Stores a list read of `key` in `elems`, sharing the key's
    /// canonical list where the read agrees with it; returns its
    /// `(start, len)`.
    fn store_list(
        &mut self,
        key: u32,
        list: &[Value],
        elems: &mut Vec<Scalar>,
    ) -> Result<(u32, u32), String> {
        let element = |this: &mut Self, e: &Value| {
            this.encode(e)
                .ok_or_else(|| format!("list elements must be scalars, got {e}"))
        };
        let mut canon = self.lists[key as usize];
        let n = list.len();
        let base = canon.start as usize;
        // How far the read agrees with the canonical list.
        let mut same = 0;
        let mut first_other = None;
        while same < n && same < canon.len as usize {
            let e = element(self, &list[same])?;
            if elems[base + same] != e {
                first_other = Some(e);
                break;
            }
            same += 1;
        }
        if same == n {
            return Ok((canon.start, n as u32));
        }
        if let Some(e) = first_other {
            // Disagrees: a copy of its own.
            let start = elems.len();
            elems.extend_from_within(base..base + same);
            elems.push(e);
            for v in &list[same + 1..] {
                let e = element(self, v)?;
                elems.push(e);
            }
            return Ok((region_index(start)?, n as u32));
        }
        // Extends the canonical list: in place, moved to a roomier place
        // at the end when full.
        if n > canon.cap as usize {
            let start = elems.len();
            let cap = (2 * n).max(8);
            elems.extend_from_within(base..base + same);
            elems.resize(start + cap, 0);
            canon.start = region_index(start)?;
            canon.cap = region_index(cap)?;
        }
        let base = canon.start as usize;
        for (i, v) in list.iter().enumerate().skip(same) {
            elems[base + i] = element(self, v)?;
        }
        canon.len = n as u32;
        self.lists[key as usize] = canon;
        Ok((canon.start, n as u32))
    }

    /// Parses a transaction's value into micro-ops appended to `mops`
    /// (list-read elements appended to `elems`, which the micro-ops index).
    /// `completed` says whether reads carry results (an `ok` completion).
    fn parse_value(
        &mut self,
        value: &Value,
        completed: bool,
        index: u64,
        f: &str,
        mops: &mut Vec<Mop>,
        elems: &mut Vec<Scalar>,
    ) -> Result<(), CheckError> {
        let model = self.model;
        let bad = |message: String| CheckError::Op {
            model: model.name().into(),
            index,
            op: format!("{f} {}", short(value)),
            message,
        };
        if f != "txn" {
            return Err(bad(format!("expected :f :txn (a transaction), got {f:?}")));
        }
        let Value::Array(items) = value else {
            return Err(bad(
                "expected the value to be a list of micro-ops like [[append x 1] [r y nil]]".into(),
            ));
        };
        for (i, item) in items.iter().enumerate() {
            let mop = self
                .parse_mop(item, completed, elems)
                .map_err(|m| bad(format!("micro-op {} ({}): {m}", i + 1, short(item))))?;
            mops.push(mop);
        }
        Ok(())
    }

    fn parse_mop(
        &mut self,
        item: &Value,
        completed: bool,
        elems: &mut Vec<Scalar>,
    ) -> Result<Mop, String> {
        let Some([f, k, v]) = item.as_array().map(Vec::as_slice) else {
            return Err("expected [f key value]".into());
        };
        let f = f
            .as_str()
            .ok_or("the function must be a keyword or string")?;
        let key = self
            .encode(k)
            .ok_or_else(|| format!("the key must be a scalar, got {k}"))?;
        let key = self.key_id(key);
        let value = |this: &mut Self, v: &Value, what: &str| {
            this.encode(v)
                .ok_or_else(|| format!("{what} must be a scalar, got {v}"))
        };
        match (self.model, f) {
            (TxnModel::ListAppend, "append") => {
                let v = value(self, v, "the value")?;
                Ok(Mop::with_value(MopKind::Append, key, v, false))
            }
            (TxnModel::RwRegister, "w") => {
                let v = value(self, v, "the value")?;
                Ok(Mop::with_value(MopKind::Write, key, v, false))
            }
            (_, "r") if !completed => Ok(Mop::with_value(MopKind::Read, key, NIL, false)),
            (TxnModel::ListAppend, "r") => match v {
                Value::Null => Ok(Mop::list_read(key, self.store_list(key, &[], elems)?)),
                Value::Array(list) => Ok(Mop::list_read(key, self.store_list(key, list, elems)?)),
                other => Err(format!("a list read must be a list or nil, got {other}")),
            },
            (TxnModel::RwRegister, "r") => {
                let v = match v {
                    Value::Null => NIL,
                    other => value(self, other, "a register value")?,
                };
                Ok(Mop::with_value(MopKind::Read, key, v, true))
            }
            (model, other) => Err(format!(
                "{model} takes {}, not {other:?}",
                match model {
                    TxnModel::ListAppend => "append and r",
                    TxnModel::RwRegister => "w and r",
                }
            )),
        }
    }
}

/// An index into the read elements, which stay below 2^32.
fn region_index(i: usize) -> Result<u32, String> {
    u32::try_from(i).map_err(|_| "more than 2^32 list elements read in all".to_string())
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        let mut end = 77;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(index: u64, p: u64, kind: EventType, value: Value) -> Event {
        Event {
            index,
            time: index,
            process: Process::Client(p),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    #[test]
    fn ok_txns_take_the_completion_and_crashed_ones_the_invoke() {
        let mut b = TxnHistoryBuilder::new("h", TxnModel::ListAppend);
        let evs = [
            ev(
                0,
                1,
                EventType::Invoke,
                json!([["append", "x", 1], ["r", "x", null]]),
            ),
            ev(1, 2, EventType::Invoke, json!([["append", "x", 2]])),
            ev(
                2,
                1,
                EventType::Ok,
                json!([["append", "x", 1], ["r", "x", [1]]]),
            ),
            ev(3, 3, EventType::Invoke, json!([["r", -4, null]])),
            ev(4, 3, EventType::Fail, json!([["r", -4, null]])),
        ];
        for (i, e) in evs.iter().enumerate() {
            b.push(e, i + 1).expect("valid event");
        }
        let h = b.finish().expect("a history");
        assert_eq!(h.txns.len(), 3);
        assert_eq!(h.txns[0].outcome, Outcome::Ok);
        assert_eq!(h.txns[1].outcome, Outcome::Info, "never completed");
        assert_eq!(h.txns[2].outcome, Outcome::Fail);
        assert_eq!(h.txns[0].complete_pos(), Some(2));
        assert_eq!(h.txns[0].complete_index(), Some(2));
        assert_eq!(h.txns[1].complete_pos(), None, "crashed: +infinity");
        assert_eq!(h.txns[1].complete_index(), None);
        assert_eq!(h.txns[2].complete_pos(), Some(4));
        assert_eq!(h.txns[2].complete_index(), Some(4));
        let read = h.mops_of(0)[1];
        assert!(read.known);
        assert_eq!(h.read_elems(&read), &[1]);
        assert!(!h.mops_of(2)[0].known, "a failed read is unknown");
        assert_eq!(
            h.show_key(h.mops_of(2)[0].key),
            "-4",
            "negative keys are interned"
        );
        assert_eq!(
            h.show_txn(0),
            "p1 ok [[append x 1] [r x [1]]] (event 0, line 1)"
        );
    }

    /// Every pass of the check walks all transactions: keep them small.
    #[test]
    fn a_txn_stays_64_bytes() {
        assert_eq!(std::mem::size_of::<Txn>(), 64);
    }

    /// Every pass over the micro-ops is memory traffic: keep them small.
    #[test]
    fn a_mop_stays_16_bytes() {
        assert_eq!(std::mem::size_of::<Mop>(), 16);
    }

    /// Reads share a key's canonical list: prefixes point into it,
    /// extensions grow it (in place, or moved when out of room), and a
    /// read that disagrees gets its own copy; each read still shows
    /// exactly what it read, whatever was read after it.
    #[test]
    fn shared_list_reads_each_show_what_they_read() {
        let reads: Vec<(&str, Vec<u64>)> = vec![
            ("x", vec![]),
            ("x", vec![1, 2]),
            ("y", vec![7]),
            ("x", vec![1]),
            ("x", vec![1, 2, 3]),
            (
                "x",
                vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17],
            ),
            ("x", vec![1, 2, 9]),
            ("y", vec![7, 8]),
            ("x", vec![1, 2, 3, 4]),
            ("x", vec![2]),
            (
                "x",
                vec![
                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
                ],
            ),
            ("y", vec![]),
        ];
        let mut b = TxnHistoryBuilder::new("h", TxnModel::ListAppend);
        let mut line = 0;
        for (i, (k, list)) in reads.iter().enumerate() {
            let p = i as u64;
            line += 1;
            b.push(
                &ev(2 * p, p, EventType::Invoke, json!([["r", k, null]])),
                line,
            )
            .expect("valid invoke");
            line += 1;
            b.push(
                &ev(2 * p + 1, p, EventType::Ok, json!([["r", k, list]])),
                line,
            )
            .expect("valid completion");
        }
        let h = b.finish().expect("a history");
        for (t, (k, list)) in reads.iter().enumerate() {
            let m = h.mops_of(t)[0];
            assert_eq!(h.show_key(m.key), *k);
            assert_eq!(h.read_elems(&m), list.as_slice(), "read {t}");
        }
        let start = |t: usize| h.mops_of(t)[0].start();
        assert_eq!(start(3), start(1), "[1] is stored as a prefix of [1 2]");
        assert_eq!(start(8), start(5), "[1 2 3 4] is a prefix of the 17");
        assert_ne!(start(6), start(5), "[1 2 9] disagrees: a copy");
        assert_eq!(start(10), start(5), "18 elements fit the room of 17");
    }

    #[test]
    fn bad_micro_ops_are_errors_naming_the_event() {
        let mut b = TxnHistoryBuilder::new("h", TxnModel::ListAppend);
        let e = b
            .push(&ev(7, 1, EventType::Invoke, json!([["w", "x", 1]])), 3)
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("event 7") && text.contains("micro-op 1"),
            "{text}"
        );
        let mut b = TxnHistoryBuilder::new("h", TxnModel::RwRegister);
        let e = b
            .push(&ev(0, 1, EventType::Invoke, json!([["w", [1], 1]])), 1)
            .unwrap_err();
        assert!(e.to_string().contains("scalar"), "{e}");
        let mut b = TxnHistoryBuilder::new("h.edn", TxnModel::RwRegister);
        let e = b.push(&ev(0, 1, EventType::Ok, json!([])), 9).unwrap_err();
        assert!(e.to_string().contains("h.edn:9"), "{e}");
    }
}
