//! The simulator's connection layer: every message and request that
//! crosses a connection carries its sender's credential, and the receiving
//! node decides through the node's own access check
//! ([`crate::server::access`]), exactly as a node's connection does (the
//! certificate's roles, cut to the token's, then `check_hello` for a peer
//! or `check_op` for a request). The planted access bugs act there.
//!
//! The simulated nodes run as `--tls` with one token per role
//! (`--client-token-file`, `--admin-token-file`, `--peer-token-file`): a
//! node presents its node certificate and the peer token, a client the
//! client role's certificate and the client token. Certificates are
//! simulated ([`SimCertificate`] names what a verified certificate would);
//! the decision over what they name is the node's.
//!
//! Guarantees: an honest sender is never refused (the world fails the run
//! if one is); a check draws no random number, so it leaves a seed's
//! trace as it was.

use crate::bug::Bug;
use crate::consensus::NodeId;
use crate::protocol::Op;
use crate::server::access::{Access, CertificateNames, Roles, Tokens};
use crate::tls::Role as CertRole;

/// The simulated nodes' client token.
pub const CLIENT_TOKEN: &str = "sim-client-token";
/// The simulated nodes' admin token.
pub const ADMIN_TOKEN: &str = "sim-admin-token";
/// The simulated nodes' peer token.
pub const PEER_TOKEN: &str = "sim-peer-token";
/// A token that is none of the nodes'.
pub const WRONG_TOKEN: &str = "sim-wrong-token";

/// A simulated client certificate, signed by the run's CA: what a verified
/// one names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimCertificate {
    /// A role certificate (`<role>.role.faultline.invalid`).
    Role(CertRole),
    /// A node certificate (`node-<id>.faultline.invalid`).
    Node(NodeId),
}

impl CertificateNames for SimCertificate {
    fn names_role(&self, role: CertRole) -> bool {
        *self == SimCertificate::Role(role)
    }

    fn names_node(&self, id: NodeId) -> bool {
        *self == SimCertificate::Node(id)
    }
}

/// What a sender presents on a connection: a certificate in the TLS
/// handshake and a token on the `auth` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Credential {
    pub certificate: Option<SimCertificate>,
    pub token: Option<&'static str>,
}

impl Credential {
    /// Node `id`'s own: its node certificate and the peer token.
    pub fn node(id: NodeId) -> Credential {
        Credential {
            certificate: Some(SimCertificate::Node(id)),
            token: Some(PEER_TOKEN),
        }
    }

    /// A worker's: the client role's certificate and the client token.
    pub fn client() -> Credential {
        Credential {
            certificate: Some(SimCertificate::Role(CertRole::Client)),
            token: Some(CLIENT_TOKEN),
        }
    }

    /// No certificate, no token.
    pub fn none() -> Credential {
        Credential {
            certificate: None,
            token: None,
        }
    }

    /// The client role's certificate with a token that is none of the
    /// nodes'.
    pub fn wrong_token() -> Credential {
        Credential {
            token: Some(WRONG_TOKEN),
            ..Credential::client()
        }
    }
}

/// The simulated nodes' access policy: TLS, a token per role, and the
/// run's planted bugs.
pub fn sim_access(bugs: &[Bug]) -> Access {
    let tokens = Tokens {
        all: None,
        client: Some(CLIENT_TOKEN.into()),
        admin: Some(ADMIN_TOKEN.into()),
        peer: Some(PEER_TOKEN.into()),
    };
    Access::new(tokens, true, bugs)
}

/// The roles of a connection presenting `credential` to a node whose peers
/// are `peers` ([`Access::named_roles`], [`Access::session_roles`]).
fn session(
    access: &Access,
    credential: &Credential,
    peers: &[NodeId],
) -> Result<Roles, &'static str> {
    let certificate_roles =
        access.named_roles(credential.certificate.as_ref(), peers.iter().copied());
    access
        .session_roles(certificate_roles, credential.token)
        .ok_or("no token, or not one of the node's tokens")
}

/// Whether a node lets a connection presenting `credential` open a peer
/// session claiming node `claims` ([`Access::check_hello`]); the error is
/// the refusal's reason.
pub fn admit_peer(
    access: &Access,
    credential: &Credential,
    claims: NodeId,
    peers: &[NodeId],
) -> Result<(), String> {
    let roles = session(access, credential, peers)?;
    access
        .check_hello(roles, claims)
        .map_err(|reason| reason.to_string())
}

/// Whether a node lets a connection presenting `credential` send `op`
/// ([`Access::check_op`]); the error is the refusal's reason.
pub fn admit_request(
    access: &Access,
    credential: &Credential,
    op: &Op,
    peers: &[NodeId],
) -> Result<(), String> {
    let roles = session(access, credential, peers)?;
    access.check_op(roles, op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> Vec<NodeId> {
        vec![NodeId(1), NodeId(2), NodeId(3)]
    }

    #[test]
    fn honest_senders_are_let_in_and_impostors_refused() {
        let access = sim_access(&[]);
        let peers = peers();
        assert!(admit_peer(&access, &Credential::node(NodeId(2)), NodeId(2), &peers).is_ok());
        let read = Op::Read { key: "r0".into() };
        assert!(admit_request(&access, &Credential::client(), &read, &peers).is_ok());
        for credential in [Credential::none(), Credential::wrong_token()] {
            assert!(admit_request(&access, &credential, &read, &peers).is_err());
            assert!(admit_peer(&access, &credential, NodeId(2), &peers).is_err());
        }
        let refused = admit_request(&access, &Credential::client(), &Op::Status, &peers)
            .expect_err("a client asks an admin op");
        assert!(
            refused.contains("`status` needs an admin credential"),
            "{refused}"
        );
        assert!(admit_peer(&access, &Credential::node(NodeId(2)), NodeId(3), &peers).is_err());
        assert!(admit_peer(&access, &Credential::client(), NodeId(2), &peers).is_err());
    }

    #[test]
    fn the_planted_access_bugs_let_their_impostor_in() {
        let peers = peers();
        let client_admin = sim_access(&[Bug::ClientAdmin]);
        assert!(admit_request(&client_admin, &Credential::client(), &Op::Status, &peers).is_ok());
        assert!(admit_peer(
            &client_admin,
            &Credential::node(NodeId(2)),
            NodeId(3),
            &peers
        )
        .is_err());
        let peer_id = sim_access(&[Bug::PeerIdUnchecked]);
        assert!(admit_peer(&peer_id, &Credential::node(NodeId(2)), NodeId(3), &peers).is_ok());
        assert!(admit_request(&peer_id, &Credential::client(), &Op::Status, &peers).is_err());
    }
}
