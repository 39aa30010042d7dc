//! rw-register: transactions write unique values to registers and read
//! them. A read names the write it saw (`wr`), but the order of writes is
//! not visible, so the version order of each key is inferred, as Elle
//! does, from what must hold in any serializable execution:
//!
//! - initial state: `nil` precedes every value of a key;
//! - writes follow reads: a transaction that read `x = 1` and then wrote
//!   `x = 2` put 2 after 1;
//! - optionally, sequential keys (each process sees its keys' values in
//!   order) or linearizable keys (a transaction that completed before
//!   another began saw an earlier or equal version of every key both
//!   touch).
//!
//! Each source is added only if the version graphs stay acyclic; a source
//! that makes a cycle is reported (`cyclic-versions`) and left out. Edges
//! of the version order `v1 → v2` of key `k` give `ww` (writer of `v1` →
//! writer of `v2`) and `rw` (each reader of `v1` → writer of `v2`).
//! Only external reads (before the transaction's own write of the key)
//! and external writes (its last write of the key) make edges.
//!
//! Non-cycle anomalies: G1a (a read of a failed transaction's write), G1b
//! (a read of a value its writer overwrote in the same transaction),
//! garbage reads, internal inconsistency, lost updates.

use super::anomaly::{bind, Anomalies, Case};
use super::graph::{EdgeList, Graph, Rels};
use super::history::{MopKind, Scalar, TxnHistory, NIL};
use crate::error::CheckError;
use crate::fxhash::FxBuildHasher;
use crate::operation::Outcome;
use std::collections::HashMap;

/// Which inferences of the version order to use beyond the initial state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inference {
    /// Writes follow reads within a transaction (on by default).
    pub writes_follow_reads: bool,
    /// Each key is sequentially consistent: process order orders versions.
    pub sequential_keys: bool,
    /// Each key is linearizable: real-time order orders versions.
    pub linearizable_keys: bool,
}

impl Inference {
    pub fn standard() -> Inference {
        Inference {
            writes_follow_reads: true,
            ..Inference::default()
        }
    }
}

/// Why a version precedes another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Initial,
    /// This transaction read the first and wrote the second.
    WritesFollowReads(u32),
    /// Process order between these two transactions.
    Sequential(u32, u32),
    /// Real-time order between these two transactions.
    Linearizable(u32, u32),
}

#[derive(Clone, Copy, Debug)]
struct Write {
    txn: u32,
    /// Overwritten later in the same transaction.
    intermediate: bool,
}

pub struct RwRegister<'h> {
    h: &'h TxnHistory,
    writes: HashMap<(u32, Scalar), Write, FxBuildHasher>,
    /// (key, value) → external readers (ok transactions).
    readers: HashMap<(u32, Scalar), Vec<u32>, FxBuildHasher>,
    /// (key, v1, v2) → why v1 precedes v2.
    version_edges: HashMap<(u32, Scalar, Scalar), Source, FxBuildHasher>,
}

/// A transaction's external reads and writes: `(key, value)`, first read
/// before any write of the key, last write of the key.
fn externals(h: &TxnHistory, t: usize) -> (Vec<(u32, Scalar)>, Vec<(u32, Scalar)>) {
    let mut reads: Vec<(u32, Scalar)> = Vec::new();
    let mut writes: Vec<(u32, Scalar)> = Vec::new();
    for m in h.mops_of(t) {
        match m.kind {
            MopKind::Read if m.known => {
                let touched =
                    reads.iter().any(|r| r.0 == m.key) || writes.iter().any(|w| w.0 == m.key);
                if !touched {
                    reads.push((m.key, m.value()));
                }
            }
            MopKind::Write => match writes.iter_mut().find(|w| w.0 == m.key) {
                Some(w) => w.1 = m.value(),
                None => writes.push((m.key, m.value())),
            },
            _ => {}
        }
    }
    (reads, writes)
}

impl<'h> RwRegister<'h> {
    pub fn analyze(
        h: &'h TxnHistory,
        inference: Inference,
        anomalies: &mut Anomalies,
        edges: &mut EdgeList,
    ) -> Result<RwRegister<'h>, CheckError> {
        let mut rr = RwRegister {
            h,
            writes: HashMap::default(),
            readers: HashMap::default(),
            version_edges: HashMap::default(),
        };
        rr.index()?;
        rr.read_anomalies(anomalies);
        rr.internal(anomalies);
        rr.lost_updates(anomalies);
        rr.version_order(inference, anomalies);
        rr.edges(edges);
        Ok(rr)
    }

    fn index(&mut self) -> Result<(), CheckError> {
        let h = self.h;
        for t in 0..h.txns.len() {
            let mops = h.mops_of(t);
            for (i, m) in mops.iter().enumerate() {
                if m.kind != MopKind::Write {
                    continue;
                }
                let intermediate = mops[i + 1..]
                    .iter()
                    .any(|n| n.kind == MopKind::Write && n.key == m.key);
                if m.value() == NIL {
                    return Err(self.bad(t, format!("writes nil to key {}: rw-register needs written values to be unique and not nil", h.show_key(m.key))));
                }
                if let Some(other) = self.writes.insert(
                    (m.key, m.value()),
                    Write {
                        txn: t as u32,
                        intermediate,
                    },
                ) {
                    return Err(self.bad(
                        t,
                        format!(
                            "writes {} to key {}, which the transaction at line {} wrote too: rw-register needs every value written to a key once",
                            h.show(m.value()),
                            h.show_key(m.key),
                            h.txns[other.txn as usize].line
                        ),
                    ));
                }
            }
            if h.txns[t].outcome == Outcome::Ok {
                for (k, v) in externals(h, t).0 {
                    self.readers.entry((k, v)).or_default().push(t as u32);
                }
            }
        }
        Ok(())
    }

    fn bad(&self, t: usize, message: String) -> CheckError {
        CheckError::Op {
            model: "rw-register".into(),
            index: self.h.txns[t].invoke_index,
            op: self.h.show_txn(t),
            message,
        }
    }

    fn failed(&self, t: u32) -> bool {
        self.h.txns[t as usize].outcome == Outcome::Fail
    }

    /// G1a, G1b and garbage reads, over every known read of `ok` txns.
    fn read_anomalies(&self, anomalies: &mut Anomalies) {
        let h = self.h;
        for (t, txn) in h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            for m in h.mops_of(t) {
                if m.kind != MopKind::Read || !m.known || m.value() == NIL {
                    continue;
                }
                let read = format!("{} = {}", h.show_key(m.key), h.show(m.value()));
                match self.writes.get(&(m.key, m.value())) {
                    None => anomalies.add("garbage-read", || {
                        let ids = vec![t];
                        Case {
                            txns: bind(h, &ids),
                            txn_ids: ids,
                            steps: Vec::new(),
                            explanation: format!("T1 read {read}, a value no transaction wrote."),
                        }
                    }),
                    Some(w) if w.txn as usize != t && self.failed(w.txn) => anomalies.add("G1a", || {
                        let ids = vec![t, w.txn as usize];
                        Case {
                            txns: bind(h, &ids),
                            txn_ids: ids,
                            steps: Vec::new(),
                            explanation: format!("T1 read {read}, which T2 wrote; T2 failed: T1 read the write of an aborted transaction."),
                        }
                    }),
                    Some(w) if w.txn as usize != t && w.intermediate => anomalies.add("G1b", || {
                        let ids = vec![t, w.txn as usize];
                        Case {
                            txns: bind(h, &ids),
                            txn_ids: ids,
                            steps: Vec::new(),
                            explanation: format!(
                                "T1 read {read}, which T2 wrote and then overwrote in the same transaction: T1 read an intermediate state of T2."
                            ),
                        }
                    }),
                    _ => {}
                }
            }
        }
    }

    /// A read that disagrees with the transaction's own earlier read or
    /// write of the key.
    fn internal(&self, anomalies: &mut Anomalies) {
        let h = self.h;
        for (t, txn) in h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            let mops = h.mops_of(t);
            let mut state: Vec<(u32, Scalar, usize)> = Vec::new();
            for (i, m) in mops.iter().enumerate() {
                let known = state.iter().position(|s| s.0 == m.key);
                match m.kind {
                    MopKind::Write => match known {
                        Some(s) => state[s] = (m.key, m.value(), i),
                        None => state.push((m.key, m.value(), i)),
                    },
                    MopKind::Read if m.known => match known {
                        Some(s) if state[s].1 != m.value() => {
                            let (_, expected, j) = state[s];
                            anomalies.add("internal", || {
                                let ids = vec![t];
                                Case {
                                    txns: bind(h, &ids),
                                    txn_ids: ids,
                                    steps: Vec::new(),
                                    explanation: format!(
                                        "T1's micro-op {} {} disagrees with its micro-op {} {}: expected {} = {}.",
                                        i + 1,
                                        h.show_mop(m),
                                        j + 1,
                                        h.show_mop(&mops[j]),
                                        h.show_key(m.key),
                                        h.show(expected)
                                    ),
                                }
                            });
                            break;
                        }
                        Some(_) => {}
                        None => state.push((m.key, m.value(), i)),
                    },
                    _ => {}
                }
            }
        }
    }

    fn lost_updates(&self, anomalies: &mut Anomalies) {
        let h = self.h;
        let mut candidates: Vec<(u32, Scalar, u32)> = Vec::new();
        for (t, txn) in h.txns.iter().enumerate() {
            if txn.outcome != Outcome::Ok {
                continue;
            }
            let (reads, writes) = externals(h, t);
            for (k, v) in reads {
                if writes.iter().any(|w| w.0 == k) {
                    candidates.push((k, v, t as u32));
                }
            }
        }
        candidates.sort_unstable();
        for group in candidates.chunk_by(|a, b| a.0 == b.0 && a.1 == b.1) {
            if group.len() < 2 {
                continue;
            }
            anomalies.add("lost-update", || {
                let ids: Vec<usize> = group.iter().map(|c| c.2 as usize).collect();
                Case {
                    txns: bind(h, &ids),
                    txn_ids: ids.clone(),
                    steps: Vec::new(),
                    explanation: format!(
                        "{} all read {} = {} and then wrote {}: whichever committed last did not see the others' writes, so an update was lost.",
                        (1..=ids.len()).map(|i| format!("T{i}")).collect::<Vec<_>>().join(", "),
                        h.show_key(group[0].0),
                        h.show(group[0].1),
                        h.show_key(group[0].0)
                    ),
                }
            });
        }
    }

    /// Version edges from each source in turn, each kept only if the
    /// version graphs stay acyclic.
    fn version_order(&mut self, inference: Inference, anomalies: &mut Anomalies) {
        let h = self.h;
        // The value a txn first and last interacted with on each key,
        // as Elle's sequential/linearizable inference uses them.
        let touch = |t: usize| -> Vec<(u32, Scalar, Scalar)> {
            let txn = &h.txns[t];
            let (reads, writes) = externals(h, t);
            let mut out: Vec<(u32, Scalar, Scalar)> = Vec::new();
            let ok = txn.outcome == Outcome::Ok;
            for (k, _) in reads.iter().chain(writes.iter()) {
                if out.iter().any(|o| o.0 == *k) {
                    continue;
                }
                let r = reads.iter().find(|r| r.0 == *k).map(|r| r.1);
                let w = writes.iter().find(|w| w.0 == *k).map(|w| w.1);
                let (first, last) = if ok { (r.or(w), w.or(r)) } else { (w, w) };
                if let (Some(f), Some(l)) = (first, last) {
                    out.push((*k, f, l));
                }
            }
            out
        };
        let mut stages: Vec<(&str, Vec<(u32, Scalar, Scalar, Source)>)> = Vec::new();
        let mut initial = Vec::new();
        let mut wfr = Vec::new();
        for (t, txn) in h.txns.iter().enumerate() {
            if txn.outcome == Outcome::Fail {
                continue;
            }
            let (reads, writes) = externals(h, t);
            for &(k, v) in &writes {
                initial.push((k, NIL, v, Source::Initial));
            }
            if txn.outcome == Outcome::Ok {
                for &(k, v) in &reads {
                    if v != NIL {
                        initial.push((k, NIL, v, Source::Initial));
                    }
                    if let Some(w) = writes.iter().find(|w| w.0 == k) {
                        if v != NIL && v != w.1 {
                            wfr.push((k, v, w.1, Source::WritesFollowReads(t as u32)));
                        }
                    }
                }
            }
        }
        stages.push(("initial-state", initial));
        if inference.writes_follow_reads {
            stages.push(("writes-follow-reads", wfr));
        }
        if inference.sequential_keys {
            let mut seq = Vec::new();
            let mut last: HashMap<(u64, u32), (Scalar, u32), FxBuildHasher> = HashMap::default();
            for (t, txn) in h.txns.iter().enumerate() {
                if txn.outcome == Outcome::Fail {
                    continue;
                }
                for (k, first, final_value) in touch(t) {
                    if let Some((v, prev)) = last.insert((txn.process, k), (final_value, t as u32))
                    {
                        if v != first {
                            seq.push((k, v, first, Source::Sequential(prev, t as u32)));
                        }
                    }
                }
            }
            stages.push(("sequential-keys", seq));
        }
        if inference.linearizable_keys {
            stages.push(("linearizable-keys", self.realtime_versions(&touch)));
        }
        let mut kept: Vec<(u32, Scalar, Scalar, Source)> = Vec::new();
        let mut sources: Vec<&str> = Vec::new();
        for (name, stage) in stages {
            let mut candidate = kept.clone();
            candidate.extend(stage);
            candidate.sort_unstable_by_key(|e| (e.0, e.1, e.2));
            candidate.dedup_by_key(|e| (e.0, e.1, e.2));
            if let Some(cycle) = version_cycle(&candidate) {
                anomalies.add("cyclic-versions", || Case {
                    txns: Vec::new(),
                    txn_ids: Vec::new(),
                    steps: Vec::new(),
                    explanation: format!(
                        "inferring the version order of {} from {} gives a cycle: {}; that inference is left out.",
                        h.show_key(cycle.0),
                        sources.iter().chain([&name]).copied().collect::<Vec<_>>().join(", "),
                        cycle.1.iter().map(|v| h.show(*v)).collect::<Vec<_>>().join(" < ")
                    ),
                });
            } else {
                kept = candidate;
                sources.push(name);
            }
        }
        self.version_edges = kept
            .into_iter()
            .map(|(k, a, b, s)| ((k, a, b), s))
            .collect();
    }

    /// Per key, the transactions that touched it and completed before
    /// another touching it was invoked (a transitive reduction, as Elle's
    /// real-time graph).
    fn realtime_versions(
        &self,
        touch: &dyn Fn(usize) -> Vec<(u32, Scalar, Scalar)>,
    ) -> Vec<(u32, Scalar, Scalar, Source)> {
        let h = self.h;
        let mut events: Vec<(u64, bool, usize)> = Vec::new(); // (position, is completion, txn)
        for (t, txn) in h.txns.iter().enumerate() {
            if txn.outcome == Outcome::Fail {
                continue;
            }
            events.push((txn.invoke_pos, false, t));
            if let (Outcome::Ok, Some(c)) = (txn.outcome, txn.complete_pos()) {
                events.push((c, true, t));
            }
        }
        events.sort_unstable();
        // key → completed txns not yet implied by a later one: (txn, last value, completion)
        let mut frontier: HashMap<u32, Vec<(u32, Scalar, u64)>, FxBuildHasher> = HashMap::default();
        let mut out = Vec::new();
        for (pos, completion, t) in events {
            let touched = touch(t);
            if completion {
                let invoke = h.txns[t].invoke_pos;
                for &(k, _, last) in &touched {
                    let f = frontier.entry(k).or_default();
                    f.retain(|(_, _, c)| *c > invoke);
                    f.push((t as u32, last, pos));
                }
            } else {
                for &(k, first, _) in &touched {
                    for &(prev, v, _) in frontier.get(&k).map(Vec::as_slice).unwrap_or(&[]) {
                        if v != first {
                            out.push((k, v, first, Source::Linearizable(prev, t as u32)));
                        }
                    }
                }
            }
        }
        out
    }

    fn writer(&self, k: u32, v: Scalar) -> Option<u32> {
        self.writes
            .get(&(k, v))
            .filter(|w| !w.intermediate && !self.failed(w.txn))
            .map(|w| w.txn)
    }

    fn edges(&self, edges: &mut EdgeList) {
        for (&(k, v), readers) in &self.readers {
            if let Some(w) = self.writer(k, v) {
                for r in readers {
                    edges.add(w as usize, *r as usize, Rels::WR);
                }
            }
        }
        for &(k, v1, v2) in self.version_edges.keys() {
            let Some(w2) = self.writer(k, v2) else {
                continue;
            };
            if let Some(w1) = self.writer(k, v1) {
                edges.add(w1 as usize, w2 as usize, Rels::WW);
            }
            for r in self.readers.get(&(k, v1)).map(Vec::as_slice).unwrap_or(&[]) {
                edges.add(*r as usize, w2 as usize, Rels::RW);
            }
        }
    }

    /// Why `a` precedes `b` by `rel`.
    pub fn explain(&self, a: usize, b: usize, rel: Rels, an: &str, bn: &str) -> Option<String> {
        let h = self.h;
        let (a_reads, a_writes) = externals(h, a);
        let (b_reads, b_writes) = externals(h, b);
        let why = |k: u32, v1: Scalar, v2: Scalar| -> String {
            match self.version_edges.get(&(k, v1, v2)) {
                Some(Source::Initial) => "every value follows the initial nil".into(),
                Some(Source::WritesFollowReads(t)) => format!(
                    "the transaction at line {} read {} and then wrote {}",
                    h.txns[*t as usize].line,
                    h.show(v1),
                    h.show(v2)
                ),
                Some(Source::Sequential(x, y)) => format!(
                    "process {} touched {} at line {} before line {} (sequential keys)",
                    h.txns[*x as usize].process,
                    h.show_key(k),
                    h.txns[*x as usize].line,
                    h.txns[*y as usize].line
                ),
                Some(Source::Linearizable(x, y)) => format!(
                    "the transaction at line {} completed before the one at line {} began (linearizable keys)",
                    h.txns[*x as usize].line,
                    h.txns[*y as usize].line
                ),
                None => "of the version order".into(),
            }
        };
        match rel {
            Rels::WR => a_writes.iter().find_map(|&(k, v)| {
                b_reads.contains(&(k, v)).then(|| format!("{bn} read {} = {}, which {an} wrote", h.show_key(k), h.show(v)))
            }),
            Rels::WW => a_writes.iter().find_map(|&(k, v1)| {
                let &(_, v2) = b_writes.iter().find(|w| w.0 == k && self.version_edges.contains_key(&(k, v1, w.1)))?;
                Some(format!(
                    "{an} wrote {k} = {}, and {bn} wrote {k} = {}, which came later ({})",
                    h.show(v1),
                    h.show(v2),
                    why(k, v1, v2),
                    k = h.show_key(k)
                ))
            }),
            Rels::RW => a_reads.iter().find_map(|&(k, v1)| {
                let &(_, v2) = b_writes.iter().find(|w| w.0 == k && self.version_edges.contains_key(&(k, v1, w.1)))?;
                Some(format!(
                    "{an} read {k} = {}, and {bn} wrote {k} = {}, which came later ({}): {an} did not see {bn}'s write",
                    h.show(v1),
                    h.show(v2),
                    why(k, v1, v2),
                    k = h.show_key(k)
                ))
            }),
            _ => None,
        }
    }
}

/// A cycle among the version edges of one key, if any: (key, values).
fn version_cycle(edges: &[(u32, Scalar, Scalar, Source)]) -> Option<(u32, Vec<Scalar>)> {
    let mut ids: HashMap<(u32, Scalar), usize, FxBuildHasher> = HashMap::default();
    let mut names: Vec<(u32, Scalar)> = Vec::new();
    let mut id = |k: u32, v: Scalar| -> usize {
        *ids.entry((k, v)).or_insert_with(|| {
            names.push((k, v));
            names.len() - 1
        })
    };
    let pairs: Vec<(usize, usize)> = edges.iter().map(|e| (id(e.0, e.1), id(e.0, e.2))).collect();
    let mut list = EdgeList::default();
    for (a, b) in pairs {
        list.add(a, b, Rels::WW);
    }
    let g = Graph::build(names.len(), list);
    let scc = g.sccs(Rels::WW, None).into_iter().next()?;
    let key = names[scc[0]].0;
    Some((key, scc.iter().take(8).map(|v| names[*v].1).collect()))
}
