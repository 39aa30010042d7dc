//! `kv`: many independent registers (keys `k0`, `k1`, …), each checked for
//! linearizability on its own (the history's `key` field splits them).

use crate::call::Answer;
use crate::op::{Completion, Planned};
use crate::register::RegisterGen;
use crate::workload::{worker_rng, WorkerGen, Workload};
use rand::Rng;
use serde_json::Value;

pub struct Kv {
    pub keys: usize,
}

impl Workload for Kv {
    fn name(&self) -> &'static str {
        "kv"
    }
    fn checkers(&self) -> &'static [&'static str] {
        &["linearizable"]
    }
    fn worker(&self, worker: usize, _workers: usize, seed: u64) -> Box<dyn WorkerGen> {
        Box::new(KvGen {
            keys: self.keys,
            inner: RegisterGen {
                rng: worker_rng(seed, worker),
                key: String::new(),
                history_key: None,
            },
        })
    }
}

struct KvGen {
    keys: usize,
    inner: RegisterGen,
}

impl KvGen {
    fn at(&mut self, k: usize) {
        let key = format!("k{k}");
        self.inner.history_key = Some(Value::from(key.clone()));
        self.inner.key = key;
    }
}

impl WorkerGen for KvGen {
    fn next(&mut self, _process: u64) -> Planned {
        let k = self.inner.rng.gen_range(0..self.keys);
        self.at(k);
        self.inner.random()
    }
    fn final_ops(&mut self, _process: u64) -> Vec<Planned> {
        (0..self.keys)
            .map(|k| {
                self.at(k);
                self.inner.read()
            })
            .collect()
    }
    fn complete(&mut self, planned: &Planned, answer: Answer) -> Completion {
        RegisterGen::completion(planned, answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_key_and_history_key_agree_and_final_reads_cover_every_key() {
        let kv = Kv { keys: 4 };
        let mut g = kv.worker(2, 3, 9);
        for _ in 0..100 {
            let p = g.next(2);
            let key = p.op.key.clone().expect("kv ops carry a key");
            let wire = match &p.call {
                crate::call::Call::Read { key }
                | crate::call::Call::Write { key, .. }
                | crate::call::Call::Cas { key, .. } => key.clone(),
                other => panic!("unexpected call {other:?}"),
            };
            assert_eq!(key, Value::from(wire));
        }
        let finals = g.final_ops(2);
        let keys: Vec<_> = finals
            .iter()
            .map(|p| p.op.key.clone().expect("key"))
            .collect();
        assert_eq!(keys, ["k0", "k1", "k2", "k3"].map(Value::from).to_vec());
    }
}
