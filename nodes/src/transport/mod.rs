//! Peer transport: consensus messages between nodes over TCP.
//!
//! Peers use the client port. A node dials each peer once (one outgoing
//! connection per peer, used only for sending), binds the socket's source
//! address to its own listen IP (so a packet filter on `127.0.0.N` pairs
//! cuts exactly one link), opens mutual TLS if the node has it (the peer's
//! certificate must name the node id dialled, and this node presents its
//! own, which the peer checks against the id of the hello), authenticates
//! if a token is set, sends
//! `{"op":"hello","node":ID}` and then one JSON line per [`Message`].
//! Incoming peer connections are read by the server (`server::connection`).
//!
//! Guarantees: sending never blocks the caller (a bounded queue per peer; a
//! full queue drops the message, which consensus tolerates); a broken
//! connection is re-dialled with exponential back-off; the [`Filter`] is
//! applied to every message sent. Under its delay a message leaves once
//! `queued_at + delay` has passed, the delay read as it is then (a delay
//! cleared while messages wait releases them at once); a batch takes only
//! messages already due, so a steady stream keeps flowing.

pub mod filter;

pub use filter::{Filter, FilterRules};

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::consensus::{Message, NodeId};
use crate::protocol::{Op, Request};
use crate::tls::NodeTls;

/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_LEN: usize = 8192;

/// Decode one peer line. Bad input from the wire: an error, never a panic.
pub fn decode_message(line: &[u8]) -> Result<Message, serde_json::Error> {
    serde_json::from_slice(line)
}

/// Encode one peer message as a line (newline included).
pub fn encode_message(msg: &Message, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, msg).expect("messages always serialize");
    out.push(b'\n');
}

/// The sending side of the transport: one queue and one task per peer.
#[derive(Debug, Clone)]
pub struct Transport {
    queues: BTreeMap<NodeId, mpsc::Sender<(Instant, Message)>>,
}

impl Transport {
    /// Start a sender task per peer (must run inside a tokio runtime).
    /// `peers` excludes this node.
    pub fn start(
        id: NodeId,
        bind_ip: IpAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
        auth_token: Option<String>,
        tls: Option<NodeTls>,
        filter: Filter,
    ) -> Transport {
        let mut queues = BTreeMap::new();
        for (peer, addr) in peers {
            assert_ne!(peer, id, "a node is not its own peer");
            let (tx, rx) = mpsc::channel(PEER_QUEUE_LEN);
            queues.insert(peer, tx);
            tokio::spawn(peer_sender(
                id,
                peer,
                addr,
                bind_ip,
                auth_token.clone(),
                tls.clone(),
                filter.clone(),
                rx,
            ));
        }
        Transport { queues }
    }

    /// A transport that sends nothing: every message for `peers` lands in
    /// the returned queue instead (tests drive a runtime by hand with it).
    #[cfg(test)]
    pub(crate) fn capture(peers: &[NodeId]) -> (Transport, mpsc::Receiver<(Instant, Message)>) {
        let (tx, rx) = mpsc::channel(PEER_QUEUE_LEN);
        let queues = peers.iter().map(|&p| (p, tx.clone())).collect();
        (Transport { queues }, rx)
    }

    /// Queue a message; dropped if the peer is unknown or its queue is full.
    pub fn send(&self, msg: Message) {
        match self.queues.get(&msg.to) {
            Some(q) => {
                if q.try_send((Instant::now(), msg)).is_err() {
                    tracing::debug!("peer queue full; message dropped");
                }
            }
            None => tracing::warn!(to = %msg.to, "message for an unknown peer dropped"),
        }
    }
}

async fn dial(bind_ip: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if !bind_ip.is_unspecified() && bind_ip.is_ipv4() == addr.is_ipv4() {
        socket.bind(SocketAddr::new(bind_ip, 0))?;
    }
    let stream = tokio::time::timeout(Duration::from_secs(1), socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connection to a peer as the sender holds it: plain or TLS.
type PeerStream = Box<dyn AsyncWrite + Unpin + Send>;

/// Dial `peer` and, with TLS, open mutual TLS to it.
async fn connect(
    bind_ip: IpAddr,
    addr: SocketAddr,
    peer: NodeId,
    tls: Option<&NodeTls>,
) -> std::io::Result<PeerStream> {
    let stream = dial(bind_ip, addr).await?;
    match tls {
        None => Ok(Box::new(stream)),
        Some(tls) => Ok(Box::new(tls.connect_peer(stream, peer).await?)),
    }
}

/// Write `buf` and flush it (TLS buffers what the socket did not take).
async fn send_all(stream: &mut PeerStream, buf: &[u8]) -> std::io::Result<()> {
    stream.write_all(buf).await?;
    stream.flush().await
}

async fn peer_sender(
    id: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    bind_ip: IpAddr,
    auth_token: Option<String>,
    tls: Option<NodeTls>,
    filter: Filter,
    mut rx: mpsc::Receiver<(Instant, Message)>,
) {
    let mut backoff = Duration::from_millis(20);
    let mut buf = Vec::with_capacity(64 * 1024);
    'reconnect: loop {
        let mut stream = match connect(bind_ip, addr, peer, tls.as_ref()).await {
            Ok(s) => s,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    // A TLS refusal (a certificate that does not name
                    // `peer`, or of another CA): worth a warning.
                    tracing::warn!(%peer, %addr, error = %e, "TLS to peer refused; retrying");
                } else {
                    tracing::debug!(%peer, %addr, error = %e, "cannot reach peer; retrying");
                }
                // Messages queued meanwhile are stale: drop them.
                while rx.try_recv().is_ok() {}
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                if rx.is_closed() {
                    return;
                }
                continue;
            }
        };
        buf.clear();
        if let Some(token) = &auth_token {
            buf.extend_from_slice(
                &Request {
                    id: None,
                    op: Op::Auth {
                        token: token.clone(),
                    },
                }
                .encode(),
            );
        }
        buf.extend_from_slice(
            &Request {
                id: None,
                op: Op::Hello { node: id.0 },
            }
            .encode(),
        );
        if send_all(&mut stream, &buf).await.is_err() {
            continue 'reconnect;
        }
        tracing::debug!(%peer, %addr, "connected to peer");
        backoff = Duration::from_millis(20);
        // A message taken from the queue that was not due yet: it opens the
        // next batch.
        let mut held: Option<(Instant, Message)> = None;
        loop {
            let (queued_at, msg) = match held.take() {
                Some(next) => next,
                None => match rx.recv().await {
                    Some(next) => next,
                    None => return,
                },
            };
            wait_until_due(&filter, queued_at).await;
            buf.clear();
            if filter.passes(peer) {
                encode_message(&msg, &mut buf);
            }
            // Batch whatever else is queued and already due; never wait for
            // a message inside a batch, or a steady stream would keep the
            // batch open and nothing would be written.
            while buf.len() < 1 << 20 {
                match rx.try_recv() {
                    Ok((q, m)) if is_due(&filter, q) => {
                        if filter.passes(peer) {
                            encode_message(&m, &mut buf);
                        }
                    }
                    Ok(not_due) => {
                        held = Some(not_due);
                        break;
                    }
                    Err(_) => break,
                }
            }
            if buf.is_empty() {
                continue;
            }
            if let Err(e) = send_all(&mut stream, &buf).await {
                tracing::debug!(%peer, error = %e, "peer connection broke; reconnecting");
                continue 'reconnect;
            }
        }
    }
}

/// Whether a message queued at `queued_at` may leave under the filter's
/// delay as it is now.
fn is_due(filter: &Filter, queued_at: Instant) -> bool {
    queued_at + filter.delay() <= Instant::now()
}

/// Waits until a message queued at `queued_at` is due, reading the filter's
/// delay afresh after each wait, so a delay cleared or changed meanwhile
/// takes effect for the messages already queued.
async fn wait_until_due(filter: &Filter, queued_at: Instant) {
    loop {
        let due = queued_at + filter.delay();
        if due <= Instant::now() {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Fuzz: peer lines from the wire never panic the decoder.
        #[test]
        fn decode_message_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = decode_message(&bytes);
        }

        #[test]
        fn decode_message_never_panics_on_jsonish(s in r#"\{"group":[0-9]{1,3},"from":[0-9],"to":[0-9],"payload":\{"raft":\{("[a-z_]{1,12}":(\{\}|[0-9]{1,4}|null|\[\]),?){0,4}\}\}\}"#) {
            let _ = decode_message(s.as_bytes());
        }
    }
}

#[cfg(test)]
mod peer_sender_tests;
