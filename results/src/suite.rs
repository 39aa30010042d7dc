//! Suites: a matrix of tests from a TOML file, run one after another.
//!
//! ```toml
//! name = "nightly"
//! workloads = ["register", "kv"]
//! nemeses = ["partition", "kill", "partition,kill", "none"]
//! consensus = ["raft", "paxos"]      # optional: left to the default if absent
//! systems = ["faultline", "etcd"]     # optional: faultline if absent; an
//!                                     # adapter file's path is a system too
//! repeats = 2
//! [options]                           # passed to every `faultline test`
//! time-limit = "20s"
//! node-count = 3
//! rate = 100
//! no-iptables = true
//! ```
//!
//! Each case is one `faultline test` with `--system`, `--workload`,
//! `--nemesis`, `--consensus` and
//! `--name [<system>-]<workload>-<nemesis>[-<consensus>]` set by the matrix
//! and the shared options as flags (`key = value` → `--key value`,
//! `key = true` → `--key`). A suite goes on after a failed case and ends
//! with the worst result, as Jepsen's test-all does: 255 over 254 over 2
//! over 1 over 0. Running a case is the caller's job ([`CaseRunner`]): the
//! binary spawns itself, so one crashing run cannot take the suite down.

use crate::run_results::VerdictKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Bad { path: PathBuf, message: String },
}

/// The suite file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub workloads: Vec<String>,
    #[serde(default = "default_nemeses")]
    pub nemeses: Vec<String>,
    #[serde(default)]
    pub consensus: Vec<String>,
    /// Systems under test (`--system`): built-in names or adapter files.
    /// The consensus axis applies to faultline's own node only: another
    /// system runs once per workload and nemesis, without `--consensus`.
    #[serde(default)]
    pub systems: Vec<String>,
    #[serde(default = "one")]
    pub repeats: u32,
    #[serde(default)]
    pub options: toml::Table,
}

fn default_nemeses() -> Vec<String> {
    vec!["none".into()]
}
fn one() -> u32 {
    1
}

/// Flags the matrix sets; the shared options may not.
pub const RESERVED_OPTIONS: [&str; 7] = [
    "workload",
    "nemesis",
    "consensus",
    "system",
    "name",
    "json",
    "store",
];

/// One run of the matrix.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SuiteCase {
    /// The test's name in the store.
    pub test: String,
    /// `--system`, when the suite has a systems axis.
    pub system: Option<String>,
    pub workload: String,
    pub nemesis: String,
    pub consensus: Option<String>,
    /// 1-based.
    pub repeat: u32,
    /// The arguments after `faultline test`.
    pub args: Vec<String>,
}

impl SuiteCase {
    /// `test#repeat`: the case's name in tables and JUnit.
    pub fn label(&self) -> String {
        format!("{}#{}", self.test, self.repeat)
    }
}

impl SuiteSpec {
    pub fn read(path: &Path) -> Result<SuiteSpec, SuiteError> {
        let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        SuiteSpec::parse(path, &text)
    }

    /// Parses and checks a suite; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<SuiteSpec, SuiteError> {
        let bad = |message: String| SuiteError::Bad {
            path: path.to_path_buf(),
            message,
        };
        let spec: SuiteSpec =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim().to_string()))?;
        if spec.workloads.is_empty() {
            return Err(bad("workloads: list at least one workload".into()));
        }
        if spec.nemeses.is_empty() {
            return Err(bad(
                "nemeses: list at least one (\"none\" for no faults)".into()
            ));
        }
        if spec.repeats == 0 || spec.repeats > 1000 {
            return Err(bad(format!("repeats = {}: use 1 to 1000", spec.repeats)));
        }
        for (k, v) in &spec.options {
            if RESERVED_OPTIONS.contains(&k.as_str()) {
                return Err(bad(format!(
                    "options.{k}: set by the suite's matrix or command line, not here"
                )));
            }
            if k.is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(bad(format!(
                    "options.{k}: option names are kebab-case flags of `faultline test`"
                )));
            }
            if option_value(v).is_none() {
                return Err(bad(format!(
                    "options.{k}: use a string, number, boolean or list of those"
                )));
            }
        }
        for (what, list) in [
            ("workloads", &spec.workloads),
            ("nemeses", &spec.nemeses),
            ("consensus", &spec.consensus),
            ("systems", &spec.systems),
        ] {
            if let Some(x) = list
                .iter()
                .find(|x| x.trim().is_empty() || x.starts_with('-'))
            {
                return Err(bad(format!("{what}: {x:?} is not a name")));
            }
        }
        Ok(spec)
    }

    /// The suite's name (its `name`, else the file's stem).
    pub fn name_or(&self, path: &Path) -> String {
        self.name.clone().unwrap_or_else(|| {
            path.file_stem()
                .map_or_else(|| "suite".to_string(), |s| s.to_string_lossy().into_owned())
        })
    }

    /// Every case: systems × workloads × nemeses × consensus × repeats, in
    /// that nesting (consensus for faultline's node only).
    pub fn cases(&self) -> Vec<SuiteCase> {
        let mut shared = Vec::new();
        for (k, v) in &self.options {
            match v {
                toml::Value::Boolean(true) => shared.push(format!("--{k}")),
                toml::Value::Boolean(false) => {}
                v => {
                    shared.push(format!("--{k}"));
                    shared.push(option_value(v).expect("checked by parse"));
                }
            }
        }
        let all_consensus: Vec<Option<String>> = if self.consensus.is_empty() {
            vec![None]
        } else {
            self.consensus.iter().cloned().map(Some).collect()
        };
        let systems: Vec<Option<String>> = if self.systems.is_empty() {
            vec![None]
        } else {
            self.systems.iter().cloned().map(Some).collect()
        };
        let mut out = Vec::new();
        for sys in &systems {
            let own_node = sys.as_deref().is_none_or(|s| s == "faultline");
            let consensus = if own_node {
                all_consensus.clone()
            } else {
                vec![None]
            };
            self.cases_of(sys, &consensus, &shared, &mut out);
        }
        out
    }

    fn cases_of(
        &self,
        sys: &Option<String>,
        consensus: &[Option<String>],
        shared: &[String],
        out: &mut Vec<SuiteCase>,
    ) {
        for w in &self.workloads {
            for n in &self.nemeses {
                for c in consensus {
                    let mut test = String::new();
                    if let Some(s) = sys {
                        test.push_str(&system_label(s));
                        test.push('-');
                    }
                    test.push_str(&format!("{w}-{}", n.replace([',', ' '], "-")));
                    if let Some(c) = c {
                        test.push('-');
                        test.push_str(c);
                    }
                    let test: String = test
                        .chars()
                        .map(|ch| {
                            if ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.') {
                                ch
                            } else {
                                '_'
                            }
                        })
                        .collect();
                    for repeat in 1..=self.repeats {
                        let mut args = Vec::new();
                        if let Some(s) = sys {
                            args.extend(["--system".to_string(), s.clone()]);
                        }
                        args.extend([
                            "--workload".to_string(),
                            w.clone(),
                            "--nemesis".to_string(),
                            n.clone(),
                            "--name".to_string(),
                            test.clone(),
                        ]);
                        if let Some(c) = c {
                            args.extend(["--consensus".to_string(), c.clone()]);
                        }
                        args.extend(shared.iter().cloned());
                        out.push(SuiteCase {
                            test: test.clone(),
                            system: sys.clone(),
                            workload: w.clone(),
                            nemesis: n.clone(),
                            consensus: c.clone(),
                            repeat,
                            args,
                        });
                    }
                }
            }
        }
    }
}

/// A system's part of a test name: its name, or an adapter file's stem
/// (`adapters/redis.toml` → `redis`).
fn system_label(system: &str) -> String {
    if system.ends_with(".toml") || system.contains('/') {
        Path::new(system)
            .file_stem()
            .map_or_else(|| system.to_string(), |s| s.to_string_lossy().into_owned())
    } else {
        system.to_string()
    }
}

fn option_value(v: &toml::Value) -> Option<String> {
    Some(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(a) => a
            .iter()
            .map(option_value)
            .collect::<Option<Vec<_>>>()?
            .join(","),
        _ => return None,
    })
}

/// How one case ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    pub case: SuiteCase,
    /// The exit code of `faultline test` (255 when it died by a signal or
    /// could not be started).
    pub exit_code: u8,
    pub verdict: Option<VerdictKind>,
    pub run_dir: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub duration_s: f64,
    /// Why it failed, for a run with no verdict (the end of its stderr).
    pub message: String,
}

impl CaseResult {
    /// `valid`, `invalid`, `unknown`, `bad input` or `crashed`.
    pub fn outcome(&self) -> &'static str {
        match self.exit_code {
            0 => "valid",
            1 => "invalid",
            2 => "unknown",
            254 => "bad input",
            _ => "crashed",
        }
    }
}

/// Runs one case.
pub trait CaseRunner {
    fn run(&mut self, case: &SuiteCase) -> CaseResult;
}

/// Runs every case, going on after failures; `done` sees each result as it comes.
pub fn run_suite(
    cases: &[SuiteCase],
    runner: &mut dyn CaseRunner,
    mut done: impl FnMut(usize, &CaseResult),
) -> Vec<CaseResult> {
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let r = runner.run(c);
            done(i, &r);
            r
        })
        .collect()
}

/// Rank of an exit code: higher is worse (0 < 1 < 2 < 254 < 255 and anything else).
fn rank(code: u8) -> u8 {
    match code {
        0 => 0,
        1 => 1,
        2 => 2,
        254 => 3,
        _ => 4,
    }
}

/// The suite's exit code: the worst of its cases (0 for none).
pub fn worst_exit(results: &[CaseResult]) -> u8 {
    results
        .iter()
        .map(|r| r.exit_code)
        .max_by_key(|c| rank(*c))
        .map_or(0, |c| if rank(c) == 4 { 255 } else { c })
}

/// The summary table.
pub fn table(results: &[CaseResult]) -> comfy_table::Table {
    use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["test", "run", "result", "exit", "seconds", "report"]);
    for r in results {
        t.add_row(vec![
            r.case.test.clone(),
            r.case.repeat.to_string(),
            r.outcome().to_string(),
            r.exit_code.to_string(),
            format!("{:.1}", r.duration_s),
            r.report
                .as_ref()
                .or(r.run_dir.as_ref())
                .map_or_else(|| "-".to_string(), |p| p.display().to_string()),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r#"
name = "nightly"
workloads = ["register", "kv"]
nemeses = ["partition", "partition,kill"]
consensus = ["raft", "paxos"]
repeats = 2
[options]
time-limit = "20s"
node-count = 3
rate = 12.5
no-iptables = true
json-ish = false
"#;

    #[test]
    fn expands_the_matrix_with_shared_options() {
        let s = SuiteSpec::parse(Path::new("n.toml"), SUITE).expect("parse");
        let cases = s.cases();
        assert_eq!(cases.len(), 2 * 2 * 2 * 2);
        let c = &cases[3];
        assert_eq!(
            (
                c.workload.as_str(),
                c.nemesis.as_str(),
                c.consensus.as_deref(),
                c.repeat
            ),
            ("register", "partition", Some("paxos"), 2)
        );
        assert_eq!(c.test, "register-partition-paxos");
        assert_eq!(cases[4].test, "register-partition-kill-raft");
        assert_eq!(
            cases[4].args[..6],
            [
                "--workload",
                "register",
                "--nemesis",
                "partition,kill",
                "--name",
                "register-partition-kill-raft"
            ]
        );
        let tail = c.args.join(" ");
        assert!(
            tail.ends_with(
                "--consensus paxos --no-iptables --node-count 3 --rate 12.5 --time-limit 20s"
            ),
            "{tail}"
        );
        assert!(!tail.contains("json-ish"));
        assert_eq!(s.name_or(Path::new("x.toml")), "nightly");
    }

    #[test]
    fn a_systems_axis_runs_consensus_for_faultlines_node_only() {
        let s = SuiteSpec::parse(
            Path::new("s.toml"),
            r#"
workloads = ["register"]
nemeses = ["partition"]
consensus = ["raft", "paxos"]
systems = ["faultline", "etcd", "examples/adapters/redis-sentinel.toml"]
[options]
time-limit = "10s"
"#,
        )
        .expect("parse");
        let cases = s.cases();
        assert_eq!(
            cases.iter().map(|c| c.test.as_str()).collect::<Vec<_>>(),
            [
                "faultline-register-partition-raft",
                "faultline-register-partition-paxos",
                "etcd-register-partition",
                "redis-sentinel-register-partition",
            ]
        );
        assert_eq!(cases[2].system.as_deref(), Some("etcd"));
        assert_eq!(
            cases[2].args.join(" "),
            "--system etcd --workload register --nemesis partition \
             --name etcd-register-partition --time-limit 10s"
        );
        assert!(cases[3].args.starts_with(&[
            "--system".into(),
            "examples/adapters/redis-sentinel.toml".into()
        ]));
        assert!(!cases[3].args.contains(&"--consensus".to_string()));
        // Without the axis, names and arguments are as before.
        let plain = SuiteSpec::parse(Path::new("s"), "workloads=[\"kv\"]").expect("parse");
        assert_eq!(plain.cases()[0].system, None);
        assert_eq!(plain.cases()[0].args[0], "--workload");
    }

    #[test]
    fn bad_suites_name_the_file_and_the_problem() {
        for (text, needle) in [
            ("workloads = []", "at least one workload"),
            ("workloads = [\"kv\"]\nrepeats = 0", "repeats = 0"),
            (
                "workloads = [\"kv\"]\n[options]\nname = \"x\"",
                "options.name",
            ),
            (
                "workloads = [\"kv\"]\n[options]\nTime_Limit = 1",
                "kebab-case",
            ),
            (
                "workloads = [\"kv\"]\nnemesis = [\"kill\"]",
                "unknown field",
            ),
            ("workloads = [\"--rm\"]", "not a name"),
            ("workloads = [\"kv\"]\nsystems = [\"\"]", "systems"),
            (
                "workloads = [\"kv\"]\n[options]\nsystem = \"etcd\"",
                "options.system",
            ),
            ("workloads = [", "n.toml"),
        ] {
            let e = SuiteSpec::parse(Path::new("n.toml"), text)
                .expect_err(text)
                .to_string();
            assert!(
                e.starts_with("n.toml: ") && e.contains(needle),
                "{text}: {e}"
            );
        }
    }

    fn result(code: u8) -> CaseResult {
        CaseResult {
            case: SuiteSpec::parse(Path::new("s"), "workloads=[\"kv\"]")
                .expect("parse")
                .cases()
                .remove(0),
            exit_code: code,
            verdict: None,
            run_dir: None,
            report: None,
            duration_s: 0.0,
            message: String::new(),
        }
    }

    #[test]
    fn the_suite_exits_with_the_worst_result_as_jepsen_does() {
        let w = |codes: &[u8]| worst_exit(&codes.iter().map(|c| result(*c)).collect::<Vec<_>>());
        assert_eq!(w(&[]), 0);
        assert_eq!(w(&[0, 0]), 0);
        assert_eq!(w(&[0, 1, 0]), 1);
        assert_eq!(w(&[1, 2, 0]), 2);
        assert_eq!(w(&[2, 254, 1]), 254);
        assert_eq!(w(&[2, 255, 254]), 255);
        assert_eq!(w(&[0, 137]), 255, "killed by a signal counts as crashed");
    }

    #[test]
    fn goes_on_after_failures() {
        struct Fake(Vec<u8>);
        impl CaseRunner for Fake {
            fn run(&mut self, case: &SuiteCase) -> CaseResult {
                let mut r = result(self.0.remove(0));
                r.case = case.clone();
                r
            }
        }
        let s = SuiteSpec::parse(Path::new("s"), "workloads=[\"a\",\"b\",\"c\"]").expect("parse");
        let mut seen = Vec::new();
        let out = run_suite(&s.cases(), &mut Fake(vec![255, 1, 0]), |i, _| seen.push(i));
        assert_eq!(seen, vec![0, 1, 2]);
        assert_eq!(
            out.iter().map(CaseResult::outcome).collect::<Vec<_>>(),
            ["crashed", "invalid", "valid"]
        );
        assert_eq!(worst_exit(&out), 255);
        assert!(table(&out).to_string().contains("c-none"));
    }

    proptest::proptest! {
        #[test]
        fn random_suite_files_never_panic(text in "\\PC{0,200}") {
            let _ = SuiteSpec::parse(Path::new("fuzz.toml"), &text).map(|s| s.cases());
        }

        #[test]
        fn tomlish_suite_files_never_panic(text in "(workloads = \\[(\"[a-z,-]{0,6}\",? ?){0,3}\\]\n)?(repeats = -?[0-9]{0,4}\n)?(\\[options\\]\n([a-z-]{0,6} = (\"[^\"]{0,5}\"|[0-9.]{1,4}|true|false|\\[\\])\n){0,3})?") {
            let _ = SuiteSpec::parse(Path::new("fuzz.toml"), &text).map(|s| s.cases());
        }
    }
}
