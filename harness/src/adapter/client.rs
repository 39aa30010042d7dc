//! One worker's adapter client, as the run loop sees it: a call in, an
//! answer out, always. Behind it a [`ClientProcess`]; when that process
//! breaks the protocol the call becomes `info` (its error names the worker
//! and what the client did), the process is killed, and the next call
//! starts a fresh one, as Jepsen opens a new client after an indeterminate
//! operation. Every replacement is counted in the run's [`Replacements`],
//! which the end of the run reports.

use super::client_process::{ClientAnswer, ClientCommand, ClientFault, ClientProcess};
use faultline_workloads::Outcome;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the clients of a run were replaced, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplacementCounts {
    /// Replacements per worker, by kind of fault.
    pub by_worker: BTreeMap<usize, BTreeMap<&'static str, u64>>,
    /// The first few faults in full, for the report.
    pub examples: Vec<String>,
    /// Calls that failed because no client could be started.
    pub start_failures: u64,
}

impl ReplacementCounts {
    pub fn total(&self) -> u64 {
        self.by_worker.values().flat_map(|k| k.values()).sum()
    }

    /// One line for the end of the run; None when no client was replaced.
    pub fn summary(&self) -> Option<String> {
        if self.total() == 0 && self.start_failures == 0 {
            return None;
        }
        let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
        for per in self.by_worker.values() {
            for (k, n) in per {
                *kinds.entry(k).or_default() += n;
            }
        }
        let why: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let mut line = format!(
            "adapter clients replaced {} time{} ({}), in worker{} {}",
            self.total(),
            if self.total() == 1 { "" } else { "s" },
            why.join(", "),
            if self.by_worker.len() == 1 { "" } else { "s" },
            self.by_worker
                .keys()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
        if self.start_failures > 0 {
            line.push_str(&format!(
                "; {} call{} failed because no client could start",
                self.start_failures,
                if self.start_failures == 1 { "" } else { "s" }
            ));
        }
        Some(line)
    }
}

/// The replacement counts of a run, shared by its workers.
pub type Replacements = Arc<Mutex<ReplacementCounts>>;

/// How many faults are kept in full.
const EXAMPLES_KEPT: usize = 5;

/// A worker's client. See the module docs.
pub struct AdapterClient {
    worker: usize,
    command: ClientCommand,
    process: Option<ClientProcess>,
    replacements: Replacements,
}

impl AdapterClient {
    pub fn new(worker: usize, command: ClientCommand, replacements: Replacements) -> AdapterClient {
        AdapterClient {
            worker,
            command,
            process: None,
            replacements,
        }
    }

    /// Starts the client process now (the handshake included), if none
    /// runs; the first call otherwise starts it.
    pub async fn open(&mut self) -> Result<(), ClientFault> {
        if self.process.is_none() {
            self.process = Some(ClientProcess::start(&self.command).await?);
        }
        Ok(())
    }

    /// Performs `call` (an object with `f` and its fields) for `process`.
    pub async fn call(&mut self, call: &Value, process: u64, timeout: Duration) -> ClientAnswer {
        if self.process.is_none() {
            match ClientProcess::start(&self.command).await {
                Ok(p) => self.process = Some(p),
                Err(fault) => {
                    self.replacements
                        .lock()
                        .expect("counts lock")
                        .start_failures += 1;
                    // Nothing was sent: the call certainly did not happen.
                    return answer(
                        Outcome::Fail,
                        format!("the client of worker {} {fault}", self.worker),
                    );
                }
            }
        }
        let p = self.process.as_mut().expect("started above");
        match p.invoke(call, process, timeout).await {
            Ok(a) => a,
            Err(fault) => {
                self.replace(&fault);
                answer(
                    Outcome::Info,
                    format!("the client of worker {} {fault}; replaced", self.worker),
                )
            }
        }
    }

    fn replace(&mut self, fault: &ClientFault) {
        // Dropping the process kills its process group.
        self.process = None;
        let mut counts = self.replacements.lock().expect("counts lock");
        *counts
            .by_worker
            .entry(self.worker)
            .or_default()
            .entry(fault.kind())
            .or_default() += 1;
        if counts.examples.len() < EXAMPLES_KEPT {
            counts
                .examples
                .push(format!("worker {}: {fault}", self.worker));
        }
        tracing::warn!(worker = self.worker, "adapter client {fault}; replacing it");
    }

    /// Closes the client's process (see [`ClientProcess::close`]).
    pub async fn close(&mut self) {
        if let Some(p) = self.process.take() {
            p.close().await;
        }
    }
}

fn answer(outcome: Outcome, error: String) -> ClientAnswer {
    ClientAnswer {
        outcome,
        value: None,
        token: None,
        error: Some(error),
        node: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A client that answers ok, except that its `n`-th invoke (1-based)
    /// gets `bad` instead.
    fn flaky(dir: &std::path::Path, n: u32, bad: &str) -> ClientCommand {
        ClientCommand {
            command: format!(
                "read line; echo '{{\"type\":\"init_ok\"}}'; i=0; while read line; do i=$((i+1)); \
                 id=$(echo \"$line\" | sed 's/.*\"id\":\\([0-9]*\\).*/\\1/'); \
                 if [ $i -eq {n} ]; then {bad}; fi; printf '{{\"type\":\"ok\",\"id\":%s}}\\n' \"$id\"; done"
            ),
            cwd: dir.to_path_buf(),
            log: dir.join("client.log"),
            init: serde_json::Map::new(),
        }
    }

    #[test]
    fn a_broken_client_makes_its_call_info_is_replaced_and_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let counts: Replacements = Arc::default();
        let t = Duration::from_millis(400);
        rt.block_on(async {
            for (w, bad) in [
                (0, "echo 'oops not json'; continue"),
                (1, "exit 1"),
                (2, "sleep 5"),
            ] {
                let mut c = AdapterClient::new(w, flaky(dir.path(), 2, bad), Arc::clone(&counts));
                let outcomes: Vec<Outcome> = {
                    let mut v = Vec::new();
                    for _ in 0..3 {
                        v.push(c.call(&json!({"f":"read","key":"k"}), 0, t).await.outcome);
                    }
                    v
                };
                // The second call broke the client; the fresh one goes on.
                assert_eq!(outcomes, [Outcome::Ok, Outcome::Info, Outcome::Ok], "{bad}");
                c.close().await;
            }
        });
        let counts = counts.lock().expect("counts").clone();
        assert_eq!(counts.total(), 3);
        assert_eq!(counts.by_worker[&0]["printed a line that is not JSON"], 1);
        assert_eq!(counts.by_worker[&1]["exited"], 1);
        assert_eq!(counts.by_worker[&2]["no answer in time"], 1);
        let line = counts.summary().expect("something to say");
        assert!(
            line.starts_with("adapter clients replaced 3 times ("),
            "{line}"
        );
        assert!(line.ends_with("in workers 0, 1, 2"), "{line}");
    }

    #[test]
    fn a_client_that_cannot_start_fails_calls_without_counting_a_replacement() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let counts: Replacements = Arc::default();
        let command = ClientCommand {
            command: "echo 'ImportError: no module named redis' >&2; exit 1".into(),
            ..flaky(dir.path(), 1, "")
        };
        let mut c = AdapterClient::new(3, command, Arc::clone(&counts));
        let a = rt.block_on(c.call(
            &json!({"f":"set-add","key":"s","element":1}),
            0,
            Duration::from_millis(300),
        ));
        assert_eq!(a.outcome, Outcome::Fail);
        assert!(
            a.error
                .as_deref()
                .unwrap_or("")
                .starts_with("the client of worker 3 exited"),
            "{a:?}"
        );
        let counts = counts.lock().expect("counts").clone();
        assert_eq!((counts.total(), counts.start_failures), (0, 1));
        assert!(counts
            .summary()
            .expect("said")
            .contains("1 call failed because no client could start"));
    }
}
