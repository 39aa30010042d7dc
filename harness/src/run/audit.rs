//! The nodes' audit logs into the history, once the nodes have stopped
//! (docs/history-format.md, "Audit events").
//!
//! Each node's audit log is in the store at `nodes/<node>/audit.jsonl`
//! (a local node writes it there; a remote run fetches it, cut with a
//! note past [`MAX_FETCH_BYTES`]). A node without one (etcd, an adapter,
//! an older node) adds nothing. For each file: one `audit-log` event with
//! the counts of the whole file, then the entries kept (the first
//! [`MAX_OK_EVENTS_PER_NODE`] `ok` ones and the first
//! [`MAX_OTHER_EVENTS_PER_NODE`] others) as `audit` events, all stamped
//! with the time of the history's last event so they never lengthen the
//! run. Memory is bounded: the file is streamed, a line longer than
//! [`MAX_LINE_BYTES`] is skipped as unreadable, and at most
//! [`MAX_READ_BYTES`] of a file are read (the rest noted as cut).

use super::recorder::Recorder;
use crate::cluster::NodeInfo;
use faultline_results::audit::{
    AuditCut, AuditLogSummary, AuditRecord, AUDIT_F, AUDIT_FILE, AUDIT_LOG_F,
    MAX_OK_EVENTS_PER_NODE, MAX_OTHER_EVENTS_PER_NODE,
};
use faultline_results::store::NODES_DIR;
use faultline_results::RunDir;
use serde::Deserialize;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A remote node's audit log is fetched up to this many bytes.
pub const MAX_FETCH_BYTES: u64 = 64 * 1024 * 1024;
/// At most this much of a node's audit log is read into the history.
pub const MAX_READ_BYTES: u64 = MAX_FETCH_BYTES;
/// A line longer than this is not an audit entry (the node's are < 2 KiB).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// One line of a node's audit log (nodes/src/server/audit.rs), or a note.
#[derive(Deserialize)]
#[serde(untagged)]
enum Line {
    Entry(NodeEntry),
    /// The node lost this many entries (its queue was full).
    Dropped {
        dropped: u64,
    },
    /// The fetch cut the file here ([`mark_cut`]).
    Cut {
        cut: AuditCut,
    },
}

#[derive(Deserialize)]
struct NodeEntry {
    time_ms: u64,
    peer: String,
    role: String,
    op: String,
    #[serde(default)]
    args: Option<serde_json::Value>,
    #[serde(default)]
    args_bytes: Option<u64>,
    outcome: String,
    #[serde(default)]
    reason: Option<String>,
}

/// One node's audit file, read: its counts and the entries kept.
#[derive(Debug, PartialEq)]
pub struct NodeAuditFile {
    pub summary: AuditLogSummary,
    pub records: Vec<AuditRecord>,
}

/// Appends every node's audit events to the history (see the module
/// docs); returns how many events it appended. A file that cannot be read
/// is a warning naming it, never an error of the run.
pub fn append_audit_events(recorder: &Recorder, run_dir: &RunDir, nodes: &[NodeInfo]) -> u64 {
    let history_start_ns = history_start_unix_ns(recorder);
    let mut appended = 0;
    for node in nodes {
        let path = run_dir.node_audit_log(&node.name);
        let file = match read_node_audit(&path, &node.name, history_start_ns) {
            Ok(Some(file)) => file,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!("{}: cannot read the audit log: {e}", path.display());
                continue;
            }
        };
        let mut events = vec![(AUDIT_LOG_F, value(&file.summary))];
        events.extend(file.records.iter().map(|r| (AUDIT_F, value(r))));
        for (f, value) in events {
            if let Err(e) = recorder.audit(f, &node.name, value) {
                tracing::warn!("appending {}'s audit events to the history: {e}", node.name);
                return appended;
            }
            appended += 1;
        }
    }
    appended
}

fn value<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).expect("audit values always serialize")
}

/// The Unix time (ns) of the history's time 0, from the wall clock now and
/// the monotonic time since the history started.
fn history_start_unix_ns(recorder: &Recorder) -> i128 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    now - recorder.writer().start().elapsed().as_nanos() as i128
}

/// Reads node `node`'s audit file at `path` (None: there is none);
/// `history_start_ns` (Unix ns of the history's time 0) maps entry times.
pub fn read_node_audit(
    path: &Path,
    node: &str,
    history_start_ns: i128,
) -> std::io::Result<Option<NodeAuditFile>> {
    read_node_audit_within(path, node, history_start_ns, MAX_READ_BYTES)
}

/// As [`read_node_audit`], reading at most `max_read_bytes` of the file.
fn read_node_audit_within(
    path: &Path,
    node: &str,
    history_start_ns: i128,
    max_read_bytes: u64,
) -> std::io::Result<Option<NodeAuditFile>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let file_bytes = file.metadata()?.len();
    let mut reader = BufReader::new(file.take(max_read_bytes));
    let mut summary = AuditLogSummary {
        node: node.to_string(),
        file: format!("{NODES_DIR}/{node}/{AUDIT_FILE}"),
        ..AuditLogSummary::default()
    };
    let mut records = Vec::new();
    let (mut kept_ok, mut kept_other) = (0, 0);
    let mut line = Vec::new();
    let mut read_bytes = 0u64;
    loop {
        let Some((bytes, whole)) = next_line(&mut reader, &mut line)? else {
            break;
        };
        if !whole && read_bytes + bytes as u64 >= max_read_bytes {
            // The read stopped inside this line: it is cut, not bad.
            break;
        }
        read_bytes += bytes as u64;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = (line.len() <= MAX_LINE_BYTES)
            .then(|| serde_json::from_slice::<Line>(&line).ok())
            .flatten();
        let entry = match parsed {
            Some(Line::Entry(e)) => e,
            Some(Line::Dropped { dropped }) => {
                summary.dropped += dropped;
                continue;
            }
            Some(Line::Cut { cut }) => {
                summary.cut = Some(cut);
                continue;
            }
            None => {
                summary.unreadable += 1;
                continue;
            }
        };
        let record = record(node, entry, history_start_ns);
        summary.entries += 1;
        *summary
            .by_outcome
            .entry(record.outcome.clone())
            .or_insert(0) += 1;
        *summary.by_role.entry(record.role.clone()).or_insert(0) += 1;
        let kept = if record.is_ok() {
            &mut kept_ok
        } else {
            &mut kept_other
        };
        let cap = if record.is_ok() {
            MAX_OK_EVENTS_PER_NODE
        } else {
            MAX_OTHER_EVENTS_PER_NODE
        };
        if *kept < cap {
            *kept += 1;
            records.push(record);
        }
    }
    if file_bytes > max_read_bytes && summary.cut.is_none() {
        summary.cut = Some(AuditCut {
            kept_bytes: read_bytes,
            file_bytes,
        });
    }
    summary.recorded = records.len() as u64;
    summary.omitted = summary.entries - summary.recorded;
    Ok(Some(NodeAuditFile { summary, records }))
}

fn record(node: &str, e: NodeEntry, history_start_ns: i128) -> AuditRecord {
    let at_ns = i128::from(e.time_ms) * 1_000_000 - history_start_ns;
    AuditRecord {
        node: node.to_string(),
        time_ms: e.time_ms,
        at_ns: i64::try_from(at_ns).ok(),
        role: e.role,
        peer: e.peer,
        op: e.op,
        args: e.args,
        args_bytes: e.args_bytes,
        outcome: e.outcome,
        reason: e.reason,
    }
}

/// Reads the next line into `line` (without its newline), keeping at most
/// [`MAX_LINE_BYTES`] + 1 bytes of it: (bytes consumed, whether it ended
/// with a newline), or None at the end.
fn next_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<(usize, bool)>> {
    line.clear();
    let mut consumed = 0;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed > 0).then_some((consumed, false)));
        }
        let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let room = (MAX_LINE_BYTES + 1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = chunk.len() + usize::from(newline);
        reader.consume(used);
        consumed += used;
        if newline {
            return Ok(Some((consumed, true)));
        }
    }
}

/// A fetched audit file that held only the first `kept` of the host's
/// `file_bytes`: cut after its last whole line, then a note line
/// (`{"cut":{"kept_bytes":…,"file_bytes":…}}`) that the reader reports.
pub fn mark_cut(path: &Path, file_bytes: u64) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let len = file.metadata()?.len();
    let tail_start = len.saturating_sub(MAX_LINE_BYTES as u64 * 2);
    file.seek(SeekFrom::Start(tail_start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let kept = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => tail_start + i as u64 + 1,
        None => tail_start,
    };
    file.set_len(kept)?;
    file.seek(SeekFrom::End(0))?;
    let cut = AuditCut {
        kept_bytes: kept,
        file_bytes,
    };
    let note = serde_json::json!({ "cut": cut });
    writeln!(file, "{note}")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const START_NS: i128 = 1_700_000_000_000 * 1_000_000;

    fn entry(time_ms: u64, op: &str, role: &str, outcome: &str) -> String {
        serde_json::json!({
            "time_ms": time_ms, "node": 1, "peer": "127.0.0.250:4000",
            "role": role, "op": op, "outcome": outcome,
        })
        .to_string()
    }

    #[test]
    fn counts_every_entry_keeps_the_first_of_each_kind_and_maps_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let mut text = String::new();
        text.push_str(&entry(1_700_000_000_250, "read", "none", "unauthorized"));
        text.push('\n');
        for i in 0..150 {
            text.push_str(&entry(1_700_000_001_000 + i, "status", "admin", "ok"));
            text.push('\n');
        }
        text.push_str("{\"dropped\":7}\nnot json\n\n");
        text.push_str(&"x".repeat(MAX_LINE_BYTES + 10));
        text.push('\n');
        for _ in 0..120 {
            text.push_str(&entry(1_699_999_999_000, "connect", "none", "tls-required"));
            text.push('\n');
        }
        // A last line cut short by a kill: unreadable, not an error.
        text.push_str("{\"time_ms\":1");
        std::fs::write(&path, &text).expect("write");
        let got = read_node_audit(&path, "n3", START_NS)
            .expect("read")
            .expect("a file");
        let s = &got.summary;
        assert_eq!(s.node, "n3");
        assert_eq!(s.file, "nodes/n3/audit.jsonl");
        assert_eq!(s.entries, 271);
        assert_eq!(s.recorded, 200);
        assert_eq!(s.omitted, 71);
        assert_eq!(s.dropped, 7);
        assert_eq!(s.unreadable, 3, "not json, the long line, the cut tail");
        assert_eq!(s.cut, None);
        assert_eq!(s.by_outcome["ok"], 150);
        assert_eq!(s.by_outcome["tls-required"], 120);
        assert_eq!(s.by_role["none"], 121);
        let ok = got.records.iter().filter(|r| r.is_ok()).count() as u64;
        assert_eq!(ok, MAX_OK_EVENTS_PER_NODE);
        assert_eq!(got.records.len() as u64 - ok, MAX_OTHER_EVENTS_PER_NODE);
        assert_eq!(got.records[0].op, "read", "in the file's order");
        assert_eq!(got.records[0].at_ns, Some(250_000_000));
        assert_eq!(got.records[0].node, "n3");
        assert_eq!(
            got.records.last().expect("records").at_ns,
            Some(-1_000_000_000),
            "before the history started: negative"
        );
    }

    #[test]
    fn a_file_past_the_read_bound_is_read_to_its_last_whole_line_and_noted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let line = entry(1_700_000_000_000, "status", "admin", "ok");
        let text = format!("{line}\n").repeat(10);
        std::fs::write(&path, &text).expect("write");
        let each = line.len() as u64 + 1;
        // The bound falls inside the fourth line: three are read, whole.
        let got = read_node_audit_within(&path, "n1", START_NS, 3 * each + 5)
            .expect("read")
            .expect("a file");
        assert_eq!(got.summary.entries, 3);
        assert_eq!(
            got.summary.unreadable, 0,
            "a line cut by the bound is not bad"
        );
        assert_eq!(
            got.summary.cut,
            Some(AuditCut {
                kept_bytes: 3 * each,
                file_bytes: 10 * each
            })
        );
        // A bound on a line's end: no partial line at all.
        let got = read_node_audit_within(&path, "n1", START_NS, 4 * each)
            .expect("read")
            .expect("a file");
        assert_eq!((got.summary.entries, got.summary.unreadable), (4, 0));
        assert_eq!(got.summary.cut.map(|c| c.kept_bytes), Some(4 * each));
        // Within the bound: nothing cut.
        let got = read_node_audit_within(&path, "n1", START_NS, 10 * each)
            .expect("read")
            .expect("a file");
        assert_eq!((got.summary.entries, got.summary.cut), (10, None));
    }

    #[test]
    fn no_file_is_nothing_and_a_cut_file_says_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        assert_eq!(read_node_audit(&path, "n1", START_NS).expect("read"), None);
        // A fetch that stopped mid-line: cut after the last whole line, noted.
        let line = entry(1_700_000_000_000, "status", "admin", "ok");
        std::fs::write(&path, format!("{line}\n{line}\n{}", &line[..20])).expect("write");
        mark_cut(&path, 9_999).expect("cut");
        let text = std::fs::read_to_string(&path).expect("read");
        let kept = 2 * (line.len() as u64 + 1);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[1], line, "the partial line is gone");
        let note: serde_json::Value = serde_json::from_str(lines[2]).expect("a JSON note");
        assert_eq!(
            note,
            serde_json::json!({"cut": {"kept_bytes": kept, "file_bytes": 9_999}})
        );
        let got = read_node_audit(&path, "n1", START_NS)
            .expect("read")
            .expect("a file");
        assert_eq!(got.summary.entries, 2);
        assert_eq!(got.summary.unreadable, 0);
        assert_eq!(
            got.summary.cut,
            Some(AuditCut {
                kept_bytes: kept,
                file_bytes: 9_999
            })
        );
    }
}
