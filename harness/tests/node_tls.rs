//! TLS on a real `faultline node` (`--tls-cert/--tls-key/--tls-ca`), with
//! certificates from `faultline_nodes::tls::CertAuthority`: a TLS cluster
//! elects a leader over mutual TLS and serves a TLS client; plain clients
//! get `tls-required`, clients of another CA are refused; a peer cannot
//! claim another node's id; and a proxy between client and node sees the
//! written key and value only without TLS.

mod node_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline_nodes::consensus::NodeId;
use faultline_nodes::tls::{CertAuthority, ClientTls, Role, RunPki};
use node_common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

const TOKEN: &str = "tok-tls-e2e-3c1d";

/// A run's certificates for `n` nodes on 127.0.0.1, under `root/tls`.
fn pki(root: &Path, n: u64) -> RunPki {
    let ca = CertAuthority::generate().expect("a CA");
    let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
    let nodes: Vec<_> = (1..=n).map(|i| (NodeId(i), vec![loopback])).collect();
    ca.write_run(&root.join("tls"), &nodes)
        .expect("write the run's certificates")
}

/// `n` nodes with TLS (and `extra` flags), started.
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

/// Send `lines` on a fresh TLS connection and read up to `n` replies (fewer
/// if the node closes). `Err` if the handshake or the first write fails.
async fn tls_exchange(
    tls: &ClientTls,
    addr: SocketAddr,
    lines: &[Value],
    n: usize,
) -> std::io::Result<Vec<Value>> {
    let mut stream = tls.connect(addr).await?;
    for line in lines {
        let mut bytes = serde_json::to_vec(line).expect("json");
        bytes.push(b'\n');
        stream.write_all(&bytes).await?;
    }
    stream.flush().await?;
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
    Ok(replies)
}

/// One request (after the token, when given); its reply, or `None`.
async fn tls_call(
    tls: &ClientTls,
    addr: SocketAddr,
    token: Option<&str>,
    request: Value,
) -> Option<Value> {
    let mut lines = Vec::new();
    if let Some(token) = token {
        lines.push(json!({"op": "auth", "token": token}));
    }
    lines.push(request);
    let replies = tls_exchange(tls, addr, &lines, 1).await.ok()?;
    replies.into_iter().next()
}

/// The leader's address, polling `status` over TLS (a liveness bound, not
/// a timed assertion on speed).
async fn tls_leader(tls: &ClientTls, addrs: &[SocketAddr], token: Option<&str>) -> SocketAddr {
    let start = Instant::now();
    loop {
        for &addr in addrs {
            let status = tls_call(tls, addr, token, json!({"id": 1, "op": "status"})).await;
            if status.is_some_and(|s| s["role"] == json!("leader")) {
                return addr;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no leader over TLS"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Write `key = value` through the leader and read it back, over TLS:
/// the leader found with `admin` (status is an admin op), the write and
/// read made with `tls`.
async fn tls_write_and_read(
    tls: &ClientTls,
    admin: &ClientTls,
    addrs: &[SocketAddr],
    token: Option<&str>,
    key: &str,
    value: &str,
) {
    let start = Instant::now();
    let leader = loop {
        let leader = tls_leader(admin, addrs, token).await;
        let write = json!({"id": 2, "op": "write", "key": key, "value": value});
        let reply = tls_call(tls, leader, token, write).await;
        if reply.as_ref().is_some_and(|r| r["ok"] == json!(true)) {
            break leader;
        }
        // A leader change in between: not-leader or a timeout; try again.
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "write never succeeded: {reply:?}"
        );
    };
    let read = tls_call(
        tls,
        leader,
        token,
        json!({"id": 3, "op": "read", "key": key}),
    )
    .await
    .expect("a reply to the read");
    assert_eq!(read["ok"], json!(true), "{read}");
    assert_eq!(read["value"], json!(value), "{read}");
}

/// Everything a plain client gets after sending `line`, and whether the
/// node closed the connection.
fn plain_exchange(addr: SocketAddr, line: &[u8]) -> (Vec<Value>, bool) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(line).expect("write");
    let mut all = String::new();
    let closed = s.read_to_string(&mut all).is_ok();
    let replies = all
        .lines()
        .map(|l| serde_json::from_str(l).expect("the refusal is JSON"))
        .collect();
    (replies, closed)
}

fn addrs(nodes: &[NodeProc]) -> Vec<SocketAddr> {
    nodes.iter().map(|n| n.addr).collect()
}

fn log_of(node: &NodeProc) -> String {
    std::fs::read_to_string(&node.log).unwrap_or_default()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

#[test]
fn a_tls_cluster_elects_a_leader_and_serves_writes_and_reads() {
    let root = tempfile::tempdir().expect("tempdir");
    let token_file = root.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");
    let token_arg = token_file.to_str().expect("utf-8 path").to_string();
    let (nodes, pki) = tls_cluster(root.path(), 3, &["--auth-token-file", &token_arg]);
    let client = ClientTls::from_files(&pki.roles[&Role::Client]).expect("client TLS");
    let admin = ClientTls::from_files(&pki.roles[&Role::Admin]).expect("admin TLS");
    runtime().block_on(async {
        // Nodes speak TLS only: a leader means the peers' mutual TLS works.
        let all = addrs(&nodes);
        tls_write_and_read(&client, &admin, &all, Some(TOKEN), "tls-key", "tls-value").await;
        // The token works the same over TLS: without it, unauthorized.
        let leader = tls_leader(&admin, &addrs(&nodes), Some(TOKEN)).await;
        let reply = tls_call(
            &client,
            leader,
            None,
            json!({"id": 4, "op": "read", "key": "k"}),
        )
        .await
        .expect("a refusal");
        assert_eq!(reply["error"], json!("unauthorized"), "{reply}");
        let reply = tls_call(
            &admin,
            leader,
            Some("guess"),
            json!({"id": 5, "op": "status"}),
        )
        .await
        .expect("a refusal");
        assert_eq!(reply["error"], json!("unauthorized"), "{reply}");
    });
    for node in &nodes {
        let log = log_of(node);
        assert!(
            !log.contains("TLS to peer refused"),
            "node {}: {log}",
            node.id
        );
        assert!(!log.contains(TOKEN), "node {} logged the token", node.id);
    }
}

#[test]
fn plain_clients_and_clients_of_another_ca_are_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, pki) = tls_cluster(root.path(), 1, &[]);
    let addr = nodes[0].addr;

    // A plain client: one plain tls-required line, then closed.
    for line in [
        &b"{\"id\":1,\"op\":\"status\"}\n"[..],
        &b"{\"op\":\"hello\",\"node\":1}\n"[..],
        &b"GET / HTTP/1.1\r\n\r\n"[..],
    ] {
        let (replies, closed) = plain_exchange(addr, line);
        let what = String::from_utf8_lossy(line);
        assert_eq!(replies.len(), 1, "{what}: {replies:?}");
        assert_eq!(replies[0]["ok"], json!(false), "{what}");
        assert_eq!(replies[0]["error"], json!("tls-required"), "{what}");
        assert_eq!(replies[0]["definite"], json!(true), "{what}");
        assert!(closed, "{what}: closed after the refusal");
    }

    let other = pki_of_another_ca(root.path());
    runtime().block_on(async {
        // With the run's CA and the admin certificate: served; without a
        // certificate, the handshake succeeds but no role is granted
        // (server::access): unauthorized.
        let status = json!({"id": 1, "op": "status"});
        let admin = ClientTls::from_files(&pki.roles[&Role::Admin]).expect("admin TLS");
        let reply = tls_call(&admin, addr, None, status.clone()).await;
        assert_eq!(reply.expect("a reply")["ok"], json!(true));
        let none = ClientTls::load(&pki.ca, None).expect("TLS without a certificate");
        let reply = tls_call(&none, addr, None, status.clone()).await;
        assert_eq!(reply.expect("a reply")["error"], json!("unauthorized"));
        // A client certificate of another CA: the handshake fails (at once,
        // or at the first read under TLS 1.3); never a reply.
        let foreign = &other.roles[&Role::Client];
        let client = ClientTls::load(&pki.ca, Some((&foreign.cert, &foreign.key)))
            .expect("foreign client TLS");
        match tls_exchange(&client, addr, std::slice::from_ref(&status), 1).await {
            Err(_) => {}
            Ok(replies) => assert!(replies.is_empty(), "served a foreign client: {replies:?}"),
        }
        // A client that trusts another CA refuses the node.
        let client = ClientTls::load(&other.ca, None).expect("TLS of the other CA");
        assert!(
            client.connect(addr).await.is_err(),
            "accepted a node of another CA"
        );
    });
    let log = log_of(&nodes[0]);
    assert!(
        log.contains("plain connection to a TLS port refused"),
        "{log}"
    );
    assert!(log.contains("TLS handshake failed"), "{log}");
}

/// Certificates of a second, unrelated CA (same node ids and IPs).
fn pki_of_another_ca(root: &Path) -> RunPki {
    let dir = root.join("other");
    std::fs::create_dir_all(&dir).expect("dir");
    pki(&dir, 3)
}

#[test]
fn a_peer_certificate_of_node_2_cannot_claim_node_3() {
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, pki) = tls_cluster(root.path(), 3, &[]);
    let client = ClientTls::from_files(&pki.roles[&Role::Client]).expect("client TLS");
    let admin = ClientTls::from_files(&pki.roles[&Role::Admin]).expect("admin TLS");
    let as_node_2 = ClientTls::from_files(&pki.nodes[&NodeId(2)]).expect("node 2's TLS");
    let addr = nodes[0].addr;
    runtime().block_on(async {
        tls_write_and_read(&client, &admin, &addrs(&nodes), None, "before", "1").await;
        // Node 2's certificate, claiming node 3: refused, closed.
        let hello = json!({"op": "hello", "node": 3});
        let replies = tls_exchange(&as_node_2, addr, std::slice::from_ref(&hello), 2)
            .await
            .expect("the handshake itself succeeds");
        assert_eq!(replies.len(), 1, "{replies:?}");
        assert_eq!(replies[0]["error"], json!("unauthorized"), "{replies:?}");
        // A client role certificate claiming a node: refused the same way,
        // and so is a TLS client without a certificate.
        for impostor in [client.clone(), ClientTls::load(&pki.ca, None).expect("TLS")] {
            let hello = json!({"op": "hello", "node": 2});
            let replies = tls_exchange(&impostor, addr, &[hello], 2)
                .await
                .expect("TLS");
            assert_eq!(replies.len(), 1, "{replies:?}");
            assert_eq!(replies[0]["error"], json!("unauthorized"), "{replies:?}");
        }
        // The control: node 2's certificate claiming node 2 opens a peer
        // session, which answers nothing (the node only reads a peer's
        // connection, and closes its own sending side): no refusal line. A
        // check that refused every hello would fail here.
        let mut stream = as_node_2.connect(addr).await.expect("TLS");
        stream
            .write_all(b"{\"op\":\"hello\",\"node\":2}\n")
            .await
            .expect("hello");
        stream.flush().await.expect("flush");
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(stream);
        let _ = tokio::time::timeout(Duration::from_secs(2), reader.read_line(&mut line)).await;
        assert_eq!(line, "", "a true peer's hello was answered");
        // The cluster still works.
        tls_write_and_read(&client, &admin, &addrs(&nodes), None, "after", "2").await;
    });
    let log = log_of(&nodes[0]);
    assert!(
        log.contains("the peer's certificate does not name the node its hello claims"),
        "{log}"
    );
}

/// A TCP proxy on loopback to `target` that records every byte either way.
fn recording_proxy(target: SocketAddr, capture: Arc<Mutex<Vec<u8>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(target) else {
                return;
            };
            for (mut from, mut to) in [
                (
                    client.try_clone().expect("clone"),
                    server.try_clone().expect("clone"),
                ),
                (server, client),
            ] {
                let capture = capture.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        capture
                            .lock()
                            .expect("capture")
                            .extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Write);
                });
            }
        }
    });
    addr
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn a_proxy_sees_keys_and_values_only_without_tls() {
    const KEY: &str = "capture-key-5d21e";
    const VALUE: &str = "capture-value-a9f07";
    let rt = runtime();

    // With TLS: the proxy carries the write and the read, and sees neither.
    let root = tempfile::tempdir().expect("tempdir");
    let (nodes, pki) = tls_cluster(root.path(), 1, &[]);
    let capture = Arc::new(Mutex::new(Vec::new()));
    let proxy = recording_proxy(nodes[0].addr, capture.clone());
    let client = ClientTls::from_files(&pki.roles[&Role::Client]).expect("client TLS");
    let admin = ClientTls::from_files(&pki.roles[&Role::Admin]).expect("admin TLS");
    // The proxy listens on 127.0.0.1, which the node's certificate names.
    rt.block_on(tls_write_and_read(
        &client,
        &admin,
        &[proxy],
        None,
        KEY,
        VALUE,
    ));
    let seen = capture.lock().expect("capture").clone();
    assert!(
        seen.len() > 1000,
        "the proxy carried the TLS traffic: {} bytes",
        seen.len()
    );
    assert!(
        !contains(&seen, KEY),
        "the key crossed the proxy in plain text"
    );
    assert!(
        !contains(&seen, VALUE),
        "the value crossed the proxy in plain text"
    );

    // Without TLS: the same exchange shows both (so the check above can fail).
    let plain_root = tempfile::tempdir().expect("tempdir");
    let mut plain = cluster(1, plain_root.path(), &[]);
    plain[0].start();
    let capture = Arc::new(Mutex::new(Vec::new()));
    let proxy = recording_proxy(plain[0].addr, capture.clone());
    let start = Instant::now();
    loop {
        let write =
            format!("{{\"id\":1,\"op\":\"write\",\"key\":\"{KEY}\",\"value\":\"{VALUE}\"}}\n");
        let mut s = TcpStream::connect(proxy).expect("connect the proxy");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(write.as_bytes()).expect("write");
        let mut line = String::new();
        let _ = BufReader::new(s).read_line(&mut line);
        if line.contains("\"ok\":true") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "plain write failed: {line}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let seen = capture.lock().expect("capture").clone();
    assert!(contains(&seen, KEY), "the plain capture shows the key");
    assert!(contains(&seen, VALUE), "the plain capture shows the value");
}

#[test]
fn tls_flags_go_together_and_bad_files_are_named() {
    let root = tempfile::tempdir().expect("tempdir");
    let pki = pki(root.path(), 2);
    let node = |tls: &[&str]| {
        let port = free_ports(1)[0];
        Command::new(BIN)
            .args([
                "node",
                "--id",
                "1",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--peers", &format!("1=127.0.0.1:{port}"), "--data-dir"])
            .arg(root.path().join("data"))
            .args(tls)
            .output()
            .expect("run faultline node")
    };
    let path = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    let (cert, key, ca) = (
        path(&pki.nodes[&NodeId(1)].cert),
        path(&pki.nodes[&NodeId(1)].key),
        path(&pki.ca),
    );
    let missing = root.path().join("missing.pem");
    // The key's base64 (its first line after the header): never in an error.
    let key_body = std::fs::read_to_string(&key)
        .expect("key")
        .lines()
        .nth(1)
        .expect("a key line")
        .to_string();
    let node_2_cert = path(&pki.nodes[&NodeId(2)].cert);
    let node_2_key = path(&pki.nodes[&NodeId(2)].key);
    for (args, want) in [
        (vec!["--tls-cert", &cert], "missing --tls-key and --tls-ca"),
        (
            vec!["--tls-cert", &cert, "--tls-key", &key],
            "missing --tls-ca",
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &key,
                "--tls-ca",
                missing.to_str().expect("utf-8"),
            ],
            "--tls-ca",
        ),
        (
            vec!["--tls-cert", &ca, "--tls-key", &ca, "--tls-ca", &ca],
            "holds no private key",
        ),
        (
            vec![
                "--tls-cert",
                &cert,
                "--tls-key",
                &node_2_key,
                "--tls-ca",
                &ca,
            ],
            "--tls-key",
        ),
        (
            vec![
                "--tls-cert",
                &node_2_cert,
                "--tls-key",
                &node_2_key,
                "--tls-ca",
                &ca,
            ],
            "not a certificate of node 1",
        ),
    ] {
        let out = node(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{args:?}: bad input: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} should say {want:?}");
        assert!(
            !err.contains(&key_body),
            "{args:?}: the key is in the error"
        );
    }
}
