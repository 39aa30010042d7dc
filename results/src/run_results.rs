//! `results.json`: what a run concluded.
//!
//! One verdict per checker and the overall verdict (the worst: invalid over
//! unknown over valid), the statistics of the history, and where the run is
//! stored. The schema is documented in docs/store.md; fields are only ever
//! added, so later tools (compare, reports) can read older runs.

use crate::op_stats::Summary;
use crate::shard_ownership::MembershipChange;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A verdict, as stored: the checker's own type. Ordered: valid < unknown <
/// invalid (worse is greater).
pub use faultline_checker::VerdictKind;

/// What one checker said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckerOutcome {
    /// The checker's name (`linearizable`, `set`, `lock`, …).
    pub checker: String,
    /// What it judged: `all`, or one key of an independent-keys workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub verdict: VerdictKind,
    /// One line: why invalid or unknown, or what was checked.
    pub summary: String,
    /// The checker's own detail (a witness, counts), as JSON.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// The content of `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// The worst verdict of all checkers; `unknown` when there were none.
    pub verdict: VerdictKind,
    pub checkers: Vec<CheckerOutcome>,
    pub stats: Summary,
    /// Events in history.jsonl.
    pub history_events: u64,
    /// True when a partial last line of the history was dropped (a crash).
    #[serde(default)]
    pub history_truncated: bool,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Sharded runs: every ring membership change, from the history's
    /// `start-membership` / `stop-membership` events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub membership: Vec<MembershipChange>,
}

impl RunResults {
    /// The overall verdict of some outcomes: the worst one.
    pub fn overall(checkers: &[CheckerOutcome]) -> VerdictKind {
        checkers
            .iter()
            .map(|c| c.verdict)
            .max()
            .unwrap_or(VerdictKind::Unknown)
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string_pretty(self).map_err(std::io::Error::from)?;
        text.push('\n');
        crate::store::write_atomically(path, text.as_bytes())
    }

    pub fn read(path: &Path) -> Result<RunResults, crate::StoreError> {
        let text = std::fs::read_to_string(path).map_err(|source| crate::StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| crate::StoreError::BadFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(v: VerdictKind) -> CheckerOutcome {
        CheckerOutcome {
            checker: "x".into(),
            scope: None,
            verdict: v,
            summary: String::new(),
            detail: serde_json::Value::Null,
        }
    }

    #[test]
    fn overall_is_the_worst_verdict() {
        use VerdictKind::*;
        assert_eq!(RunResults::overall(&[]), Unknown);
        assert_eq!(
            RunResults::overall(&[outcome(Valid), outcome(Valid)]),
            Valid
        );
        assert_eq!(
            RunResults::overall(&[outcome(Valid), outcome(Unknown)]),
            Unknown
        );
        assert_eq!(
            RunResults::overall(&[outcome(Invalid), outcome(Unknown)]),
            Invalid
        );
    }

    #[test]
    fn round_trips_through_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = RunResults {
            verdict: VerdictKind::Invalid,
            checkers: vec![outcome(VerdictKind::Invalid)],
            stats: crate::summarize(&[]),
            history_events: 0,
            history_truncated: false,
            run_dir: dir.path().to_path_buf(),
            membership: vec![MembershipChange {
                start_ns: 1,
                end_ns: Some(2),
                action: "add".into(),
                node: "n4".into(),
                members: vec!["n1".into(), "n4".into()],
                moves: Vec::new(),
                error: None,
            }],
        };
        let p = dir.path().join("results.json");
        r.write(&p).expect("write");
        assert_eq!(RunResults::read(&p).expect("read"), r);
        let text = std::fs::read_to_string(&p).expect("read text");
        assert!(text.contains("\"verdict\": \"invalid\""), "{text}");
    }
}
