//! One accepted TCP connection: a client, an admin tool or a peer.
//!
//! With TLS (`--tls-cert`), the connection must open with a TLS handshake:
//! a first byte that is not a handshake record gets one plain
//! `tls-required` line and the connection is closed; a failed handshake (a
//! client certificate of another CA, say) is closed. Everything below
//! works the same over TLS.
//!
//! With tokens, the first line must be `auth` with one of the node's
//! tokens, else the connection gets `unauthorized` and is closed. The
//! connection's roles are then decided once, from its token and its client
//! certificate ([`super::access`]), and every request is checked against
//! them there: a request its roles do not allow gets `unauthorized` (the
//! connection stays open). The next line decides what the connection is:
//! `hello` makes it a peer's (every later line is a consensus message) if
//! its roles hold that node's peer role, else `unauthorized` and closed;
//! anything else a client's. Bad lines get a `bad-request` reply; a line
//! over the limit gets `too-large` and the connection is closed. Every
//! refusal and every admin op goes to the audit log ([`super::audit`]).
//! Nothing here panics on input, and no token reaches a log.
//!
//! Back-pressure: the reader takes a permit (of [`MAX_OWED_REPLIES`])
//! before it reads each line, and the writer gives it back once the reply
//! is written to the socket (see [`super::reply_sink`]). A client that does
//! not read its replies is therefore no longer read either, and what the
//! node holds for the connection stays bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::access::{Access, OpClass, Roles};
use super::audit::AuditLog;
use super::clock::NodeClock;
use super::core_loop::Event;
use super::group::ClientOp;
use super::reply_sink::{OwedReply, ReplySink, MAX_OWED_REPLIES};
use crate::consensus::NodeId;
use crate::protocol::{
    ErrorCode, LineError, LineReader, Op, Reply, Request, MAX_CLIENT_LINE_BYTES,
    MAX_PEER_LINE_BYTES,
};
use crate::tls::{NodeTls, ServerTlsStream, HANDSHAKE_RECORD_TYPE};
use crate::transport::{decode_message, Filter, FilterRules};

/// What every connection handler shares.
#[derive(Debug)]
pub struct Shared {
    pub id: NodeId,
    /// Tokens, TLS and the planted access bugs: who may do what.
    pub access: Access,
    pub audit: AuditLog,
    pub events: SyncSender<Event>,
    pub filter: Filter,
    pub clock: NodeClock,
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// With TLS, every connection must speak it.
    pub tls: Option<NodeTls>,
}

/// Writes replies in batches; on `close`, writes what is queued and shuts
/// the socket. A reply's permit is given back only once it is written.
async fn writer(
    mut w: Writer,
    mut rx: mpsc::UnboundedReceiver<OwedReply>,
    mut close: oneshot::Receiver<()>,
) {
    let mut buf = Vec::with_capacity(4096);
    let mut batch: Vec<OwedReply> = Vec::new();
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
        buf.extend_from_slice(&first.reply.encode());
        batch.push(first);
        while buf.len() <= 1 << 20 {
            let Ok(more) = rx.try_recv() else { break };
            buf.extend_from_slice(&more.reply.encode());
            batch.push(more);
        }
        // TLS buffers what it could not send at once: flush it.
        if w.write_all(&buf).await.is_err() || w.flush().await.is_err() {
            return;
        }
        batch.drain(..).for_each(OwedReply::written);
    }
    buf.clear();
    while let Ok(more) = rx.try_recv() {
        buf.extend_from_slice(&more.reply.encode());
    }
    let _ = w.write_all(&buf).await;
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

/// After refusing a connection: read and discard what the client still
/// sends (bounded in time and bytes) so that closing does not reset the
/// connection before the client has read the refusal.
async fn linger(mut inner: impl AsyncRead + Unpin) {
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
    tx: &mpsc::UnboundedSender<OwedReply>,
    close_tx: &mut Option<oneshot::Sender<()>>,
    reply: Reply,
) {
    let _ = ReplySink::new(tx.clone()).send(reply);
    if let Some(c) = close_tx.take() {
        let _ = c.send(());
    }
}

/// The next permit of the connection's budget: waits while
/// [`MAX_OWED_REPLIES`] replies are owed (the budget is never closed).
async fn next_permit(budget: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    budget
        .clone()
        .acquire_owned()
        .await
        .expect("a connection's reply budget is never closed")
}

/// The read half of a connection (plain or TLS).
type Reader = Box<dyn AsyncRead + Unpin + Send>;
/// The write half of a connection (plain or TLS).
type Writer = Box<dyn AsyncWrite + Unpin + Send>;
/// The read half of a connection, line by line.
type Lines = LineReader<BufReader<Reader>>;

/// Who is on the other end of a connection: its address and its roles.
#[derive(Clone, Copy, Debug)]
struct Session {
    remote: SocketAddr,
    roles: Roles,
}

/// What a connection does after one request.
enum After {
    /// Read the next request.
    Continue,
    /// The first line was `hello`: the connection is a peer's from now on.
    BecomePeer(NodeId),
    /// Send this last reply and close.
    Refuse(Reply),
}

/// Serve one connection until it closes.
pub async fn serve(stream: TcpStream, remote: SocketAddr, shared: Arc<Shared>) {
    stream.set_nodelay(true).ok();
    let Some(tls) = shared.tls.clone() else {
        let (r, w) = stream.into_split();
        let roles = shared.access.certificate_roles(None, []);
        serve_channel(Box::new(r), Box::new(w), roles, remote, shared).await;
        return;
    };
    let Some(stream) = accept_tls(stream, remote, &tls, &shared).await else {
        return;
    };
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first());
    let roles = shared
        .access
        .certificate_roles(certificate, shared.peers.keys().copied());
    let (r, w) = tokio::io::split(stream);
    serve_channel(Box::new(r), Box::new(w), roles, remote, shared).await;
}

/// The TLS handshake of a connection to a TLS node; `None` when refused
/// (a plain client is told `tls-required` first).
async fn accept_tls(
    stream: TcpStream,
    remote: SocketAddr,
    tls: &NodeTls,
    shared: &Shared,
) -> Option<ServerTlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(crate::tls::node::HANDSHAKE_TIMEOUT, stream.peek(&mut first));
    match peeked.await {
        Ok(Ok(1)) => {}
        _ => return None,
    }
    if first[0] != HANDSHAKE_RECORD_TYPE {
        tracing::info!(%remote, "plain connection to a TLS port refused (tls-required)");
        let entry = shared.audit.entry(remote, Roles::NONE.label(), None);
        shared
            .audit
            .refused(entry, "tls-required", "a plain connection to a TLS port");
        refuse_plain(stream).await;
        return None;
    }
    match tls.accept(stream).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::info!(%remote, error = %e, "TLS handshake failed; connection refused");
            let entry = shared.audit.entry(remote, Roles::NONE.label(), None);
            let reason = format!("TLS handshake failed: {e}");
            shared.audit.refused(entry, "tls-handshake-failed", reason);
            None
        }
    }
}

/// One plain `tls-required` line, then close (after a linger, so that the
/// client reads it rather than a reset).
async fn refuse_plain(mut stream: TcpStream) {
    let reply = Reply::error(None, ErrorCode::TlsRequired)
        .with("reason", "this node speaks TLS only: connect with TLS");
    if stream.write_all(&reply.encode()).await.is_ok() {
        let _ = stream.shutdown().await;
        linger(stream).await;
    }
}

/// Serve a connection, plain or TLS, until it closes.
async fn serve_channel(
    r: Reader,
    w: Writer,
    certificate_roles: Roles,
    remote: SocketAddr,
    shared: Arc<Shared>,
) {
    let mut reader = LineReader::new(BufReader::new(r), MAX_CLIENT_LINE_BYTES);
    let (reply_tx, reply_rx) = mpsc::unbounded_channel::<OwedReply>();
    let budget = Arc::new(Semaphore::new(MAX_OWED_REPLIES));
    let (close_tx, close_rx) = oneshot::channel();
    let writer_task = tokio::spawn(writer(w, reply_rx, close_rx));
    let mut close_tx = Some(close_tx);

    let token_roles = if shared.access.requires_token() {
        match authenticate(&mut reader, &budget, &reply_tx, remote, &shared).await {
            Ok(roles) => roles,
            Err(refusal) => {
                if let Some(reply) = refusal {
                    close(&reply_tx, &mut close_tx, reply);
                }
                drop(reply_tx);
                let _ = writer_task.await;
                linger(reader.into_inner()).await;
                return;
            }
        }
    } else {
        Roles::ALL
    };
    let session = Session {
        remote,
        roles: certificate_roles.intersect(token_roles),
    };

    let mut first = true;
    loop {
        // Owed before it is read: with the budget spent, the client's
        // requests wait in its socket until it reads some replies.
        let permit = next_permit(&budget).await;
        let sink = ReplySink::owed(reply_tx.clone(), permit);
        let after = match reader.next_line().await {
            Ok(Some(line)) => match Request::decode(line) {
                Ok(request) => handle_request(request, first, sink, &shared, session),
                Err(e) => {
                    let _ = sink.send(Reply::bad_request(e.id, e.reason));
                    After::Continue
                }
            },
            Ok(None) | Err(LineError::Io(_)) => break,
            Err(LineError::TooLarge { limit }) => {
                tracing::info!(%remote, limit, "line too large; closing");
                After::Refuse(
                    Reply::error(None, ErrorCode::TooLarge)
                        .with("reason", format!("a line is at most {limit} bytes")),
                )
            }
        };
        let after = match after {
            After::BecomePeer(node) => match shared.access.check_hello(session.roles, node) {
                Ok(()) => After::BecomePeer(node),
                Err(reason) => {
                    tracing::warn!(%remote, node = node.0, reason, "peer refused");
                    let hello = Op::Hello { node: node.0 };
                    let entry = shared
                        .audit
                        .entry(remote, session.roles.label(), Some(&hello));
                    shared.audit.refused(entry, "unauthorized", reason);
                    After::Refuse(
                        Reply::error(None, ErrorCode::Unauthorized).with("reason", reason),
                    )
                }
            },
            other => other,
        };
        match after {
            After::Continue => {}
            After::BecomePeer(node) => {
                if let Some(c) = close_tx.take() {
                    let _ = c.send(());
                }
                serve_peer(reader, node, remote, &shared).await;
                return;
            }
            After::Refuse(reply) => {
                close(&reply_tx, &mut close_tx, reply);
                drop(reply_tx);
                let _ = writer_task.await;
                linger(reader.into_inner()).await;
                return;
            }
        }
        first = false;
    }
    // The reader is done; replies still owed are written as they come (the
    // writer ends when the last pending request is answered).
    drop(reply_tx);
}

/// A node with tokens: the first line must be `auth` with one of them.
/// `Ok` lets the connection on with the roles its token grants (the auth
/// acknowledged when it carries an id: a client that sends auth without
/// one does not expect a reply); `Err` closes it, with the refusal to send
/// if there is one to send. Refusals are audited.
async fn authenticate(
    reader: &mut Lines,
    budget: &Arc<Semaphore>,
    reply_tx: &mpsc::UnboundedSender<OwedReply>,
    remote: SocketAddr,
    shared: &Shared,
) -> Result<Roles, Option<Reply>> {
    let refuse = |op: Option<&Op>, reason: &str| {
        let entry = shared.audit.entry(remote, Roles::NONE.label(), op);
        shared.audit.refused(entry, "unauthorized", reason);
    };
    let line = match reader.next_line().await {
        Ok(Some(line)) => line,
        Ok(None) => return Err(None),
        Err(LineError::TooLarge { .. }) => {
            refuse(None, "the first line is too large to be an auth");
            return Err(Some(Reply::error(None, ErrorCode::Unauthorized)));
        }
        // The connection went away: nothing to refuse.
        Err(LineError::Io(_)) => return Err(None),
    };
    let request = match Request::decode(line) {
        Ok(request) => request,
        Err(e) => {
            tracing::info!(%remote, "connection refused: first line is not a request");
            refuse(None, "the first line is not a request");
            return Err(Some(Reply::error(e.id, ErrorCode::Unauthorized)));
        }
    };
    let roles = match &request.op {
        Op::Auth { token } => shared.access.token_roles(token),
        _ => None,
    };
    let Some(roles) = roles else {
        tracing::info!(%remote, "connection refused: first line is not a valid auth");
        let reason = match request.op {
            Op::Auth { .. } => "not one of the node's tokens",
            _ => "the first line is not `auth`",
        };
        refuse(Some(&request.op), reason);
        return Err(Some(Reply::error(request.id, ErrorCode::Unauthorized)));
    };
    if let Some(id) = request.id {
        let sink = ReplySink::owed(reply_tx.clone(), next_permit(budget).await);
        let _ = sink.send(Reply::ok(Some(id)));
    }
    Ok(roles)
}

/// One request of a client or admin connection: checked against the
/// connection's roles (a refusal answered `unauthorized` and audited; an
/// admin op audited with its outcome), then the node-wide controls (auth,
/// filter, clock) answered here, everything else handed to the core loop
/// with its reply sink.
fn handle_request(
    request: Request,
    first: bool,
    sink: ReplySink,
    shared: &Shared,
    session: Session,
) -> After {
    let id = request.id;
    let audit = &shared.audit;
    if let Err(reason) = shared.access.check_op(session.roles, &request.op) {
        tracing::info!(remote = %session.remote, op = request.op.name(), "request refused (unauthorized)");
        let entry = audit.entry(session.remote, session.roles.label(), Some(&request.op));
        audit.refused(entry, "unauthorized", reason.clone());
        let _ = sink.send(Reply::error(id, ErrorCode::Unauthorized).with("reason", reason));
        return After::Continue;
    }
    let sink = match OpClass::of(&request.op) {
        OpClass::Admin => {
            let entry = audit.entry(session.remote, session.roles.label(), Some(&request.op));
            sink.audited(audit.pending(entry))
        }
        OpClass::Data | OpClass::Session => sink,
    };
    match request.op {
        Op::Hello { node } if first => return After::BecomePeer(NodeId(node)),
        Op::Hello { .. } => {
            let _ = sink.send(Reply::bad_request(id, "`hello` must be the first line"));
        }
        Op::Auth { token } => {
            // A later `auth` is checked, but never changes the roles.
            let ok = !shared.access.requires_token() || shared.access.token_roles(&token).is_some();
            if !ok {
                let entry = audit.entry(
                    session.remote,
                    session.roles.label(),
                    Some(&Op::Auth { token }),
                );
                audit.refused(entry, "unauthorized", "not one of the node's tokens");
                return After::Refuse(Reply::error(id, ErrorCode::Unauthorized));
            }
            if id.is_some() {
                let _ = sink.send(Reply::ok(id));
            }
        }
        Op::Filter {
            drop,
            delay_ms,
            loss,
        } => {
            let _ = sink.send(set_filter(shared, id, drop, delay_ms, loss));
        }
        Op::Clock { offset_ms, rate } => {
            let reply = match shared.clock.set(offset_ms, rate) {
                Ok(()) => {
                    tracing::warn!(offset_ms, rate, "node clock changed");
                    Reply::ok(id)
                }
                Err(reason) => Reply::bad_request(id, reason),
            };
            let _ = sink.send(reply);
        }
        op => forward(shared, id, op, sink),
    }
    After::Continue
}

/// The admin `filter` request: the message filter's new rules.
fn set_filter(shared: &Shared, id: Option<u64>, drop: Vec<u64>, delay_ms: u64, loss: f64) -> Reply {
    if !(0.0..=1.0).contains(&loss) {
        return Reply::bad_request(id, format!("loss must be in [0, 1], got {loss}"));
    }
    shared.filter.set(FilterRules {
        drop: drop.into_iter().map(NodeId).collect(),
        delay_ms,
        loss,
    });
    tracing::warn!(rules = ?shared.filter.rules(), "message filter changed");
    Reply::ok(id)
}

/// Hand a data or group request to the core loop; a full or closed queue
/// is answered at once (overloaded, shutting down).
fn forward(shared: &Shared, id: Option<u64>, op: Op, sink: ReplySink) {
    let event = Event::Client {
        group: None,
        op: ClientOp {
            id,
            op,
            reply: sink,
        },
    };
    let refused = match shared.events.try_send(event) {
        Ok(()) => None,
        Err(TrySendError::Full(ev)) => Some((ev, ErrorCode::Overloaded)),
        Err(TrySendError::Disconnected(ev)) => Some((ev, ErrorCode::ShuttingDown)),
    };
    if let Some((Event::Client { op, .. }, code)) = refused {
        let _ = op.reply.send(Reply::error(id, code));
    }
}

async fn serve_peer(mut reader: Lines, from: NodeId, remote: SocketAddr, shared: &Shared) {
    if from == shared.id || !shared.peers.contains_key(&from) {
        tracing::warn!(%remote, node = from.0, "hello from a node that is not a peer; closing");
        let hello = Op::Hello { node: from.0 };
        let entry = shared.audit.entry(remote, "peer".into(), Some(&hello));
        shared
            .audit
            .refused(entry, "unauthorized", "not a peer of this node");
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
    use super::*;
    use std::sync::mpsc::{Receiver, RecvTimeoutError};
    use std::time::Duration;

    /// A node's connection handling over a real socket, with the core
    /// thread replaced by the test: it receives every request as an event.
    async fn node_without_core() -> (SocketAddr, Receiver<Event>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (events, received) = std::sync::mpsc::sync_channel(1 << 20);
        let shared = Arc::new(Shared {
            id: NodeId(1),
            access: Access::new(Default::default(), false, &[]),
            audit: AuditLog::disabled(NodeId(1)),
            events,
            filter: Filter::default(),
            clock: NodeClock::new(),
            peers: BTreeMap::new(),
            tls: None,
        });
        tokio::spawn(async move {
            while let Ok((stream, remote)) = listener.accept().await {
                tokio::spawn(serve(stream, remote, shared.clone()));
            }
        });
        (addr, received)
    }

    /// The requests the node read, waiting for `n` (up to a minute, for a
    /// loaded machine), then making sure no more come for a while.
    fn read_exactly(received: &Receiver<Event>, n: usize) -> Vec<ClientOp> {
        let mut ops = Vec::new();
        while ops.len() < n {
            match received.recv_timeout(Duration::from_secs(60)) {
                Ok(Event::Client { op, .. }) => ops.push(op),
                Ok(other) => panic!("unexpected event {other:?}"),
                Err(e) => panic!("only {} of {n} requests read: {e}", ops.len()),
            }
        }
        match received.recv_timeout(Duration::from_millis(300)) {
            Err(RecvTimeoutError::Timeout) => ops,
            other => panic!("read past the {n} owed replies: {other:?}"),
        }
    }

    /// Regression (issue 21, finding 4): replies were queued without limit
    /// for a client that sends requests and never reads; 2 MiB of requests
    /// took a node from 19 MB to 815 MB. Now it is not read past the
    /// replies it is owed, and is read again as soon as replies are written.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_that_never_reads_is_not_read_past_its_owed_replies() {
        let (addr, received) = node_without_core().await;
        let mut client = TcpStream::connect(addr).await.expect("connect");
        let mut lines = Vec::new();
        for id in 0..1000u64 {
            lines.extend_from_slice(
                &Request {
                    id: Some(id),
                    op: Op::Read { key: "k".into() },
                }
                .encode(),
            );
        }
        client
            .write_all(&lines)
            .await
            .expect("the socket buffers hold them");
        let received = tokio::task::spawn_blocking(move || {
            let owed = read_exactly(&received, MAX_OWED_REPLIES);
            // Answer them (small replies: the socket takes them although
            // the client reads nothing): that many more are read, no more.
            for op in owed {
                let _ = op.reply.send(Reply::ok(op.id).with("value", 1));
            }
            let next = read_exactly(&received, MAX_OWED_REPLIES);
            assert_eq!(next[0].id, Some(MAX_OWED_REPLIES as u64), "in order");
            received
        })
        .await
        .expect("the node stops reading");
        drop((client, received));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_are_not_answered_owe_nothing() {
        let (addr, received) = node_without_core().await;
        let mut client = TcpStream::connect(addr).await.expect("connect");
        // Bad lines are answered at once; auth without id gets no reply.
        let mut lines = b"not json\n{\"op\":\"auth\",\"token\":\"x\"}\n".repeat(200);
        lines.extend_from_slice(
            &Request {
                id: Some(9),
                op: Op::Status,
            }
            .encode(),
        );
        client.write_all(&lines).await.expect("write");
        let mut reader = LineReader::new(BufReader::new(client), MAX_CLIENT_LINE_BYTES);
        for _ in 0..200 {
            let line = reader.next_line().await.expect("read").expect("a reply");
            let r = Reply::decode(line).expect("a reply");
            assert_eq!(r.error, Some(ErrorCode::BadRequest));
        }
        let op = tokio::task::spawn_blocking(move || read_exactly(&received, 1))
            .await
            .expect("the status request is read");
        assert_eq!(op[0].id, Some(9));
    }
}
