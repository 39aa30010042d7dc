//! A run's auth token (`faultline test --auth`): made fresh for each run,
//! kept in one file of mode 0600 in the run's directory (a dot file, which
//! `faultline serve` neither lists nor serves), handed to every node with
//! `--auth-token-file` and sent first on every connection the harness
//! opens (workers, probes, admin requests). In remote mode each host gets
//! a copy of the file, mode 0600, in the run's folder there
//! (`remote::Layout::auth_token`, sent by SFTP: no command line carries
//! the token), removed with that folder.
//!
//! Guarantees: the token itself is in that file and in memory only; this
//! type's `Debug` shows the file, never the token, so no log, test.json or
//! report can carry it by printing a system. [`probe_without_token`] asks
//! every node something without the token, so a run shows (the `auth`
//! nemesis event, and the `auth` check) that the nodes refuse it.

use crate::cluster::NodeInfo;
use crate::system::AuthProbe;
use anyhow::Context;
use faultline_nodes::client::{call_once, Credentials};
use faultline_nodes::protocol::{ErrorCode, Op};
use faultline_nodes::tls::ClientTls;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Random bytes in a token (hex-encoded: 64 characters).
const TOKEN_BYTES: usize = 32;
/// How long a node may take to answer the probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// A run's token and the file that holds it.
#[derive(Clone)]
pub struct AuthToken {
    token: String,
    file: PathBuf,
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthToken")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl AuthToken {
    /// A fresh random token written to `file` (created, never overwritten,
    /// mode 0600); the file's path is made absolute, as nodes run elsewhere.
    pub fn create(file: &Path) -> anyhow::Result<AuthToken> {
        let bytes: [u8; TOKEN_BYTES] = rand::random();
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(file)
            .with_context(|| format!("creating the auth token file {}", file.display()))?;
        out.write_all(format!("{token}\n").as_bytes())
            .and_then(|()| out.sync_all())
            .with_context(|| format!("writing the auth token file {}", file.display()))?;
        let file =
            std::fs::canonicalize(file).with_context(|| format!("resolving {}", file.display()))?;
        Ok(AuthToken { token, file })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The file the nodes read it from (`--auth-token-file`).
    pub fn file(&self) -> &Path {
        &self.file
    }
}

/// Sends every node a `read` without the token (inside TLS when the run
/// has it: `tls`), concurrently, and sorts the nodes by what they
/// answered: `unauthorized` (refused, as they must), anything else
/// (served), or nothing (no answer, and why).
pub async fn probe_without_token(
    nodes: &[NodeInfo],
    bind_ip: Option<IpAddr>,
    tls: Option<ClientTls>,
) -> AuthProbe {
    let credentials = Credentials {
        auth_token: None,
        tls,
    };
    let asks = nodes.iter().map(|n| {
        let (name, addr) = (n.name.clone(), n.client_addr);
        let options = credentials.options(bind_ip, PROBE_TIMEOUT);
        async move {
            let read = Op::Read {
                key: "faultline-auth-probe".into(),
            };
            let reply = call_once(&addr.to_string(), &options, read, PROBE_TIMEOUT).await;
            (name, reply)
        }
    });
    let mut probe = AuthProbe::default();
    for (name, reply) in crate::run::probe::futures_join_all(asks).await {
        match reply {
            Ok(r) if !r.ok && r.error == Some(ErrorCode::Unauthorized) => probe.refused.push(name),
            Ok(r) => {
                let answer = match r.error {
                    Some(e) => format!("error {e}"),
                    None => "ok".to_string(),
                };
                probe.served.insert(name, answer);
            }
            Err(why) => {
                probe.no_answer.insert(name, why.to_string());
            }
        }
    }
    probe
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_token_is_fresh_private_and_never_debug_printed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = AuthToken::create(&dir.path().join(".a")).expect("created");
        let b = AuthToken::create(&dir.path().join(".b")).expect("created");
        assert_ne!(a.token(), b.token(), "each run gets its own token");
        assert_eq!(a.token().len(), 2 * TOKEN_BYTES);
        let text = std::fs::read_to_string(a.file()).expect("readable");
        assert_eq!(text, format!("{}\n", a.token()));
        let mode = std::fs::metadata(a.file())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads it");
        assert!(a.file().is_absolute());
        let shown = format!("{a:?}");
        assert!(!shown.contains(a.token()), "{shown}");
        assert!(
            AuthToken::create(&dir.path().join(".a")).is_err(),
            "an existing file is never overwritten"
        );
    }

    /// A node stand-in that answers every line with `reply` (or closes).
    async fn node(id: u32, reply: &str) -> NodeInfo {
        let addr = crate::cluster::admin::tests::fixed_reply_node(reply.to_string()).await;
        NodeInfo::one_port(crate::cluster::NodeId(id), addr)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_probe_tells_refused_from_served_from_silent() {
        let refuses = node(
            1,
            r#"{"id":1,"ok":false,"error":"unauthorized","definite":true}"#,
        )
        .await;
        let serves = node(2, r#"{"id":1,"ok":true,"value":null}"#).await;
        let redirects = node(3, r#"{"id":1,"ok":false,"error":"not-leader"}"#).await;
        let closes = node(4, "").await;
        let probe = probe_without_token(&[refuses, serves, redirects, closes], None, None).await;
        assert_eq!(probe.refused, vec!["n1".to_string()]);
        assert_eq!(
            probe.served.get("n2").map(String::as_str),
            Some("ok"),
            "{probe:?}"
        );
        assert_eq!(
            probe.served.get("n3").map(String::as_str),
            Some("error not-leader"),
            "a redirect is an answer: the node read the request"
        );
        assert!(probe.no_answer.contains_key("n4"), "{probe:?}");
    }
}
