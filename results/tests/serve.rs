//! The web UI over a real socket (port 0 on 127.0.0.1): runs listed and
//! filtered, a report built on request with its plots and verdict, files
//! downloadable, and paths leading out of a run refused.

use faultline_results::synthetic_run::{write_run, RunSpec};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status code");
    // Bodies of a known length only (no chunked encoding from axum for these).
    Reply {
        status,
        headers: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn start(store: std::path::PathBuf) -> (SocketAddr, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind port 0");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(faultline_results::serve::serve(listener, store));
    (addr, rt)
}

#[test]
fn lists_runs_serves_reports_and_files_and_refuses_escapes() {
    let root = tempfile::tempdir().expect("tempdir");
    let store = root.path().join("store");
    let valid = write_run(
        &store,
        &RunSpec {
            ops: 300,
            ..RunSpec::default()
        },
    );
    let invalid = write_run(
        &store,
        &RunSpec {
            test_name: "kv-kill".into(),
            ops: 300,
            invalid: true,
            start_offset_s: 60,
            ..RunSpec::default()
        },
    );
    std::fs::write(root.path().join("secret.txt"), "do not serve").expect("secret");
    std::os::unix::fs::symlink(root.path().join("secret.txt"), valid.join("link.txt"))
        .expect("symlink");
    let (addr, _rt) = start(store.clone());

    let index = get(addr, "/");
    assert_eq!(index.status, 200);
    assert_eq!(
        index.body.matches("<tr class=run ").count(),
        2,
        "{}",
        index.body
    );
    assert!(
        index.body.find("kv-kill").expect("kv-kill")
            < index
                .body
                .find(">register-partition-kill<")
                .expect("register"),
        "newest first"
    );
    let filtered = get(addr, "/?verdict=invalid");
    assert_eq!(filtered.body.matches("<tr class=run ").count(), 1);
    assert!(filtered.body.contains("data-test=\"kv-kill\""));
    let by_test = get(addr, "/?test=register&sort=test&order=asc");
    assert_eq!(by_test.body.matches("<tr class=run ").count(), 1);

    let id = invalid
        .file_name()
        .expect("id")
        .to_string_lossy()
        .into_owned();
    let report = get(addr, &format!("/runs/kv-kill/{id}/"));
    assert_eq!(report.status, 200);
    assert!(report
        .body
        .contains(r#"id="verdict" data-verdict="invalid""#));
    assert!(report.body.contains("id=\"plot-latency-raw\"><svg"));
    assert!(
        invalid.join("report.html").is_file(),
        "built on request and kept"
    );
    let redirect = get(addr, &format!("/runs/kv-kill/{id}"));
    assert_eq!(redirect.status, 308);

    let png = get(addr, &format!("/runs/kv-kill/{id}/plots/throughput.png"));
    assert_eq!(png.status, 200);
    assert!(png.headers.contains("content-type: image/png"));
    let dl = get(
        addr,
        &format!("/runs/kv-kill/{id}/history.jsonl?download=1"),
    );
    assert_eq!(dl.status, 200);
    assert!(dl
        .headers
        .contains("content-disposition: attachment; filename=\"history.jsonl\""));
    assert!(dl.body.starts_with("{\"index\":0"));
    let files = get(addr, &format!("/runs/kv-kill/{id}/files"));
    assert!(files.body.contains("nodes/n1.log") && files.body.contains("latency-total.hlog"));

    let vid = valid
        .file_name()
        .expect("id")
        .to_string_lossy()
        .into_owned();
    for bad in [
        format!("/runs/register-partition-kill/{vid}/../../../secret.txt"),
        format!("/runs/register-partition-kill/{vid}/%2e%2e/%2e%2e/%2e%2e/secret.txt"),
        format!("/runs/register-partition-kill/{vid}/link.txt"),
        "/runs/%2e%2e/store/".to_string(),
        "/runs/latest/x/".to_string(),
        format!("/runs/register-partition-kill/{vid}/.results.json.tmp"),
    ] {
        let r = get(addr, &bad);
        assert!(r.status == 404 || r.status == 400, "{bad}: {}", r.status);
        assert!(!r.body.contains("do not serve"), "{bad} leaked a file");
    }
    let api = get(addr, "/api/runs");
    let runs: serde_json::Value = serde_json::from_str(&api.body).expect("json");
    assert_eq!(runs.as_array().expect("array").len(), 2);
}
