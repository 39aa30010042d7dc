//! One pipelined connection to one node: the only client-side connection
//! of the node protocol (docs/protocol.md).
//!
//! Every program that talks to a node uses it: [`super::Client`], the
//! workload client (workloads/src/tcp_client.rs), the harness's admin
//! requests and its probes. [`open_stream`] is the one place a byte stream
//! to a node is made (TCP, bound to a source IP when asked, and TLS when
//! [`ConnectOptions::tls`] is set: the node's certificate must chain to the
//! run's CA and name the IP address dialled); the rest is generic over any
//! `AsyncRead + AsyncWrite` stream ([`Connection::over`]), so every client
//! gets TLS by its options alone. A TLS handshake that fails is a
//! [`ClientError::Connect`]: nothing was sent.
//!
//! Requests get ids from a per-connection counter; a reader task routes
//! each reply to its caller by id, so many calls may be in flight at once.
//! Replies are read by a bounded line reader ([`MAX_REPLY_LINE_BYTES`]).
//! With a token, the connection authenticates first and waits for the
//! node's answer, so a refused token is [`ClientError::Unauthorized`]
//! before any request is sent. A call that never left is
//! [`ClientError::NotSent`] (definite: nothing happened); a call that gets
//! no reply in time, or whose connection closes, returns
//! [`ClientError::Timeout`] or [`ClientError::Closed`]: the caller cannot
//! know whether it happened (record it as `info`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::ClientError;
use crate::protocol::{ErrorCode, LineReader, Op, Reply, Request, MAX_REPLY_LINE_BYTES};
use crate::tls::{ClientTls, ClientTlsStream};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// What a client presents to a node: the run's token (`--auth`) and its
/// TLS identity (`--tls`: the CA it trusts and a role certificate). Cheap
/// to clone; `Debug` shows neither the token nor any key.
#[derive(Clone, Default)]
pub struct Credentials {
    pub auth_token: Option<String>,
    pub tls: Option<ClientTls>,
}

impl Credentials {
    /// No token, no TLS: a plain connection.
    pub fn none() -> Credentials {
        Credentials::default()
    }

    /// Options that present these credentials, from `bind_ip` when given,
    /// connecting within `connect_timeout`.
    pub fn options(&self, bind_ip: Option<IpAddr>, connect_timeout: Duration) -> ConnectOptions {
        ConnectOptions {
            auth_token: self.auth_token.clone(),
            tls: self.tls.clone(),
            bind_ip,
            connect_timeout,
        }
    }
}

impl std::fmt::Debug for Credentials {
    /// Only whether there is a token and TLS.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("auth", &self.auth_token.is_some())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// How a connection is opened, used by [`open_stream`] and
/// [`Connection::connect`].
#[derive(Clone, Default)]
pub struct ConnectOptions {
    /// Sent as the first line (`auth` with an id), its answer awaited.
    pub auth_token: Option<String>,
    /// TLS: trust the run's CA (the node's certificate must name the IP
    /// dialled) and present a role certificate. None: plain TCP.
    pub tls: Option<ClientTls>,
    /// Bind the outgoing socket to this address (the lab binds each host's
    /// address, so that partitions by source address hold; locally, client
    /// traffic leaves from an address no packet filter between nodes names).
    pub bind_ip: Option<IpAddr>,
    /// The longest the connect and the auth exchange may take together.
    pub connect_timeout: Duration,
}

impl ConnectOptions {
    pub fn new(connect_timeout: Duration) -> ConnectOptions {
        ConnectOptions {
            auth_token: None,
            tls: None,
            bind_ip: None,
            connect_timeout,
        }
    }
}

impl std::fmt::Debug for ConnectOptions {
    /// Never shows the token, only whether there is one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("auth", &self.auth_token.is_some())
            .field("tls", &self.tls.is_some())
            .field("bind_ip", &self.bind_ip)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// A byte stream to a node: plain TCP, or TLS over it.
#[derive(Debug)]
pub enum NodeStream {
    Plain(TcpStream),
    Tls(Box<ClientTlsStream<TcpStream>>),
}

impl NodeStream {
    /// Whether the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self, NodeStream::Tls(_))
    }
}

impl AsyncRead for NodeStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NodeStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_flush(cx),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            NodeStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            NodeStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens the byte stream to the node at `addr`: TCP with nodelay, from
/// `options.bind_ip` when given, then TLS when `options.tls` is set (the
/// node's certificate must name the IP address connected to). The one
/// place a stream to a node is made.
pub async fn open_stream(addr: &str, options: &ConnectOptions) -> Result<NodeStream, ClientError> {
    let connect_err = |reason: String| ClientError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let stream = open_tcp(addr, options).await?;
    let Some(tls) = &options.tls else {
        return Ok(NodeStream::Plain(stream));
    };
    let peer = stream
        .peer_addr()
        .map_err(|e| connect_err(format!("reading the peer address: {e}")))?;
    let stream = tls
        .connect_stream(stream, ServerName::IpAddress(peer.ip().into()))
        .await
        .map_err(|e| connect_err(format!("TLS handshake: {e}")))?;
    Ok(NodeStream::Tls(Box::new(stream)))
}

/// The TCP part of [`open_stream`].
async fn open_tcp(addr: &str, options: &ConnectOptions) -> Result<TcpStream, ClientError> {
    let connect_err = |reason: String| ClientError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let stream = match options.bind_ip {
        None => TcpStream::connect(addr)
            .await
            .map_err(|e| connect_err(e.to_string()))?,
        Some(ip) => {
            let target: SocketAddr = tokio::net::lookup_host(addr)
                .await
                .map_err(|e| connect_err(format!("resolving: {e}")))?
                .next()
                .ok_or_else(|| connect_err("resolves to no address".into()))?;
            let socket = if target.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(|e| connect_err(e.to_string()))?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .map_err(|e| connect_err(format!("binding {ip}: {e}")))?;
            socket
                .connect(target)
                .await
                .map_err(|e| connect_err(e.to_string()))?
        }
    };
    stream.set_nodelay(true).ok();
    Ok(stream)
}

/// A connection; cheap to clone (clones share the socket). The socket
/// closes when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Connection {
    addr: String,
    next_id: Arc<AtomicU64>,
    pending: Pending,
    lines: mpsc::Sender<Vec<u8>>,
    closed: Arc<AtomicBool>,
    /// The reply without an id the node closed the connection with
    /// (`unauthorized` after a refused `hello`, `tls-required`,
    /// `too-large`), once it came.
    refusal: Arc<Mutex<Option<Reply>>>,
}

impl Connection {
    /// Connect to `addr` ([`open_stream`]) and authenticate when
    /// `options` has a token, all within `options.connect_timeout`.
    pub async fn connect(addr: &str, options: &ConnectOptions) -> Result<Connection, ClientError> {
        let timed_out = || ClientError::Connect {
            addr: addr.to_string(),
            reason: format!("no connection within {:?}", options.connect_timeout),
        };
        tokio::time::timeout(options.connect_timeout, async {
            let token = options.auth_token.as_deref();
            match open_stream(addr, options).await? {
                // A TCP stream splits into owned halves without a lock
                // between them; TLS needs tokio's split (a mutex per poll).
                NodeStream::Plain(tcp) => {
                    let (read, write) = tcp.into_split();
                    Connection::over_halves(read, write, addr, token).await
                }
                tls => Connection::over(tls, addr, token).await,
            }
        })
        .await
        .map_err(|_| timed_out())?
    }

    /// Runs the protocol over an open `stream` to the node at `addr`
    /// (authenticating first with `token`). The caller bounds its time.
    pub async fn over<S>(
        stream: S,
        addr: &str,
        token: Option<&str>,
    ) -> Result<Connection, ClientError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read, write) = tokio::io::split(stream);
        Connection::over_halves(read, write, addr, token).await
    }

    /// [`Connection::over`] on a stream already split into its two halves.
    async fn over_halves<R, W>(
        read: R,
        mut write: W,
        addr: &str,
        token: Option<&str>,
    ) -> Result<Connection, ClientError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let mut reader = LineReader::new(BufReader::new(read), MAX_REPLY_LINE_BYTES);
        if let Some(token) = token {
            authenticate(&mut reader, &mut write, addr, token).await?;
        }

        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let refusal = Arc::new(Mutex::new(None));
        let (lines_tx, lines_rx) = mpsc::channel::<Vec<u8>>(1024);
        tokio::spawn(write_lines(write, lines_rx, closed.clone()));
        tokio::spawn(route_replies(
            reader,
            pending.clone(),
            closed.clone(),
            refusal.clone(),
            addr.to_string(),
        ));
        Ok(Connection {
            addr: addr.to_string(),
            next_id: Arc::new(AtomicU64::new(1)),
            pending,
            lines: lines_tx,
            closed,
            refusal,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection is known to be closed (the node closed it,
    /// or a write failed): a new request on it would not be sent.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.lines.is_closed()
    }

    /// The reply without an id that the node closed this connection with
    /// (a refused `hello`'s `unauthorized`, `tls-required`, `too-large`),
    /// if one came: a call that ended `Closed` can tell why from it.
    pub fn refusal(&self) -> Option<Reply> {
        self.refusal.lock().expect("refusal lock").clone()
    }

    /// Sends one peer message line (a connection after `hello` carries
    /// them; no reply comes). `Err(NotSent)` when the connection is
    /// already closed.
    pub async fn send_peer_message(
        &self,
        msg: &crate::consensus::Message,
    ) -> Result<(), ClientError> {
        let not_sent = || ClientError::NotSent {
            addr: self.addr.clone(),
        };
        if self.is_closed() {
            return Err(not_sent());
        }
        let mut line = Vec::new();
        crate::transport::encode_message(msg, &mut line);
        self.lines.send(line).await.map_err(|_| not_sent())
    }

    /// Send `op` and wait for its reply, at most `timeout`.
    /// `Err(NotSent)` means the request never left: it certainly did not happen.
    pub async fn call(&self, op: Op, timeout: Duration) -> Result<Reply, ClientError> {
        if self.is_closed() {
            return Err(ClientError::NotSent {
                addr: self.addr.clone(),
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let line = Request { id: Some(id), op }.encode();
        if self.lines.send(line).await.is_err() {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(ClientError::NotSent {
                addr: self.addr.clone(),
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(ClientError::Closed {
                addr: self.addr.clone(),
            }),
            Err(_) => {
                self.pending.lock().expect("pending lock").remove(&id);
                Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                })
            }
        }
    }
}

/// Connects to `addr`, sends `op` and returns its reply: one request on a
/// fresh connection (probes, admin requests). `options.connect_timeout`
/// bounds the connect; `timeout` the reply.
pub async fn call_once(
    addr: &str,
    options: &ConnectOptions,
    op: Op,
    timeout: Duration,
) -> Result<Reply, ClientError> {
    Connection::connect(addr, options)
        .await?
        .call(op, timeout)
        .await
}

/// `auth` with id 0, then its answer: ok, or `Unauthorized`.
async fn authenticate<R, W>(
    reader: &mut LineReader<R>,
    write: &mut W,
    addr: &str,
    token: &str,
) -> Result<(), ClientError>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let connect_err = |reason: String| ClientError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let auth = Request {
        id: Some(0),
        op: Op::Auth {
            token: token.to_string(),
        },
    };
    write
        .write_all(&auth.encode())
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let line = reader
        .next_line()
        .await
        .map_err(|e| connect_err(e.to_string()))?
        .ok_or_else(|| connect_err("closed during auth".into()))?;
    let reply = Reply::decode(line).map_err(|e| connect_err(format!("bad auth reply: {e}")))?;
    if !reply.ok {
        return Err(ClientError::Unauthorized {
            addr: addr.to_string(),
        });
    }
    Ok(())
}

/// The writer task: batches whatever is queued into one write; marks the
/// connection closed when a write fails or every sender is gone.
async fn write_lines<W: AsyncWrite + Unpin>(
    mut write: W,
    mut lines: mpsc::Receiver<Vec<u8>>,
    closed: Arc<AtomicBool>,
) {
    let mut buf = Vec::new();
    while let Some(line) = lines.recv().await {
        buf.clear();
        buf.extend_from_slice(&line);
        while let Ok(more) = lines.try_recv() {
            buf.extend_from_slice(&more);
        }
        // TLS keeps what the socket did not take at once: flush it, or a
        // request could wait there for the next one.
        if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
            break;
        }
    }
    closed.store(true, Ordering::SeqCst);
    let _ = write.shutdown().await;
}

/// The reader task: routes each reply to its caller by id. At the end of
/// the stream, on an undecodable or over-long line, or on an `unauthorized`,
/// `too-large` or `tls-required` reply nobody waits for (the node closes
/// next), it marks
/// the connection closed and wakes every waiter with `Closed`.
async fn route_replies<R: tokio::io::AsyncBufRead + Unpin>(
    mut reader: LineReader<R>,
    pending: Pending,
    closed: Arc<AtomicBool>,
    refusal: Arc<Mutex<Option<Reply>>>,
    addr: String,
) {
    loop {
        let line = match reader.next_line().await {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "unreadable reply; closing");
                break;
            }
        };
        let reply = match Reply::decode(line) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::warn!(%addr, error = %e, "undecodable reply; closing");
                break;
            }
        };
        let waiter = reply
            .id
            .and_then(|id| pending.lock().expect("pending lock").remove(&id));
        match waiter {
            Some(tx) => {
                let _ = tx.send(reply);
            }
            None if reply.error == Some(ErrorCode::TooLarge)
                || reply.error == Some(ErrorCode::Unauthorized)
                || reply.error == Some(ErrorCode::TlsRequired) =>
            {
                *refusal.lock().expect("refusal lock") = Some(reply);
                break;
            }
            None => tracing::debug!(%addr, ?reply.id, "reply for no pending request"),
        }
    }
    closed.store(true, Ordering::SeqCst);
    // Dropping the senders wakes every waiter with Closed.
    pending.lock().expect("pending lock").clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    /// A node stand-in: answers each request line with `answer(request)`
    /// (its id echoed), or closes the connection on None.
    async fn node(answer: fn(&Request) -> Option<Reply>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let request = Request::decode(line.as_bytes()).expect("a valid request");
                        let Some(mut reply) = answer(&request) else {
                            return;
                        };
                        reply.id = request.id;
                        if w.write_all(&reply.encode()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    fn options(token: Option<&str>) -> ConnectOptions {
        ConnectOptions {
            auth_token: token.map(str::to_string),
            ..ConnectOptions::new(Duration::from_secs(5))
        }
    }

    /// Accepts the token `good`, echoes a read's key as its value.
    fn checks_the_token(request: &Request) -> Option<Reply> {
        Some(match &request.op {
            Op::Auth { token } if token == "good" => Reply::ok(None),
            Op::Auth { .. } => Reply::error(None, ErrorCode::Unauthorized),
            Op::Read { key } => Reply::ok(None).with("value", key.as_str()),
            _ => Reply::bad_request(None, "unexpected"),
        })
    }

    #[tokio::test]
    async fn a_good_token_is_acknowledged_first_and_a_bad_one_is_refused_before_any_request() {
        let addr = node(checks_the_token).await;
        let c = Connection::connect(&addr, &options(Some("good")))
            .await
            .expect("authenticated");
        let reply = c
            .call(Op::Read { key: "k".into() }, Duration::from_secs(5))
            .await
            .expect("a reply");
        assert_eq!(reply.value(), &serde_json::json!("k"));
        let refused = Connection::connect(&addr, &options(Some("bad")))
            .await
            .expect_err("refused");
        assert!(
            matches!(&refused, ClientError::Unauthorized { .. }),
            "{refused:?}"
        );
        assert!(refused.not_sent(), "a refused token sends no request");
    }

    #[tokio::test]
    async fn a_closed_connection_and_silence_are_both_unknown() {
        let silent = node(|request| match request.op {
            Op::Status => None,
            _ => Some(Reply::ok(None)),
        })
        .await;
        let c = Connection::connect(&silent, &options(None))
            .await
            .expect("connected");
        let e = c
            .call(Op::Status, Duration::from_secs(5))
            .await
            .expect_err("closed");
        assert!(matches!(e, ClientError::Closed { .. }), "{e:?}");
        assert!(!e.not_sent());

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mute = listener.local_addr().expect("addr").to_string();
        let held = tokio::spawn(async move { listener.accept().await });
        let c = Connection::connect(&mute, &options(None))
            .await
            .expect("connected");
        let e = c
            .call(Op::Status, Duration::from_millis(100))
            .await
            .expect_err("no reply");
        assert!(matches!(e, ClientError::Timeout { .. }), "{e:?}");
        assert!(!e.not_sent());
        held.abort();
    }

    #[tokio::test]
    async fn a_refused_connect_is_not_sent() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let dead = l.local_addr().expect("addr").to_string();
        drop(l);
        let e = call_once(&dead, &options(None), Op::Status, Duration::from_secs(1))
            .await
            .expect_err("refused");
        assert!(e.not_sent(), "{e:?}");
        assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    }

    #[test]
    fn options_never_show_the_token() {
        let shown = format!("{:?}", options(Some("s3cret-token")));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    /// A TLS stand-in of node 1 (its run's files under `dir`, its
    /// certificate naming `cert_ip`), on 127.0.0.1: answers each request
    /// line like [`checks_the_token`]; a plain client gets nothing.
    async fn tls_node(dir: &std::path::Path, cert_ip: &str) -> (String, crate::tls::RunPki) {
        use crate::consensus::NodeId;
        use crate::tls::{CertAuthority, NodeTls};
        let ca = CertAuthority::generate().expect("a CA");
        let ips = vec![cert_ip.parse().expect("ip")];
        let pki = ca.write_run(dir, &[(NodeId(1), ips)]).expect("files");
        let tls = NodeTls::load(&pki.nodes[&NodeId(1)], NodeId(1)).expect("node TLS");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tls = tls.clone();
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(stream).await else {
                        return;
                    };
                    let (r, mut w) = tokio::io::split(stream);
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let request = Request::decode(line.as_bytes()).expect("a valid request");
                        let Some(mut reply) = checks_the_token(&request) else {
                            return;
                        };
                        reply.id = request.id;
                        if w.write_all(&reply.encode()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, pki)
    }

    fn tls_options(files: &crate::tls::TlsFiles, token: Option<&str>) -> ConnectOptions {
        ConnectOptions {
            tls: Some(ClientTls::from_files(files).expect("client TLS")),
            ..options(token)
        }
    }

    #[tokio::test]
    async fn a_connection_with_tls_options_speaks_tls_and_authenticates_inside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (addr, pki) = tls_node(dir.path(), "127.0.0.1").await;
        let role = &pki.roles[&crate::tls::Role::Client];
        let stream = open_stream(&addr, &tls_options(role, None))
            .await
            .expect("TLS");
        assert!(stream.is_tls());
        let c = Connection::connect(&addr, &tls_options(role, Some("good")))
            .await
            .expect("TLS and the token");
        let reply = c
            .call(Op::Read { key: "k".into() }, Duration::from_secs(5))
            .await
            .expect("a reply over TLS");
        assert_eq!(reply.value(), &serde_json::json!("k"));
        let refused = Connection::connect(&addr, &tls_options(role, Some("bad")))
            .await
            .expect_err("a bad token inside TLS");
        assert!(
            matches!(refused, ClientError::Unauthorized { .. }),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn tls_to_a_node_whose_certificate_names_another_ip_or_ca_is_not_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The certificate names 127.0.0.2; the node listens on 127.0.0.1.
        let (addr, pki) = tls_node(&dir.path().join("a"), "127.0.0.2").await;
        let role = &pki.roles[&crate::tls::Role::Client];
        let e = Connection::connect(&addr, &tls_options(role, None))
            .await
            .expect_err("the name check fails");
        assert!(e.not_sent(), "{e:?}");
        assert!(e.to_string().contains("TLS handshake"), "{e}");
        // A client that trusts another CA.
        let (addr, _) = tls_node(&dir.path().join("b"), "127.0.0.1").await;
        let e = Connection::connect(&addr, &tls_options(role, None))
            .await
            .expect_err("another CA");
        assert!(e.not_sent(), "{e:?}");
        // A plain stream stays plain.
        let plain = open_stream(&addr, &options(None)).await.expect("TCP");
        assert!(!plain.is_tls());
    }

    #[test]
    fn credentials_never_show_the_token() {
        let credentials = Credentials {
            auth_token: Some("s3cret-token".into()),
            tls: None,
        };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let options = credentials.options(None, Duration::from_secs(1));
        assert_eq!(options.auth_token.as_deref(), Some("s3cret-token"));
        assert!(options.tls.is_none());
    }

    #[tokio::test]
    async fn a_bound_connection_leaves_from_its_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let source = tokio::spawn(async move {
            let (_, peer) = listener.accept().await.expect("accept");
            peer.ip()
        });
        let bound = ConnectOptions {
            bind_ip: Some("127.0.0.7".parse().expect("ip")),
            ..options(None)
        };
        let _c = open_stream(&addr, &bound).await.expect("connected");
        assert_eq!(
            source.await.expect("accepted").to_string(),
            "127.0.0.7",
            "bound to the asked address"
        );
    }
}
