//! The search agrees with the brute-force reference (every order tried)
//! on random histories of up to 8 operations, for every model; keyed kv
//! histories both split by key and checked as one map; the register models
//! also with random initial values and both meanings of a nil read, and
//! Knossos's multi-register on random txns.

use faultline_checker::brute;
use faultline_checker::history::{Event, EventType, Process, Value};
use faultline_checker::linearizable::check_linearizable;
use faultline_checker::model::{ModelOptions, NilReads};
use faultline_checker::{CheckOptions, ModelKind, Operations, VerdictKind};
use proptest::prelude::*;
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
}

/// A kv operation on strings: get, put or append, with a completion value
/// from a small set so that some histories are linearizable and some not.
fn append_op(rng: &mut Rng) -> (&'static str, Value, Value) {
    const PIECES: [&str; 3] = ["a", "b", "c"];
    const SEEN: [&str; 8] = ["", "a", "b", "ab", "ba", "ac", "abc", "bc"];
    let piece = |rng: &mut Rng| Value::from(PIECES[rng.below(3) as usize]);
    match rng.below(3) {
        0 => ("get", Value::Null, Value::from(SEEN[rng.below(8) as usize])),
        1 => {
            let x = piece(rng);
            ("put", x.clone(), x)
        }
        _ => {
            let x = piece(rng);
            ("append", x.clone(), x)
        }
    }
}

/// What a generated history looks like.
#[derive(Clone, Copy)]
struct Shape {
    max_ops: usize,
    /// Keys to spread operations over (0: no keys).
    keys: u64,
    /// Whether operations may crash (info, or never complete).
    crashes: bool,
    /// kv on strings (get/put/append) rather than read/write/cas.
    appends: bool,
}

impl Shape {
    const PLAIN: Shape = Shape {
        max_ops: 8,
        keys: 0,
        crashes: true,
        appends: false,
    };
    const KV: Shape = Shape {
        keys: 2,
        ..Shape::PLAIN
    };
}

/// An operation's invoke value and a plausible completion value.
fn op_for(model: ModelKind, rng: &mut Rng, process: u64) -> (&'static str, Value, Value) {
    let v = |rng: &mut Rng| Value::from(rng.below(3));
    match model {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => {
            let n = if model == ModelKind::Register { 2 } else { 3 };
            match rng.below(n) {
                0 => {
                    let out = if rng.below(4) == 0 {
                        Value::Null
                    } else {
                        v(rng)
                    };
                    ("read", Value::Null, out)
                }
                1 => {
                    let x = v(rng);
                    ("write", x.clone(), x)
                }
                _ => {
                    let pair = json!([rng.below(3), rng.below(3)]);
                    let out = if rng.below(3) == 0 {
                        Value::Bool(false)
                    } else {
                        pair.clone()
                    };
                    ("cas", pair, out)
                }
            }
        }
        ModelKind::Mutex => {
            if rng.below(2) == 0 {
                ("acquire", Value::Null, Value::Null)
            } else {
                ("release", Value::Null, Value::Null)
            }
        }
        ModelKind::Lock => {
            let owner = format!("o{process}");
            let token = rng.below(4) + 1;
            match rng.below(3) {
                0 => (
                    "acquire",
                    json!({"owner": owner, "ttl_ms": 100}),
                    json!({"owner": owner, "ttl_ms": 100, "token": token}),
                ),
                1 => (
                    "release",
                    json!({"owner": owner, "token": token}),
                    json!({"owner": owner, "token": token}),
                ),
                _ => (
                    "renew",
                    json!({"owner": owner, "token": token, "ttl_ms": 100}),
                    json!({"owner": owner, "token": token}),
                ),
            }
        }
        ModelKind::Set => {
            if rng.below(2) == 0 {
                let x = v(rng);
                ("add", x.clone(), x)
            } else {
                let read: Vec<u64> = (0..3).filter(|_| rng.below(2) == 0).collect();
                ("read", Value::Null, json!(read))
            }
        }
        ModelKind::Counter => {
            if rng.below(2) == 0 {
                let d = rng.below(3) as i64 - 1;
                ("add", Value::from(d), Value::from(d))
            } else {
                ("read", Value::Null, Value::from(rng.below(4) as i64 - 1))
            }
        }
        ModelKind::MultiRegister => {
            let registers = ["x", "y", "z"];
            let n = 1 + rng.below(3);
            let (mut input, mut output) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let k = registers[rng.below(3) as usize];
                if rng.below(2) == 0 {
                    let seen = if rng.below(4) == 0 {
                        Value::Null
                    } else {
                        v(rng)
                    };
                    input.push(json!(["read", k, null]));
                    output.push(json!(["read", k, seen]));
                } else {
                    let x = v(rng);
                    input.push(json!(["write", k, x]));
                    output.push(json!(["write", k, x]));
                }
            }
            ("txn", Value::Array(input), Value::Array(output))
        }
        ModelKind::Queue => {
            if rng.below(2) == 0 {
                let x = Value::from(rng.below(3) + 1);
                ("enqueue", x.clone(), x)
            } else {
                let out = if rng.below(3) == 0 {
                    Value::Null
                } else {
                    Value::from(rng.below(3) + 1)
                };
                ("dequeue", Value::Null, out)
            }
        }
    }
}

/// A worker's outstanding operation: process, f, completion value, key.
type Pending = Option<(u64, &'static str, Value, Option<Value>)>;

/// A random history of up to `shape.max_ops` operations by up to 4
/// processes, each completing ok (mostly), fail, and (if `shape.crashes`)
/// info or never.
fn history(model: ModelKind, seed: u64, shape: Shape) -> Vec<Event> {
    let mut rng = Rng(seed);
    let n_ops = 1 + rng.below(shape.max_ops as u64) as usize;
    let mut events = Vec::new();
    let mut pending: Vec<Pending> = vec![None; 4];
    let mut procs: Vec<u64> = (0..4).collect();
    let mut next_proc = 4;
    let mut issued = 0;
    let push = |events: &mut Vec<Event>,
                p: u64,
                kind: EventType,
                f: &str,
                key: Option<Value>,
                value: Value| {
        let i = events.len() as u64;
        events.push(Event {
            index: i,
            time: i * 10,
            process: Process::Client(p),
            kind,
            f: f.into(),
            key,
            value,
            node: None,
            error: None,
        });
    };
    loop {
        let w = rng.below(4) as usize;
        match pending[w].take() {
            None if issued < n_ops => {
                issued += 1;
                let p = procs[w];
                let (f, input, out) = if shape.appends {
                    append_op(&mut rng)
                } else {
                    op_for(model, &mut rng, p)
                };
                let key = (shape.keys > 0).then(|| Value::from(rng.below(shape.keys)));
                push(&mut events, p, EventType::Invoke, f, key.clone(), input);
                pending[w] = Some((p, f, out, key));
            }
            None => {
                if pending.iter().all(Option::is_none) {
                    break;
                }
            }
            Some((p, f, out, key)) => {
                match rng.below(12) {
                    0 if shape.crashes => {
                        push(&mut events, p, EventType::Info, f, key, Value::Null)
                    }
                    1 => push(&mut events, p, EventType::Fail, f, key, Value::Null),
                    2 if shape.crashes && issued >= n_ops => {} // never completes
                    _ => push(&mut events, p, EventType::Ok, f, key, out),
                }
                // A process that crashed or never completed is replaced.
                if events.last().map(|e| e.kind) != Some(EventType::Ok)
                    && events.last().map(|e| e.kind) != Some(EventType::Fail)
                {
                    procs[w] = next_proc;
                    next_proc += 1;
                }
            }
        }
    }
    events
}

/// Which register semantics a case is checked under.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Semantics {
    /// Registers start empty, a nil read means "no value".
    Default,
    /// A random initial value (or none) and a random meaning of nil reads.
    Random,
}

fn options(seed: u64, semantics: Semantics) -> ModelOptions {
    if semantics == Semantics::Default {
        return ModelOptions::default();
    }
    let mut rng = Rng(seed ^ 0x0123_4567_89ab_cdef);
    ModelOptions {
        initial_value: match rng.below(3) {
            0 => None,
            _ => Some(Value::from(rng.below(3))),
        },
        nil_reads: if rng.below(2) == 0 {
            NilReads::Absent
        } else {
            NilReads::Unknown
        },
    }
}

fn agree(
    model: ModelKind,
    seed: u64,
    shape: Shape,
    semantics: Semantics,
) -> Result<(), TestCaseError> {
    let keyed = shape.keys > 0;
    let events = history(model, seed, shape);
    let ops = Operations::from_events("generated", &events, &[])
        .expect("generated histories are well formed");
    let model_options = options(seed, semantics);
    let expected = brute::linearizable(&ops, model, &model_options).expect("ops fit the model");
    for partition in [true, false] {
        let opts = CheckOptions {
            partition,
            threads: 1,
            model_options: model_options.clone(),
            ..CheckOptions::default()
        };
        let got = check_linearizable(&ops, model, &opts)
            .expect("ops fit the model")
            .verdict
            .kind();
        let want = if expected {
            VerdictKind::Valid
        } else {
            VerdictKind::Invalid
        };
        prop_assert_eq!(
            got,
            want,
            "model {} seed {} partition {} options {:?}:\n{}",
            model,
            seed,
            partition,
            model_options,
            events
                .iter()
                .map(|e| serde_json::to_string(e).expect("json"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        if !keyed {
            break;
        }
    }
    Ok(())
}

const CASES: u32 = 1500;

macro_rules! model_test {
    ($name:ident, $model:expr, $shape:expr) => {
        model_test!($name, $model, $shape, Semantics::Default);
    };
    ($name:ident, $model:expr, $shape:expr, $semantics:expr) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]
            #[test]
            fn $name(seed in any::<u64>()) {
                agree($model, seed, $shape, $semantics)?;
            }
        }
    };
}

/// The whole-map search's backjumping and nogoods work only when nothing
/// crashed and at least two keys are touched: histories of 4 keys with no
/// crashes exercise them.
const KV_SEVERAL_KEYS: Shape = Shape {
    max_ops: 10,
    keys: 4,
    crashes: false,
    appends: false,
};
/// get/put/append on strings over 3 keys, with and without crashes.
const KV_APPENDS: Shape = Shape {
    max_ops: 10,
    keys: 3,
    crashes: false,
    appends: true,
};
const KV_APPENDS_CRASHING: Shape = Shape {
    crashes: true,
    ..KV_APPENDS
};
/// get/put/append on one key: ten operations on one register, where the
/// search's look-ahead from appends to the reads after them works.
const KV_APPENDS_ONE_KEY: Shape = Shape {
    keys: 1,
    ..KV_APPENDS_CRASHING
};

model_test!(
    register_agrees_with_brute_force,
    ModelKind::Register,
    Shape::PLAIN
);
model_test!(
    cas_register_agrees_with_brute_force,
    ModelKind::CasRegister,
    Shape::PLAIN
);
model_test!(
    kv_split_and_whole_agree_with_brute_force,
    ModelKind::Kv,
    Shape::KV
);
model_test!(
    kv_of_four_keys_without_crashes_split_and_whole_agree_with_brute_force,
    ModelKind::Kv,
    KV_SEVERAL_KEYS
);
model_test!(
    kv_appends_on_three_keys_split_and_whole_agree_with_brute_force,
    ModelKind::Kv,
    KV_APPENDS
);
model_test!(
    kv_appends_with_crashes_split_and_whole_agree_with_brute_force,
    ModelKind::Kv,
    KV_APPENDS_CRASHING
);
model_test!(
    kv_appends_on_one_key_with_crashes_agree_with_brute_force,
    ModelKind::Kv,
    KV_APPENDS_ONE_KEY
);
model_test!(
    register_with_initial_values_and_nil_reads_agrees_with_brute_force,
    ModelKind::Register,
    Shape::PLAIN,
    Semantics::Random
);
model_test!(
    cas_register_with_initial_values_and_nil_reads_agrees_with_brute_force,
    ModelKind::CasRegister,
    Shape::PLAIN,
    Semantics::Random
);
model_test!(
    kv_with_initial_values_and_nil_reads_split_and_whole_agree_with_brute_force,
    ModelKind::Kv,
    Shape::KV,
    Semantics::Random
);
model_test!(
    multi_register_agrees_with_brute_force,
    ModelKind::MultiRegister,
    Shape::PLAIN
);
model_test!(
    multi_register_with_initial_values_and_nil_reads_agrees_with_brute_force,
    ModelKind::MultiRegister,
    Shape::PLAIN,
    Semantics::Random
);
model_test!(
    mutex_agrees_with_brute_force,
    ModelKind::Mutex,
    Shape::PLAIN
);
model_test!(lock_agrees_with_brute_force, ModelKind::Lock, Shape::PLAIN);
model_test!(set_agrees_with_brute_force, ModelKind::Set, Shape::PLAIN);
model_test!(
    counter_agrees_with_brute_force,
    ModelKind::Counter,
    Shape::PLAIN
);
model_test!(
    queue_agrees_with_brute_force,
    ModelKind::Queue,
    Shape::PLAIN
);

#[test]
fn generated_histories_are_a_mix_of_valid_and_invalid() {
    // A generator that only makes valid (or invalid) histories would make
    // the agreement above meaningless.
    let shapes = ModelKind::ALL
        .into_iter()
        .map(|m| {
            let shape = if m == ModelKind::Kv {
                Shape::KV
            } else {
                Shape::PLAIN
            };
            (m, shape, "")
        })
        .chain([
            (ModelKind::Kv, KV_SEVERAL_KEYS, " of four keys"),
            (ModelKind::Kv, KV_APPENDS, " appends"),
            (ModelKind::Kv, KV_APPENDS_CRASHING, " appends, crashing"),
            (ModelKind::Kv, KV_APPENDS_ONE_KEY, " appends on one key"),
        ]);
    let shapes = shapes
        .map(|(m, shape, what)| (m, shape, what, Semantics::Default))
        .chain([
            (
                ModelKind::Register,
                Shape::PLAIN,
                " with random semantics",
                Semantics::Random,
            ),
            (
                ModelKind::CasRegister,
                Shape::PLAIN,
                " with random semantics",
                Semantics::Random,
            ),
            (
                ModelKind::Kv,
                Shape::KV,
                " with random semantics",
                Semantics::Random,
            ),
            (
                ModelKind::MultiRegister,
                Shape::PLAIN,
                " with random semantics",
                Semantics::Random,
            ),
        ]);
    for (model, shape, what, semantics) in shapes {
        let valid = (0..300u64)
            .filter(|&s| {
                let ops = Operations::from_events("g", &history(model, s, shape), &[])
                    .expect("well formed");
                brute::linearizable(&ops, model, &options(s, semantics)).expect("fits")
            })
            .count();
        assert!(
            (20..280).contains(&valid),
            "{model}{what}: {valid} of 300 valid"
        );
    }
}

/// A kv history of one key that is linearizable by construction: each
/// operation takes effect at a random moment inside its interval, on a
/// sequential store. Long enough (up to 300 operations by 6 processes,
/// many appends in flight at once, puts among them) for the search's
/// look-ahead to refuse most orders: it must never refuse the true one.
/// Nothing crashes here (the brute-force shapes above cover crashes):
/// with crashed appends some of these take the search seconds.
fn linearizable_appends(seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed);
    let n_ops = 50 + rng.below(250) as usize;
    let mut store = String::new();
    let mut events = Vec::new();
    // Per process: (f, input, the output once taken effect).
    let mut pending: Vec<Option<(&str, Value, Option<Value>)>> = vec![None; 6];
    let mut issued = 0;
    let event = |events: &mut Vec<Event>, p: usize, kind: EventType, f: &str, value: Value| {
        let i = events.len() as u64;
        events.push(Event {
            index: i,
            time: i * 10,
            process: Process::Client(p as u64),
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        });
    };
    while issued < n_ops || pending.iter().any(Option::is_some) {
        let p = rng.below(6) as usize;
        match pending[p].take() {
            None if issued < n_ops => {
                issued += 1;
                let piece = Value::from(format!("{p}.{issued} "));
                let (f, input) = match rng.below(10) {
                    0 => ("put", piece),
                    1..=3 => ("get", Value::Null),
                    _ => ("append", piece),
                };
                event(&mut events, p, EventType::Invoke, f, input.clone());
                pending[p] = Some((f, input, None));
            }
            None => {}
            Some((f, input, None)) => {
                // Takes effect now; completes later.
                let piece = input.as_str().unwrap_or_default();
                match f {
                    "put" => store = piece.to_string(),
                    "append" => store.push_str(piece),
                    _ => {}
                }
                let output = if f == "get" {
                    Value::from(store.clone())
                } else {
                    input.clone()
                };
                pending[p] = Some((f, input, Some(output)));
            }
            Some((f, _, Some(output))) => event(&mut events, p, EventType::Ok, f, output),
        }
    }
    events
}

/// The same 300 histories every run. Drawn from random seeds, one run in
/// many met a history the search cannot finish within its memory bound
/// (seed 1021190378712797720: 131 operations, 6 processes, Unknown after
/// 180 million steps at 4 GiB), which made CI fail by chance; that
/// history is kept below as the search's known limit, not hidden.
#[test]
fn linearizable_kv_histories_of_many_appends_are_valid() {
    let opts = CheckOptions {
        threads: 1,
        ..CheckOptions::default()
    };
    for seed in 0..300u64 {
        let events = linearizable_appends(seed);
        let ops = Operations::from_events("generated", &events, &[]).expect("well formed");
        let got = check_linearizable(&ops, ModelKind::Kv, &opts)
            .expect("kv ops")
            .verdict;
        assert_eq!(got.kind(), VerdictKind::Valid, "seed {seed}: {got:?}");
    }
}

/// The search's known limit: a linearizable history of 131 operations (6
/// processes, appends, puts and gets on one key) that it cannot finish
/// within the default 4 GiB memory bound (a minute of search). Under a
/// 256 MiB bound, so that it runs in every test run, it must end Unknown
/// at the bound, never Invalid.
#[test]
fn a_hard_history_of_appends_ends_unknown_never_invalid() {
    let events = linearizable_appends(1021190378712797720);
    let ops = Operations::from_events("generated", &events, &[]).expect("well formed");
    let opts = CheckOptions {
        threads: 1,
        memory_limit_bytes: 256 << 20,
        ..CheckOptions::default()
    };
    let got = check_linearizable(&ops, ModelKind::Kv, &opts)
        .expect("kv ops")
        .verdict;
    assert_ne!(got.kind(), VerdictKind::Invalid, "{got:?}");
}
