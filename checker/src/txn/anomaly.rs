//! Anomalies found, by name, each with a count and the first few cases
//! explained in words. Only [`MAX_EXAMPLES`] cases of each type are kept,
//! so a history with millions of bad reads still takes bounded memory.

use serde::Serialize;
use std::collections::BTreeMap;

/// Cases kept per anomaly type; the rest are counted.
pub const MAX_EXAMPLES: usize = 8;

/// One step of a cycle: `from → to` by relation `rel`, and why.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    /// Index of the transaction in the history (see `txns` of the case).
    pub from: usize,
    pub to: usize,
    /// `ww`, `wr`, `rw`, `process` or `realtime`.
    pub rel: &'static str,
    /// Why `from` precedes `to`, in words.
    pub why: String,
}

/// One instance of an anomaly.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    /// The transactions involved, each as one line of text
    /// (`T1 = p3 ok [[append x 1] [r y [2]]] (event 12, line 25)`).
    pub txns: Vec<String>,
    /// Their positions among the history's transactions, same order.
    #[serde(skip)]
    pub txn_ids: Vec<usize>,
    /// For cycles: the steps, the last returning to the first
    /// transaction. Empty for other anomalies.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// The explanation, step by step, in words.
    pub explanation: String,
}

/// Every anomaly type found, with a count and examples.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Anomalies {
    pub types: BTreeMap<&'static str, AnomalyCases>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AnomalyCases {
    pub count: u64,
    pub examples: Vec<Case>,
}

impl Anomalies {
    /// Records one case of `name`; `case` is only built while fewer than
    /// [`MAX_EXAMPLES`] are kept.
    pub fn add(&mut self, name: &'static str, case: impl FnOnce() -> Case) {
        let entry = self.types.entry(name).or_default();
        entry.count += 1;
        if entry.examples.len() < MAX_EXAMPLES {
            entry.examples.push(case());
        }
    }

    /// Adds every case of `other`, as if each had been added here after
    /// those already here.
    pub fn merge(&mut self, other: Anomalies) {
        for (name, cases) in other.types {
            let entry = self.types.entry(name).or_default();
            entry.count += cases.count;
            let room = MAX_EXAMPLES.saturating_sub(entry.examples.len());
            entry.examples.extend(cases.examples.into_iter().take(room));
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.types.contains_key(name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.types.keys().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// Names transactions T1, T2, … in the order given, for explanations.
pub fn bind(h: &super::history::TxnHistory, ids: &[usize]) -> Vec<String> {
    ids.iter()
        .enumerate()
        .map(|(i, t)| format!("T{} = {}", i + 1, h.show_txn(*t)))
        .collect()
}
