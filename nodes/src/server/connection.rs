//! One accepted TCP connection: a client, an admin tool or a peer.
//!
//! With an auth token, the first line must be `auth` with that token, else
//! the connection gets `unauthorized` and is closed. The next line decides
//! what the connection is: `hello` makes it a peer's (every later line is a
//! consensus message), anything else a client's. Bad lines get a
//! `bad-request` reply; a line over the limit gets `too-large` and the
//! connection is closed. Nothing here panics on input, and the token never
//! reaches a log.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::clock::NodeClock;
use super::core_loop::Event;
use super::group::ClientOp;
use crate::consensus::NodeId;
use crate::protocol::{
    ErrorCode, LineError, LineReader, Op, Reply, Request, MAX_CLIENT_LINE_BYTES,
    MAX_PEER_LINE_BYTES,
};
use crate::transport::{decode_message, Filter, FilterRules};

/// What every connection handler shares.
#[derive(Debug)]
pub struct Shared {
    pub id: NodeId,
    pub auth_token: Option<String>,
    pub events: SyncSender<Event>,
    pub filter: Filter,
    pub clock: NodeClock,
    pub peers: BTreeMap<NodeId, SocketAddr>,
}

/// Compare without an early exit, so timing does not leak the token.
fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Writes replies in batches; on `close`, writes what is queued and shuts
/// the socket.
async fn writer(
    mut w: OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<Reply>,
    mut close: oneshot::Receiver<()>,
) {
    let mut buf = Vec::with_capacity(4096);
    // A dropped close sender (the reader ended without closing) is not a
    // close: replies still owed are written as they come.
    let mut close_armed = true;
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            res = &mut close, if close_armed => {
                if res.is_ok() {
                    None
                } else {
                    close_armed = false;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        buf.clear();
        buf.extend_from_slice(&first.encode());
        while let Ok(more) = rx.try_recv() {
            buf.extend_from_slice(&more.encode());
            if buf.len() > 1 << 20 {
                break;
            }
        }
        if w.write_all(&buf).await.is_err() {
            return;
        }
    }
    buf.clear();
    while let Ok(more) = rx.try_recv() {
        buf.extend_from_slice(&more.encode());
    }
    let _ = w.write_all(&buf).await;
    let _ = w.shutdown().await;
}

/// After refusing a connection: read and discard what the client still
/// sends (bounded in time and bytes) so that closing does not reset the
/// connection before the client has read the refusal.
async fn linger(reader: LineReader<BufReader<tokio::net::tcp::OwnedReadHalf>>) {
    use tokio::io::AsyncReadExt;
    let mut inner = reader.into_inner();
    let mut sink = [0u8; 16 * 1024];
    let mut left: usize = 16 << 20;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    while left > 0 {
        match tokio::time::timeout_at(deadline, inner.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

/// Send a last reply, then close the connection once it is written.
fn close(
    tx: &mpsc::UnboundedSender<Reply>,
    close_tx: &mut Option<oneshot::Sender<()>>,
    reply: Reply,
) {
    let _ = tx.send(reply);
    if let Some(c) = close_tx.take() {
        let _ = c.send(());
    }
}

/// Serve one connection until it closes.
pub async fn serve(stream: TcpStream, remote: SocketAddr, shared: Arc<Shared>) {
    stream.set_nodelay(true).ok();
    let (r, w) = stream.into_split();
    let mut reader = LineReader::new(BufReader::new(r), MAX_CLIENT_LINE_BYTES);
    let (reply_tx, reply_rx) = mpsc::unbounded_channel::<Reply>();
    let (close_tx, close_rx) = oneshot::channel();
    let writer_task = tokio::spawn(writer(w, reply_rx, close_rx));
    let mut close_tx = Some(close_tx);

    if let Some(expected) = &shared.auth_token {
        let authorized = match reader.next_line().await {
            Ok(Some(line)) => match Request::decode(line) {
                Ok(Request {
                    id,
                    op: Op::Auth { token },
                }) if token_matches(&token, expected) => Some(id),
                Ok(Request { id, .. }) => {
                    tracing::info!(%remote, "connection refused: first line is not a valid auth");
                    close(
                        &reply_tx,
                        &mut close_tx,
                        Reply::error(id, ErrorCode::Unauthorized),
                    );
                    None
                }
                Err(e) => {
                    tracing::info!(%remote, "connection refused: first line is not a request");
                    close(
                        &reply_tx,
                        &mut close_tx,
                        Reply::error(e.id, ErrorCode::Unauthorized),
                    );
                    None
                }
            },
            Ok(None) => None,
            Err(_) => {
                close(
                    &reply_tx,
                    &mut close_tx,
                    Reply::error(None, ErrorCode::Unauthorized),
                );
                None
            }
        };
        match authorized {
            // Acknowledged only when the auth line carries an id: a client
            // that sends auth without one does not expect a reply.
            Some(Some(id)) => {
                let _ = reply_tx.send(Reply::ok(Some(id)));
            }
            Some(None) => {}
            None => {
                let _ = writer_task.await;
                linger(reader).await;
                return;
            }
        }
    }

    let mut first = true;
    loop {
        let line = match reader.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(LineError::TooLarge { limit }) => {
                tracing::info!(%remote, limit, "line too large; closing");
                close(
                    &reply_tx,
                    &mut close_tx,
                    Reply::error(None, ErrorCode::TooLarge)
                        .with("reason", format!("a line is at most {limit} bytes")),
                );
                drop(reply_tx);
                let _ = writer_task.await;
                linger(reader).await;
                return;
            }
            Err(LineError::Io(_)) => break,
        };
        let req = match Request::decode(line) {
            Ok(req) => req,
            Err(e) => {
                let _ = reply_tx.send(Reply::bad_request(e.id, e.reason));
                first = false;
                continue;
            }
        };
        let id = req.id;
        match req.op {
            Op::Hello { node } if first => {
                if let Some(c) = close_tx.take() {
                    let _ = c.send(());
                }
                serve_peer(reader, NodeId(node), remote, &shared).await;
                return;
            }
            Op::Hello { .. } => {
                let _ = reply_tx.send(Reply::bad_request(id, "`hello` must be the first line"));
            }
            Op::Auth { token } => {
                let ok = shared
                    .auth_token
                    .as_deref()
                    .is_none_or(|t| token_matches(&token, t));
                if ok {
                    if id.is_some() {
                        let _ = reply_tx.send(Reply::ok(id));
                    }
                } else {
                    close(
                        &reply_tx,
                        &mut close_tx,
                        Reply::error(id, ErrorCode::Unauthorized),
                    );
                    drop(reply_tx);
                    let _ = writer_task.await;
                    linger(reader).await;
                    return;
                }
            }
            Op::Filter {
                drop,
                delay_ms,
                loss,
            } => {
                if !(0.0..=1.0).contains(&loss) {
                    let _ = reply_tx.send(Reply::bad_request(
                        id,
                        format!("loss must be in [0, 1], got {loss}"),
                    ));
                } else {
                    shared.filter.set(FilterRules {
                        drop: drop.into_iter().map(NodeId).collect(),
                        delay_ms,
                        loss,
                    });
                    tracing::warn!(rules = ?shared.filter.rules(), "message filter changed");
                    let _ = reply_tx.send(Reply::ok(id));
                }
            }
            Op::Clock { offset_ms, rate } => match shared.clock.set(offset_ms, rate) {
                Ok(()) => {
                    tracing::warn!(offset_ms, rate, "node clock changed");
                    let _ = reply_tx.send(Reply::ok(id));
                }
                Err(reason) => {
                    let _ = reply_tx.send(Reply::bad_request(id, reason));
                }
            },
            op => {
                let event = Event::Client {
                    group: None,
                    op: ClientOp {
                        id,
                        op,
                        reply: reply_tx.clone(),
                    },
                };
                match shared.events.try_send(event) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        let _ = reply_tx.send(Reply::error(id, ErrorCode::Overloaded));
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        let _ = reply_tx.send(Reply::error(id, ErrorCode::ShuttingDown));
                    }
                }
            }
        }
        first = false;
    }
    // The reader is done; replies still owed are written as they come (the
    // writer ends when the last pending request is answered).
    drop(reply_tx);
}

async fn serve_peer(
    mut reader: LineReader<BufReader<tokio::net::tcp::OwnedReadHalf>>,
    from: NodeId,
    remote: SocketAddr,
    shared: &Shared,
) {
    if from == shared.id || !shared.peers.contains_key(&from) {
        tracing::warn!(%remote, node = from.0, "hello from a node that is not a peer; closing");
        return;
    }
    reader.set_limit(MAX_PEER_LINE_BYTES);
    tracing::debug!(%remote, peer = %from, "peer connected");
    loop {
        let line = match reader.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "peer connection closed");
                break;
            }
        };
        let msg = match decode_message(line) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(peer = %from, error = %e, "undecodable peer message; closing");
                break;
            }
        };
        if msg.from != from || msg.to != shared.id {
            tracing::warn!(peer = %from, "peer message with wrong from/to dropped");
            continue;
        }
        if !shared.filter.passes(from) {
            continue;
        }
        match shared.events.try_send(Event::Peer(msg)) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::token_matches;

    #[test]
    fn token_comparison_is_exact() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("s3cret!", "s3cret"));
        assert!(!token_matches("", "s3cret"));
        assert!(!token_matches("S3cret", "s3cret"));
    }
}
