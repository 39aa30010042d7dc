//! Bad input and authentication against a real `faultline node`: wrong or
//! missing tokens are refused and closed, malformed and oversized lines get
//! errors and never crash the node, the token never reaches the log, and a
//! WAL corrupted in the middle stops the node from starting (exit 254).

mod node_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use faultline_nodes::protocol::Op;
use node_common::*;
use serde_json::{json, Value};

const TOKEN: &str = "tok-e2e-5ecret-7f3a";

/// Send lines on a fresh connection; the replies read until EOF or `n`.
fn exchange(addr: &str, lines: &[&[u8]], n: usize) -> Vec<Value> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for l in lines {
        s.write_all(l).expect("write");
    }
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    while out.len() < n {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => out.push(serde_json::from_str(&line).expect("replies are JSON")),
        }
    }
    out
}

/// Whether the server closed the connection (EOF within the read timeout).
fn closed_after(addr: &str, lines: &[&[u8]]) -> (Vec<Value>, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for l in lines {
        if s.write_all(l).is_err() {
            break;
        }
    }
    let mut all = String::new();
    let closed = s.read_to_string(&mut all).is_ok();
    let replies = all
        .lines()
        .map(|l| serde_json::from_str(l).expect("replies are JSON"))
        .collect();
    (replies, closed)
}

/// One node, started with [`TOKEN`] in a token file under `root`.
fn one_node_with_token(root: &std::path::Path) -> Vec<NodeProc> {
    let token_file = root.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let token_arg = token_file.to_str().expect("utf-8 path").to_string();
    let mut nodes = cluster(1, root, &["--auth-token-file", &token_arg]);
    nodes[0].start();
    nodes
}

#[test]
fn auth_bad_input_and_oversized_lines_never_crash_the_node() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = one_node_with_token(root.path());
    let addr = nodes[0].addr.to_string();

    // No auth first: unauthorized, then closed.
    let (r, closed) = closed_after(&addr, &[b"{\"id\":1,\"op\":\"status\"}\n"]);
    assert_eq!(r[0]["error"], json!("unauthorized"));
    assert_eq!(r[0]["definite"], json!(true));
    assert!(closed, "an unauthorized connection is closed");
    // A wrong token: the same.
    let (r, closed) = closed_after(
        &addr,
        &[
            b"{\"op\":\"auth\",\"token\":\"guess\"}\n",
            b"{\"id\":1,\"op\":\"status\"}\n",
        ],
    );
    assert_eq!(r.len(), 1, "nothing after the refusal: {r:?}");
    assert_eq!(r[0]["error"], json!("unauthorized"));
    assert!(closed);
    // A peer without the token cannot join either, nor one with a wrong token.
    let (r, _) = closed_after(&addr, &[b"{\"op\":\"hello\",\"node\":1}\n"]);
    assert_eq!(r[0]["error"], json!("unauthorized"));
    let (r, closed) = closed_after(
        &addr,
        &[
            b"{\"op\":\"auth\",\"token\":\"guess\"}\n",
            b"{\"op\":\"hello\",\"node\":1}\n",
        ],
    );
    assert_eq!(r.len(), 1, "a refused peer gets one reply: {r:?}");
    assert_eq!(r[0]["error"], json!("unauthorized"));
    assert!(closed, "a peer with a wrong token is closed");
    // A client operation and an admin operation without the token: refused
    // and closed; the write never happens (read back below, with the token).
    for line in [
        &b"{\"id\":1,\"op\":\"write\",\"key\":\"unauthorized-write\",\"value\":1}\n"[..],
        &b"{\"id\":1,\"op\":\"filter\",\"drop\":[2,3]}\n"[..],
        &b"{\"id\":1,\"op\":\"clock\",\"offset_ms\":5000}\n"[..],
    ] {
        let (r, closed) = closed_after(&addr, &[line]);
        let what = String::from_utf8_lossy(line);
        assert_eq!(r.len(), 1, "{what}: {r:?}");
        assert_eq!(r[0]["error"], json!("unauthorized"), "{what}");
        assert_eq!(
            r[0]["id"],
            json!(1),
            "{what}: the refusal names the request"
        );
        assert!(closed, "{what}: closed after the refusal");
    }

    // The right token, then bad input of every kind on the same connection.
    // A good auth without an id is not answered: the first reply is the request's.
    let quiet_auth = format!("{{\"op\":\"auth\",\"token\":\"{TOKEN}\"}}\n");
    let r = exchange(
        &addr,
        &[quiet_auth.as_bytes(), b"{\"id\":9,\"op\":\"status\"}\n"],
        1,
    );
    assert_eq!(r[0]["id"], json!(9), "{r:?}");
    assert_eq!(r[0]["ok"], json!(true));
    let auth = format!("{{\"id\":1,\"op\":\"auth\",\"token\":\"{TOKEN}\"}}\n");
    let replies = exchange(
        &addr,
        &[
            auth.as_bytes(),
            b"this is not json\n",
            b"{\"id\":2,\"op\":\"launch-missiles\"}\n",
            b"{\"id\":3,\"op\":\"write\",\"key\":\"x\"}\n",
            b"[1,2,3]\n",
            b"{\"id\":4,\"op\":\"add\",\"key\":\"c\",\"delta\":\"lots\"}\n",
            b"\xff\xfe\x00garbage\n",
            b"{\"id\":5,\"op\":\"filter\",\"loss\":3}\n",
            b"{\"id\":6,\"op\":\"clock\",\"rate\":-1}\n",
            b"{\"id\":7,\"op\":\"hello\",\"node\":2}\n",
            b"{\"id\":8,\"op\":\"status\"}\n",
        ],
        11,
    );
    assert_eq!(replies.len(), 11, "{replies:?}");
    assert_eq!(replies[0]["ok"], json!(true), "auth accepted");
    for r in &replies[1..10] {
        assert_eq!(r["error"], json!("bad-request"), "{r}");
        assert_eq!(r["definite"], json!(true));
    }
    assert_eq!(replies[2]["id"], json!(2), "the id is echoed when readable");
    assert_eq!(
        replies[10]["ok"],
        json!(true),
        "the connection still works: {}",
        replies[10]
    );

    // An oversized line: too-large, closed, and the node allocates no more than the limit.
    let mut big = auth.clone().into_bytes();
    big.extend(std::iter::repeat_n(b'x', 3 << 20));
    big.push(b'\n');
    let (r, closed) = closed_after(&addr, &[&big]);
    assert_eq!(r.first().map(|v| v["ok"].clone()), Some(json!(true)));
    assert_eq!(
        r.get(1).map(|v| v["error"].clone()),
        Some(json!("too-large")),
        "{r:?}"
    );
    assert!(closed, "a too-large line closes the connection");

    // The node survived all of it and still serves authenticated clients.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = client_for(&nodes, Some(TOKEN));
        wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        ok(
            &client,
            Op::Write {
                key: "k".into(),
                value: json!("v"),
            },
        )
        .await;
        assert_eq!(
            ok(&client, Op::Read { key: "k".into() }).await.value(),
            &json!("v")
        );
        let unauthorized = Op::Read {
            key: "unauthorized-write".into(),
        };
        assert_eq!(
            ok(&client, unauthorized).await.value(),
            &Value::Null,
            "a write without the token never took effect"
        );
    });
    nodes[0].kill();
    let log = std::fs::read_to_string(&nodes[0].log).expect("node log");
    assert!(!log.contains(TOKEN), "the token must never be logged");
}

/// The open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the node's /proc/PID/fd")
        .count()
}

/// Regression: with a token, a connection closed before its first line
/// (a port probe, an impostor that gives up) left its serving task waiting
/// forever on its own writer, so every such connection kept two tasks and
/// its socket: a node probed in a loop ran out of descriptors.
#[test]
fn connections_closed_before_auth_are_released() {
    let root = tempfile::tempdir().expect("tempdir");
    let nodes = one_node_with_token(root.path());
    let addr = nodes[0].addr.to_string();
    let pid = nodes[0].child.as_ref().expect("started").id();
    // A first probe and its release, so the baseline has whatever a served
    // connection leaves for good (none expected).
    drop(TcpStream::connect(&addr).expect("connect"));
    std::thread::sleep(Duration::from_millis(200));
    let baseline = open_fds(pid);
    const PROBES: usize = 100;
    for _ in 0..PROBES {
        drop(TcpStream::connect(&addr).expect("connect"));
    }
    // Each closed connection is released when the node reads its EOF; wait
    // for that (the node is idle), not for a fixed time.
    let mut open = open_fds(pid);
    for _ in 0..100 {
        if open <= baseline + 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        open = open_fds(pid);
    }
    assert!(
        open <= baseline + 2,
        "{PROBES} connections closed before auth still hold {} descriptors of the node \
         ({baseline} before, {open} after)",
        open.saturating_sub(baseline)
    );
    // The node still serves an authenticated client.
    let auth = format!("{{\"id\":1,\"op\":\"auth\",\"token\":\"{TOKEN}\"}}\n");
    let r = exchange(&addr, &[auth.as_bytes()], 1);
    assert_eq!(r[0]["ok"], json!(true), "{r:?}");
}

#[test]
fn a_wal_corrupted_in_the_middle_refuses_to_start_with_file_and_offset() {
    let root = tempfile::tempdir().expect("tempdir");
    let mut nodes = cluster(1, root.path(), &[]);
    nodes[0].start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let client = client_for(&nodes, None);
        wait_for_leader(&client, &nodes, Duration::from_secs(30)).await;
        for i in 0..20 {
            ok(
                &client,
                Op::Write {
                    key: format!("k{i}"),
                    value: json!(i),
                },
            )
            .await;
        }
    });
    nodes[0].kill();
    let wal = nodes[0].data_dir.join("group-0").join("wal.log");
    let mut bytes = std::fs::read(&wal).expect("read WAL");
    assert!(bytes.len() > 200, "the WAL holds the writes");
    bytes[40] ^= 0x55; // inside an early record, with many records after it
    std::fs::write(&wal, &bytes).expect("corrupt WAL");
    let out = Command::new(BIN)
        .args(["node", "--id", "1", "--listen", &nodes[0].addr.to_string()])
        .args(["--peers", &nodes[0].peers, "--data-dir"])
        .arg(&nodes[0].data_dir)
        .output()
        .expect("run faultline node");
    assert_eq!(
        out.status.code(),
        Some(254),
        "corruption is bad input: {out:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wal.log") && err.contains("offset"),
        "the error names file and offset: {err}"
    );
}

#[test]
fn list_bugs_prints_one_tab_separated_line_per_bug() {
    let out = Command::new(BIN)
        .args(["node", "--list-bugs"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    for bug in [
        "stale-read",
        "no-fsync",
        "lock-early-expiry",
        "no-fence",
        "client-admin",
        "peer-id-unchecked",
    ] {
        assert!(names.contains(&bug), "{bug} missing from {text}");
    }
    assert!(text.lines().all(|l| l.split('\t').count() == 5), "{text}");
    let out = Command::new(BIN)
        .args([
            "node",
            "--id",
            "1",
            "--listen",
            "127.0.0.1:1",
            "--peers",
            "1=127.0.0.1:1",
            "--data-dir",
            "/nonexistent-dir-x",
            "--bug",
            "no-such-bug",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(254), "an unknown bug is bad input");
}
