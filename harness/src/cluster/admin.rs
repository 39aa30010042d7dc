//! Admin requests to a node (docs/protocol.md: `status`, `filter`, `clock`,
//! `groups`, `join-group`, `leave-group`, `change-membership`,
//! `set-members`): typed [`Op`]s of `faultline_nodes::protocol` sent over
//! `faultline_nodes::client`'s one connection, a fresh one per request,
//! authenticated first with the run's token when it has one.
//!
//! Guarantees: [`call`] never panics on what a node sends; it tells a
//! refusal (the node answered `ok: false`, with its error code and leader
//! hint: definite, nothing was done) from no answer (unreachable, timeout,
//! bad reply: the request may or may not have been applied), which is what
//! a caller needs to decide whether to retry. [`call_blocking`] is the same
//! for the synchronous cluster code.

use faultline_nodes::client::{call_once, Credentials};
use faultline_nodes::protocol::{ErrorCode, Op, Reply};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why an admin call did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    /// The node answered `ok: false`: nothing was done.
    #[error("{addr} refused {op}: {code}{}", leader.as_ref().map(|l| format!(" (leader {l})")).unwrap_or_default())]
    Refused {
        addr: SocketAddr,
        op: &'static str,
        code: ErrorCode,
        /// `leader` of a `not-leader` or `moved` reply.
        leader: Option<String>,
    },
    /// No usable answer: the request may or may not have taken effect.
    #[error("{addr}: {op}: {reason}")]
    NoAnswer {
        addr: SocketAddr,
        op: &'static str,
        reason: String,
    },
}

impl AdminError {
    /// The node's error code of a refusal.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            AdminError::Refused { code, .. } => Some(*code),
            AdminError::NoAnswer { .. } => None,
        }
    }
}

/// Sends `op` to the node at `addr` (from `bind_ip` when given; with
/// `auth_token`, after authenticating) and returns the reply of an `ok`
/// answer, all within `timeout`.
pub async fn call(
    addr: SocketAddr,
    bind_ip: Option<IpAddr>,
    credentials: &Credentials,
    op: Op,
    timeout: Duration,
) -> Result<Reply, AdminError> {
    let name = op.name();
    let options = credentials.options(bind_ip, timeout);
    let reply = call_once(&addr.to_string(), &options, op, timeout)
        .await
        .map_err(|e| AdminError::NoAnswer {
            addr,
            op: name,
            reason: e.to_string(),
        })?;
    if reply.ok {
        return Ok(reply);
    }
    Err(AdminError::Refused {
        addr,
        op: name,
        code: reply.error.unwrap_or(ErrorCode::Unknown),
        leader: reply.leader().map(str::to_string),
    })
}

/// [`call`] for synchronous callers (the clusters' filter and clock
/// faults): on a thread of its own with its own runtime, so it works from
/// any thread, inside a runtime or not.
pub fn call_blocking(
    addr: SocketAddr,
    credentials: &Credentials,
    op: Op,
    timeout: Duration,
) -> Result<Reply, AdminError> {
    let name = op.name();
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| AdminError::NoAnswer {
                        addr,
                        op: name,
                        reason: format!("starting a runtime: {e}"),
                    })?;
                runtime.block_on(call(addr, None, credentials, op, timeout))
            })
            .join()
            .unwrap_or_else(|_| {
                Err(AdminError::NoAnswer {
                    addr,
                    op: name,
                    reason: "the admin call's thread panicked".into(),
                })
            })
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A node stand-in that answers every line with `reply` (or closes the
    /// connection when `reply` is empty). Shared by the tests of the
    /// harness's node probes.
    pub(crate) async fn fixed_reply_node(reply: String) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let reply = reply.clone();
                tokio::spawn(async move {
                    let (r, mut w) = s.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(_)) = lines.next_line().await {
                        if reply.is_empty() {
                            return;
                        }
                        let _ = w.write_all(format!("{reply}\n").as_bytes()).await;
                    }
                });
            }
        });
        addr
    }

    const T: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn a_refusal_carries_its_code_and_leader_and_silence_is_no_answer() {
        let addr = fixed_reply_node(
            r#"{"id":1,"ok":false,"error":"not-leader","definite":true,"leader":"127.0.0.3:9"}"#
                .into(),
        )
        .await;
        let change = Op::ChangeMembership {
            group: 2,
            voters: vec![1, 2, 4],
        };
        let e = call(addr, None, &Credentials::none(), change, T)
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Some(ErrorCode::NotLeader));
        assert!(matches!(&e, AdminError::Refused { leader: Some(l), .. } if l == "127.0.0.3:9"));
        let mute = fixed_reply_node(String::new()).await;
        let join = Op::JoinGroup {
            group: 1,
            term: None,
        };
        let e = call(mute, None, &Credentials::none(), join, T)
            .await
            .expect_err("closed");
        assert!(matches!(e, AdminError::NoAnswer { .. }), "{e:?}");
    }

    #[test]
    fn the_blocking_call_works_outside_and_inside_a_runtime() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let addr = runtime.block_on(fixed_reply_node(r#"{"id":1,"ok":true}"#.into()));
        let clock = || Op::Clock {
            offset_ms: 5,
            rate: 1.0,
        };
        assert!(
            call_blocking(addr, &Credentials::none(), clock(), T)
                .expect("ok")
                .ok
        );
        let inside =
            runtime.block_on(async { call_blocking(addr, &Credentials::none(), clock(), T) });
        assert!(inside.expect("ok inside a runtime").ok);
        let refuses = runtime.block_on(fixed_reply_node(
            r#"{"id":1,"ok":false,"error":"bad-request","definite":true}"#.into(),
        ));
        let e = call_blocking(refuses, &Credentials::none(), clock(), T).expect_err("refused");
        assert_eq!(e.code(), Some(ErrorCode::BadRequest));
    }
}
