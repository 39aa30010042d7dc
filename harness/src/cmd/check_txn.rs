//! `faultline check --model list-append|rw-register`: transactional
//! isolation of history files (Elle's checks, faultline_checker::txn).
//!
//! Each file is read in its format, its events fed one at a time to the
//! transactional history builder, and checked against
//! `--consistency-models` (default strict-serializable). Prints the
//! verdict, the anomalies with their explanations and the models ruled out
//! (text, or one JSON object per file with `--json`); `--html` draws each
//! cycle. Exit codes as `faultline check`.

use super::check::Args;
use crate::exit::{bad_input, Exit};
use anyhow::Context;
use faultline_checker::format::{read_events, Format};
use faultline_checker::txn::{self, TxnHistoryBuilder, TxnModel, TxnOptions};
use faultline_checker::{CheckError, HistoryError, Verdict, VerdictKind};
use std::path::PathBuf;

pub fn run(args: &Args, model: TxnModel, format: Option<Format>) -> anyhow::Result<Exit> {
    let consistency_models = match &args.consistency_models {
        Some(list) => TxnOptions::parse_models(list)
            .map_err(|e| bad_input(format!("--consistency-models: {e}")))?,
        None => TxnOptions::default().consistency_models,
    };
    let opts = TxnOptions {
        consistency_models,
        time_limit: args.time_limit,
        ..TxnOptions::default()
    };
    let mut worst = Exit::Valid;
    for (i, file) in args.files.iter().enumerate() {
        let name = file.display().to_string();
        let reader = std::fs::File::open(file)
            .map_err(|e| bad_input(format!("{name}: cannot read: {e}")))?;
        // Events go straight from the reader to the builder: the file is
        // never held in memory, only the compact history.
        let mut builder = TxnHistoryBuilder::new(&name, model);
        let mut refused: Option<CheckError> = None;
        let read = read_events(
            &name,
            std::io::BufReader::new(reader),
            format,
            |event, line| {
                builder.push(&event, line).map_err(|e| match e {
                    CheckError::History(h) => h,
                    other => {
                        refused = Some(other);
                        HistoryError::Empty(String::new())
                    }
                })
            },
        );
        let format_name = match (read, refused) {
            (_, Some(e)) => return Err(bad_input(e.to_string())),
            (Err(e), None) => return Err(bad_input(e.to_string())),
            (Ok(f), None) => f.name(),
        };
        let h = builder.finish().map_err(|e| bad_input(e.to_string()))?;
        let (result, stats) = txn::result(&h, model, &opts).map_err(|e| match e {
            CheckError::History(_) | CheckError::Op { .. } | CheckError::UnknownName { .. } => {
                bad_input(format!("{name}: {e}"))
            }
        })?;
        let exit = match result.verdict.kind() {
            VerdictKind::Valid => Exit::Valid,
            VerdictKind::Invalid => Exit::Invalid,
            VerdictKind::Unknown => Exit::Unknown,
        };
        worst = worst.max(exit);
        if args.json {
            let obj = serde_json::json!({
                "file": name,
                "format": format_name,
                "checked": format!("model {model}"),
                "transactions": stats.txns,
                "verdict": result.verdict.kind(),
                "results": [result],
            });
            crate::outln!(
                "{}",
                serde_json::to_string(&obj).context("serializing the verdict")?
            );
        } else {
            crate::outln!(
                "{name}: {} ({format_name}, {} transactions, model {model})",
                result.verdict.kind(),
                stats.txns
            );
            crate::outln!(
                "  {:<17} {:<8} {}",
                result.name,
                result.verdict.kind().to_string(),
                result.summary
            );
            match &result.verdict {
                Verdict::Invalid { witness } => {
                    for line in witness.to_string().lines() {
                        crate::outln!("    {line}");
                    }
                }
                Verdict::Unknown { reason } => crate::outln!("    {reason}"),
                Verdict::Valid => {}
            }
        }
        if let Some(path) = &args.html {
            let path = if args.files.len() == 1 {
                path.clone()
            } else {
                let stem = path
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| "cycles".into());
                path.with_file_name(format!("{stem}-{}.html", i + 1))
            };
            write_page(&path, &txn::html::render(&name, &result))?;
        }
    }
    Ok(worst)
}

fn write_page(path: &PathBuf, page: &str) -> anyhow::Result<()> {
    std::fs::write(path, page).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "wrote the cycles page");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::code_for;

    fn args(files: Vec<PathBuf>, models: Option<&str>) -> Args {
        Args {
            model: Some("list-append".into()),
            initial_value: None,
            nil_reads: None,
            workload: None,
            consistency_models: models.map(str::to_string),
            format: None,
            no_partition: false,
            time_limit: None,
            memory_limit_mib: 64,
            json: false,
            html: None,
            files,
        }
    }

    #[test]
    fn edn_txn_histories_check_to_jepsen_exit_codes() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Read skew: T2 sees y's append but not x's.
        let skew = r#"{:type :invoke, :f :txn, :value [[:append :x 1] [:append :y 1]], :process 0, :index 0}
{:type :invoke, :f :txn, :value [[:r :x nil] [:r :y nil]], :process 1, :index 1}
{:type :ok, :f :txn, :value [[:append :x 1] [:append :y 1]], :process 0, :index 2}
{:type :ok, :f :txn, :value [[:r :x []] [:r :y [1]]], :process 1, :index 3}
"#;
        let file = dir.path().join("skew.edn");
        std::fs::write(&file, skew).expect("write");
        assert_eq!(
            code_for(&super::super::check::run(args(vec![file.clone()], None))),
            1
        );
        let mut a = args(vec![file.clone()], Some("read-committed"));
        a.html = Some(dir.path().join("c.html"));
        assert_eq!(
            code_for(&super::super::check::run(a)),
            0,
            "read committed allows read skew"
        );
        let mut a = args(vec![file.clone()], None);
        a.html = Some(dir.path().join("c.html"));
        assert_eq!(code_for(&super::super::check::run(a)), 1);
        let page = std::fs::read_to_string(dir.path().join("c.html")).expect("page");
        assert!(page.contains("G-single") && page.contains("<svg"));
        let r = super::super::check::run(args(vec![file.clone()], Some("serialisable")));
        assert_eq!(code_for(&r), 254, "unknown model");
        let bad = dir.path().join("bad.edn");
        std::fs::write(
            &bad,
            "{:type :invoke, :f :txn, :value [[:w :x 1]], :process 0}\n",
        )
        .expect("write");
        let r = super::super::check::run(args(vec![bad], None));
        assert_eq!(code_for(&r), 254, "a write in list-append is bad input");
        assert!(format!("{:#}", r.unwrap_err()).contains("micro-op 1"));
    }
}
