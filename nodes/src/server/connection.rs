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
//! One task serves a connection, both ways: it waits for the next request
//! line and, in between, writes the replies that have come (a [`Channel`]).
//! A TLS stream is one state machine for both directions: split into two
//! tasks, every read and write took a mutex and the two tasks contended for
//! it (issue 19).
//!
//! Back-pressure: a permit (of [`MAX_OWED_REPLIES`]) is taken before each
//! line is read and given back once its reply is written to the socket (see
//! [`super::reply_sink`]). A client that does not read its replies is
//! therefore no longer read either, and what the node holds for the
//! connection stays bounded.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

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

/// A connection's socket, plain or TLS.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Socket for T {}

/// A connection's requests, line by line.
type Lines = LineReader<BufReader<Box<dyn Socket>>>;

/// Replies are written in batches of at most about this many bytes.
const MAX_REPLY_BATCH_BYTES: usize = 1 << 20;

/// A connection served from one task: requests read line by line, and the
/// replies that come in the meantime written between them.
struct Channel {
    lines: Lines,
    replies: mpsc::UnboundedReceiver<OwedReply>,
    /// The batch being written: its bytes, and the replies whose permits
    /// come back once they are written.
    buf: Vec<u8>,
    batch: Vec<OwedReply>,
}

impl Channel {
    fn new(socket: Box<dyn Socket>, replies: mpsc::UnboundedReceiver<OwedReply>) -> Channel {
        Channel {
            lines: LineReader::new(BufReader::new(socket), MAX_CLIENT_LINE_BYTES),
            replies,
            buf: Vec::with_capacity(4096),
            batch: Vec::new(),
        }
    }

    /// The next request line (then in `self.lines.line()`) with the permit
    /// it was read under; `None` at the end of the stream. Replies that come
    /// while it waits (for a permit or for the line) are written first.
    async fn next_line(
        &mut self,
        budget: &Arc<Semaphore>,
    ) -> Result<Option<OwnedSemaphorePermit>, LineError> {
        // Owed before it is read: with the budget spent, the client's
        // requests wait in its socket until it reads some replies.
        let permit = loop {
            tokio::select! {
                biased;
                Some(owed) = self.replies.recv() => self.write(owed).await?,
                permit = next_permit(budget) => break permit,
            }
        };
        loop {
            tokio::select! {
                biased;
                Some(owed) = self.replies.recv() => self.write(owed).await?,
                // Cancel-safe: a partial line waits in the reader.
                read = self.lines.read_line() => return Ok(read?.then_some(permit)),
            }
        }
    }

    /// Write `first` and whatever else is queued, in one write; the
    /// permits come back once it is written.
    async fn write(&mut self, first: OwedReply) -> std::io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(&first.reply.encode());
        self.batch.push(first);
        while self.buf.len() <= MAX_REPLY_BATCH_BYTES {
            let Ok(more) = self.replies.try_recv() else {
                break;
            };
            self.buf.extend_from_slice(&more.reply.encode());
            self.batch.push(more);
        }
        let socket = self.lines.get_mut().get_mut();
        socket.write_all(&self.buf).await?;
        // TLS buffers what it could not send at once: flush it.
        socket.flush().await?;
        self.batch.drain(..).for_each(OwedReply::written);
        Ok(())
    }

    /// The reader is done: replies still owed are written as they come
    /// (until the last pending request is answered), then the socket is
    /// shut. The connection's own sender must be dropped first.
    async fn finish(mut self) {
        while let Some(owed) = self.replies.recv().await {
            if self.write(owed).await.is_err() {
                return;
            }
        }
        let _ = self.lines.get_mut().get_mut().shutdown().await;
    }

    /// Write the replies queued now and then `last`, and shut the writing
    /// side (replies that come later are dropped). The reader is left to
    /// linger on, or to serve a peer.
    async fn close(mut self, last: Option<Reply>) -> Lines {
        self.buf.clear();
        while let Ok(owed) = self.replies.try_recv() {
            self.buf.extend_from_slice(&owed.reply.encode());
        }
        if let Some(reply) = last {
            self.buf.extend_from_slice(&reply.encode());
        }
        let socket = self.lines.get_mut().get_mut();
        if socket.write_all(&self.buf).await.is_ok() {
            let _ = socket.flush().await;
        }
        let _ = socket.shutdown().await;
        self.lines
    }
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

/// The next permit of the connection's budget: waits while
/// [`MAX_OWED_REPLIES`] replies are owed (the budget is never closed).
async fn next_permit(budget: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    budget
        .clone()
        .acquire_owned()
        .await
        .expect("a connection's reply budget is never closed")
}

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
        let roles = shared.access.certificate_roles(None, []);
        serve_channel(Box::new(stream), roles, remote, shared).await;
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
    serve_channel(Box::new(stream), roles, remote, shared).await;
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
    socket: Box<dyn Socket>,
    certificate_roles: Roles,
    remote: SocketAddr,
    shared: Arc<Shared>,
) {
    let (reply_tx, reply_rx) = mpsc::unbounded_channel::<OwedReply>();
    let mut channel = Channel::new(socket, reply_rx);
    let budget = Arc::new(Semaphore::new(MAX_OWED_REPLIES));

    let roles = if shared.access.requires_token() {
        let roles = authenticate(
            &mut channel.lines,
            certificate_roles,
            &budget,
            &reply_tx,
            remote,
            &shared,
        );
        match roles.await {
            Ok(roles) => roles,
            Err(refusal) => {
                let lines = channel.close(refusal).await;
                linger(lines.into_inner()).await;
                return;
            }
        }
    } else {
        shared
            .access
            .session_roles(certificate_roles, None)
            .expect("a node without tokens asks for none")
    };
    let session = Session { remote, roles };

    let mut first = true;
    loop {
        let after = match channel.next_line(&budget).await {
            Ok(Some(permit)) => {
                let sink = ReplySink::owed(reply_tx.clone(), permit);
                match Request::decode(channel.lines.line()) {
                    Ok(request) => handle_request(request, first, sink, &shared, session),
                    Err(e) => {
                        let _ = sink.send(Reply::bad_request(e.id, e.reason));
                        After::Continue
                    }
                }
            }
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
                let lines = channel.close(None).await;
                serve_peer(lines, node, remote, &shared).await;
                return;
            }
            After::Refuse(reply) => {
                let lines = channel.close(Some(reply)).await;
                linger(lines.into_inner()).await;
                return;
            }
        }
        first = false;
    }
    drop(reply_tx);
    channel.finish().await;
}

/// A node with tokens: the first line must be `auth` with one of them.
/// `Ok` lets the connection on with its session's roles (the certificate's
/// cut to the token's, [`Access::session_roles`]; the auth
/// acknowledged when it carries an id: a client that sends auth without
/// one does not expect a reply); `Err` closes it, with the refusal to send
/// if there is one to send. Refusals are audited.
async fn authenticate(
    reader: &mut Lines,
    certificate_roles: Roles,
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
        Op::Auth { token } => shared.access.session_roles(certificate_roles, Some(token)),
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
    /// With TLS, the node's certificates are a throw-away CA's.
    async fn node_without_core(tls: Option<NodeTls>) -> (SocketAddr, Receiver<Event>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (events, received) = std::sync::mpsc::sync_channel(1 << 20);
        let shared = Arc::new(Shared {
            id: NodeId(1),
            access: Access::new(Default::default(), tls.is_some(), &[]),
            audit: AuditLog::disabled(NodeId(1)),
            events,
            filter: Filter::default(),
            clock: NodeClock::new(),
            peers: BTreeMap::new(),
            tls,
        });
        tokio::spawn(async move {
            while let Ok((stream, remote)) = listener.accept().await {
                tokio::spawn(serve(stream, remote, shared.clone()));
            }
        });
        (addr, received)
    }

    /// How the test client reaches the node.
    #[derive(Clone, Copy, Debug)]
    enum Transport {
        Plain,
        Tls,
    }

    /// A client connection to a node without core, over `transport` (with
    /// TLS, presenting the client role's certificate).
    async fn connected_client(transport: Transport) -> (Box<dyn Socket>, Receiver<Event>) {
        use crate::tls::{CertAuthority, ClientTls, Role};
        match transport {
            Transport::Plain => {
                let (addr, received) = node_without_core(None).await;
                let client = TcpStream::connect(addr).await.expect("connect");
                (Box::new(client), received)
            }
            Transport::Tls => {
                let dir = tempfile::tempdir().expect("tempdir");
                let ca = CertAuthority::generate().expect("a CA");
                let ips = vec!["127.0.0.1".parse().expect("ip")];
                let pki = ca
                    .write_run(dir.path(), &[(NodeId(1), ips)])
                    .expect("files");
                let tls = NodeTls::load(&pki.nodes[&NodeId(1)], NodeId(1)).expect("node TLS");
                let (addr, received) = node_without_core(Some(tls)).await;
                let client_tls =
                    ClientTls::from_files(&pki.roles[&Role::Client]).expect("client TLS");
                let client = client_tls.connect(addr).await.expect("TLS connect");
                (Box::new(client), received)
            }
        }
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
    async fn a_client_that_never_reads_is_not_read_past_its_owed_replies(transport: Transport) {
        let (mut client, received) = connected_client(transport).await;
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
        client.flush().await.expect("the socket buffers hold them");
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
    async fn a_plain_client_that_never_reads_is_not_read_past_its_owed_replies() {
        a_client_that_never_reads_is_not_read_past_its_owed_replies(Transport::Plain).await;
    }

    /// The same over TLS, where one task reads requests and writes replies
    /// (issue 19): a reply written must still give its permit back, and
    /// nothing past the budget may be read while replies wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tls_client_that_never_reads_is_not_read_past_its_owed_replies() {
        a_client_that_never_reads_is_not_read_past_its_owed_replies(Transport::Tls).await;
    }

    /// Replies come back in the order the core answers them, each once,
    /// while the client keeps sending: the one task that serves a TLS
    /// connection writes between reads, and a read cut short by a reply
    /// must not lose or reorder a request (issue 19).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tls_client_gets_every_reply_once_and_in_order_while_it_sends() {
        const REQUESTS: u64 = 5000;
        let (client, received) = connected_client(Transport::Tls).await;
        let (read, mut write) = tokio::io::split(client);
        // The core: answers each request as it comes.
        let core = tokio::task::spawn_blocking(move || {
            for expected in 0..REQUESTS {
                match received.recv_timeout(Duration::from_secs(60)) {
                    Ok(Event::Client { op, .. }) => {
                        assert_eq!(op.id, Some(expected), "requests read in order");
                        let _ = op.reply.send(Reply::ok(op.id));
                    }
                    other => panic!("request {expected}: {other:?}"),
                }
            }
        });
        // Each request in two TLS records, split mid-line, so that replies
        // come while a line is half read.
        let sender = tokio::spawn(async move {
            for id in 0..REQUESTS {
                let request = Request {
                    id: Some(id),
                    op: Op::Read { key: "k".into() },
                }
                .encode();
                let (head, tail) = request.split_at(request.len() / 2);
                for part in [head, tail] {
                    write.write_all(part).await.expect("write");
                    write.flush().await.expect("flush");
                }
            }
            write
        });
        let mut reader = LineReader::new(BufReader::new(read), MAX_CLIENT_LINE_BYTES);
        for expected in 0..REQUESTS {
            let line = reader.next_line().await.expect("read").expect("a reply");
            let reply = Reply::decode(line).expect("a reply");
            assert_eq!(reply.id, Some(expected), "replies in order");
        }
        core.await.expect("the core saw every request in order");
        drop(sender.await.expect("the sender"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_that_are_not_answered_owe_nothing() {
        let (addr, received) = node_without_core(None).await;
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
