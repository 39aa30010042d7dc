//! Histories as Jepsen and Knossos write them, read and judged as Knossos
//! would: every EDN shape gives the same operations and verdict, and each
//! of the register semantics (initial value, nil reads) has a history that
//! changes verdict with it, so a checker that ignored the option fails.

use faultline_checker::model::{ModelOptions, NilReads};
use faultline_checker::{check_model, CheckOptions, ModelKind, Operations, VerdictKind};

fn read(text: &str) -> Operations {
    Operations::read("h.edn", text.as_bytes(), None)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .0
}

fn verdict(text: &str, model: ModelKind, options: ModelOptions) -> VerdictKind {
    let opts = CheckOptions {
        model_options: options,
        ..CheckOptions::default()
    };
    let ops = read(text);
    check_model(&ops, model, &opts)
        .expect("fits the model")
        .verdict
}

fn knossos() -> ModelOptions {
    ModelOptions {
        nil_reads: NilReads::Unknown,
        ..ModelOptions::default()
    }
}

fn starting_at(v: i64) -> ModelOptions {
    ModelOptions {
        initial_value: Some(v.into()),
        ..ModelOptions::default()
    }
}

/// A cas-register history, valid, as op maps (one a string).
const OPS: [&str; 8] = [
    "{:process 0, :type :invoke, :f :write, :value 1}",
    "{:process 1, :type :invoke, :f :read, :value nil}",
    "{:process 0, :type :ok, :f :write, :value 1}",
    "{:process 1, :type :ok, :f :read, :value 1}",
    "{:process 0, :type :invoke, :f :cas, :value [1 2]}",
    "{:process 0, :type :ok, :f :cas, :value [1 2]}",
    "{:process 1, :type :invoke, :f :read, :value nil}",
    "{:process 1, :type :ok, :f :read, :value 2}",
];

fn shapes(ops: &[&str]) -> Vec<(&'static str, String)> {
    let lines = ops.join("\n");
    let tagged: Vec<String> = ops
        .iter()
        .map(|o| format!("#jepsen.history.Op{o}"))
        .collect();
    let indexed: Vec<String> = ops
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{{:index {i}, :time {}, {}", i * 1000, &o[1..]))
        .collect();
    vec![
        ("one map a line", lines.clone()),
        ("a vector", format!("[{}]", ops.join("\n "))),
        ("a list", format!("({})", ops.join(" "))),
        ("a seq printed on one line", format!("({})", ops.join(", "))),
        ("tagged records, one a line", tagged.join("\n")),
        ("tagged records in a vector", format!("[{}]", tagged.join(" "))),
        ("Jepsen 0.3 with :index and :time", indexed.join("\n")),
        (
            "comments and discards anywhere",
            format!(
                "; a history\n#_ {{:process 9, :type :invoke, :f :write, :value 9}}\n[{} ; trailing\n #_#_ :a :b {}]\n",
                ops[..4].join(" #_ 1 "),
                ops[4..].join("\n;c\n")
            ),
        ),
    ]
}

#[test]
fn every_edn_shape_gives_the_same_operations_and_verdict() {
    let broken: Vec<&str> = OPS[..7]
        .iter()
        .copied()
        .chain(["{:process 1, :type :ok, :f :read, :value 1}"])
        .collect();
    for ((shape, text), (_, bad)) in shapes(&OPS).into_iter().zip(shapes(&broken)) {
        let ops = read(&text);
        assert_eq!(ops.ops.len(), 4, "{shape}");
        assert_eq!(ops.ops[2].input, serde_json::json!([1, 2]), "{shape}");
        let v = verdict(&text, ModelKind::CasRegister, ModelOptions::default());
        assert_eq!(v, VerdictKind::Valid, "{shape}:\n{text}");
        let v = verdict(&bad, ModelKind::CasRegister, ModelOptions::default());
        assert_eq!(v, VerdictKind::Invalid, "{shape}, a stale read:\n{bad}");
    }
}

#[test]
fn nemesis_events_are_kept_as_faults_and_never_checked() {
    let text = format!(
        "{}\n{{:process :nemesis, :type :info, :f :start, :value #{{\"n1\" \"n2\"}}}}\n{}\n{{:process :nemesis, :type :info, :f :stop, :value {{:healed true}}}}",
        OPS[..4].join("\n"),
        OPS[4..].join("\n")
    );
    let ops = read(&text);
    assert_eq!(ops.ops.len(), 4);
    assert_eq!(ops.faults.len(), 2);
    assert_eq!(ops.faults[0].value, serde_json::json!(["n1", "n2"]));
    assert_eq!(
        verdict(&text, ModelKind::CasRegister, ModelOptions::default()),
        VerdictKind::Valid
    );
}

#[test]
fn any_scalar_is_a_key_or_a_value() {
    // Keywords, strings, floats, big integers, characters and booleans as
    // values; keyword, string, big integer and float keys: each key its own
    // register, each value equal only to itself.
    let values = [
        ":a",
        "\"a\"",
        "1.5",
        "18446744073709551616N",
        "\\x",
        "true",
        "#{1 2}",
    ];
    for v in values {
        let text = format!(
            "{{:process 0, :type :invoke, :f :write, :key :k, :value {v}}}\n{{:process 0, :type :ok, :f :write, :key :k, :value {v}}}\n\
             {{:process 1, :type :invoke, :f :read, :key :k, :value nil}}\n{{:process 1, :type :ok, :f :read, :key :k, :value {v}}}"
        );
        assert_eq!(
            verdict(&text, ModelKind::CasRegister, ModelOptions::default()),
            VerdictKind::Valid,
            "{v}"
        );
        let other = text.replace(
            &format!("read, :key :k, :value {v}"),
            "read, :key :k, :value 7",
        );
        assert_eq!(
            verdict(&other, ModelKind::CasRegister, ModelOptions::default()),
            VerdictKind::Invalid,
            "{v}"
        );
    }
    let keys = [":k", "\"k2\"", "18446744073709551616N", "2.5"];
    let text: String = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            format!(
                "{{:process {i}, :type :invoke, :f :write, :value [{k} {i}]}}\n{{:process {i}, :type :ok, :f :write, :value [{k} {i}]}}\n\
                 {{:process {i}, :type :invoke, :f :read, :value [{k} nil]}}\n{{:process {i}, :type :ok, :f :read, :value [{k} {i}]}}\n"
            )
        })
        .collect();
    let ops = read(&text);
    assert!(
        ops.ops.iter().all(|o| o.key.is_some()),
        "independent tuples split"
    );
    assert_eq!(
        verdict(&text, ModelKind::CasRegister, ModelOptions::default()),
        VerdictKind::Valid
    );
}

const WRITE_1: &str = "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :ok, :f :write, :value 1}\n";

#[test]
fn a_nil_read_after_a_write_is_a_stale_read_when_absent_and_nothing_when_unknown() {
    let text = format!("{WRITE_1}{{:process 1, :type :invoke, :f :read, :value nil}}\n{{:process 1, :type :ok, :f :read, :value nil}}\n");
    for model in [ModelKind::Register, ModelKind::CasRegister] {
        assert_eq!(
            verdict(&text, model, ModelOptions::default()),
            VerdictKind::Invalid,
            "{model}"
        );
        assert_eq!(
            verdict(&text, model, knossos()),
            VerdictKind::Valid,
            "{model}"
        );
    }
}

#[test]
fn a_nil_read_of_a_register_that_starts_at_a_value_follows_nil_reads() {
    let text = "{:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value nil}\n";
    assert_eq!(
        verdict(text, ModelKind::CasRegister, starting_at(0)),
        VerdictKind::Invalid
    );
    let knossos_at_0 = ModelOptions {
        initial_value: Some(0.into()),
        nil_reads: NilReads::Unknown,
    };
    assert_eq!(
        verdict(text, ModelKind::CasRegister, knossos_at_0),
        VerdictKind::Valid
    );
}

#[test]
fn a_first_read_of_the_initial_value_needs_it() {
    let text = "{:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value 0}\n";
    assert_eq!(
        verdict(text, ModelKind::Register, ModelOptions::default()),
        VerdictKind::Invalid
    );
    assert_eq!(
        verdict(text, ModelKind::Register, starting_at(0)),
        VerdictKind::Valid
    );
    assert_eq!(
        verdict(text, ModelKind::Register, starting_at(1)),
        VerdictKind::Invalid
    );
}

#[test]
fn a_cas_from_the_initial_value_needs_it() {
    let text = "{:process 1, :type :invoke, :f :cas, :value [0 5]}\n{:process 1, :type :ok, :f :cas, :value [0 5]}\n";
    assert_eq!(
        verdict(text, ModelKind::CasRegister, ModelOptions::default()),
        VerdictKind::Invalid
    );
    assert_eq!(
        verdict(text, ModelKind::CasRegister, starting_at(0)),
        VerdictKind::Valid
    );
    // Knossos's nil reads change nothing here: a cas is no read.
    assert_eq!(
        verdict(text, ModelKind::CasRegister, knossos()),
        VerdictKind::Invalid
    );
}

#[test]
fn each_key_of_a_kv_starts_at_the_initial_value() {
    let text = "{:process 1, :type :invoke, :f :read, :key \"a\", :value nil}\n{:process 1, :type :ok, :f :read, :key \"a\", :value 0}\n\
                {:process 2, :type :invoke, :f :read, :key \"b\", :value nil}\n{:process 2, :type :ok, :f :read, :key \"b\", :value 0}\n";
    assert_eq!(
        verdict(text, ModelKind::Kv, ModelOptions::default()),
        VerdictKind::Invalid
    );
    assert_eq!(
        verdict(text, ModelKind::Kv, starting_at(0)),
        VerdictKind::Valid
    );
    let whole = CheckOptions {
        partition: false,
        model_options: starting_at(0),
        ..CheckOptions::default()
    };
    let v = check_model(&read(text), ModelKind::Kv, &whole)
        .expect("fits")
        .verdict;
    assert_eq!(v, VerdictKind::Valid, "as one map too");
}

/// Knossos's multi-register test shape: txns of reads and writes over
/// keys, reads seeing the txn's own writes.
#[test]
fn multi_register_txns_are_linearizable_as_a_whole() {
    let txn = |p: u32, kind: &str, value: &str| {
        format!("{{:process {p}, :type :{kind}, :f :txn, :value {value}}}\n")
    };
    let ok = [
        txn(0, "invoke", "[[:write :x 1] [:write :y 1]]"),
        txn(0, "ok", "[[:write :x 1] [:write :y 1]]"),
        txn(1, "invoke", "[[:read :x nil] [:read :y nil]]"),
        txn(2, "invoke", "[[:write :x 2] [:read :x nil]]"),
        txn(1, "ok", "[[:read :x 1] [:read :y 1]]"),
        txn(2, "ok", "[[:write :x 2] [:read :x 2]]"),
    ]
    .concat();
    assert_eq!(
        verdict(&ok, ModelKind::MultiRegister, ModelOptions::default()),
        VerdictKind::Valid
    );
    // A torn read: x from after txn 2, y... both from one moment is
    // required; here x=2 but y=0, which no moment had.
    let torn = ok.replace("[[:read :x 1] [:read :y 1]]", "[[:read :x 2] [:read :y 0]]");
    assert_eq!(
        verdict(&torn, ModelKind::MultiRegister, ModelOptions::default()),
        VerdictKind::Invalid
    );
    assert_eq!(
        verdict(&torn, ModelKind::MultiRegister, starting_at(0)),
        VerdictKind::Invalid
    );
    // Starting at 0, a read of y = 0 before the first txn is fine.
    let early = [
        txn(1, "invoke", "[[:read :y nil]]"),
        txn(1, "ok", "[[:read :y 0]]"),
        ok.clone(),
    ]
    .concat();
    assert_eq!(
        verdict(&early, ModelKind::MultiRegister, ModelOptions::default()),
        VerdictKind::Invalid
    );
    assert_eq!(
        verdict(&early, ModelKind::MultiRegister, starting_at(0)),
        VerdictKind::Valid
    );
    // A nil read after both writes: stale when absent, nothing when unknown.
    let nil = [
        ok,
        txn(3, "invoke", "[[:read :x nil]]"),
        txn(3, "ok", "[[:read :x nil]]"),
    ]
    .concat();
    assert_eq!(
        verdict(&nil, ModelKind::MultiRegister, ModelOptions::default()),
        VerdictKind::Invalid
    );
    assert_eq!(
        verdict(&nil, ModelKind::MultiRegister, knossos()),
        VerdictKind::Valid
    );
}
