//! End to end: a real node's memory under a client that writes requests
//! and never reads the replies (issue 21, finding 4: replies were queued
//! without bound; 2 MiB of requests took a node from 19 MB to 815 MB).

mod node_common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use faultline_nodes::protocol::Op;
use node_common::*;
use serde_json::json;

const VALUE_BYTES: usize = 900 << 10;
/// A connection is owed at most 64 replies (server::reply_sink).
const OWED: usize = 64;

fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// 4000 reads of a 900 KiB value from a client that never reads: the node
/// holds at most the 64 replies it owes the connection (about 56 MiB), not
/// 3.5 GB. The bound asserted leaves room for allocator slack.
#[test]
fn a_node_stays_bounded_under_a_client_that_never_reads() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = cluster(1, root.path(), &[]);
    nodes[0].start();
    let pid = nodes[0].child.as_ref().expect("running").id();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = client_for(&nodes, None);
        wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        ok(
            &client,
            Op::Write {
                key: "big".into(),
                value: json!("v".repeat(VALUE_BYTES)),
            },
        )
        .await;
    });
    let before_kib = status_kib(pid, "VmRSS:");
    let mut slow = TcpStream::connect(nodes[0].addr).expect("connect");
    let mut lines = Vec::new();
    for id in 0..4000 {
        lines.extend_from_slice(
            format!("{{\"id\":{id},\"op\":\"read\",\"key\":\"big\"}}\n").as_bytes(),
        );
    }
    // 160 KB of requests: the socket buffers take them all.
    slow.write_all(&lines).expect("write the requests");
    // Sample while the node works through what it reads (a few seconds is
    // far longer than the old node needed to queue gigabytes).
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    let peak_kib = status_kib(pid, "VmHWM:");
    let grown_mib = peak_kib.saturating_sub(before_kib) / 1024;
    eprintln!(
        "slow reader: rss before {} MiB, peak {} MiB, grown {grown_mib} MiB (owed replies: {} MiB)",
        before_kib / 1024,
        peak_kib / 1024,
        OWED * VALUE_BYTES >> 20
    );
    assert!(
        grown_mib < 160,
        "the node grew by {grown_mib} MiB for one client that does not read"
    );
    drop(slow);
}
