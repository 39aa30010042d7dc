//! The slow-reader fault: clients that write requests and never read a
//! reply (issue 21, finding 4: a node that queued every reply it owed grew
//! from 19 MB to 815 MB on 2 MiB of requests). During the fault window
//! [`CONNECTIONS`] connections to one node each store a value of
//! [`VALUE_BYTES`] at a key of the fault's own, then pipeline
//! [`READS_PER_CONNECTION`] reads of it, reading nothing; healing closes
//! them. The node's peak resident set is reset when the fault starts and
//! read before it heals (the cluster's
//! [`crate::cluster::Cluster::memory`]); the
//! `node-memory` check ([`check`]) fails the run when the node grew by more
//! than [`GROWTH_BOUND_KIB`].
//!
//! The bound: a node owes a connection at most 64 replies, then stops
//! reading it (nodes/src/server/reply_sink.rs), so the fault can hold at
//! most 2 × 64 replies of 256 KiB, 32 MiB, in the node; 128 MiB leaves room
//! for allocator slack and the workload's own writes during the window. A
//! node that queued every reply would hold 2 × 2048 × 256 KiB, 1 GiB: four
//! times over the bound on even a fraction of it.
//!
//! What the requests say is the system's business
//! ([`crate::system::System::slow_reader_lines`]); this module only opens
//! the connections, writes, and closes.

use faultline_checker::history::{Event, Process};
use faultline_results::{CheckerOutcome, VerdictKind};
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

/// Connections the fault opens to its node.
pub const CONNECTIONS: usize = 2;
/// Reads each connection sends after its write.
pub const READS_PER_CONNECTION: usize = 2048;
/// The size of the value the reads fetch.
pub const VALUE_BYTES: usize = 256 << 10;
/// How much the node may grow during the fault window (see the module docs).
pub const GROWTH_BOUND_KIB: u64 = 128 << 10;
/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A node's memory as its processes' /proc/PID/status tells it (KiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeMemory {
    /// Resident now (VmRSS).
    pub rss_kib: u64,
    /// The highest resident set since the process started, or since its
    /// peak was last reset (VmHWM).
    pub peak_rss_kib: u64,
}

/// The request lines of the fault, each ending in a newline: one that
/// stores a value of the given size at the fault's own key, and one that
/// reads it back.
#[derive(Clone, Debug)]
pub struct SlowReaderLines {
    pub store: Vec<u8>,
    pub read: Vec<u8>,
}

/// What the nemesis needs to make the fault: the lines, and the address
/// clients bind (so the run's packet filter treats them as clients).
#[derive(Clone, Debug)]
pub struct SlowReaderSetup {
    pub lines: SlowReaderLines,
    pub bind_ip: Option<IpAddr>,
}

/// The open connections of one fault window.
pub struct SlowReaders {
    writers: Vec<JoinHandle<()>>,
    written: Arc<AtomicU64>,
}

impl SlowReaders {
    /// Opens [`CONNECTIONS`] connections to `addr`; each writes the store
    /// line and then its reads on a task of its own, never reading.
    pub async fn open(addr: SocketAddr, setup: &SlowReaderSetup) -> anyhow::Result<SlowReaders> {
        let written = Arc::new(AtomicU64::new(0));
        let mut readers = SlowReaders {
            writers: Vec::new(),
            written: Arc::clone(&written),
        };
        for _ in 0..CONNECTIONS {
            let stream = connect(addr, setup.bind_ip).await?;
            let lines = setup.lines.clone();
            let written = Arc::clone(&written);
            readers
                .writers
                .push(tokio::spawn(write_never_read(stream, lines, written)));
        }
        Ok(readers)
    }

    /// Bytes of requests the node has taken so far (a write that blocks
    /// because the node stopped reading is not counted).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Closes every connection (their tasks end, dropping the sockets).
    pub fn close(self) -> u64 {
        for writer in &self.writers {
            writer.abort();
        }
        self.written()
    }
}

impl Drop for SlowReaders {
    fn drop(&mut self) {
        for writer in &self.writers {
            writer.abort();
        }
    }
}

async fn connect(
    addr: SocketAddr,
    bind_ip: Option<IpAddr>,
) -> anyhow::Result<tokio::net::TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(ip) = bind_ip {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(anyhow::anyhow!("connecting to {addr}: {e}")),
        Err(_) => Err(anyhow::anyhow!(
            "connecting to {addr}: no answer in {CONNECT_TIMEOUT:?}"
        )),
    }
}

async fn write_never_read(
    mut stream: tokio::net::TcpStream,
    lines: SlowReaderLines,
    written: Arc<AtomicU64>,
) {
    if stream.write_all(&lines.store).await.is_err() {
        return;
    }
    written.fetch_add(lines.store.len() as u64, Ordering::Relaxed);
    for _ in 0..READS_PER_CONNECTION {
        if stream.write_all(&lines.read).await.is_err() {
            return;
        }
        written.fetch_add(lines.read.len() as u64, Ordering::Relaxed);
    }
    // Hold the connection open, unread, until the fault heals.
    std::future::pending::<()>().await;
}

/// The `node-memory` check: every `stop-slow-reader` event of the history
/// says how much its node grew while clients did not read; the run is
/// invalid if one grew past its bound, unknown if one could not be
/// measured. None when the run had no slow-reader fault.
pub fn check(events: &[Event]) -> Option<CheckerOutcome> {
    let stops: Vec<&Event> = events
        .iter()
        .filter(|e| e.process == Process::Nemesis && e.f == "stop-slow-reader")
        .collect();
    if stops.is_empty() {
        return None;
    }
    let mut worst: Option<(u64, u64, String)> = None;
    let mut over = Vec::new();
    let mut unmeasured = Vec::new();
    for event in &stops {
        let value = &event.value;
        let node = value["node"].as_str().unwrap_or("?").to_string();
        let (Some(growth), Some(bound), Some(peak)) = (
            value["growth_kib"].as_u64(),
            value["bound_kib"].as_u64(),
            value["peak_rss_kib"].as_u64(),
        ) else {
            let why = event
                .error
                .clone()
                .unwrap_or_else(|| "no measurement".into());
            unmeasured.push(format!("{node} (history line {}): {why}", event.index + 1));
            continue;
        };
        if growth > bound {
            over.push(format!(
                "{node} grew {} MiB (peak {} MiB), over its bound of {} MiB",
                growth >> 10,
                peak >> 10,
                bound >> 10
            ));
        }
        if worst.as_ref().map_or(true, |(g, _, _)| growth > *g) {
            worst = Some((growth, peak, node));
        }
    }
    let detail = json!(stops.iter().map(|e| &e.value).collect::<Vec<_>>());
    let outcome = |verdict, summary| CheckerOutcome {
        checker: "node-memory".into(),
        scope: None,
        verdict,
        summary,
        detail: detail.clone(),
    };
    Some(if !over.is_empty() {
        outcome(VerdictKind::Invalid, over.join("; "))
    } else if !unmeasured.is_empty() {
        outcome(
            VerdictKind::Unknown,
            format!("node memory not measured: {}", unmeasured.join("; ")),
        )
    } else {
        let (growth, peak, node) = worst.expect("every stop was measured");
        outcome(
            VerdictKind::Valid,
            format!(
                "{} slow-reader fault(s): the most a node grew was {} MiB ({node}, peak RSS {} MiB), bound {} MiB",
                stops.len(),
                growth >> 10,
                peak >> 10,
                GROWTH_BOUND_KIB >> 10
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faultline_checker::history::EventType;

    fn stop(index: u64, value: serde_json::Value, error: Option<&str>) -> Event {
        Event {
            index,
            time: 0,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: "stop-slow-reader".into(),
            key: None,
            value,
            node: None,
            error: error.map(str::to_string),
        }
    }

    fn measured(growth_kib: u64) -> serde_json::Value {
        json!({
            "node": "n2",
            "rss_before_kib": 40_000,
            "peak_rss_kib": 40_000 + growth_kib,
            "growth_kib": growth_kib,
            "bound_kib": GROWTH_BOUND_KIB,
        })
    }

    #[test]
    fn a_run_without_the_fault_has_no_memory_check() {
        assert!(check(&[]).is_none());
    }

    #[test]
    fn growth_within_the_bound_is_valid() {
        let outcome = check(&[stop(3, measured(20 << 10), None)]).expect("checked");
        assert_eq!(outcome.verdict, VerdictKind::Valid, "{}", outcome.summary);
        assert!(outcome.summary.contains("20 MiB"), "{}", outcome.summary);
    }

    #[test]
    fn growth_above_the_bound_fails_the_run() {
        let events = [
            stop(3, measured(10 << 10), None),
            stop(9, measured(GROWTH_BOUND_KIB + 1024), None),
        ];
        let outcome = check(&events).expect("checked");
        assert_eq!(outcome.verdict, VerdictKind::Invalid, "{}", outcome.summary);
        assert!(
            outcome.summary.contains("n2 grew 129 MiB"),
            "{}",
            outcome.summary
        );
    }

    #[test]
    fn a_fault_whose_node_was_not_measured_is_unknown() {
        let events = [
            stop(3, measured(10 << 10), None),
            stop(
                9,
                json!({"node": "n1"}),
                Some("reading /proc/7/status: gone"),
            ),
        ];
        let outcome = check(&events).expect("checked");
        assert_eq!(outcome.verdict, VerdictKind::Unknown, "{}", outcome.summary);
        assert!(outcome.summary.contains("line 10"), "{}", outcome.summary);
    }
}
