//! List-append: transactions append unique values to lists and read whole
//! lists, so every read shows the order of the appends before it.
//!
//! The version order of a key is its longest read (without duplicates):
//! every other read must be a prefix of it, or the key has an
//! `incompatible-order`. An append nobody read came after every element
//! anybody read (appends are never lost in a correct system; if they are,
//! reads disagree). From the version order, for each key:
//!
//! - `ww`: the transaction that appended element `i` precedes the one that
//!   appended element `i + 1` (an unread append follows the last element);
//! - `wr`: the transaction that appended a read's last element precedes
//!   the reader;
//! - `rw`: a reader of the state with `i` elements precedes the
//!   transaction that appended element `i + 1`.
//!
//! And the anomalies that need no cycle: G1a (a read shows an element a
//! failed transaction appended), G1b (a read ends at an element another
//! transaction appended and then appended after), garbage reads (an
//! element nobody appended), duplicate elements, incompatible orders,
//! dirty updates (a committed append right after failed ones), internal
//! inconsistency (a transaction that does not read its own writes), future
//! reads, and lost updates (two committed transactions read the same state
//! of a key and both appended to it).
//!
//! Speed: a read that is a prefix of the longest ends in the state with
//! `len` elements, so its place in the version order costs no lookup; the
//! only hash map is (key, value) → append.

use super::anomaly::{bind, Anomalies, Case};
use super::graph::{EdgeList, Rels};
use super::history::{Mop, MopKind, Scalar, TxnHistory};
use crate::error::CheckError;
use crate::fxhash::FxBuildHasher;
use crate::operation::Outcome;
use std::collections::{HashMap, HashSet};

const NONE: u32 = u32::MAX;

/// One append micro-op.
#[derive(Clone, Copy, Debug)]
struct Append {
    txn: u32,
    key: u32,
    value: Scalar,
    /// Its place in the key's version order, or NONE if never read.
    pos: u32,
    /// Its transaction appends to the same key again later.
    intermediate: bool,
}

/// A read micro-op of an `ok` transaction, with where its elements are
/// (copied from the micro-op, so the passes over the reads of a key need
/// not look each micro-op up: they were the analysis's cache misses).
#[derive(Clone, Copy, Debug)]
struct Read {
    txn: u32,
    mop: u32,
    /// `elems[start..start + len]` of the history.
    start: u32,
    len: u32,
}

impl Read {
    const EMPTY: Read = Read {
        txn: 0,
        mop: 0,
        start: 0,
        len: 0,
    };

    fn of(txn: u32, mop: u32, m: &Mop) -> Read {
        Read {
            txn,
            mop,
            start: m.start(),
            len: m.read_len(),
        }
    }
}

/// Known reads of `ok` transactions, grouped by key: key `k`'s are
/// `reads[offsets[k]..offsets[k + 1]]`.
pub struct ReadsByKey {
    offsets: Vec<u32>,
    reads: Vec<Read>,
}

impl ReadsByKey {
    /// The reads of key `k`.
    fn of(&self, k: u32) -> &[Read] {
        &self.reads[self.offsets[k as usize] as usize..self.offsets[k as usize + 1] as usize]
    }
}

/// Reads that may take part in a lost update (see
/// [`ListAppend::internal`]).
pub struct LostUpdateCandidates(Vec<Read>);

/// (key, value) → append, dense where a key's values are small integers
/// (Elle's generators append 1, 2, 3, … to each key), hashed otherwise.
#[derive(Default)]
struct AppendIndex {
    /// Per key: start of its dense table in `dense`, and its length (0:
    /// the key's values go to `sparse`).
    tables: Vec<(u32, u32)>,
    dense: Vec<u32>,
    sparse: HashMap<(u32, Scalar), u32, FxBuildHasher>,
}

impl AppendIndex {
    /// Sizes the dense tables from the number of appends to each key and
    /// the largest value appended.
    fn sized(count: &[u64], max: &[u64]) -> AppendIndex {
        let keys = count.len();
        let mut tables = Vec::with_capacity(keys);
        let mut size = 0u64;
        for k in 0..keys {
            // Dense when the values are direct integers not much larger
            // than the number of appends.
            let span = max[k] + 1;
            if count[k] > 0
                && max[k] < (1 << 62)
                && span <= 4 * count[k] + 64
                && size + span < u32::MAX as u64
            {
                tables.push((size as u32, span as u32));
                size += span;
            } else {
                tables.push((0, 0));
            }
        }
        AppendIndex {
            tables,
            dense: vec![NONE; size as usize],
            sparse: HashMap::default(),
        }
    }

    fn slot(&self, key: u32, value: Scalar) -> Option<usize> {
        let (start, len) = self.tables[key as usize];
        (value < len as u64).then(|| start as usize + value as usize)
    }

    fn get(&self, key: u32, value: Scalar) -> Option<u32> {
        match self.slot(key, value) {
            Some(i) => Some(self.dense[i]).filter(|id| *id != NONE),
            None if self.tables[key as usize].1 > 0 => None,
            None => self.sparse.get(&(key, value)).copied(),
        }
    }

    /// Records an append; returns the one already there, if any.
    fn insert(&mut self, key: u32, value: Scalar, id: u32) -> Option<u32> {
        match self.slot(key, value) {
            Some(i) => {
                let old = std::mem::replace(&mut self.dense[i], id);
                (old != NONE).then_some(old)
            }
            None => self.sparse.insert((key, value), id),
        }
    }
}

/// What list-append learned of a history: version orders, and who read
/// which state. Kept to explain edges.
pub struct ListAppend<'h> {
    h: &'h TxnHistory,
    /// Each transaction's outcome, one byte each (the transactions
    /// themselves are large, and edges look outcomes up at random).
    outcomes: Vec<Outcome>,
    appends: Vec<Append>,
    append_of: AppendIndex,
    /// Per key, `order_offsets[k]..order_offsets[k + 1]` of `order`
    /// (append ids, NONE for an element nobody appended) and `order_elems`.
    order_offsets: Vec<u32>,
    order: Vec<u32>,
    order_elems: Vec<Scalar>,
    /// Per key: every read is a prefix of the longest, which has no
    /// duplicates (so a read's state is its length).
    regular: Vec<bool>,
    /// Readers per state: the state with `s` elements of key `k` is slot
    /// `order_offsets[k] + k + s`.
    slot_offsets: Vec<u32>,
    slot_readers: Vec<Read>,
}

impl<'h> ListAppend<'h> {
    /// Analyses a list-append history: anomalies found without cycles go
    /// to `anomalies`, dependency edges (as lists) to `edges`. Fails only on input
    /// that breaks the workload's rules (a value appended twice to a key).
    ///
    /// `reads_by_key` gives [`ListAppend::reads_by_key`] of `h`, and
    /// `lost_update_candidates` what [`ListAppend::internal`] returns,
    /// which [`super::check`] computes on another core meanwhile.
    pub fn analyze(
        h: &'h TxnHistory,
        reads_by_key: impl FnOnce() -> ReadsByKey,
        lost_update_candidates: impl FnOnce() -> LostUpdateCandidates,
        anomalies: &mut Anomalies,
        edges: &mut Vec<EdgeList>,
    ) -> Result<ListAppend<'h>, CheckError> {
        let (appends, append_of) = Self::index_appends(h)?;
        let mut la = ListAppend {
            h,
            outcomes: h.txns.iter().map(|t| t.outcome).collect(),
            appends,
            append_of,
            order_offsets: Vec::new(),
            order: Vec::new(),
            order_elems: Vec::new(),
            regular: Vec::new(),
            slot_offsets: Vec::new(),
            slot_readers: Vec::new(),
        };
        let reads_by_key = reads_by_key();
        la.version_orders(&reads_by_key, anomalies);
        la.index_readers(&reads_by_key);
        la.read_anomalies(&reads_by_key, anomalies);
        la.dirty_updates(anomalies);
        la.lost_updates(lost_update_candidates(), anomalies);
        edges.push(EdgeList::default());
        let from_appends = la.edges(&reads_by_key, edges.last_mut().expect("just pushed"));
        edges.push(from_appends);
        Ok(la)
    }

    fn failed(&self, txn: u32) -> bool {
        self.outcomes[txn as usize] == Outcome::Fail
    }

    /// Every append, in transaction order (its id is its place), and the
    /// index of them by (key, value). One pass over the transactions
    /// collects them and sizes the index; the index is filled from the
    /// collected appends, not from a second pass over the transactions.
    fn index_appends(h: &TxnHistory) -> Result<(Vec<Append>, AppendIndex), CheckError> {
        let keys = h.key_count();
        let mut count = vec![0u64; keys];
        let mut max = vec![0u64; keys];
        // Room for every micro-op (untouched room costs no memory).
        let mut appends = Vec::with_capacity(h.mops.len());
        for t in 0..h.txns.len() {
            let mops = h.mops_of(t);
            for (i, m) in mops.iter().enumerate() {
                if m.kind != MopKind::Append {
                    continue;
                }
                let intermediate = mops[i + 1..]
                    .iter()
                    .any(|n| n.kind == MopKind::Append && n.key == m.key);
                count[m.key as usize] += 1;
                max[m.key as usize] = max[m.key as usize].max(m.value());
                appends.push(Append {
                    txn: t as u32,
                    key: m.key,
                    value: m.value(),
                    pos: NONE,
                    intermediate,
                });
            }
        }
        let mut append_of = AppendIndex::sized(&count, &max);
        for (id, a) in appends.iter().enumerate() {
            if let Some(other) = append_of.insert(a.key, a.value, id as u32) {
                let t = a.txn as usize;
                let first = appends[other as usize].txn as usize;
                return Err(CheckError::Op {
                    model: "list-append".into(),
                    index: h.txns[t].invoke_index,
                    op: h.show_txn(t),
                    message: format!(
                        "appends {} to key {}, which {} appended too: list-append needs every value appended to a key once",
                        h.show(a.value),
                        h.show_key(a.key),
                        if first == t { "it".to_string() } else { format!("the transaction at line {}", h.txns[first].line) }
                    ),
                });
            }
        }
        Ok((appends, append_of))
    }

    /// Known reads of `ok` transactions, grouped by key, each key's in
    /// transaction order.
    pub fn reads_by_key(h: &TxnHistory) -> ReadsByKey {
        let keys = h.key_count();
        let mut offsets = vec![0u32; keys + 1];
        // One pass over the transactions collects the reads with their
        // keys; the counting sort's second pass reads that, not the
        // transactions again.
        let mut found: Vec<(u32, Read)> = Vec::with_capacity(h.mops.len());
        for (t, txn) in h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            for (i, m) in h.mops_of(t).iter().enumerate() {
                if m.kind == MopKind::Read && m.known {
                    offsets[m.key as usize + 1] += 1;
                    found.push((m.key, Read::of(t as u32, txn.mops.start + i as u32, m)));
                }
            }
        }
        for k in 0..keys {
            offsets[k + 1] += offsets[k];
        }
        let mut fill = offsets.clone();
        let mut reads = vec![Read::EMPTY; offsets[keys] as usize];
        for (key, r) in found {
            let slot = &mut fill[key as usize];
            reads[*slot as usize] = r;
            *slot += 1;
        }
        ReadsByKey { offsets, reads }
    }

    fn mop(&self, r: Read) -> &Mop {
        &self.h.mops[r.mop as usize]
    }

    fn version_orders(
        &mut self,
        ReadsByKey { offsets, reads }: &ReadsByKey,
        anomalies: &mut Anomalies,
    ) {
        let h = self.h;
        let keys = h.key_count();
        self.order_offsets = Vec::with_capacity(keys + 1);
        self.order_offsets.push(0);
        self.regular = vec![true; keys];
        let elems = |r: &Read| &h.elems[r.start as usize..(r.start + r.len) as usize];
        // Elements nobody appended seen so far in a key's longest read
        // (appended ones are told apart by their place in the order).
        let mut seen_unappended: HashSet<Scalar, FxBuildHasher> = HashSet::default();
        for k in 0..keys {
            let key_reads = &reads[offsets[k] as usize..offsets[k + 1] as usize];
            let start = self.order_elems.len();
            let longest = key_reads
                .iter()
                .copied()
                .max_by_key(|r| (r.len, std::cmp::Reverse(r.mop)));
            if let Some(longest) = longest {
                let long = elems(&longest);
                let mut conflict = None;
                for r in key_reads {
                    // Reads stored in the longest's place (the builder's
                    // shared canonical list) are its prefixes already.
                    let shared = r.start == longest.start && r.len <= longest.len;
                    if !shared && !long.starts_with(elems(r)) {
                        self.regular[k] = false;
                        conflict.get_or_insert(*r);
                    }
                }
                if let Some(r) = conflict {
                    anomalies.add("incompatible-order", || {
                        let ids = vec![r.txn as usize, longest.txn as usize];
                        Case {
                            txns: bind(h, &ids),
                            txn_ids: ids,
                            steps: Vec::new(),
                            explanation: format!(
                                "T1 read {k} = {}, and T2 read {k} = {}: the first is not a prefix of the second, so no single order of appends to {k} explains both reads.",
                                h.show_list(elems(&r)),
                                h.show_list(long),
                                k = h.show_key(k as u32)
                            ),
                        }
                    });
                }
                // The order: the longest read without its duplicates. An
                // append already placed (its `pos` set, which only this
                // key's pass does) is a duplicate.
                seen_unappended.clear();
                for &e in long {
                    let id = self.append_of.get(k as u32, e).unwrap_or(NONE);
                    let first = if id == NONE {
                        seen_unappended.insert(e)
                    } else {
                        self.appends[id as usize].pos == NONE
                    };
                    if !first {
                        self.regular[k] = false;
                        continue;
                    }
                    if id != NONE {
                        self.appends[id as usize].pos = (self.order_elems.len() - start) as u32;
                    }
                    self.order_elems.push(e);
                    self.order.push(id);
                }
            }
            self.order_offsets.push(self.order_elems.len() as u32);
        }
    }

    fn order_of(&self, key: u32) -> &[u32] {
        let k = key as usize;
        &self.order[self.order_offsets[k] as usize..self.order_offsets[k + 1] as usize]
    }

    /// The state a read saw: the number of elements of the version order
    /// before and at its last element. `None` when its last element is
    /// not in the order (an incompatible read).
    fn slot(&self, key: u32, r: &Read) -> Option<u32> {
        if r.len == 0 {
            return Some(0);
        }
        if self.regular[key as usize] {
            return Some(r.len);
        }
        let last = *self.elems(r).last().expect("len > 0");
        let k = key as usize;
        let elems =
            &self.order_elems[self.order_offsets[k] as usize..self.order_offsets[k + 1] as usize];
        match self.append_of.get(key, last) {
            Some(id) if self.appends[id as usize].pos != NONE => {
                Some(self.appends[id as usize].pos + 1)
            }
            _ => elems.iter().position(|e| *e == last).map(|p| p as u32 + 1),
        }
    }

    fn slot_id(&self, key: u32, slot: u32) -> usize {
        (self.order_offsets[key as usize] + key + slot) as usize
    }

    /// Readers per state, from the reads grouped by key (so each state's
    /// readers stay in transaction order).
    fn index_readers(&mut self, reads: &ReadsByKey) {
        let keys = self.h.key_count();
        let slots = self.order.len() + keys;
        let mut offsets = vec![0u32; slots + 2];
        // Counted one place up, so after the prefix sums `offsets[id + 1]`
        // is where state `id`'s readers start, and filling moves it to
        // where they end.
        for k in 0..keys as u32 {
            for r in reads.of(k) {
                if let Some(s) = self.slot(k, r) {
                    offsets[self.slot_id(k, s) + 2] += 1;
                }
            }
        }
        for i in 0..slots {
            offsets[i + 2] += offsets[i + 1];
        }
        let mut readers = vec![Read::EMPTY; offsets[slots + 1] as usize];
        for k in 0..keys as u32 {
            for r in reads.of(k) {
                if let Some(s) = self.slot(k, r) {
                    let fill = &mut offsets[self.slot_id(k, s) + 1];
                    readers[*fill as usize] = *r;
                    *fill += 1;
                }
            }
        }
        offsets.pop();
        self.slot_offsets = offsets;
        self.slot_readers = readers;
    }

    fn readers(&self, key: u32, slot: u32) -> &[Read] {
        let id = self.slot_id(key, slot);
        &self.slot_readers[self.slot_offsets[id] as usize..self.slot_offsets[id + 1] as usize]
    }

    /// The append whose element ends the state `slot` of `key`.
    fn writer_at(&self, key: u32, slot: u32) -> Option<&Append> {
        if slot == 0 {
            return None;
        }
        match self.order_of(key).get(slot as usize - 1) {
            Some(&id) if id != NONE => Some(&self.appends[id as usize]),
            _ => None,
        }
    }

    /// The state an append was made on: its place in the version order,
    /// or after the last element for an append nobody read.
    fn prev_slot(&self, a: &Append) -> u32 {
        if a.pos != NONE {
            a.pos
        } else {
            self.order_of(a.key).len() as u32
        }
    }

    /// G1a, G1b, garbage reads and duplicates, read by read.
    fn read_anomalies(
        &self,
        ReadsByKey { offsets, reads }: &ReadsByKey,
        anomalies: &mut Anomalies,
    ) {
        let h = self.h;
        for k in 0..h.key_count() {
            let order = self.order_of(k as u32);
            let bad = |id: u32| id == NONE || self.failed(self.appends[id as usize].txn);
            let first_bad = order.iter().position(|id| bad(*id));
            let key_reads = &reads[offsets[k] as usize..offsets[k + 1] as usize];
            for r in key_reads {
                let elems = self.elems(r);
                if self.regular[k] {
                    if let Some(fb) = first_bad {
                        if (fb as u32) < r.len {
                            self.report_bad_elements(*r, &order[fb..r.len as usize], anomalies);
                        }
                    }
                } else {
                    let ids: Vec<u32> = elems
                        .iter()
                        .map(|e| self.append_of.get(k as u32, *e).unwrap_or(NONE))
                        .collect();
                    self.report_bad_elements(*r, &ids, anomalies);
                    self.report_duplicates(*r, anomalies);
                }
                self.report_intermediate(k as u32, *r, anomalies);
            }
        }
    }

    fn report_bad_elements(&self, r: Read, ids: &[u32], anomalies: &mut Anomalies) {
        let h = self.h;
        let m = self.mop(r);
        if let Some(id) = ids
            .iter()
            .find(|id| **id != NONE && self.failed(self.appends[**id as usize].txn))
        {
            let a = self.appends[*id as usize];
            anomalies.add("G1a", || {
                let ids = vec![r.txn as usize, a.txn as usize];
                Case {
                    txns: bind(h, &ids),
                    txn_ids: ids,
                    steps: Vec::new(),
                    explanation: format!(
                        "T1 read {} = {}, which holds {}; T2 appended {} to {} and failed: T1 read the write of an aborted transaction.",
                        h.show_key(m.key),
                        h.show_list(h.read_elems(m)),
                        h.show(a.value),
                        h.show(a.value),
                        h.show_key(m.key)
                    ),
                }
            });
        }
        if let Some(i) = ids.iter().position(|id| *id == NONE) {
            // `ids` is a tail of the read when the key is regular: find the
            // element by what the read holds from the end.
            let elems = h.read_elems(m);
            let e = elems[elems.len() - ids.len() + i];
            anomalies.add("garbage-read", || {
                let ids = vec![r.txn as usize];
                Case {
                    txns: bind(h, &ids),
                    txn_ids: ids,
                    steps: Vec::new(),
                    explanation: format!(
                        "T1 read {} = {}, which holds {}, a value no transaction appended to {}.",
                        h.show_key(m.key),
                        h.show_list(elems),
                        h.show(e),
                        h.show_key(m.key)
                    ),
                }
            });
        }
    }

    fn report_duplicates(&self, r: Read, anomalies: &mut Anomalies) {
        let h = self.h;
        let m = self.mop(r);
        let elems = h.read_elems(m);
        let mut seen: HashSet<Scalar, FxBuildHasher> = HashSet::default();
        if let Some(dup) = elems.iter().find(|e| !seen.insert(**e)) {
            anomalies.add("duplicate-elements", || {
                let ids = vec![r.txn as usize];
                Case {
                    txns: bind(h, &ids),
                    txn_ids: ids,
                    steps: Vec::new(),
                    explanation: format!(
                        "T1 read {} = {}, in which {} appears {} times, but it was appended once.",
                        h.show_key(m.key),
                        h.show_list(elems),
                        h.show(*dup),
                        elems.iter().filter(|e| *e == dup).count()
                    ),
                }
            });
        }
    }

    fn report_intermediate(&self, key: u32, r: Read, anomalies: &mut Anomalies) {
        let h = self.h;
        let Some(a) = self.last_writer(key, &r).copied() else {
            return;
        };
        if a.intermediate && a.txn != r.txn {
            let m = self.mop(r);
            anomalies.add("G1b", || {
                let ids = vec![r.txn as usize, a.txn as usize];
                Case {
                    txns: bind(h, &ids),
                    txn_ids: ids,
                    steps: Vec::new(),
                    explanation: format!(
                        "T1 read {} = {}, ending at {}; T2 appended {} to {} and then appended to {} again: T1 read an intermediate state of T2.",
                        h.show_key(m.key),
                        h.show_list(h.read_elems(m)),
                        h.show(a.value),
                        h.show(a.value),
                        h.show_key(m.key),
                        h.show_key(m.key)
                    ),
                }
            });
        }
    }

    /// Internal consistency and future reads, within each `ok` transaction
    /// that touches a key more than once. A read must show the
    /// transaction's own earlier read of the key followed by its appends
    /// since, or (with no earlier read) end with its appends so far. Needs
    /// nothing but the history, so [`super::check`] runs it on another
    /// core beside [`ListAppend::analyze`].
    ///
    /// Returns, from the same transactions, the candidates for lost
    /// updates: reads that come first on their key in their transaction,
    /// which then appends to that key (in transaction order).
    pub fn internal(h: &TxnHistory, anomalies: &mut Anomalies) -> LostUpdateCandidates {
        let mut candidates = Vec::new();
        for (t, txn) in h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            let mops = h.mops_of(t);
            let repeats = mops
                .iter()
                .enumerate()
                .any(|(i, m)| mops[i + 1..].iter().any(|n| n.key == m.key));
            if !repeats {
                continue;
            }
            for (i, m) in mops.iter().enumerate() {
                let first_on_key = !mops[..i].iter().any(|n| n.key == m.key);
                if first_on_key
                    && m.kind == MopKind::Read
                    && m.known
                    && mops[i + 1..]
                        .iter()
                        .any(|n| n.key == m.key && n.kind == MopKind::Append)
                {
                    candidates.push(Read::of(t as u32, txn.mops.start + i as u32, m));
                }
            }
            for (i, m) in mops.iter().enumerate() {
                let before = &mops[..i];
                match m.kind {
                    MopKind::Append => {
                        let future = before.iter().enumerate().find(|(_, r)| {
                            r.kind == MopKind::Read
                                && r.known
                                && r.key == m.key
                                && h.read_elems(r).contains(&m.value())
                        });
                        if let Some((j, r)) = future {
                            anomalies.add("future-read", || {
                                let ids = vec![t];
                                Case {
                                    txns: bind(h, &ids),
                                    txn_ids: ids,
                                    steps: Vec::new(),
                                    explanation: format!(
                                        "T1's micro-op {} {} shows {}, which T1 itself appends later, in micro-op {}.",
                                        j + 1,
                                        h.show_mop(r),
                                        h.show(m.value()),
                                        i + 1
                                    ),
                                }
                            });
                        }
                    }
                    MopKind::Read if m.known => {
                        // The last earlier read of this key, and the appends since.
                        let base = before
                            .iter()
                            .rposition(|r| r.kind == MopKind::Read && r.known && r.key == m.key);
                        let since = &before[base.map_or(0, |b| b + 1)..];
                        let appended = || {
                            since
                                .iter()
                                .filter(|a| a.kind == MopKind::Append && a.key == m.key)
                                .map(|a| a.value())
                        };
                        if base.is_none() && appended().next().is_none() {
                            continue;
                        }
                        let got = h.read_elems(m);
                        let n = appended().count();
                        let consistent = match base {
                            Some(b) => {
                                let prior = h.read_elems(&before[b]);
                                got.len() == prior.len() + n
                                    && got.starts_with(prior)
                                    && got[prior.len()..].iter().copied().eq(appended())
                            }
                            None => {
                                got.len() >= n
                                    && got[got.len() - n..].iter().copied().eq(appended())
                            }
                        };
                        if !consistent {
                            anomalies.add("internal", || {
                                let mut expected: Vec<Scalar> = base.map(|b| h.read_elems(&before[b]).to_vec()).unwrap_or_default();
                                expected.extend(appended());
                                let ids = vec![t];
                                Case {
                                    txns: bind(h, &ids),
                                    txn_ids: ids,
                                    steps: Vec::new(),
                                    explanation: format!(
                                        "T1's micro-op {} {} does not show what T1 itself did to {} before: expected {}{}.",
                                        i + 1,
                                        h.show_mop(m),
                                        h.show_key(m.key),
                                        if base.is_some() { "" } else { "a list ending in " },
                                        h.show_list(&expected)
                                    ),
                                }
                            });
                            break;
                        }
                    }
                    _ => {}
                }
            }
        }
        LostUpdateCandidates(candidates)
    }

    /// A committed append right after an aborted one in a version order.
    fn dirty_updates(&self, anomalies: &mut Anomalies) {
        let h = self.h;
        for k in 0..h.key_count() as u32 {
            let mut last: (Outcome, Option<u32>) = (Outcome::Ok, None);
            for &id in self.order_of(k) {
                if id == NONE {
                    continue;
                }
                let a = self.appends[id as usize];
                let outcome = self.outcomes[a.txn as usize];
                match (last.0, outcome) {
                    (Outcome::Fail, Outcome::Ok) => {
                        let aborted = last.1.expect("a failed append came first");
                        let b = self.appends[aborted as usize];
                        anomalies.add("dirty-update", || {
                            let ids = vec![b.txn as usize, a.txn as usize];
                            Case {
                                txns: bind(h, &ids),
                                txn_ids: ids,
                                steps: Vec::new(),
                                explanation: format!(
                                    "T1 appended {} to {} and failed, yet the version order of {} has it, and T2 (committed) appended {} after it: a committed write built on an aborted one.",
                                    h.show(b.value),
                                    h.show_key(k),
                                    h.show_key(k),
                                    h.show(a.value)
                                ),
                            }
                        });
                        last = (Outcome::Ok, Some(id));
                    }
                    (_, Outcome::Ok) | (Outcome::Ok | Outcome::Info, Outcome::Fail) => {
                        last = (outcome, Some(id))
                    }
                    _ => {}
                }
            }
        }
    }

    /// Two committed transactions that read the same state of a key and
    /// both appended to it.
    fn lost_updates(&self, found: LostUpdateCandidates, anomalies: &mut Anomalies) {
        let h = self.h;
        let mut candidates: Vec<(u32, u32, u32, u32)> = Vec::new(); // key, slot, txn, mop
        for r in found.0 {
            let key = self.mop(r).key;
            if let Some(s) = self.slot(key, &r) {
                candidates.push((key, s, r.txn, r.mop));
            }
        }
        candidates.sort_unstable();
        for group in candidates.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            if group.len() < 2 {
                continue;
            }
            anomalies.add("lost-update", || {
                let ids: Vec<usize> = group.iter().map(|c| c.2 as usize).collect();
                let m = &h.mops[group[0].3 as usize];
                Case {
                    txns: bind(h, &ids),
                    txn_ids: ids.clone(),
                    steps: Vec::new(),
                    explanation: format!(
                        "{} all read {} = {} and then appended to {}: whichever committed last did not see the others' appends, so an update was lost.",
                        (1..=ids.len()).map(|i| format!("T{i}")).collect::<Vec<_>>().join(", "),
                        h.show_key(m.key),
                        h.show_list(h.read_elems(m)),
                        h.show_key(m.key)
                    ),
                }
            });
        }
    }

    /// The ww and rw edges (from the appends) on another core, the wr
    /// edges (from the reads) on this one: two lists.
    fn edges(&self, reads: &ReadsByKey, edges: &mut EdgeList) -> EdgeList {
        std::thread::scope(|scope| {
            let from_appends = scope.spawn(|| {
                let mut list = EdgeList::default();
                list.reserve(2 * self.appends.len());
                // ww and rw, from each append's place in the version order:
                // key by key along the order (so each key's states and
                // their readers are read in place, not looked up at random),
                // then the appends nobody read.
                let mut add = |a: &Append, prev: u32| {
                    if self.failed(a.txn) {
                        return;
                    }
                    if let Some(w) = self.writer_at(a.key, prev) {
                        if !self.failed(w.txn) {
                            list.add(w.txn as usize, a.txn as usize, Rels::WW);
                        }
                    }
                    for r in self.readers(a.key, prev) {
                        list.add(r.txn as usize, a.txn as usize, Rels::RW);
                    }
                };
                for k in 0..self.h.key_count() as u32 {
                    for (i, &id) in self.order_of(k).iter().enumerate() {
                        if id == NONE {
                            continue;
                        }
                        let a = &self.appends[id as usize];
                        debug_assert_eq!(a.pos, i as u32, "an append's place is where it is");
                        add(a, i as u32);
                    }
                }
                for a in self.appends.iter().filter(|a| a.pos == NONE) {
                    add(a, self.prev_slot(a));
                }
                list
            });
            edges.reserve(reads.reads.len());
            // wr: the appender of a read's last element precedes the reader.
            for k in 0..self.h.key_count() as u32 {
                for r in reads.of(k) {
                    if let Some(a) = self.last_writer(k, r) {
                        if !self.failed(a.txn) {
                            edges.add(a.txn as usize, r.txn as usize, Rels::WR);
                        }
                    }
                }
            }
            from_appends
                .join()
                .expect("inferring ww and rw edges does not panic")
        })
    }

    fn last_writer(&self, key: u32, r: &Read) -> Option<&Append> {
        if r.len == 0 {
            return None;
        }
        if self.regular[key as usize] {
            return self.writer_at(key, r.len);
        }
        let last = *self.elems(r).last()?;
        self.append_of
            .get(key, last)
            .map(|id| &self.appends[id as usize])
    }

    /// What a read read.
    fn elems(&self, r: &Read) -> &[Scalar] {
        &self.h.elems[r.start as usize..(r.start + r.len) as usize]
    }

    /// Why `a` precedes `b` by `rel` (ww, wr or rw), naming them `an`, `bn`.
    pub fn explain(&self, a: usize, b: usize, rel: Rels, an: &str, bn: &str) -> Option<String> {
        let h = self.h;
        let state = |m: &Mop| -> String {
            if m.read_len() == 0 {
                "[] (its initial, empty state)".into()
            } else {
                h.show_list(h.read_elems(m))
            }
        };
        match rel {
            Rels::WR => h.mops_of(b).iter().find_map(|m| {
                if m.kind != MopKind::Read || !m.known {
                    return None;
                }
                let w = self.last_writer(m.key, &Read::of(b as u32, 0, m))?;
                (w.txn as usize == a).then(|| {
                    format!(
                        "{bn} read {} = {}, which ends with {an}'s append of {}",
                        h.show_key(m.key),
                        h.show_list(h.read_elems(m)),
                        h.show(w.value)
                    )
                })
            }),
            Rels::WW => self.appends_of(b).find_map(|x| {
                let w = self.writer_at(x.key, self.prev_slot(x))?;
                (w.txn as usize == a).then(|| {
                    if x.pos == NONE {
                        format!(
                            "{an} appended {} to {}, the last element anyone read, and {bn}'s append of {} was never read, so it came after",
                            h.show(w.value),
                            h.show_key(x.key),
                            h.show(x.value)
                        )
                    } else {
                        format!(
                            "{an} appended {} to {} and {bn} appended {} right after it",
                            h.show(w.value),
                            h.show_key(x.key),
                            h.show(x.value)
                        )
                    }
                })
            }),
            Rels::RW => self.appends_of(b).find_map(|x| {
                let prev = self.prev_slot(x);
                let r = self.readers(x.key, prev).iter().find(|r| r.txn as usize == a)?;
                let m = self.mop(*r);
                Some(if x.pos == NONE {
                    format!(
                        "{an} read {} = {}, and {bn} appended {}, which nobody read, so it came after that state: {an} did not see {bn}'s append",
                        h.show_key(x.key),
                        state(m),
                        h.show(x.value)
                    )
                } else {
                    format!(
                        "{an} read {} = {}, without {}, which {bn} appended next: {an} did not see {bn}'s append",
                        h.show_key(x.key),
                        state(m),
                        h.show(x.value)
                    )
                })
            }),
            _ => None,
        }
    }

    fn appends_of(&self, t: usize) -> impl Iterator<Item = &Append> + '_ {
        self.h
            .mops_of(t)
            .iter()
            .filter(|m| m.kind == MopKind::Append)
            .filter_map(move |m| {
                self.append_of
                    .get(m.key, m.value())
                    .map(|id| &self.appends[id as usize])
            })
    }
}
