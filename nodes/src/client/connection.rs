//! One pipelined connection to one node.
//!
//! Requests get ids from a per-connection counter; a reader task routes
//! each reply to its caller by id, so many calls may be in flight at once.
//! A call that gets no reply in time, or whose connection closes, returns
//! [`ClientError::Timeout`] or [`ClientError::Closed`]: the caller cannot know
//! whether it happened (record it as `info`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::ClientError;
use crate::protocol::{ErrorCode, LineReader, Op, Reply, Request, MAX_CLIENT_LINE_BYTES};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// A connection; cheap to clone (clones share the socket).
#[derive(Clone, Debug)]
pub struct Connection {
    addr: String,
    next_id: Arc<AtomicU64>,
    pending: Pending,
    lines: mpsc::Sender<Vec<u8>>,
    closed: Arc<AtomicBool>,
}

impl Connection {
    /// Connect to `addr`, authenticate with `token` if given.
    pub async fn connect(
        addr: &str,
        token: Option<&str>,
        connect_timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect {
                addr: addr.to_string(),
                reason: "connect timed out".into(),
            })?
            .map_err(|e| ClientError::Connect {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
        stream.set_nodelay(true).ok();
        let (read, mut write) = stream.into_split();
        let mut reader = LineReader::new(BufReader::new(read), MAX_CLIENT_LINE_BYTES);

        if let Some(token) = token {
            let auth = Request {
                id: Some(0),
                op: Op::Auth {
                    token: token.to_string(),
                },
            };
            let connect_err = |reason: String| ClientError::Connect {
                addr: addr.to_string(),
                reason,
            };
            write
                .write_all(&auth.encode())
                .await
                .map_err(|e| connect_err(e.to_string()))?;
            let line = tokio::time::timeout(connect_timeout, reader.next_line())
                .await
                .map_err(|_| connect_err("no reply to auth".into()))?
                .map_err(|e| connect_err(e.to_string()))?
                .ok_or_else(|| connect_err("closed during auth".into()))?;
            let reply =
                Reply::decode(line).map_err(|e| connect_err(format!("bad auth reply: {e}")))?;
            if !reply.ok {
                return Err(ClientError::Unauthorized {
                    addr: addr.to_string(),
                });
            }
        }

        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (lines_tx, mut lines_rx) = mpsc::channel::<Vec<u8>>(1024);

        // Writer: batches whatever is queued into one write.
        let closed_w = closed.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            while let Some(line) = lines_rx.recv().await {
                buf.clear();
                buf.extend_from_slice(&line);
                while let Ok(more) = lines_rx.try_recv() {
                    buf.extend_from_slice(&more);
                }
                if write.write_all(&buf).await.is_err() {
                    break;
                }
            }
            closed_w.store(true, Ordering::SeqCst);
            let _ = write.shutdown().await;
        });

        // Reader: routes replies to callers by id.
        let pending_r = pending.clone();
        let closed_r = closed.clone();
        let addr_r = addr.to_string();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                match Reply::decode(line) {
                    Ok(reply) => {
                        let waiter = reply
                            .id
                            .and_then(|id| pending_r.lock().expect("pending lock").remove(&id));
                        match waiter {
                            Some(tx) => {
                                let _ = tx.send(reply);
                            }
                            None if reply.error == Some(ErrorCode::TooLarge)
                                || reply.error == Some(ErrorCode::Unauthorized) =>
                            {
                                break
                            }
                            None => {
                                tracing::debug!(addr = %addr_r, ?reply.id, "reply for no pending request")
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(addr = %addr_r, error = %e, "undecodable reply; closing");
                        break;
                    }
                }
            }
            closed_r.store(true, Ordering::SeqCst);
            // Dropping the senders wakes every waiter with Closed.
            pending_r.lock().expect("pending lock").clear();
        });

        Ok(Connection {
            addr: addr.to_string(),
            next_id: Arc::new(AtomicU64::new(1)),
            pending,
            lines: lines_tx,
            closed,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether the connection is known to be closed.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst) || self.lines.is_closed()
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
