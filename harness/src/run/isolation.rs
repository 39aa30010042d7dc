//! `--isolation`: the isolation level a run asks of a transactional system.
//!
//! A system that offers several levels (PostgreSQL's `read committed`,
//! `repeatable read`, `serializable`) is told which one a run wants; the
//! checker still judges the history against its default model
//! (strict-serializable), so a weaker level shows as the anomalies it
//! allows. An adapter file declares the levels it takes (`[isolation]`,
//! docs/adapters.md) and receives the run's as `{{isolation}}`; a system
//! that declares none refuses the flag. The names are the ones Adya and
//! Elle use, in kebab-case.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An isolation level a system may be asked to run at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IsolationLevel {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    SnapshotIsolation,
    Serializable,
    StrictSerializable,
}

impl IsolationLevel {
    /// Every level, weakest first (as far as they are ordered).
    pub const ALL: [IsolationLevel; 6] = [
        IsolationLevel::ReadUncommitted,
        IsolationLevel::ReadCommitted,
        IsolationLevel::RepeatableRead,
        IsolationLevel::SnapshotIsolation,
        IsolationLevel::Serializable,
        IsolationLevel::StrictSerializable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IsolationLevel::ReadUncommitted => "read-uncommitted",
            IsolationLevel::ReadCommitted => "read-committed",
            IsolationLevel::RepeatableRead => "repeatable-read",
            IsolationLevel::SnapshotIsolation => "snapshot-isolation",
            IsolationLevel::Serializable => "serializable",
            IsolationLevel::StrictSerializable => "strict-serializable",
        }
    }
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IsolationLevel {
    type Err = String;
    fn from_str(text: &str) -> Result<IsolationLevel, String> {
        IsolationLevel::ALL
            .into_iter()
            .find(|l| l.name() == text)
            .ok_or_else(|| {
                format!(
                    "{text:?} is not an isolation level; use one of {}",
                    IsolationLevel::ALL.map(IsolationLevel::name).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back_and_serializes_as_itself() {
        for level in IsolationLevel::ALL {
            assert_eq!(level.name().parse::<IsolationLevel>(), Ok(level));
            assert_eq!(
                serde_json::to_value(level).expect("serializes"),
                serde_json::json!(level.name())
            );
        }
        let e = "serialisable"
            .parse::<IsolationLevel>()
            .expect_err("a misspelling");
        assert!(e.contains("\"serialisable\" is not an isolation level; use one of read-uncommitted, read-committed"), "{e}");
    }
}
