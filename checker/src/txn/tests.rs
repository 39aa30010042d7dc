//! Histories with one known anomaly each: the checker must name it (and
//! nothing it should not), explain it, and rule out the right models.

use super::*;
use crate::history::{Event, EventType, Process, Value};
use serde_json::json;

/// Events from `(process, type, value)`.
fn events(evs: &[(u64, &str, Value)]) -> Vec<Event> {
    evs.iter()
        .enumerate()
        .map(|(i, (p, t, v))| Event {
            index: i as u64,
            time: i as u64 * 1000,
            process: Process::Client(*p),
            kind: match *t {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                _ => EventType::Info,
            },
            f: "txn".into(),
            key: None,
            value: v.clone(),
            node: None,
            error: None,
        })
        .collect()
}

/// Transactions one after another: each invoked (reads nil) and completed
/// before the next begins. `(process, outcome, micro-ops)`.
fn serial(txns: &[(u64, &str, Value)]) -> Vec<Event> {
    let mut evs = Vec::new();
    for (p, outcome, v) in txns {
        let invoke: Vec<Value> = v
            .as_array()
            .expect("micro-ops")
            .iter()
            .map(|m| {
                let m = m.as_array().expect("a micro-op");
                if m[0] == "r" {
                    json!(["r", m[1], null])
                } else {
                    json!(m)
                }
            })
            .collect();
        evs.push((*p, "invoke", Value::Array(invoke)));
        if *outcome != "never" {
            evs.push((*p, *outcome, v.clone()));
        }
    }
    events(&evs)
}

fn build(model: TxnModel, evs: &[Event]) -> TxnHistory {
    let mut b = TxnHistoryBuilder::new("test", model);
    for (i, e) in evs.iter().enumerate() {
        b.push(e, i + 1).expect("a well-formed history");
    }
    b.finish().expect("a history")
}

fn run(model: TxnModel, evs: &[Event], models: &[&'static str]) -> TxnCheck {
    let h = build(model, evs);
    let opts = TxnOptions {
        consistency_models: models.to_vec(),
        ..TxnOptions::default()
    };
    check(&h, model, &opts).expect("checkable")
}

fn witness(c: &TxnCheck) -> &TxnWitness {
    match &c.verdict {
        Verdict::Invalid {
            witness: Witness::Txn(w),
        } => w,
        other => panic!("expected invalid, got {other}"),
    }
}

const SS: &[&str] = &["strict-serializable"];

#[test]
fn a_serial_history_is_valid() {
    let evs = serial(&[
        (0, "ok", json!([["append", "x", 1], ["r", "x", [1]]])),
        (1, "ok", json!([["r", "x", [1]], ["append", "y", 1]])),
        (0, "ok", json!([["append", "x", 2], ["r", "y", [1]]])),
        (2, "ok", json!([["r", "x", [1, 2]], ["r", "y", [1]]])),
    ]);
    let c = run(TxnModel::ListAppend, &evs, SS);
    assert!(c.verdict.is_valid(), "{}", c.verdict);
    assert!(c.all_anomalies.is_empty());
    assert!(c.stats.edges > 0, "the history has dependencies");
}

#[test]
fn g0_write_cycle() {
    let evs = serial(&[
        (0, "ok", json!([["append", "x", 1], ["append", "y", 1]])),
        (1, "ok", json!([["append", "x", 2], ["append", "y", 2]])),
        (2, "ok", json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]])),
    ]);
    let c = run(TxnModel::ListAppend, &evs, &["read-uncommitted"]);
    let w = witness(&c);
    assert_eq!(w.anomaly_types, vec!["G0"]);
    assert!(w.not.contains(&"read-uncommitted"), "{:?}", w.not);
    let case = &w.anomalies.types["G0"].examples[0];
    assert_eq!(case.steps.len(), 2);
    assert!(
        case.explanation
            .contains("appended 2 to y and T2 appended 1 right after it")
            || case.explanation.contains("right after it"),
        "{}",
        case.explanation
    );
}

#[test]
fn g1c_circular_information_flow() {
    let evs = events(&[
        (0, "invoke", json!([["append", "x", 1], ["r", "y", null]])),
        (1, "invoke", json!([["append", "y", 1], ["r", "x", null]])),
        (0, "ok", json!([["append", "x", 1], ["r", "y", [1]]])),
        (1, "ok", json!([["append", "y", 1], ["r", "x", [1]]])),
    ]);
    let c = run(TxnModel::ListAppend, &evs, SS);
    let w = witness(&c);
    assert_eq!(w.anomaly_types, vec!["G1c"]);
    assert_eq!(w.not, vec!["read-committed"]);
    let text = &w.anomalies.types["G1c"].examples[0].explanation;
    assert!(
        text.contains("wr→") && text.contains("which ends with"),
        "{text}"
    );
}

#[test]
fn g_single_read_skew_and_its_realtime_form() {
    let evs = events(&[
        (0, "invoke", json!([["append", "x", 1], ["append", "y", 1]])),
        (1, "invoke", json!([["r", "x", null], ["r", "y", null]])),
        (0, "ok", json!([["append", "x", 1], ["append", "y", 1]])),
        (1, "ok", json!([["r", "x", []], ["r", "y", [1]]])),
    ]);
    let c = run(TxnModel::ListAppend, &evs, SS);
    let w = witness(&c);
    assert_eq!(w.anomaly_types, vec!["G-single"]);
    assert!(
        w.not.contains(&"consistent-view") && w.also_not.contains(&"snapshot-isolation"),
        "{:?} {:?}",
        w.not,
        w.also_not
    );
    let text = &w.anomalies.types["G-single"].examples[0].explanation;
    assert!(
        text.contains("rw→") && text.contains("[] (its initial, empty state)"),
        "{text}"
    );
    // A stale read after the write completed: only real time orders them.
    let evs = serial(&[
        (0, "ok", json!([["append", "x", 1]])),
        (1, "ok", json!([["r", "x", []]])),
        (2, "ok", json!([["r", "x", [1]]])),
    ]);
    let c = run(TxnModel::ListAppend, &evs, SS);
    assert_eq!(witness(&c).anomaly_types, vec!["G-single-realtime"]);
    let text = &witness(&c).anomalies.types["G-single-realtime"].examples[0].explanation;
    assert!(
        text.contains("realtime→") && text.contains("completed (event"),
        "{text}"
    );
    let c = run(TxnModel::ListAppend, &evs, &["serializable"]);
    assert!(
        c.verdict.is_valid(),
        "serializable allows a stale read: {}",
        c.verdict
    );
    let c = run(TxnModel::ListAppend, &evs, &["strong-session-serializable"]);
    assert!(c.verdict.is_valid(), "different processes: {}", c.verdict);
}

#[test]
fn g2_item_write_skew_is_allowed_by_snapshot_isolation() {
    let evs = events(&[
        (0, "invoke", json!([["r", "x", null], ["append", "y", 1]])),
        (1, "invoke", json!([["r", "y", null], ["append", "x", 1]])),
        (0, "ok", json!([["r", "x", []], ["append", "y", 1]])),
        (1, "ok", json!([["r", "y", []], ["append", "x", 1]])),
        (2, "invoke", json!([["r", "x", null], ["r", "y", null]])),
        (2, "ok", json!([["r", "x", [1]], ["r", "y", [1]]])),
    ]);
    let c = run(TxnModel::ListAppend, &evs, SS);
    let w = witness(&c);
    assert_eq!(w.anomaly_types, vec!["G2-item"]);
    assert_eq!(w.not, vec!["repeatable-read"]);
    let c = run(TxnModel::ListAppend, &evs, &["snapshot-isolation"]);
    assert!(c.verdict.is_valid(), "{}", c.verdict);
    assert_eq!(
        c.all_anomalies,
        Vec::<&str>::new(),
        "G2-item is not searched for under SI"
    );
}

#[test]
fn non_cycle_anomalies_each_named() {
    let cases: Vec<(&str, Vec<Event>)> = vec![
        (
            "G1a",
            serial(&[
                (0, "fail", json!([["append", "x", 1]])),
                (1, "ok", json!([["r", "x", [1]]])),
            ]),
        ),
        (
            "G1b",
            serial(&[
                (0, "ok", json!([["append", "x", 1], ["append", "x", 2]])),
                (1, "ok", json!([["r", "x", [1]]])),
            ]),
        ),
        (
            "internal",
            serial(&[(0, "ok", json!([["append", "x", 1], ["r", "x", []]]))]),
        ),
        (
            "incompatible-order",
            serial(&[
                (0, "ok", json!([["append", "x", 1]])),
                (1, "ok", json!([["append", "x", 2]])),
                (2, "ok", json!([["r", "x", [1, 2]]])),
                (3, "ok", json!([["r", "x", [2, 1]]])),
            ]),
        ),
        (
            "duplicate-elements",
            serial(&[
                (0, "ok", json!([["append", "x", 1]])),
                (1, "ok", json!([["r", "x", [1, 1]]])),
            ]),
        ),
        (
            "garbage-read",
            serial(&[(1, "ok", json!([["r", "x", [9]]]))]),
        ),
        (
            "future-read",
            serial(&[(0, "ok", json!([["r", "x", [1]], ["append", "x", 1]]))]),
        ),
        (
            "dirty-update",
            serial(&[
                (0, "fail", json!([["append", "x", 1]])),
                (1, "ok", json!([["append", "x", 2]])),
                (2, "ok", json!([["r", "x", [1, 2]]])),
            ]),
        ),
    ];
    for (name, evs) in cases {
        let c = run(TxnModel::ListAppend, &evs, SS);
        let w = witness(&c);
        assert!(
            w.anomaly_types.contains(&name),
            "{name}: found {:?}",
            w.anomaly_types
        );
        let case = &w.anomalies.types[name].examples[0];
        assert!(
            !case.explanation.is_empty() && !case.txns.is_empty(),
            "{name} is explained"
        );
    }
    let lost = events(&[
        (0, "invoke", json!([["r", "x", null], ["append", "x", 1]])),
        (1, "invoke", json!([["r", "x", null], ["append", "x", 2]])),
        (0, "ok", json!([["r", "x", []], ["append", "x", 1]])),
        (1, "ok", json!([["r", "x", []], ["append", "x", 2]])),
        (2, "invoke", json!([["r", "x", null]])),
        (2, "ok", json!([["r", "x", [1, 2]]])),
    ]);
    let c = run(TxnModel::ListAppend, &lost, &["repeatable-read"]);
    let w = witness(&c);
    // T1 ww→ T2 (2 follows 1) and T2 rw→ T1 (T2 read [] without 1): one
    // rw edge, so a G-single, as Elle names it.
    assert_eq!(w.anomaly_types, vec!["G-single", "lost-update"]);
    let c = run(TxnModel::ListAppend, &lost, &["read-committed"]);
    assert!(
        c.verdict.is_valid(),
        "read committed allows lost updates: {}",
        c.verdict
    );
}

#[test]
fn crashed_transactions_may_or_may_not_have_happened() {
    // An info append nobody read: no edge leaves it, so no cycle.
    let evs = serial(&[
        (0, "info", json!([["append", "x", 1]])),
        (1, "ok", json!([["r", "x", []]])),
        (2, "never", json!([["append", "x", 2]])),
        (3, "ok", json!([["r", "x", []]])),
    ]);
    let c = run(TxnModel::ListAppend, &evs, SS);
    assert!(c.verdict.is_valid(), "{}", c.verdict);
    // An info append somebody read happened, before the reader.
    let evs = serial(&[
        (0, "info", json!([["append", "x", 1]])),
        (1, "ok", json!([["r", "x", [1]]])),
    ]);
    assert!(run(TxnModel::ListAppend, &evs, SS).verdict.is_valid());
}

#[test]
fn rw_register_cycles_and_inferences() {
    let g1c = events(&[
        (0, "invoke", json!([["w", "x", 1], ["r", "y", null]])),
        (1, "invoke", json!([["w", "y", 1], ["r", "x", null]])),
        (0, "ok", json!([["w", "x", 1], ["r", "y", 1]])),
        (1, "ok", json!([["w", "y", 1], ["r", "x", 1]])),
    ]);
    assert_eq!(
        witness(&run(TxnModel::RwRegister, &g1c, SS)).anomaly_types,
        vec!["G1c"]
    );
    let skew = events(&[
        (0, "invoke", json!([["r", "x", null], ["w", "y", 1]])),
        (1, "invoke", json!([["r", "y", null], ["w", "x", 1]])),
        (0, "ok", json!([["r", "x", null], ["w", "y", 1]])),
        (1, "ok", json!([["r", "y", null], ["w", "x", 1]])),
    ]);
    let c = run(TxnModel::RwRegister, &skew, SS);
    let w = witness(&c);
    assert_eq!(w.anomaly_types, vec!["G2-item"]);
    let text = &w.anomalies.types["G2-item"].examples[0].explanation;
    assert!(
        text.contains("every value follows the initial nil"),
        "{text}"
    );
    // Writes follow reads: T1 read x=1 then wrote x=2, so 1 < 2; T3 read
    // x=2 then T2's y... a G-single through the inferred order.
    let wfr = serial(&[
        (0, "ok", json!([["w", "x", 1]])),
        (
            1,
            "ok",
            json!([["r", "x", 1], ["w", "x", 2], ["w", "y", 1]]),
        ),
        (2, "ok", json!([["r", "y", 1], ["r", "x", 1]])),
    ]);
    let c = run(TxnModel::RwRegister, &wfr, &["serializable"]);
    let w = witness(&c);
    assert_eq!(w.anomaly_types, vec!["G-single"]);
    assert!(w.anomalies.types["G-single"].examples[0]
        .explanation
        .contains("read 1 and then wrote 2"));
    let opts = TxnOptions {
        consistency_models: vec!["serializable"],
        inference: Inference::default(),
        ..TxnOptions::default()
    };
    let c = check(
        &build(TxnModel::RwRegister, &wfr),
        TxnModel::RwRegister,
        &opts,
    )
    .expect("checkable");
    assert!(
        c.verdict.is_valid(),
        "without writes-follow-reads the order is unknown: {}",
        c.verdict
    );
    let g1a = serial(&[
        (0, "fail", json!([["w", "x", 1]])),
        (1, "ok", json!([["r", "x", 1]])),
    ]);
    assert!(witness(&run(TxnModel::RwRegister, &g1a, SS))
        .anomaly_types
        .contains(&"G1a"));
}

#[test]
fn duplicate_appends_are_bad_input_naming_the_transaction() {
    let evs = serial(&[
        (0, "ok", json!([["append", "x", 1]])),
        (1, "ok", json!([["append", "x", 1]])),
    ]);
    let h = build(TxnModel::ListAppend, &evs);
    let e = check(&h, TxnModel::ListAppend, &TxnOptions::default())
        .err()
        .expect("an error");
    assert!(e.to_string().contains("appended too"), "{e}");
}

#[test]
fn the_page_draws_the_cycle() {
    let evs = events(&[
        (0, "invoke", json!([["append", "x", 1], ["r", "y", null]])),
        (1, "invoke", json!([["append", "y", 1], ["r", "x", null]])),
        (0, "ok", json!([["append", "x", 1], ["r", "y", [1]]])),
        (1, "ok", json!([["append", "y", 1], ["r", "x", [1]]])),
    ]);
    let h = build(TxnModel::ListAppend, &evs);
    let (r, _) = result(&h, TxnModel::ListAppend, &TxnOptions::default()).expect("checkable");
    let page = html::render("g1c.edn", &r);
    assert!(
        page.contains("<svg") && page.contains("G1c") && page.contains("arrow-wr"),
        "{page}"
    );
    assert_eq!(
        page.matches("<circle").count(),
        2,
        "one circle per transaction"
    );
}

#[test]
fn a_time_limit_of_zero_gives_unknown_not_a_hang() {
    let evs = serial(&[
        (0, "ok", json!([["append", "x", 1], ["append", "y", 1]])),
        (1, "ok", json!([["append", "x", 2], ["append", "y", 2]])),
        (2, "ok", json!([["r", "x", [1, 2]], ["r", "y", [2, 1]]])),
    ]);
    let h = build(TxnModel::ListAppend, &evs);
    let opts = TxnOptions {
        time_limit: Some(Duration::ZERO),
        ..TxnOptions::default()
    };
    let c = check(&h, TxnModel::ListAppend, &opts).expect("checkable");
    match c.verdict {
        Verdict::Unknown { reason } => assert!(
            reason.contains("time limit") && reason.contains("0 of 1"),
            "{reason}"
        ),
        other => panic!("expected unknown, got {other}"),
    }
}

/// The real-time edges, found as ranges of transaction numbers, are
/// exactly those of the buffer algorithm, on random interleavings of 2-6
/// processes with ok, failed, crashed and never-completed transactions.
#[test]
fn realtime_ranges_give_the_buffer_algorithms_edges() {
    let mut seed = 0x1234_5678_u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut nonempty = 0;
    for _ in 0..2000 {
        let processes = 2 + next(5);
        let mut running = vec![false; processes as usize];
        let mut evs: Vec<(u64, &str, Value)> = Vec::new();
        let steps = 2 + next(30);
        for _ in 0..steps {
            let p = next(processes);
            let value = json!([["append", "x", evs.len()]]);
            if running[p as usize] {
                let kind = ["ok", "ok", "fail", "info"][next(4) as usize];
                evs.push((p, kind, value));
                running[p as usize] = false;
            } else {
                evs.push((p, "invoke", value));
                running[p as usize] = true;
            }
        }
        // Crashed processes never invoke again.
        let mut retired = std::collections::HashSet::new();
        let evs: Vec<(u64, &str, Value)> = evs
            .into_iter()
            .filter_map(|(p, kind, v)| {
                if retired.contains(&p) {
                    return None;
                }
                if kind == "info" {
                    retired.insert(p);
                }
                Some((p, kind, v))
            })
            .collect();
        if evs.is_empty() {
            continue;
        }
        let h = build(TxnModel::ListAppend, &events(&evs));
        let mut list = graph::EdgeList::default();
        realtime_edges(&h, &mut list);
        let g = Graph::build(h.txns.len(), list);
        let mut got: Vec<(usize, usize)> = (0..h.txns.len())
            .flat_map(|a| g.out(a).map(move |(b, _)| (a, b)))
            .collect();
        got.sort_unstable();
        let mut expected = realtime_edges_by_buffer(&h);
        expected.dedup();
        nonempty += !expected.is_empty() as usize;
        assert_eq!(got, expected, "{evs:?}");
    }
    assert!(
        nonempty > 1000,
        "the cases have real-time edges: {nonempty}"
    );
}
