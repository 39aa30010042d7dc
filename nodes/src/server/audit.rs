//! The node's audit log: one JSON object a line, appended to
//! `<data-dir>/audit.jsonl` (or `--audit-log FILE`), for every admin op
//! and every refused connection or request (docs/protocol.md, "Audit
//! log").
//!
//! Each entry: `time_ms` (Unix milliseconds, the machine's clock, not the
//! node's faultable one), `node`, `peer` (the remote address), `role`
//! ([`super::access::Roles::label`]), `op` (the op's wire name, or
//! `connect` for a connection refused before any request), `args` (the
//! op's fields, when at most [`MAX_ARGS_BYTES`] of JSON; else
//! `args_bytes`), `outcome` (`ok`, or the error code) and `reason` when
//! there is one. Never a token or a key: `auth` is recorded without its
//! arguments.
//!
//! Bounded IO: entries go through a queue of [`QUEUE_LEN`] to a writer
//! thread; a connection task never waits on the file. When the queue is
//! full an entry is counted, not queued, and the writer then appends
//! `{"dropped":N}` so a loss is visible in the file itself. The file is
//! flushed after every batch (not fsynced: an audit line can be lost with
//! the machine, never with the process).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::consensus::NodeId;
use crate::protocol::{Op, Reply};

/// Entries waiting for the writer at most; beyond, they are counted as dropped.
pub const QUEUE_LEN: usize = 4096;

/// An op's arguments larger than this (as JSON) are recorded by size only.
pub const MAX_ARGS_BYTES: usize = 1024;

/// One line of the audit log.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub time_ms: u64,
    pub node: u64,
    pub peer: String,
    pub role: String,
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_bytes: Option<usize>,
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where a node's connections send their audit entries (cheap to clone).
#[derive(Clone, Debug)]
pub struct AuditLog {
    node: NodeId,
    tx: Option<SyncSender<AuditEntry>>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Open (create or append to) `path` and start its writer thread.
    pub fn open(node: NodeId, path: &Path) -> std::io::Result<AuditLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let (tx, rx) = sync_channel(QUEUE_LEN);
        let dropped = Arc::new(AtomicU64::new(0));
        let counted = dropped.clone();
        std::thread::Builder::new()
            .name("faultline-audit".into())
            .spawn(move || write_entries(BufWriter::new(file), rx, counted))?;
        Ok(AuditLog {
            node,
            tx: Some(tx),
            dropped,
        })
    }

    /// A log that records nothing (tests of the connection code).
    pub fn disabled(node: NodeId) -> AuditLog {
        AuditLog {
            node,
            tx: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// An entry for `op` from `peer` as `role`, its outcome still to be set.
    pub fn entry(&self, peer: SocketAddr, role: String, op: Option<&Op>) -> AuditEntry {
        let (args, args_bytes) = op.map_or((None, None), arguments);
        AuditEntry {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            node: self.node.0,
            peer: peer.to_string(),
            role,
            op: op.map_or("connect", Op::name),
            args,
            args_bytes,
            outcome: String::new(),
            reason: None,
        }
    }

    /// Queue `entry`; never waits (a full queue counts it as dropped).
    pub fn record(&self, entry: AuditEntry) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(entry) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Record a refusal at once.
    pub fn refused(&self, mut entry: AuditEntry, outcome: &str, reason: impl Into<String>) {
        entry.outcome = outcome.into();
        entry.reason = Some(reason.into());
        self.record(entry);
    }

    /// An entry recorded once the op's reply is known
    /// ([`super::reply_sink::ReplySink::audited`]).
    pub fn pending(&self, entry: AuditEntry) -> PendingAudit {
        PendingAudit {
            log: self.clone(),
            entry: Some(entry),
        }
    }
}

/// An admin op's entry, waiting for its reply. Dropped unanswered, it is
/// recorded with the outcome `unanswered`.
#[derive(Debug)]
pub struct PendingAudit {
    log: AuditLog,
    entry: Option<AuditEntry>,
}

impl PendingAudit {
    /// Record the entry with `reply`'s outcome.
    pub fn finish(mut self, reply: &Reply) {
        if let Some(mut entry) = self.entry.take() {
            entry.outcome = match reply.error {
                None if reply.ok => "ok".into(),
                None => "error".into(),
                Some(code) => code.as_str().into(),
            };
            entry.reason = reply
                .fields
                .get("reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            self.log.record(entry);
        }
    }
}

impl Drop for PendingAudit {
    fn drop(&mut self) {
        if let Some(mut entry) = self.entry.take() {
            entry.outcome = "unanswered".into();
            self.log.record(entry);
        }
    }
}

/// An op's fields as JSON (without `op`), or only their size when large.
/// `auth`'s fields are a token: never recorded.
fn arguments(op: &Op) -> (Option<Value>, Option<usize>) {
    if matches!(op, Op::Auth { .. }) {
        return (None, None);
    }
    let Ok(Value::Object(mut fields)) = serde_json::to_value(op) else {
        return (None, None);
    };
    fields.remove("op");
    let bytes = serde_json::to_vec(&fields).map_or(usize::MAX, |b| b.len());
    if bytes > MAX_ARGS_BYTES {
        return (None, Some(bytes));
    }
    (Some(Value::Object(fields)), None)
}

/// The writer thread: append each batch, then flush. Ends when every
/// sender is gone.
fn write_entries(mut out: BufWriter<File>, rx: Receiver<AuditEntry>, dropped: Arc<AtomicU64>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= QUEUE_LEN {
                break;
            }
        }
        let mut failed = false;
        for entry in &batch {
            let mut line = serde_json::to_vec(entry).expect("audit entries always serialize");
            line.push(b'\n');
            failed |= out.write_all(&line).is_err();
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            failed |= writeln!(out, "{{\"dropped\":{lost}}}").is_err();
        }
        if failed || out.flush().is_err() {
            tracing::warn!(entries = batch.len(), "cannot write the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    fn lines(path: &Path, n: usize) -> Vec<Value> {
        // The writer is a thread: wait (bounded) until it wrote n lines.
        for _ in 0..600 {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.lines().count() >= n {
                return text
                    .lines()
                    .map(|l| serde_json::from_str(l).expect("a JSON line"))
                    .collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("fewer than {n} audit lines in {}", path.display());
    }

    #[test]
    fn admin_ops_and_refusals_are_recorded_and_tokens_never() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(NodeId(2), &path).expect("open");
        let peer: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let filter = Op::Filter {
            drop: vec![3],
            delay_ms: 5,
            loss: 0.0,
        };
        log.pending(log.entry(peer, "admin".into(), Some(&filter)))
            .finish(&Reply::ok(Some(1)));
        let auth = Op::Auth {
            token: "never-in-the-file".into(),
        };
        let entry = log.entry(peer, "none".into(), Some(&auth));
        log.refused(entry, "unauthorized", "not one of the node's tokens");
        drop(log.pending(log.entry(peer, "admin".into(), Some(&Op::Status))));
        let big = Op::SetMembers {
            members: (0..1000).collect(),
        };
        log.pending(log.entry(peer, "client".into(), Some(&big)))
            .finish(&Reply::error(Some(3), ErrorCode::Unauthorized).with("reason", "no"));
        let got = lines(&path, 4);
        assert_eq!(got[0]["op"], "filter");
        assert_eq!(got[0]["args"]["drop"], serde_json::json!([3]));
        assert_eq!(got[0]["outcome"], "ok");
        assert_eq!(got[0]["node"], 2);
        assert_eq!(got[0]["peer"], "127.0.0.1:4000");
        assert_eq!(got[1]["op"], "auth");
        assert_eq!(got[1]["outcome"], "unauthorized");
        assert!(got[1].get("args").is_none());
        assert_eq!(got[2]["outcome"], "unanswered");
        assert!(got[3].get("args").is_none());
        assert!(got[3]["args_bytes"].as_u64().expect("size") > MAX_ARGS_BYTES as u64);
        assert_eq!(got[3]["reason"], "no");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("never-in-the-file"), "{text}");
    }
}
