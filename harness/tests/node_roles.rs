//! Roles on a real `faultline node` (server::access, docs/protocol.md
//! "Roles"): with a token per role and with role certificates, each role
//! is allowed what it may do and refused (`unauthorized`, definite, the
//! connection kept) what it may not; only a peer credential opens a peer
//! session, and only for its own id; the planted access bugs lift exactly
//! those refusals; and the audit log records admin ops and refusals,
//! never a token.

mod node_common;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use faultline_nodes::consensus::NodeId;
use faultline_nodes::tls::{CertAuthority, ClientTls, Role, RunPki};
use node_common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const CLIENT_TOKEN: &str = "tok-client-9a1e";
const ADMIN_TOKEN: &str = "tok-admin-44c2";
const PEER_TOKEN: &str = "tok-peer-0d7b";
const SHARED_TOKEN: &str = "tok-shared-61f0";

/// Send `lines` on a fresh plain connection; the replies read until EOF or
/// `n`, and whether the node closed the connection.
fn exchange(addr: SocketAddr, lines: &[Value], n: usize) -> (Vec<Value>, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for line in lines {
        let mut bytes = serde_json::to_vec(line).expect("json");
        bytes.push(b'\n');
        if s.write_all(&bytes).is_err() {
            break;
        }
    }
    let mut r = BufReader::new(s);
    let mut out = Vec::new();
    let mut closed = false;
    while out.len() < n {
        let mut line = String::new();
        match r.read_line(&mut line) {
            Ok(0) => {
                closed = true;
                break;
            }
            Err(_) => break,
            Ok(_) => out.push(serde_json::from_str(&line).expect("replies are JSON")),
        }
    }
    (out, closed)
}

/// Replies by their request's id (replies may come in any order: a
/// refusal at once, a write once committed).
fn by_id(replies: &[Value]) -> std::collections::BTreeMap<u64, Value> {
    replies
        .iter()
        .filter_map(|r| Some((r["id"].as_u64()?, r.clone())))
        .collect()
}

fn auth(token: &str) -> Value {
    json!({"op": "auth", "token": token})
}

fn error_of(reply: &Value) -> &str {
    reply["error"].as_str().unwrap_or("")
}

/// Write `token` to `root/name`; the path as a flag value.
fn token_file(root: &Path, name: &str, token: &str) -> String {
    let path = root.join(name);
    std::fs::write(&path, format!("{token}\n")).expect("token file");
    path.to_str().expect("utf-8 path").to_string()
}

/// Every audit line of `node`, parsed.
fn audit_of(node: &NodeProc) -> Vec<Value> {
    let text = std::fs::read_to_string(audit_path(node)).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).expect("an audit line is JSON"))
        .collect()
}

fn audit_path(node: &NodeProc) -> PathBuf {
    node.data_dir.join("audit.jsonl")
}

/// Wait (a liveness bound, not a timed assertion) until `node`'s audit log
/// holds an entry matching `want`; that entry.
fn audited(node: &NodeProc, what: &str, want: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        if let Some(e) = audit_of(node).into_iter().find(|e| want(e)) {
            return e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "node {}: no audit entry for {what}: {:?}",
            node.id,
            audit_of(node)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The leader, polling `status` after `first` (an `auth` without id: no reply).
fn leader_with(nodes: &[NodeProc], first: &[Value]) -> SocketAddr {
    let start = Instant::now();
    loop {
        for node in nodes {
            let mut lines = first.to_vec();
            lines.push(json!({"id": 1, "op": "status"}));
            let (replies, _) = exchange(node.addr, &lines, 1);
            if replies.last().is_some_and(|r| r["role"] == json!("leader")) {
                return node.addr;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no leader");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn each_role_token_is_allowed_its_ops_and_refused_the_others() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    let client_file = token_file(r, "client", CLIENT_TOKEN);
    let admin_file = token_file(r, "admin", ADMIN_TOKEN);
    let peer_file = token_file(r, "peer", PEER_TOKEN);
    let mut nodes = cluster(
        3,
        r,
        &[
            "--client-token-file",
            &client_file,
            "--admin-token-file",
            &admin_file,
            "--peer-token-file",
            &peer_file,
        ],
    );
    nodes.iter_mut().for_each(NodeProc::start);
    // A leader: the peers reach each other with the peer token.
    let leader = leader_with(&nodes, &[auth(ADMIN_TOKEN)]);

    // The client token: data ops served, admin ops refused, the
    // connection kept (the read after the refusals is answered).
    let start = Instant::now();
    loop {
        let lines = [
            json!({"id": 0, "op": "auth", "token": CLIENT_TOKEN}),
            json!({"id": 1, "op": "write", "key": "k", "value": "by-client"}),
            json!({"id": 2, "op": "status"}),
            json!({"id": 3, "op": "filter", "drop": [2, 3]}),
            json!({"id": 4, "op": "change-membership", "group": 0, "voters": [1]}),
            json!({"id": 5, "op": "read", "key": "k"}),
        ];
        let (replies, closed) = exchange(leader, &lines, lines.len());
        assert!(!closed, "a role refusal keeps the connection: {replies:?}");
        assert_eq!(replies.len(), 6, "{replies:?}");
        let replies = by_id(&replies);
        for refused in [&replies[&2], &replies[&3], &replies[&4]] {
            assert_eq!(error_of(refused), "unauthorized", "{replies:?}");
            assert_eq!(refused["definite"], json!(true), "{refused}");
            let reason = refused["reason"].as_str().expect("a reason");
            assert!(reason.contains("needs an admin credential"), "{reason}");
            assert!(reason.contains("role is client"), "{reason}");
        }
        // The read runs concurrently with the write (pipelined): it may
        // see either value; it is read back after the write below.
        assert_ne!(error_of(&replies[&1]), "unauthorized", "{replies:?}");
        assert_ne!(error_of(&replies[&5]), "unauthorized", "{replies:?}");
        if replies[&1]["ok"] == json!(true) {
            break;
        }
        // A leader change in between: try again.
        assert!(start.elapsed() < Duration::from_secs(60), "{replies:?}");
    }

    // Read back (from whichever node leads now: a leader change answers
    // not-leader, and the read is asked again).
    let start = Instant::now();
    let lines = [
        auth(CLIENT_TOKEN),
        json!({"id": 1, "op": "read", "key": "k"}),
    ];
    loop {
        let now = leader_with(&nodes, &[auth(ADMIN_TOKEN)]);
        let (replies, _) = exchange(now, &lines, 1);
        if replies.first().is_some_and(|r| r["ok"] == json!(true)) {
            assert_eq!(replies[0]["value"], json!("by-client"), "{replies:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{replies:?}");
    }

    // The admin token: admin ops and data ops.
    let lines = [
        auth(ADMIN_TOKEN),
        json!({"id": 1, "op": "status"}),
        json!({"id": 2, "op": "filter", "drop": []}),
        json!({"id": 3, "op": "clock", "offset_ms": 0, "rate": 1.0}),
        json!({"id": 4, "op": "read", "key": "k"}),
    ];
    let (replies, _) = exchange(leader, &lines, 4);
    let replies = by_id(&replies);
    for id in 1..=3 {
        assert_eq!(replies[&id]["ok"], json!(true), "{replies:?}");
    }
    assert_ne!(error_of(&replies[&4]), "unauthorized", "{replies:?}");

    // The peer token: no data op, no admin op; the refused write did not
    // happen (read back as admin).
    let lines = [
        auth(PEER_TOKEN),
        json!({"id": 1, "op": "write", "key": "by-peer", "value": 1}),
        json!({"id": 2, "op": "status"}),
    ];
    let (replies, _) = exchange(leader, &lines, 2);
    assert_eq!(replies.len(), 2, "{replies:?}");
    for reply in &replies {
        assert_eq!(error_of(reply), "unauthorized", "{replies:?}");
    }
    let lines = [
        auth(ADMIN_TOKEN),
        json!({"id": 1, "op": "read", "key": "by-peer"}),
    ];
    let (replies, _) = exchange(leader, &lines, 1);
    assert_eq!(replies[0]["ok"], json!(true), "{replies:?}");
    assert_eq!(replies[0]["value"], Value::Null, "a refused write happened");

    // Peer sessions: the peer token opens one (the node answers nothing,
    // and closes on the undecodable message after it); client and admin
    // tokens are refused.
    let not_a_message = json!({"not": "a peer message"});
    let hello = json!({"op": "hello", "node": 2});
    let (replies, closed) = exchange(
        leader,
        &[auth(PEER_TOKEN), hello.clone(), not_a_message.clone()],
        1,
    );
    assert!(
        replies.is_empty(),
        "the peer token's hello refused: {replies:?}"
    );
    assert!(closed, "closed on the undecodable message");
    for token in [CLIENT_TOKEN, ADMIN_TOKEN] {
        let lines = [auth(token), hello.clone(), not_a_message.clone()];
        let (replies, closed) = exchange(leader, &lines, 2);
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!(error_of(&replies[0]), "unauthorized", "{replies:?}");
        assert!(closed);
    }
    // A wrong token: refused and closed.
    let (replies, closed) = exchange(
        leader,
        &[auth("guess"), json!({"id": 1, "op": "read", "key": "k"})],
        2,
    );
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(error_of(&replies[0]), "unauthorized");
    assert!(closed);

    // The audit log of the node that served all this.
    let node = nodes
        .iter()
        .find(|n| n.addr == leader)
        .expect("the leader is a node");
    let filter = audited(node, "the admin's filter", |e| {
        e["op"] == "filter" && e["role"] == "admin" && e["outcome"] == "ok"
    });
    assert_eq!(filter["args"]["drop"], json!([]), "{filter}");
    assert!(
        filter["time_ms"].as_u64().is_some_and(|t| t > 0),
        "{filter}"
    );
    assert!(filter["peer"]
        .as_str()
        .is_some_and(|p| p.starts_with("127.0.0.1:")));
    let refused = audited(node, "the client's filter", |e| {
        e["op"] == "filter" && e["role"] == "client" && e["outcome"] == "unauthorized"
    });
    assert_eq!(refused["args"]["drop"], json!([2, 3]), "{refused}");
    audited(node, "the client's change-membership", |e| {
        e["op"] == "change-membership" && e["outcome"] == "unauthorized"
    });
    audited(node, "the peer's write", |e| {
        e["op"] == "write" && e["role"] == "peer" && e["outcome"] == "unauthorized"
    });
    audited(node, "the client's hello", |e| {
        e["op"] == "hello" && e["role"] == "client" && e["outcome"] == "unauthorized"
    });
    audited(node, "the wrong token", |e| {
        e["op"] == "auth" && e["role"] == "none" && e["outcome"] == "unauthorized"
    });
    // Data ops that were allowed are not audited.
    assert!(
        !audit_of(node)
            .iter()
            .any(|e| e["op"] == "write" && e["outcome"] == "ok"),
        "an allowed data op was audited"
    );
    for node in &nodes {
        let text = std::fs::read_to_string(audit_path(node)).unwrap_or_default();
        for token in [CLIENT_TOKEN, ADMIN_TOKEN, PEER_TOKEN, "guess"] {
            assert!(
                !text.contains(token),
                "node {}'s audit log holds a token",
                node.id
            );
        }
    }
}

/// A run's certificates for `n` nodes on 127.0.0.1, under `root/tls`.
fn pki(root: &Path, n: u64) -> RunPki {
    let ca = CertAuthority::generate().expect("a CA");
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
    let nodes: Vec<_> = (1..=n).map(|i| (NodeId(i), vec![loopback])).collect();
    ca.write_run(&root.join("tls"), &nodes)
        .expect("write the run's certificates")
}

/// `n` TLS nodes with `extra` flags, started.
fn tls_cluster(root: &Path, n: usize, extra: &[&str]) -> (Vec<NodeProc>, RunPki) {
    let pki = pki(root, n as u64);
    let mut nodes = cluster(n, root, extra);
    for node in &mut nodes {
        let files = &pki.nodes[&NodeId(node.id)];
        for (flag, path) in [
            ("--tls-cert", &files.cert),
            ("--tls-key", &files.key),
            ("--tls-ca", &files.ca),
        ] {
            node.extra.push(flag.into());
            node.extra.push(path.to_str().expect("utf-8 path").into());
        }
    }
    nodes.iter_mut().for_each(NodeProc::start);
    (nodes, pki)
}

/// Send `lines` over TLS; the replies read until EOF or `n`.
async fn tls_exchange(tls: &ClientTls, addr: SocketAddr, lines: &[Value], n: usize) -> Vec<Value> {
    let mut stream = tls.connect(addr).await.expect("TLS handshake");
    for line in lines {
        let mut bytes = serde_json::to_vec(line).expect("json");
        bytes.push(b'\n');
        if stream.write_all(&bytes).await.is_err() {
            break;
        }
    }
    let _ = stream.flush().await;
    let mut reader = tokio::io::BufReader::new(stream);
    let mut replies = Vec::new();
    while replies.len() < n {
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(10), reader.read_line(&mut line));
        match read.await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(_)) => replies.push(serde_json::from_str(&line).expect("replies are JSON")),
        }
    }
    replies
}

/// The TLS leader, asked with `admin`'s certificate (and `first` lines).
async fn tls_leader(admin: &ClientTls, nodes: &[NodeProc], first: &[Value]) -> SocketAddr {
    let start = Instant::now();
    loop {
        for node in nodes {
            let mut lines = first.to_vec();
            lines.push(json!({"id": 1, "op": "status"}));
            let replies = tls_exchange(admin, node.addr, &lines, 1).await;
            if replies.last().is_some_and(|r| r["role"] == json!("leader")) {
                return node.addr;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no leader over TLS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

#[test]
fn role_certificates_decide_the_role_and_the_shared_token_narrows_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let shared = token_file(root.path(), "shared", SHARED_TOKEN);
    let (nodes, pki) = tls_cluster(root.path(), 3, &["--auth-token-file", &shared]);
    let tls = |role| ClientTls::from_files(&pki.roles[&role]).expect("role TLS");
    let (client, admin) = (tls(Role::Client), tls(Role::Admin));
    let no_certificate = ClientTls::load(&pki.ca, None).expect("TLS");
    let node2 = ClientTls::from_files(&pki.nodes[&NodeId(2)]).expect("node 2's TLS");
    let token = auth(SHARED_TOKEN);
    runtime().block_on(async {
        let leader = tls_leader(&admin, &nodes, std::slice::from_ref(&token)).await;
        // The client certificate with the token that grants every role: a
        // client (the connection has what both grant).
        let lines = [
            token.clone(),
            json!({"id": 1, "op": "read", "key": "k"}),
            json!({"id": 2, "op": "status"}),
            json!({"id": 3, "op": "transfer-leader", "to": 2}),
        ];
        let replies = tls_exchange(&client, leader, &lines, 3).await;
        assert_eq!(replies.len(), 3, "{replies:?}");
        let replies = by_id(&replies);
        assert_ne!(error_of(&replies[&1]), "unauthorized", "{replies:?}");
        assert_eq!(error_of(&replies[&2]), "unauthorized", "{replies:?}");
        assert_eq!(error_of(&replies[&3]), "unauthorized", "{replies:?}");
        // The admin certificate: status, a no-op filter, a read.
        let lines = [
            token.clone(),
            json!({"id": 1, "op": "status"}),
            json!({"id": 2, "op": "filter"}),
            json!({"id": 3, "op": "read", "key": "k"}),
        ];
        let replies = tls_exchange(&admin, leader, &lines, 3).await;
        assert_eq!(replies.len(), 3, "{replies:?}");
        let replies = by_id(&replies);
        assert_eq!(replies[&1]["ok"], json!(true), "{replies:?}");
        assert_eq!(replies[&2]["ok"], json!(true), "{replies:?}");
        assert_ne!(error_of(&replies[&3]), "unauthorized", "{replies:?}");
        // No certificate, or a node's, with the token: no client op, no
        // admin op.
        for who in [&no_certificate, &node2] {
            let lines = [
                token.clone(),
                json!({"id": 1, "op": "read", "key": "k"}),
                json!({"id": 2, "op": "status"}),
            ];
            let replies = tls_exchange(who, leader, &lines, 2).await;
            assert_eq!(replies.len(), 2, "{replies:?}");
            for reply in &replies {
                assert_eq!(error_of(reply), "unauthorized", "{replies:?}");
            }
        }
        // Node 2's certificate opens node 2's peer session, not node 3's;
        // the client and admin certificates open none.
        let garbage = json!({"not": "a peer message"});
        let hello = |node: u64| json!({"op": "hello", "node": node});
        let replies = tls_exchange(
            &node2,
            leader,
            &[token.clone(), hello(2), garbage.clone()],
            1,
        )
        .await;
        assert!(
            replies.is_empty(),
            "node 2's own hello refused: {replies:?}"
        );
        for (who, node) in [(&node2, 3), (&client, 2), (&admin, 2)] {
            let lines = [token.clone(), hello(node), garbage.clone()];
            let replies = tls_exchange(who, leader, &lines, 2).await;
            assert_eq!(replies.len(), 1, "hello {node}: {replies:?}");
            assert_eq!(error_of(&replies[0]), "unauthorized", "{replies:?}");
        }
        let node = nodes.iter().find(|n| n.addr == leader).expect("a node");
        audited(node, "the client certificate's transfer-leader", |e| {
            e["op"] == "transfer-leader" && e["role"] == "client" && e["outcome"] == "unauthorized"
        });
        audited(node, "node 2 claiming node 3", |e| {
            e["op"] == "hello" && e["args"]["node"] == 3 && e["role"] == "peer-2"
        });
        audited(node, "the admin's status", |e| {
            e["op"] == "status" && e["role"] == "admin" && e["outcome"] == "ok"
        });
    });
    // A plain connection to the TLS port is a refused connection too.
    let (replies, _) = exchange(nodes[0].addr, &[json!({"id": 1, "op": "status"})], 1);
    assert_eq!(error_of(&replies[0]), "tls-required", "{replies:?}");
    audited(&nodes[0], "the plain connection", |e| {
        e["op"] == "connect" && e["outcome"] == "tls-required"
    });
    for node in &nodes {
        let text = std::fs::read_to_string(audit_path(node)).unwrap_or_default();
        assert!(
            !text.contains(SHARED_TOKEN),
            "node {}'s audit log holds the token",
            node.id
        );
        assert!(
            !text.contains("PRIVATE KEY"),
            "node {}'s audit log holds a key",
            node.id
        );
    }
}

#[test]
fn the_planted_access_bugs_lift_exactly_their_refusals() {
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, pki) = tls_cluster(
        root.path(),
        3,
        &["--bug", "client-admin", "--bug", "peer-id-unchecked"],
    );
    let client = ClientTls::from_files(&pki.roles[&Role::Client]).expect("client TLS");
    let admin = ClientTls::from_files(&pki.roles[&Role::Admin]).expect("admin TLS");
    let node2 = ClientTls::from_files(&pki.nodes[&NodeId(2)]).expect("node 2's TLS");
    runtime().block_on(async {
        let leader = tls_leader(&admin, &nodes, &[]).await;
        // client-admin: the client certificate's status is served (refused
        // without the bug: the test above).
        let replies = tls_exchange(&client, leader, &[json!({"id": 1, "op": "status"})], 1).await;
        assert_eq!(replies[0]["ok"], json!(true), "{replies:?}");
        // peer-id-unchecked: node 2's certificate may claim node 3.
        let lines = [
            json!({"op": "hello", "node": 3}),
            json!({"not": "a peer message"}),
        ];
        let replies = tls_exchange(&node2, leader, &lines, 1).await;
        assert!(
            replies.is_empty(),
            "the bug did not lift the refusal: {replies:?}"
        );
        // Neither bug lets a certificate-less connection in.
        let none = ClientTls::load(&pki.ca, None).expect("TLS");
        let replies = tls_exchange(&none, leader, &[json!({"id": 1, "op": "status"})], 1).await;
        assert_eq!(error_of(&replies[0]), "unauthorized", "{replies:?}");
    });
}

#[test]
fn role_token_flags_are_checked_and_named() {
    let root = tempfile::tempdir().expect("tempdir");
    let client_file = token_file(root.path(), "client", CLIENT_TOKEN);
    let empty = token_file(root.path(), "empty", "");
    let run = |extra: &[&str]| {
        let mut nodes = cluster(1, root.path(), extra);
        let node = &mut nodes[0];
        let out = std::process::Command::new(BIN)
            .args(["node", "--id", "1", "--listen", &node.addr.to_string()])
            .args(["--peers", &node.peers, "--data-dir"])
            .arg(&node.data_dir)
            .args(&node.extra)
            .output()
            .expect("run faultline node");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, err) = run(&["--client-token-file", &client_file]);
    assert_eq!(code, Some(254), "{err}");
    assert!(err.contains("--peer-token-file"), "{err}");
    let (code, err) = run(&["--admin-token-file", &empty]);
    assert_eq!(code, Some(254), "{err}");
    assert!(
        err.contains("--admin-token-file") && err.contains("empty"),
        "{err}"
    );
    let missing = root
        .path()
        .join("missing")
        .to_str()
        .expect("utf-8")
        .to_string();
    let (code, err) = run(&["--peer-token-file", &missing]);
    assert_eq!(code, Some(254), "{err}");
    assert!(
        err.contains("--peer-token-file") && err.contains("missing"),
        "{err}"
    );
    assert!(!err.contains(CLIENT_TOKEN), "{err}");
}
