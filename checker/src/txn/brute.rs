//! Brute-force reference for the property tests: is there a serial order
//! of the committed transactions and some of the possibly-committed
//! (`info`) ones that gives every committed read exactly what it saw?
//! Failed transactions never happen. With `realtime`, the order must also
//! put a transaction after every committed one that completed before it
//! was invoked (strict serializability).
//!
//! Exponential: only for histories of a handful of transactions. Aborted
//! reads (G1a) and intermediate reads (G1b) fall out of the definition: no
//! serial order of committed transactions produces them.

use super::history::{MopKind, Scalar, TxnHistory, TxnModel, NIL};
use crate::operation::Outcome;

/// Does a serial order exist? Panics on more than 12 candidate
/// transactions (the search would not end in a test's lifetime).
pub fn serializable(h: &TxnHistory, model: TxnModel, realtime: bool) -> bool {
    let candidates: Vec<usize> = (0..h.txns.len())
        .filter(|t| h.txns[*t].outcome != Outcome::Fail)
        .collect();
    assert!(candidates.len() <= 12, "brute force is for tiny histories");
    let keys = h.key_count();
    let mut search = Search {
        h,
        model,
        realtime,
        candidates,
        lists: vec![Vec::new(); keys],
        registers: vec![NIL; keys],
        placed: vec![false; h.txns.len()],
    };
    search.dfs()
}

struct Search<'h> {
    h: &'h TxnHistory,
    model: TxnModel,
    realtime: bool,
    candidates: Vec<usize>,
    lists: Vec<Vec<Scalar>>,
    registers: Vec<Scalar>,
    placed: Vec<bool>,
}

impl Search<'_> {
    fn dfs(&mut self) -> bool {
        let h = self.h;
        let all_committed = self
            .candidates
            .iter()
            .all(|t| self.placed[*t] || h.txns[*t].outcome != Outcome::Ok);
        if all_committed {
            return true;
        }
        for i in 0..self.candidates.len() {
            let t = self.candidates[i];
            if self.placed[t] || !self.may_go_next(t) {
                continue;
            }
            let saved_lists = self.lists.clone();
            let saved_registers = self.registers.clone();
            if self.apply(t) {
                self.placed[t] = true;
                if self.dfs() {
                    return true;
                }
                self.placed[t] = false;
            }
            self.lists = saved_lists;
            self.registers = saved_registers;
        }
        false
    }

    /// Real time: every committed transaction that completed before `t`
    /// was invoked must be placed already.
    fn may_go_next(&self, t: usize) -> bool {
        if !self.realtime {
            return true;
        }
        let invoke = self.h.txns[t].invoke_pos;
        self.candidates.iter().all(|u| {
            let x = &self.h.txns[*u];
            self.placed[*u]
                || x.outcome != Outcome::Ok
                || x.complete_pos().is_none_or(|c| c > invoke)
        })
    }

    /// Applies `t`; false if one of its known reads disagrees.
    fn apply(&mut self, t: usize) -> bool {
        for m in self.h.mops_of(t) {
            let k = m.key as usize;
            match (self.model, m.kind) {
                (_, MopKind::Append) => self.lists[k].push(m.value()),
                (_, MopKind::Write) => self.registers[k] = m.value(),
                (_, MopKind::Read) if !m.known => {}
                (TxnModel::ListAppend, MopKind::Read) => {
                    if self.h.read_elems(m) != self.lists[k].as_slice() {
                        return false;
                    }
                }
                (TxnModel::RwRegister, MopKind::Read) => {
                    if m.value() != self.registers[k] {
                        return false;
                    }
                }
            }
        }
        true
    }
}
