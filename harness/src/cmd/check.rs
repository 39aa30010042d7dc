//! `faultline check`: check history files for linearizability and the
//! workloads' invariants.
//!
//! Each file is read in its format (detected, or `--format`), its
//! operations paired, and checked either against one `--model`
//! (linearizability) or by the checkers of its workload (`--workload`, or
//! guessed from the operations). Prints a verdict per file (text, or one
//! JSON object per file with `--json`), optionally draws the first
//! failing window as HTML (`--html`), and exits with the worst verdict:
//! 0 valid, 1 invalid, 2 unknown; 254 for unreadable or malformed input.

use crate::exit::{bad_input, Exit};
use crate::parse;
use anyhow::Context;
use faultline_checker::format::{read_history, Format};
use faultline_checker::{
    check_model, check_workload, html, CheckError, CheckOptions, ModelKind, Operations, Report,
    Verdict, VerdictKind, Workload,
};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check linearizability against this model: register, cas-register,
    /// kv, mutex, lock, set, counter, queue. Without it, the checkers of
    /// the workload run (see --workload).
    #[arg(long)]
    pub model: Option<String>,
    /// Run the checkers of this workload: register, kv, set, counter, lock.
    /// Guessed from the operations when neither --model nor --workload.
    #[arg(long, conflicts_with = "model")]
    pub workload: Option<String>,
    /// Input format: jsonl, edn, jepsen-log (detected when absent).
    #[arg(long)]
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
    /// History files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let format = match &args.format {
        Some(f) => Some(f.parse::<Format>().map_err(bad_input)?),
        None => None,
    };
    let model = match &args.model {
        Some(m) => Some(
            m.parse::<ModelKind>()
                .map_err(|e| bad_input(e.to_string()))?,
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
    };
    let mut worst = Exit::Valid;
    for (i, file) in args.files.iter().enumerate() {
        let name = file.display().to_string();
        let text =
            std::fs::read(file).map_err(|e| bad_input(format!("{name}: cannot read: {e}")))?;
        let text = String::from_utf8_lossy(&text);
        let history = read_history(&name, &text, format).map_err(|e| bad_input(e.to_string()))?;
        let ops = Operations::from_events(&name, &history.events, &history.lines)
            .map_err(|e| bad_input(e.to_string()))?;
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
        let format_name = history.format.map(|f| f.name()).unwrap_or("?");
        if args.json {
            let obj = serde_json::json!({
                "file": name,
                "format": format_name,
                "checked": what,
                "operations": ops.ops.len(),
                "verdict": report.verdict,
                "results": report.results,
            });
            println!(
                "{}",
                serde_json::to_string(&obj).context("serializing the verdict")?
            );
        } else {
            print_text(&name, format_name, &what, &ops, &report);
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

fn print_text(name: &str, format: &str, what: &str, ops: &Operations, report: &Report) {
    println!(
        "{name}: {} ({format}, {} operations, {what})",
        report.verdict,
        ops.ops.len()
    );
    for r in &report.results {
        println!(
            "  {:<17} {:<8} {}",
            r.name,
            r.verdict.kind().to_string(),
            r.summary
        );
        match &r.verdict {
            Verdict::Invalid { witness } => {
                for line in witness.to_string().lines() {
                    println!("    {line}");
                }
            }
            Verdict::Unknown { reason } => println!("    {reason}"),
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
            workload: None,
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
}
