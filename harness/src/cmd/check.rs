//! `faultline check`: check history files for linearizability and the
//! workloads' invariants.
//!
//! Each file (or run directory: its history.edn or history.jsonl) is
//! streamed in its format (detected, or `--format`), its operations paired
//! as they are read, and checked either against one `--model`
//! (linearizability) or by the checkers of its workload (`--workload`, or
//! guessed from the operations). Prints a verdict per file (text, or one
//! JSON object per file with `--json`), optionally draws the first
//! failing window as HTML (`--html`), and exits with the worst verdict:
//! 0 valid, 1 invalid, 2 unknown; 254 for unreadable, empty or malformed
//! input. A history with no client operation (only nemesis events), or
//! whose operations all failed, is valid: nothing had to be linearized.

use crate::exit::{bad_input, Exit};
use crate::parse;
use anyhow::Context;
use faultline_checker::format::{edn, Format};
use faultline_checker::history::Value;
use faultline_checker::model::{ModelOptions, NilReads};
use faultline_checker::{
    check_model, check_workload, html, CheckError, CheckOptions, ModelKind, Operations, Report,
    Verdict, VerdictKind, Workload,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check linearizability against this model: register, cas-register,
    /// kv, multi-register, mutex, lock, set, counter, queue; or
    /// transactional isolation: list-append, rw-register. Without it, the
    /// checkers of the workload run (see --workload).
    #[arg(long, value_parser = model_names())]
    pub model: Option<String>,
    /// With --model list-append|rw-register: the consistency models the
    /// history should satisfy, comma-separated (default
    /// strict-serializable; e.g. serializable, snapshot-isolation,
    /// repeatable-read, read-committed).
    #[arg(long, value_name = "M,...")]
    pub consistency_models: Option<String>,
    /// Registers start at this value (register, cas-register, kv per key,
    /// multi-register), written in EDN or JSON: 0, "x", :x. Without it they
    /// start empty (nil). Knossos's cas-register tests start at 0.
    #[arg(long, value_name = "VALUE")]
    pub initial_value: Option<String>,
    /// What an ok read of nil means. absent (the default): the register
    /// held no value; so a nil read after an acknowledged write is a lost
    /// write or a stale read, which faultline's recorder (it writes null
    /// only for a missing key) and Porcupine mean and which is the stricter
    /// check. unknown: the read's value is not known and constrains
    /// nothing, as Knossos reads it (its histories record nil for reads
    /// whose value the client never got); use it to get Knossos's verdicts.
    #[arg(long, value_enum, value_name = "MEANING")]
    pub nil_reads: Option<NilReadsArg>,
    /// Run the checkers of this workload: register, kv, set, counter, lock.
    /// Guessed from the operations when neither --model nor --workload.
    #[arg(long, conflicts_with = "model", value_parser = parse::names(Workload::ALL))]
    pub workload: Option<String>,
    /// Input format: jsonl, edn, jepsen-log (detected when absent).
    #[arg(long, value_parser = parse::names(Format::ALL))]
    pub format: Option<String>,
    /// Check a keyed history whole, as one map, instead of key by key.
    #[arg(long)]
    pub no_partition: bool,
    /// Give up with `unknown` after this long per file (60s, 2m, 500ms).
    #[arg(long, value_parser = parse::duration)]
    pub time_limit: Option<Duration>,
    /// Give up with `unknown` once the search's memo holds this many MiB.
    #[arg(long, default_value_t = 4096)]
    pub memory_limit_mib: usize,
    /// Print one JSON object per file instead of text.
    #[arg(long)]
    pub json: bool,
    /// Draw each file's timeline, failing window highlighted, as a
    /// self-contained HTML page (FILE; with several inputs FILE-<n>.html).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// History files, or run directories (a Jepsen store's
    /// store/<test>/<time>/, a faultline run): their history.edn or
    /// history.jsonl is read.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// `--model`: the linearizability models, then the transactional ones.
fn model_names() -> clap::builder::PossibleValuesParser {
    let models = ModelKind::ALL.map(|m| m.to_string());
    let txn = faultline_checker::txn::TxnModel::ALL.map(|m| m.to_string());
    parse::names(models.into_iter().chain(txn))
}

/// `--nil-reads`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum NilReadsArg {
    Absent,
    Unknown,
}

/// `--initial-value` and `--nil-reads`, checked against the model that
/// will use them.
fn model_options(args: &Args, model: Option<ModelKind>) -> anyhow::Result<ModelOptions> {
    let model = model.or_else(|| {
        let workload = args.workload.as_ref()?.parse::<Workload>().ok()?;
        workload.model()
    });
    let given = args.initial_value.is_some() || args.nil_reads.is_some();
    if given && !model.is_some_and(ModelKind::has_registers) {
        return Err(bad_input(
            "--initial-value and --nil-reads need a register model: --model register, cas-register, kv or multi-register (or --workload register or kv)",
        ));
    }
    let initial_value = match &args.initial_value {
        Some(text) => Some(initial_value(text).map_err(bad_input)?),
        None => None,
    };
    Ok(ModelOptions {
        initial_value,
        nil_reads: match args.nil_reads {
            Some(NilReadsArg::Unknown) => NilReads::Unknown,
            Some(NilReadsArg::Absent) | None => NilReads::Absent,
        },
    })
}

/// One EDN (or JSON) value: `0`, `"x"`, `:x`, `nil` (`null` too).
fn initial_value(text: &str) -> Result<Value, String> {
    if text.trim() == "null" {
        return Ok(Value::Null);
    }
    let forms = edn::parse_all("--initial-value", text).map_err(|e| e.to_string())?;
    match <[_; 1]>::try_from(forms) {
        Ok([(_, v)]) => Ok(v.into_json()),
        Err(_) => Err(format!(
            "--initial-value {text:?}: expected one value (0, \"x\", :x, nil)"
        )),
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let format = match &args.format {
        Some(f) => Some(f.parse::<Format>().map_err(bad_input)?),
        None => None,
    };
    if let Some(txn_model) = args
        .model
        .as_deref()
        .and_then(|m| m.parse::<faultline_checker::txn::TxnModel>().ok())
    {
        if args.initial_value.is_some() || args.nil_reads.is_some() {
            return Err(bad_input(
                "--initial-value and --nil-reads are for register models, not list-append or rw-register",
            ));
        }
        return super::check_txn::run(&args, txn_model, format);
    }
    if args.consistency_models.is_some() {
        return Err(bad_input(
            "--consistency-models needs --model list-append or rw-register",
        ));
    }
    let model = match &args.model {
        Some(m) => Some(
            m.parse::<ModelKind>()
                .map_err(|e| bad_input(format!("{e}, list-append, rw-register")))?,
        ),
        None => None,
    };
    let workload = match &args.workload {
        Some(w) => Some(
            w.parse::<Workload>()
                .map_err(|e| bad_input(e.to_string()))?,
        ),
        None => None,
    };
    let opts = CheckOptions {
        partition: !args.no_partition,
        time_limit: args.time_limit,
        memory_limit_bytes: args.memory_limit_mib.saturating_mul(1 << 20),
        threads: 0,
        model_options: model_options(&args, model)?,
    };
    let mut worst = Exit::Valid;
    for (i, file) in args.files.iter().enumerate() {
        let (name, ops, format) = read(file, format)?;
        let (what, report) = match (model, workload) {
            (Some(m), _) => (format!("model {m}"), check_model(&ops, m, &opts)),
            (None, w) => {
                let w = w.unwrap_or_else(|| Workload::infer(&ops));
                (format!("workload {w}"), check_workload(&ops, w, &opts))
            }
        };
        let report = report.map_err(|e| match e {
            CheckError::History(_) | CheckError::Op { .. } | CheckError::UnknownName { .. } => {
                bad_input(format!("{name}: {e}"))
            }
        })?;
        let exit = match report.verdict {
            VerdictKind::Valid => Exit::Valid,
            VerdictKind::Invalid => Exit::Invalid,
            VerdictKind::Unknown => Exit::Unknown,
        };
        worst = worst.max(exit);
        if args.json {
            let obj = serde_json::json!({
                "file": name,
                "format": format.name(),
                "checked": what,
                "operations": ops.ops.len(),
                "faults": ops.faults.len(),
                "verdict": report.verdict,
                "results": report.results,
            });
            crate::outln!(
                "{}",
                serde_json::to_string(&obj).context("serializing the verdict")?
            );
        } else {
            print_text(&name, format.name(), &what, &ops, &report);
        }
        if let Some(path) = &args.html {
            let path = if args.files.len() == 1 {
                path.clone()
            } else {
                numbered(path, i + 1)
            };
            let page = html::render(&name, &ops, &report);
            std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(path = %path.display(), "wrote the timeline");
        }
    }
    Ok(worst)
}

/// The history files a run directory may hold, in the order looked for:
/// Jepsen's store (`store/<test>/<time>/history.edn`) and faultline's.
const RUN_HISTORIES: [&str; 2] = ["history.edn", "history.jsonl"];

/// Reads one history (a file, or a run directory's history), streaming:
/// its name for messages, its operations and its format.
fn read(path: &Path, format: Option<Format>) -> anyhow::Result<(String, Operations, Format)> {
    let mut path = path.to_path_buf();
    if path.is_dir() {
        let found = RUN_HISTORIES
            .iter()
            .map(|h| path.join(h))
            .find(|p| p.is_file());
        path = found.ok_or_else(|| {
            bad_input(format!(
                "{}: a directory without a history: expected {} in it (a Jepsen or faultline run directory)",
                path.display(),
                RUN_HISTORIES.join(" or ")
            ))
        })?;
    }
    let name = path.display().to_string();
    let file =
        std::fs::File::open(&path).map_err(|e| bad_input(format!("{name}: cannot read: {e}")))?;
    let (ops, format) =
        Operations::read(&name, file, format).map_err(|e| bad_input(e.to_string()))?;
    Ok((name, ops, format))
}

/// ", N nemesis events, M audit entries" (either left out when none): the
/// nodes' audit entries ride in the history as nemesis-process events, but
/// they are not faults (as results.json's `stats.nemesis_events` counts).
fn event_counts(ops: &Operations) -> String {
    let audit = ops
        .faults
        .iter()
        .filter(|f| {
            f.f == faultline_results::audit::AUDIT_F || f.f == faultline_results::audit::AUDIT_LOG_F
        })
        .count();
    let plural = |n: usize, one: &str, many: &str| match n {
        0 => String::new(),
        1 => format!(", 1 {one}"),
        n => format!(", {n} {many}"),
    };
    plural(ops.faults.len() - audit, "nemesis event", "nemesis events")
        + &plural(audit, "audit entry", "audit entries")
}

fn print_text(name: &str, format: &str, what: &str, ops: &Operations, report: &Report) {
    let faults = event_counts(ops);
    crate::outln!(
        "{name}: {} ({format}, {} operations{faults}, {what})",
        report.verdict,
        ops.ops.len()
    );
    for r in &report.results {
        crate::outln!(
            "  {:<17} {:<8} {}",
            r.name,
            r.verdict.kind().to_string(),
            r.summary
        );
        match &r.verdict {
            Verdict::Invalid { witness } => {
                for line in witness.to_string().lines() {
                    crate::outln!("    {line}");
                }
            }
            Verdict::Unknown { reason } => crate::outln!("    {reason}"),
            Verdict::Valid => {}
        }
    }
}

fn numbered(path: &Path, n: usize) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "timeline".into());
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_string())
        .unwrap_or_else(|| "html".into());
    path.with_file_name(format!("{stem}-{n}.{ext}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_for;

    fn args(files: Vec<PathBuf>) -> Args {
        Args {
            model: None,
            initial_value: None,
            nil_reads: None,
            workload: None,
            consistency_models: None,
            format: None,
            no_partition: false,
            time_limit: None,
            memory_limit_mib: 64,
            json: true,
            html: None,
            files,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("temp file");
        p
    }

    /// The nodes' audit entries are nemesis-process events in the
    /// history, but `check` must not count them as faults.
    #[test]
    fn audit_entries_are_counted_apart_from_nemesis_events() {
        let text = [
            r#"{"index":0,"process":0,"type":"invoke","f":"write","value":1,"time":1}"#,
            r#"{"index":1,"process":"nemesis","type":"info","f":"start-partition","value":null,"time":2}"#,
            r#"{"index":2,"process":"nemesis","type":"info","f":"audit","value":{},"time":3}"#,
            r#"{"index":3,"process":"nemesis","type":"info","f":"audit","value":{},"time":4}"#,
            r#"{"index":4,"process":"nemesis","type":"info","f":"audit-log","value":{},"time":5}"#,
            r#"{"index":5,"process":0,"type":"ok","f":"write","value":1,"time":6}"#,
        ]
        .join("\n");
        let (ops, _) =
            Operations::read("h", text.as_bytes(), Some(Format::Jsonl)).expect("a history");
        assert_eq!(event_counts(&ops), ", 1 nemesis event, 3 audit entries");
        let (none, _) = Operations::read(
            "h",
            text.lines().next().expect("a line").as_bytes(),
            Some(Format::Jsonl),
        )
        .expect("a history");
        assert_eq!(event_counts(&none), "");
    }

    #[test]
    fn exit_codes_follow_the_verdict_and_bad_input_is_254() {
        let dir = tempfile::tempdir().expect("temp dir");
        let ev = |i: u64, p: u64, t: &str, f: &str, v: &str| {
            format!("{{\"index\":{i},\"time\":{i},\"process\":{p},\"type\":\"{t}\",\"f\":\"{f}\",\"value\":{v}}}\n")
        };
        let valid = [
            ev(0, 1, "invoke", "write", "1"),
            ev(1, 1, "ok", "write", "1"),
            ev(2, 2, "invoke", "read", "null"),
            ev(3, 2, "ok", "read", "1"),
        ]
        .concat();
        let invalid = [
            ev(0, 1, "invoke", "write", "1"),
            ev(1, 1, "ok", "write", "1"),
            ev(2, 2, "invoke", "read", "null"),
            ev(3, 2, "ok", "read", "2"),
        ]
        .concat();
        let orphan = ev(0, 1, "ok", "write", "1");
        let v = write(dir.path(), "v.jsonl", &valid);
        let i = write(dir.path(), "i.jsonl", &invalid);
        assert_eq!(code_for(&run(args(vec![v.clone()]))), 0);
        let mut a = args(vec![v.clone(), i.clone()]);
        a.html = Some(dir.path().join("t.html"));
        assert_eq!(code_for(&run(a)), 1, "the worst verdict wins");
        assert!(dir.path().join("t-2.html").exists(), "one page per input");
        let e = write(dir.path(), "e.log", "");
        assert_eq!(code_for(&run(args(vec![e]))), 254, "empty history");
        let o = write(dir.path(), "o.jsonl", &orphan);
        let r = run(args(vec![o]));
        assert_eq!(code_for(&r), 254, "completion without invoke");
        assert!(
            format!("{:#}", r.unwrap_err()).contains("o.jsonl:1"),
            "names file and line"
        );
        assert_eq!(code_for(&run(args(vec![dir.path().join("missing")]))), 254);
        let mut m = args(vec![v]);
        m.model = Some("no-such-model".into());
        assert_eq!(code_for(&run(m)), 254);
    }

    #[test]
    fn nothing_to_linearize_is_valid_and_only_blank_input_is_254() {
        let dir = tempfile::tempdir().expect("temp dir");
        let failed = "{:process 0, :type :invoke, :f :write, :value 1}\n{:process 0, :type :fail, :f :write, :value 1}\n";
        let faults = "{:process :nemesis, :type :info, :f :start, :value nil}\n{:process :nemesis, :type :info, :f :stop, :value nil}\n";
        for (name, text) in [("failed.edn", failed), ("faults.edn", faults)] {
            let f = write(dir.path(), name, text);
            assert_eq!(code_for(&run(args(vec![f.clone()]))), 0, "{name}");
            let mut m = args(vec![f]);
            m.model = Some("cas-register".into());
            assert_eq!(code_for(&run(m)), 0, "{name} with --model");
        }
        for blank in ["", "\n\n", "[]"] {
            let f = write(dir.path(), "blank.edn", blank);
            assert_eq!(code_for(&run(args(vec![f]))), 254, "{blank:?}");
        }
    }

    #[test]
    fn a_run_directory_is_read_through_its_history_and_a_readme_is_not_a_history() {
        let dir = tempfile::tempdir().expect("temp dir");
        let run_dir = dir.path().join("store/etcd/20240101T000000.000Z");
        std::fs::create_dir_all(&run_dir).expect("run dir");
        write(
            &run_dir,
            "history.edn",
            "{:index 0, :type :invoke, :process 0, :f :write, :value 1}\n{:index 1, :type :ok, :process 0, :f :write, :value 1}\n{:index 2, :type :invoke, :process 1, :f :read, :value nil}\n{:index 3, :type :ok, :process 1, :f :read, :value 2}\n",
        );
        assert_eq!(
            code_for(&run(args(vec![run_dir.clone()]))),
            1,
            "read 2 after write 1"
        );
        let r = run(args(vec![dir.path().to_path_buf()]));
        assert_eq!(code_for(&r), 254, "no history in it");
        assert!(format!("{:#}", r.unwrap_err()).contains("history.edn or history.jsonl"));
        let readme = write(dir.path(), "README.md", "# faultline\n\nA harness.\n");
        let r = run(args(vec![readme]));
        assert_eq!(code_for(&r), 254);
        let msg = format!("{:#}", r.unwrap_err());
        assert!(
            msg.contains("not a history") && msg.contains("# faultline"),
            "{msg}"
        );
    }

    #[test]
    fn initial_value_and_nil_reads_reach_the_model_and_only_register_models_take_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Knossos's view: the register starts at 0 and a nil read is unknown.
        let text = "{:process 0, :type :invoke, :f :cas, :value [0 1]}\n{:process 0, :type :ok, :f :cas, :value [0 1]}\n\
                    {:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value nil}\n";
        let f = write(dir.path(), "k.edn", text);
        let with = |initial: Option<&str>, nil: Option<NilReadsArg>, model: &str| {
            let mut a = args(vec![f.clone()]);
            a.model = Some(model.into());
            a.initial_value = initial.map(String::from);
            a.nil_reads = nil;
            code_for(&run(a))
        };
        assert_eq!(with(None, None, "cas-register"), 1, "cas from nil");
        assert_eq!(
            with(Some("0"), None, "cas-register"),
            1,
            "the nil read after it"
        );
        assert_eq!(
            with(Some("0"), Some(NilReadsArg::Unknown), "cas-register"),
            0
        );
        assert_eq!(
            with(Some("0"), Some(NilReadsArg::Absent), "cas-register"),
            1
        );
        assert_eq!(with(Some("0"), None, "set"), 254, "a set has no registers");
        assert_eq!(with(None, Some(NilReadsArg::Unknown), "counter"), 254);
        assert_eq!(with(Some("[1"), None, "cas-register"), 254, "not one value");
        assert_eq!(initial_value(":x").expect("edn"), Value::from("x"));
        assert_eq!(initial_value("null").expect("json null"), Value::Null);
        assert_eq!(
            initial_value("\"x y\"").expect("string"),
            Value::from("x y")
        );
        assert!(initial_value("1 2").is_err());
    }
}
