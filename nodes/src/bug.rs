//! Planted bugs: `--bug NAME` makes a node wrong in one known way.
//!
//! The harness proves its power by catching every one of these. Each bug
//! names the workload and nemesis that should catch it, and the flags the
//! run needs (`--tls` for the access bugs), so CI can test every bug with
//! the right setup (`faultline node --list-bugs`).

use std::fmt;
use std::str::FromStr;

/// A deliberate defect. Off by default; a node logs loudly when one is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// Serve reads from the local state machine, skipping ReadIndex.
    StaleRead,
    /// Acknowledge before the write is durable: the WAL is written from a
    /// user-space buffer lazily, so a crash loses acknowledged entries.
    NoFsync,
    /// A new leader expires every lease at once instead of restarting them.
    LockEarlyExpiry,
    /// The fenced resource accepts writes with stale tokens.
    NoFence,
    /// A transaction's writes to keys other than the first it writes take
    /// effect one log entry late: the next entry sees it half applied.
    TxnNonAtomic,
    /// Read-only transactions are answered from the node's own applied
    /// state (a follower's, a deposed leader's), not through the log:
    /// serializable, but stale, so not strict serializable.
    TxnFollowerRead,
    /// Access (server/access.rs): a client credential may call admin ops.
    ClientAdmin,
    /// Access (server/access.rs): a peer's `hello` is taken whatever id it
    /// claims, not only the id its node certificate names.
    PeerIdUnchecked,
}

impl Bug {
    pub const ALL: [Bug; 8] = [
        Bug::StaleRead,
        Bug::NoFsync,
        Bug::LockEarlyExpiry,
        Bug::NoFence,
        Bug::TxnNonAtomic,
        Bug::TxnFollowerRead,
        Bug::ClientAdmin,
        Bug::PeerIdUnchecked,
    ];

    /// Access bugs: caught by the impostor nemesis and the `access` checker
    /// in a `--tls` run, by the simulator's impostor (sim/impostor.rs,
    /// through the same access check) and, below both, by the refusal
    /// tests of harness/tests/node_roles.rs and server::access's unit
    /// tests.
    pub const ACCESS: [Bug; 2] = [Bug::ClientAdmin, Bug::PeerIdUnchecked];

    /// The `faultline test` flags a run needs for this bug to show (the
    /// `--list-bugs` column). `--tls` for the access bugs: a peer bound to
    /// its id exists only with node certificates, and the only credential
    /// of the client role alone is the client role's certificate (`--auth`
    /// makes one token of every role).
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Bug::ClientAdmin | Bug::PeerIdUnchecked => &["--tls"],
            _ => &[],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bug::StaleRead => "stale-read",
            Bug::NoFsync => "no-fsync",
            Bug::LockEarlyExpiry => "lock-early-expiry",
            Bug::NoFence => "no-fence",
            Bug::TxnNonAtomic => "txn-non-atomic",
            Bug::TxnFollowerRead => "txn-follower-read",
            Bug::ClientAdmin => "client-admin",
            Bug::PeerIdUnchecked => "peer-id-unchecked",
        }
    }

    /// The workload that should catch this bug.
    pub fn workload(self) -> &'static str {
        match self {
            Bug::StaleRead => "register",
            Bug::NoFsync => "register",
            Bug::LockEarlyExpiry => "lock",
            Bug::NoFence => "lock",
            Bug::TxnNonAtomic => "list-append",
            Bug::TxnFollowerRead => "list-append",
            // Any workload: the impostor's attempts, not the data, show it.
            Bug::ClientAdmin | Bug::PeerIdUnchecked => "register",
        }
    }

    /// The nemesis that should catch this bug (a `--nemesis` value).
    pub fn nemesis(self) -> &'static str {
        match self {
            Bug::StaleRead => "partition",
            Bug::NoFsync => "kill",
            // A kill forces a leader change nearly every time (the leader,
            // a majority, every node); a partition often leaves the leader
            // in place, and then the bug has nothing to act on.
            Bug::LockEarlyExpiry => "kill",
            Bug::NoFence => "pause",
            // Concurrent transactions alone expose it: the next entry sees
            // half a transaction whatever the faults.
            Bug::TxnNonAtomic => "none",
            // A partitioned follower falls behind and keeps answering.
            Bug::TxnFollowerRead => "partition",
            // Its attempts, judged by the `access` checker.
            Bug::ClientAdmin | Bug::PeerIdUnchecked => "impostor",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Bug::StaleRead => "serve reads from local state, skipping ReadIndex",
            Bug::NoFsync => "acknowledge writes before they are durable; a crash loses them",
            Bug::LockEarlyExpiry => "a new leader expires every lease at once",
            Bug::NoFence => "the fenced resource accepts writes with stale tokens",
            Bug::TxnNonAtomic => {
                "a txn's writes past its first key apply one log entry late (not atomic)"
            }
            Bug::TxnFollowerRead => {
                "read-only txns answered from the node's local state, not through the log"
            }
            Bug::ClientAdmin => "a client credential may call admin ops",
            Bug::PeerIdUnchecked => "a peer's hello is taken whatever node id it claims",
        }
    }

    /// One line of `faultline node --list-bugs`: NAME, workload, nemesis,
    /// description, flags the run needs (space-separated, `-` for none),
    /// tab-separated. The flags come last so that readers of the first
    /// four fields keep working.
    pub fn list_line(self) -> String {
        let flags = match self.flags() {
            [] => "-".to_string(),
            flags => flags.join(" "),
        };
        format!(
            "{}\t{}\t{}\t{}\t{flags}",
            self.name(),
            self.workload(),
            self.nemesis(),
            self.description()
        )
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown bug {0:?}; `faultline node --list-bugs` lists them")]
pub struct UnknownBug(pub String);

impl FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| UnknownBug(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bug_round_trips_through_its_name() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>().expect("listed name parses"), bug);
        }
        assert!("no-such-bug".parse::<Bug>().is_err());
    }

    #[test]
    fn list_line_has_five_tab_separated_fields_the_flags_last() {
        for bug in Bug::ALL {
            let line = bug.list_line();
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 5, "{bug}");
            assert!(!fields[4].is_empty(), "{bug}: `-` stands for no flags");
        }
        assert!(Bug::PeerIdUnchecked.list_line().ends_with("\t--tls"));
        assert!(Bug::StaleRead.list_line().ends_with("\t-"));
    }

    #[test]
    fn the_access_bugs_are_listed_and_caught_by_the_impostor_with_tls() {
        for bug in Bug::ACCESS {
            assert!(Bug::ALL.contains(&bug), "{bug}");
            assert_eq!(bug.nemesis(), "impostor");
            assert_eq!(bug.flags(), ["--tls"]);
        }
    }
}
