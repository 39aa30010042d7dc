//! Admin requests to a node (docs/protocol.md: `filter`, `clock`, `status`),
//! blocking, with a timeout. Used by cluster implementations, which are
//! synchronous.

use anyhow::{bail, Context};
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Sends one admin request and returns the reply; an `ok: false` reply is
/// an error naming the node's error code. With `auth_token`, the
/// connection authenticates first (a node started with a token refuses
/// everything else).
pub fn call(
    addr: SocketAddr,
    auth_token: Option<&str>,
    request: &serde_json::Value,
    timeout: Duration,
) -> anyhow::Result<serde_json::Value> {
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {addr}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .context("setting a read timeout")?;
    stream
        .set_write_timeout(Some(timeout))
        .context("setting a write timeout")?;
    stream.set_nodelay(true).context("setting nodelay")?;
    let mut req = request.clone();
    req["id"] = serde_json::Value::from(1);
    let mut line = auth_token
        .map(faultline_workloads::tcp_client::auth_line)
        .unwrap_or_default();
    line.push_str(&req.to_string());
    line.push('\n');
    (&stream)
        .write_all(line.as_bytes())
        .with_context(|| format!("sending to {addr}"))?;
    let mut reader = BufReader::new(&stream);
    let mut reply = String::new();
    reader
        .read_line(&mut reply)
        .with_context(|| format!("reading the reply of {addr}"))?;
    if reply.is_empty() {
        bail!("{addr} closed the connection without replying");
    }
    let v: serde_json::Value = serde_json::from_str(&reply)
        .with_context(|| format!("{addr} replied with bad JSON: {reply:?}"))?;
    if v["ok"] != serde_json::Value::Bool(true) {
        bail!("{addr} refused {}: {}", request["op"], v["error"]);
    }
    Ok(v)
}
