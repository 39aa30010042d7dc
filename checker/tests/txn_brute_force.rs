//! The transactional checker against a brute-force reference
//! (faultline_checker::txn::brute: every serial order of the committed and
//! possibly-committed transactions) on small random histories.
//!
//! list-append: the verdicts must agree exactly, for serializable and for
//! strict-serializable (Elle's list-append inference recovers the whole
//! version order of every observed element, so its graph is exact).
//! rw-register: the checker must never call a serializable history
//! invalid (Elle's register inference is sound but not complete: an order
//! of writes nobody observed may exist that it cannot see).
//!
//! The histories come from a small simulated database whose transactions
//! are atomic, or read a stale snapshot, or read a random older state, or
//! commit after failing, so valid and invalid histories both occur often.
//! Set FAULTLINE_TXN_CASES to run more (or fewer) than 10,000 cases.

use faultline_checker::history::{Event, EventType, Process, Value};
use faultline_checker::txn::{self, brute, TxnHistoryBuilder, TxnModel, TxnOptions};
use faultline_checker::Verdict;
use serde_json::json;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Atomic,
    /// Reads see the state when the transaction began; writes land at the end.
    Snapshot,
    /// One read sees a random older state.
    Stale,
}

#[derive(Clone)]
enum State {
    Lists(Vec<Vec<u64>>),
    Registers(Vec<Option<u64>>),
}

struct Planned {
    mops: Vec<(bool, u64, u64)>, // (is write, key, value)
    snapshot: Option<State>,
    mode: Mode,
}

fn mop_json(model: TxnModel, write: bool, key: u64, value: Value) -> Value {
    let f = match (model, write) {
        (_, false) => "r",
        (TxnModel::ListAppend, true) => "append",
        (TxnModel::RwRegister, true) => "w",
    };
    json!([f, key, value])
}

/// Runs the transaction on `state` (or its snapshot), returning the
/// completion's micro-ops and the new state.
fn execute(
    model: TxnModel,
    p: &Planned,
    state: &State,
    history: &[State],
    rng: &mut Rng,
) -> (Vec<Value>, State) {
    let mut view = if p.mode == Mode::Snapshot {
        p.snapshot.clone().expect("a snapshot")
    } else {
        state.clone()
    };
    let mut out = Vec::new();
    let mut real = state.clone();
    let stale_at = (p.mode == Mode::Stale).then(|| rng.below(p.mops.len() as u64) as usize);
    for (i, &(write, k, v)) in p.mops.iter().enumerate() {
        let k_ = k as usize;
        if write {
            for s in [&mut view, &mut real] {
                match s {
                    State::Lists(l) => l[k_].push(v),
                    State::Registers(r) => r[k_] = Some(v),
                }
            }
            out.push(mop_json(model, true, k, json!(v)));
        } else {
            let source = if stale_at == Some(i) && !history.is_empty() {
                &history[rng.below(history.len() as u64) as usize]
            } else {
                &view
            };
            let value = match source {
                State::Lists(l) => json!(l[k_]),
                State::Registers(r) => json!(r[k_]),
            };
            out.push(mop_json(model, false, k, value));
        }
    }
    (out, real)
}

/// A random history of up to 7 transactions over up to 3 keys.
fn history(model: TxnModel, seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed);
    let txn_count = 2 + rng.below(6) as usize;
    let keys = 1 + rng.below(3);
    let processes = 1 + rng.below(3);
    let mut next_value = vec![1u64; keys as usize];
    let mut state = match model {
        TxnModel::ListAppend => State::Lists(vec![Vec::new(); keys as usize]),
        TxnModel::RwRegister => State::Registers(vec![None; keys as usize]),
    };
    let mut past: Vec<State> = vec![state.clone()];
    let mut events = Vec::new();
    let mut process_ids: Vec<u64> = (0..processes).collect();
    let mut running: Vec<Option<Planned>> = (0..processes).map(|_| None).collect();
    let mut started = 0;
    let push = |events: &mut Vec<Event>, p: u64, kind: EventType, value: Value| {
        let i = events.len() as u64;
        events.push(Event {
            index: i,
            time: i,
            process: Process::Client(p),
            kind,
            f: "txn".into(),
            key: None,
            value,
            node: None,
            error: None,
        });
    };
    while started < txn_count || running.iter().any(Option::is_some) {
        let slot = rng.below(processes) as usize;
        match running[slot].take() {
            None if started < txn_count => {
                started += 1;
                let len = 1 + rng.below(3);
                let mops: Vec<(bool, u64, u64)> = (0..len)
                    .map(|_| {
                        let k = rng.below(keys);
                        if rng.chance(50) {
                            let v = next_value[k as usize];
                            next_value[k as usize] += 1;
                            (true, k, v)
                        } else {
                            (false, k, 0)
                        }
                    })
                    .collect();
                let invoke: Vec<Value> = mops
                    .iter()
                    .map(|&(w, k, v)| mop_json(model, w, k, if w { json!(v) } else { Value::Null }))
                    .collect();
                push(
                    &mut events,
                    process_ids[slot],
                    EventType::Invoke,
                    Value::Array(invoke),
                );
                let mode = match rng.below(10) {
                    0..=4 => Mode::Atomic,
                    5..=7 => Mode::Snapshot,
                    _ => Mode::Stale,
                };
                running[slot] = Some(Planned {
                    mops,
                    snapshot: Some(state.clone()),
                    mode,
                });
            }
            None => {}
            Some(p) => {
                let (completion, next) = execute(model, &p, &state, &past, &mut rng);
                let outcome = rng.below(10);
                let (kind, applied) = match outcome {
                    0 => (EventType::Fail, rng.chance(15)),
                    1 => (EventType::Info, rng.chance(50)),
                    _ => (EventType::Ok, true),
                };
                if applied {
                    state = next;
                    past.push(state.clone());
                }
                let value = if kind == EventType::Ok {
                    Value::Array(completion)
                } else {
                    Value::Array(
                        p.mops
                            .iter()
                            .map(|&(w, k, v)| {
                                mop_json(model, w, k, if w { json!(v) } else { Value::Null })
                            })
                            .collect(),
                    )
                };
                push(&mut events, process_ids[slot], kind, value);
                if kind == EventType::Info {
                    process_ids[slot] += 100;
                }
            }
        }
    }
    events
}

fn cases() -> u64 {
    std::env::var("FAULTLINE_TXN_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

fn verdict(h: &txn::TxnHistory, model: TxnModel, consistency: &'static str) -> Verdict {
    let opts = TxnOptions {
        consistency_models: vec![consistency],
        ..TxnOptions::default()
    };
    txn::check(h, model, &opts)
        .expect("generated histories are well-formed")
        .verdict
}

fn build(model: TxnModel, events: &[Event]) -> txn::TxnHistory {
    let mut b = TxnHistoryBuilder::new("generated", model);
    for (i, e) in events.iter().enumerate() {
        b.push(e, i + 1).expect("well-formed");
    }
    b.finish().expect("not empty")
}

fn show(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| format!("  p{} {:?} {}", e.process, e.kind, e.value))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn list_append_verdicts_agree_with_brute_force() {
    let mut counts = [[0u64; 2]; 2]; // [model][valid, invalid]
    for seed in 0..cases() {
        let events = history(TxnModel::ListAppend, seed);
        let h = build(TxnModel::ListAppend, &events);
        for (i, (name, realtime)) in [("serializable", false), ("strict-serializable", true)]
            .into_iter()
            .enumerate()
        {
            let v = verdict(&h, TxnModel::ListAppend, name);
            assert!(
                !matches!(v, Verdict::Unknown { .. }),
                "seed {seed}: unknown {v}"
            );
            let expected = brute::serializable(&h, TxnModel::ListAppend, realtime);
            assert_eq!(
                v.is_valid(),
                expected,
                "seed {seed}, {name}: checker says {v}\nbrute force says {}\nhistory:\n{}",
                if expected { "valid" } else { "invalid" },
                show(&events)
            );
            counts[i][v.is_invalid() as usize] += 1;
        }
    }
    eprintln!(
        "list-append: serializable valid/invalid {:?}, strict {:?}",
        counts[0], counts[1]
    );
    for c in counts {
        assert!(
            c[0] * 10 > c[1] && c[1] * 10 > c[0],
            "both verdicts are common: {c:?}"
        );
    }
}

#[test]
fn rw_register_never_rejects_a_serializable_history() {
    let (mut invalid, mut missed) = (0u64, 0u64);
    for seed in 0..cases() {
        let events = history(TxnModel::RwRegister, seed);
        let h = build(TxnModel::RwRegister, &events);
        for (name, realtime) in [("serializable", false), ("strict-serializable", true)] {
            let v = verdict(&h, TxnModel::RwRegister, name);
            let expected = brute::serializable(&h, TxnModel::RwRegister, realtime);
            assert!(
                !(v.is_invalid() && expected),
                "seed {seed}, {name}: checker says {v}\nbut this order exists (brute force)\nhistory:\n{}",
                show(&events)
            );
            invalid += v.is_invalid() as u64;
            missed += (!expected && v.is_valid()) as u64;
        }
    }
    eprintln!("rw-register: {invalid} invalid verdicts, {missed} non-serializable histories the inference could not see");
    assert!(
        invalid > cases() / 20,
        "the generator makes anomalies the checker finds: {invalid}"
    );
}
