//! The ledger's file: JSON Lines, appended and synced one event at a time
//! (docs/store.md, "The ledger").
//!
//! ```text
//! {"event":"open","version":1,"run_id":"1a2b3c4d","command":"test","pid":4242,"started_at":"…","run_dir":"store/…"}
//! {"event":"create","id":1,"resource":{"kind":"iptables-chain","chain":"FAULTLINE-1a2b3c4d"}}
//! {"event":"create","id":2,"resource":{"kind":"process","name":"n1","pid":4250,"start_ticks":912345}}
//! {"event":"release","id":1}
//! {"event":"close"}
//! {"event":"healed","by_pid":5000,"at":"…","actions":["killed n1 (pid 4250)"]}
//! ```
//!
//! Reading never fails on content: a line cut short by a kill in the
//! middle of a write, or any other line that does not parse, is skipped
//! and named in [`Recorded::bad_lines`]; heal then works from the rest.

use super::resource::Resource;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The format version this code writes and reads.
pub const VERSION: u32 = 1;

/// One line of a ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Line {
    /// The first line: who owns the ledger.
    Open {
        version: u32,
        run_id: String,
        /// The subcommand (`test`, `lab up`).
        command: String,
        pid: u32,
        started_at: String,
        /// The run's directory in the store, where the ledger goes when
        /// the run ends (none for `lab up`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_dir: Option<PathBuf>,
    },
    /// Written before the resource exists where that is possible (a chain,
    /// a file), right after otherwise (a process: its pid is known only
    /// once it runs, and it dies with the harness anyway).
    Create { id: u64, resource: Resource },
    /// Undone by the run itself.
    Release { id: u64 },
    /// The run ended and released everything.
    Close,
    /// A later `heal` undid what was left.
    Healed {
        by_pid: u32,
        at: String,
        actions: Vec<String>,
    },
}

impl Line {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("ledger lines serialize");
        bytes.push(b'\n');
        bytes
    }
}

/// What a ledger file says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Recorded {
    pub run_id: Option<String>,
    pub command: Option<String>,
    pub pid: Option<u32>,
    pub started_at: Option<String>,
    pub run_dir: Option<PathBuf>,
    /// Created and not released, by id.
    pub held: BTreeMap<u64, Resource>,
    /// Every id ever created (the next one is past the largest).
    pub last_id: u64,
    pub closed: bool,
    pub healed: bool,
    /// 1-based numbers of lines that did not parse, with why.
    pub bad_lines: Vec<(usize, String)>,
}

impl Recorded {
    /// Reads a ledger's text.
    pub fn parse(text: &[u8]) -> Recorded {
        let mut r = Recorded::default();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Line>(line) {
                Ok(Line::Open {
                    run_id,
                    command,
                    pid,
                    started_at,
                    run_dir,
                    ..
                }) => {
                    r.run_id = Some(run_id);
                    r.command = Some(command);
                    r.pid = Some(pid);
                    r.started_at = Some(started_at);
                    r.run_dir = run_dir;
                }
                Ok(Line::Create { id, resource }) => {
                    r.last_id = r.last_id.max(id);
                    r.held.insert(id, resource);
                }
                Ok(Line::Release { id }) => {
                    r.held.remove(&id);
                }
                Ok(Line::Close) => r.closed = true,
                Ok(Line::Healed { .. }) => r.healed = true,
                Err(e) => r.bad_lines.push((i + 1, e.to_string())),
            }
        }
        r
    }

    /// Whether the run ended cleanly: closed with nothing held.
    pub fn is_clean(&self) -> bool {
        self.closed && self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::process::ProcessIdentity;

    fn chain(n: u32) -> Resource {
        Resource::IptablesChain {
            chain: format!("FAULTLINE-{n}"),
        }
    }

    #[test]
    fn held_is_created_minus_released() {
        let mut text = Vec::new();
        for line in [
            Line::Open {
                version: VERSION,
                run_id: "abc".into(),
                command: "test".into(),
                pid: 7,
                started_at: "t".into(),
                run_dir: Some("store/x/1".into()),
            },
            Line::Create {
                id: 1,
                resource: chain(1),
            },
            Line::Create {
                id: 2,
                resource: Resource::Paused {
                    name: "n1".into(),
                    identity: ProcessIdentity {
                        pid: 9,
                        start_ticks: 3,
                    },
                },
            },
            Line::Release { id: 1 },
        ] {
            text.extend(line.encode());
        }
        let r = Recorded::parse(&text);
        assert_eq!(r.run_id.as_deref(), Some("abc"));
        assert_eq!(r.run_dir, Some(PathBuf::from("store/x/1")));
        assert_eq!(r.held.keys().copied().collect::<Vec<_>>(), vec![2]);
        assert_eq!(r.last_id, 2);
        assert!(!r.closed && !r.is_clean());
        assert!(r.bad_lines.is_empty());
    }

    #[test]
    fn a_torn_last_line_and_garbage_are_skipped_and_named() {
        let mut text = Line::Create {
            id: 1,
            resource: chain(1),
        }
        .encode();
        text.extend(b"not json\n");
        text.extend(b"{\"event\":\"create\",\"id\":2,\"resou");
        let r = Recorded::parse(&text);
        assert_eq!(r.held.len(), 1);
        assert_eq!(
            r.bad_lines.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }

    #[test]
    fn parsing_never_panics_on_any_bytes() {
        let alphabet = b"{}\":,\n event create release id 1 kind process pid";
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2000 {
            let len = (seed % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[(seed % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = Recorded::parse(&bytes);
        }
    }
}
