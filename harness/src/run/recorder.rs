//! The recorder: turns invokes, completions and faults into history events
//! (docs/history-format.md) written as they happen, and keeps the live
//! counts the progress bar shows.

use faultline_checker::history::{Event, EventType, Process, Value};
use faultline_results::HistoryWriter;
use faultline_workloads::{Completion, Op, Outcome};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Live counts for the progress bar.
#[derive(Default)]
pub struct Counts {
    pub invoked: AtomicU64,
    pub ok: AtomicU64,
    pub fail: AtomicU64,
    pub info: AtomicU64,
    /// Faults in effect now.
    pub faults_active: AtomicI64,
    pub faults_started: AtomicU64,
}

/// Shared by every worker and the nemesis.
pub struct Recorder {
    writer: HistoryWriter,
    pub counts: Counts,
}

impl Recorder {
    pub fn new(writer: HistoryWriter) -> Recorder {
        Recorder {
            writer,
            counts: Counts::default(),
        }
    }

    pub fn writer(&self) -> &HistoryWriter {
        &self.writer
    }

    /// Flushes, fsyncs and closes the history; returns its event count.
    pub fn finish(self) -> std::io::Result<u64> {
        self.writer.finish()
    }

    pub fn invoke(&self, process: u64, op: &Op) -> std::io::Result<()> {
        self.counts.invoked.fetch_add(1, Ordering::Relaxed);
        let mut e = Event {
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind: EventType::Invoke,
            f: op.f.to_string(),
            key: op.key.clone(),
            value: op.value.clone(),
            node: None,
            error: None,
        };
        self.writer.record(&mut e)
    }

    pub fn complete(&self, process: u64, op: &Op, c: &Completion) -> std::io::Result<()> {
        let (kind, counter) = match c.outcome {
            Outcome::Ok => (EventType::Ok, &self.counts.ok),
            Outcome::Fail => (EventType::Fail, &self.counts.fail),
            Outcome::Info => (EventType::Info, &self.counts.info),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut e = Event {
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind,
            f: op.f.to_string(),
            key: op.key.clone(),
            value: c.value.clone(),
            node: c.node.clone(),
            error: c.error.clone(),
        };
        self.writer.record(&mut e)
    }

    /// An audit event of `node` (`audit` or `audit-log`, run/audit.rs),
    /// written after the run: stamped with the last event's time.
    pub fn audit(&self, f: &str, node: &str, value: Value) -> std::io::Result<()> {
        let mut e = Event {
            index: 0,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: f.to_string(),
            key: None,
            value,
            node: Some(node.to_string()),
            error: None,
        };
        self.writer.record_at_last_time(&mut e)
    }

    /// A nemesis event: `f` is `start-<fault>` or `stop-<fault>`.
    pub fn nemesis(&self, f: String, value: Value, error: Option<String>) -> std::io::Result<()> {
        if f.starts_with("start-") {
            self.counts.faults_active.fetch_add(1, Ordering::Relaxed);
            self.counts.faults_started.fetch_add(1, Ordering::Relaxed);
        } else if f.starts_with("stop-") {
            self.counts.faults_active.fetch_sub(1, Ordering::Relaxed);
        }
        let mut e = Event {
            index: 0,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f,
            key: None,
            value,
            node: None,
            error,
        };
        self.writer.record(&mut e)
    }
}
