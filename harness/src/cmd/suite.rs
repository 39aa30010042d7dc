//! `faultline suite FILE.toml`: run a matrix of tests (workloads × nemeses
//! × consensus × repeats with shared options, see
//! `faultline_results::suite`), go on after failures, print a summary
//! table, write `--junit FILE`, and exit with the worst result (255 over
//! 254 over 2 over 1 over 0, as Jepsen's test-all does).
//!
//! Every case is checked up front (a bad option in the file exits 254
//! before anything runs). Each case then runs as a child process,
//! `faultline test … --json`, so a crashing run cannot take the suite down
//! and its exit code is the case's result; its stderr streams through, and
//! its report is built if the run did not build one.

use crate::exit::{bad_input, Exit};
use anyhow::Context;
use clap::Parser;
use faultline_results::suite::{
    run_suite, worst_exit, CaseResult, CaseRunner, SuiteCase, SuiteSpec,
};
use faultline_results::RunResults;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The suite file (TOML).
    pub file: PathBuf,
    /// Where runs are stored.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Write a JUnit XML file of the results (one test case per run).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Print the cases and exit without running them.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Parser)]
#[command(name = "faultline test", no_binary_name = true)]
struct TestCli {
    #[command(flatten)]
    args: super::test::Args,
}

/// The `faultline test` arguments of a case, with the suite's store.
fn child_args(case: &SuiteCase, store: &std::path::Path) -> Vec<String> {
    let mut a = case.args.clone();
    a.push("--store".into());
    a.push(store.display().to_string());
    a
}

/// Checks a case's options as `faultline test` would.
fn validate(case: &SuiteCase, store: &std::path::Path) -> anyhow::Result<()> {
    let cli = TestCli::try_parse_from(child_args(case, store))
        .map_err(|e| bad_input(format!("{}: {}", case.label(), e.to_string().trim())))?;
    super::test::plan(&cli.args).map_err(|e| bad_input(format!("{}: {e:#}", case.label())))?;
    Ok(())
}

struct ChildRunner {
    exe: PathBuf,
    store: PathBuf,
}

impl CaseRunner for ChildRunner {
    fn run(&mut self, case: &SuiteCase) -> CaseResult {
        let t0 = Instant::now();
        let mut result = CaseResult {
            case: case.clone(),
            exit_code: 255,
            verdict: None,
            run_dir: None,
            report: None,
            duration_s: 0.0,
            message: String::new(),
        };
        let child = Command::new(&self.exe)
            .arg("test")
            .args(child_args(case, &self.store))
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                result.message = format!("cannot start {}: {e}", self.exe.display());
                return result;
            }
        };
        let stderr = child.stderr.take().expect("stderr is piped");
        let label = case.label();
        let echo = std::thread::spawn(move || {
            let mut tail: std::collections::VecDeque<String> = std::collections::VecDeque::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                crate::errln!("[{label}] {line}");
                if tail.len() == 30 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            Vec::from(tail).join("\n")
        });
        let mut stdout = String::new();
        let _ = child
            .stdout
            .take()
            .expect("stdout is piped")
            .read_to_string(&mut stdout);
        let status = child.wait();
        let tail = echo.join().unwrap_or_default();
        result.duration_s = t0.elapsed().as_secs_f64();
        result.exit_code = match status {
            Ok(s) => s.code().and_then(|c| u8::try_from(c).ok()).unwrap_or(255),
            Err(_) => 255,
        };
        match serde_json::from_str::<RunResults>(&stdout) {
            Ok(r) => {
                result.verdict = Some(r.verdict);
                let report = r.run_dir.join(faultline_results::report::REPORT_FILE);
                if !report.is_file() {
                    if let Err(e) = faultline_results::report::build(&r.run_dir) {
                        tracing::warn!("building the report of {}: {e}", r.run_dir.display());
                    }
                }
                result.report = report.is_file().then_some(report);
                result.run_dir = Some(r.run_dir);
                if result.exit_code != 0 {
                    result.message = r
                        .checkers
                        .iter()
                        .filter(|c| c.verdict != faultline_results::VerdictKind::Valid)
                        .map(|c| format!("{}: {} {}", c.checker, c.verdict.as_str(), c.summary))
                        .collect::<Vec<_>>()
                        .join("\n");
                }
            }
            Err(_) => result.message = tail,
        }
        result
    }
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let spec = SuiteSpec::read(&args.file).map_err(|e| bad_input(e.to_string()))?;
    let name = spec.name_or(&args.file);
    let cases = spec.cases();
    for c in &cases {
        validate(c, &args.store)?;
    }
    if args.dry_run {
        for c in &cases {
            crate::outln!(
                "{}: faultline test {}",
                c.label(),
                child_args(c, &args.store).join(" ")
            );
        }
        return Ok(Exit::Valid);
    }
    let started = chrono::Utc::now();
    let mut runner = ChildRunner {
        exe: std::env::current_exe().context("finding the faultline executable")?,
        store: args.store.clone(),
    };
    let total = cases.len();
    let results = run_suite(&cases, &mut runner, |i, r| {
        crate::errln!(
            "faultline suite {name}: {}/{total} {} → {} (exit {}, {:.1} s)",
            i + 1,
            r.case.label(),
            r.outcome(),
            r.exit_code,
            r.duration_s
        );
    });
    if let Some(path) = &args.junit {
        let xml = faultline_results::junit::junit_xml(&name, &started.to_rfc3339(), &results);
        std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&results).expect("results serialize")
        );
    } else {
        crate::outln!("{}", faultline_results::suite::table(&results));
    }
    let worst = worst_exit(&results);
    crate::outln!("suite {name}: {total} runs, exit {worst}");
    match worst {
        0 => Ok(Exit::Valid),
        1 => Ok(Exit::Invalid),
        2 => Ok(Exit::Unknown),
        254 => Err(bad_input(format!(
            "suite {name}: a run had bad input (exit 254)"
        ))),
        _ => Err(anyhow::anyhow!("suite {name}: a run crashed (exit 255)")),
    }
}
