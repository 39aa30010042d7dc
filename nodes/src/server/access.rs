//! Who may do what on a node's port: the one place a connection's roles
//! are decided from its credentials, and the one check every request and
//! every `hello` passes (docs/protocol.md, "Roles").
//!
//! Three roles: `client` (data operations), `admin` (status, groups,
//! membership, transfer, filter and clock controls, and data operations
//! too, as an operator may need to read or repair data) and `peer`
//! (`hello` and consensus messages only, bound to one node id when the
//! credential names one).
//!
//! Credentials:
//! - a token (`auth`, the first line) when the node has tokens:
//!   `--auth-token-file`'s grants every role (today's `--auth` runs),
//!   `--client-token-file`'s, `--admin-token-file`'s and
//!   `--peer-token-file`'s grant one role each (the peer role for any id);
//! - a client certificate when the node runs TLS: a role certificate
//!   (`<role>.role.faultline.invalid`) grants its role, a node certificate
//!   (`node-<id>.faultline.invalid`) the peer role bound to that id, and no
//!   certificate grants nothing.
//!
//! A node that asks for both gives a connection the roles both grant (a
//! client certificate with the shared token is a client). A node with
//! neither grants every role, as before roles existed.
//!
//! Guarantees: no token is kept in anything `Debug` prints; a refusal
//! carries a reason that names the role and the op, never a credential.

use std::fmt;

use rustls::pki_types::CertificateDer;

use crate::bug::Bug;
use crate::consensus::NodeId;
use crate::protocol::Op;
use crate::tls::{certificate_names_node, role_name, Role as CertRole};

/// The node's tokens: one for every role, and one per role. Never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// `--auth-token-file`: every role.
    pub all: Option<String>,
    /// `--client-token-file`.
    pub client: Option<String>,
    /// `--admin-token-file`.
    pub admin: Option<String>,
    /// `--peer-token-file`.
    pub peer: Option<String>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Which tokens are set, never what they are.
        f.debug_struct("Tokens")
            .field("all", &self.all.is_some())
            .field("client", &self.client.is_some())
            .field("admin", &self.admin.is_some())
            .field("peer", &self.peer.is_some())
            .finish()
    }
}

impl Tokens {
    /// One token for every role (`--auth-token-file` alone).
    pub fn shared(token: impl Into<String>) -> Tokens {
        Tokens {
            all: Some(token.into()),
            ..Tokens::default()
        }
    }

    /// Whether the node requires a token (`auth`) on every connection.
    pub fn any(&self) -> bool {
        self.all.is_some() || self.client.is_some() || self.admin.is_some() || self.peer.is_some()
    }

    /// The token this node sends to the peers it dials.
    pub fn for_peers(&self) -> Option<&str> {
        self.peer.as_deref().or(self.all.as_deref())
    }

    /// The roles `given` grants; `None` when it is none of the node's
    /// tokens. Each token is compared in full (no early exit).
    pub fn roles(&self, given: &str) -> Option<Roles> {
        let mut roles = Roles::NONE;
        let mut matched = false;
        for (token, grants) in [
            (&self.all, Roles::ALL),
            (&self.client, Roles::CLIENT),
            (&self.admin, Roles::ADMIN),
            (&self.peer, Roles::ANY_PEER),
        ] {
            if let Some(token) = token {
                if token_matches(given, token) {
                    roles = roles.union(grants);
                    matched = true;
                }
            }
        }
        matched.then_some(roles)
    }
}

/// Compare without an early exit, so timing does not leak the token.
pub fn token_matches(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// Which node ids a peer credential may claim in its `hello`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// Not a peer.
    No,
    /// Any id (a token, or a node without credentials).
    AnyNode,
    /// Only this id (a node certificate).
    Node(NodeId),
}

/// What a connection may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub client: bool,
    pub admin: bool,
    pub peer: PeerRole,
}

impl Roles {
    pub const NONE: Roles = Roles {
        client: false,
        admin: false,
        peer: PeerRole::No,
    };
    pub const ALL: Roles = Roles {
        client: true,
        admin: true,
        peer: PeerRole::AnyNode,
    };
    pub const CLIENT: Roles = Roles {
        client: true,
        ..Roles::NONE
    };
    pub const ADMIN: Roles = Roles {
        admin: true,
        ..Roles::NONE
    };
    pub const ANY_PEER: Roles = Roles {
        peer: PeerRole::AnyNode,
        ..Roles::NONE
    };

    /// The peer role for node `id` only.
    pub fn peer_of(id: NodeId) -> Roles {
        Roles {
            peer: PeerRole::Node(id),
            ..Roles::NONE
        }
    }

    /// Every role either grants.
    pub fn union(self, other: Roles) -> Roles {
        let peer = match (self.peer, other.peer) {
            (PeerRole::AnyNode, _) | (_, PeerRole::AnyNode) => PeerRole::AnyNode,
            (PeerRole::No, p) | (p, PeerRole::No) => p,
            // Two node certificates cannot come with one connection; a
            // certificate naming two nodes binds to neither for sure.
            (PeerRole::Node(a), PeerRole::Node(b)) if a == b => PeerRole::Node(a),
            (PeerRole::Node(_), PeerRole::Node(_)) => PeerRole::No,
        };
        Roles {
            client: self.client || other.client,
            admin: self.admin || other.admin,
            peer,
        }
    }

    /// The roles both grant.
    pub fn intersect(self, other: Roles) -> Roles {
        let peer = match (self.peer, other.peer) {
            (PeerRole::No, _) | (_, PeerRole::No) => PeerRole::No,
            (PeerRole::AnyNode, p) | (p, PeerRole::AnyNode) => p,
            (PeerRole::Node(a), PeerRole::Node(b)) if a == b => PeerRole::Node(a),
            (PeerRole::Node(_), PeerRole::Node(_)) => PeerRole::No,
        };
        Roles {
            client: self.client && other.client,
            admin: self.admin && other.admin,
            peer,
        }
    }

    /// For logs and the audit log: `any`, `none`, or the roles joined by
    /// `+` (`client`, `admin`, `peer`, `peer-<id>`).
    pub fn label(self) -> String {
        if self == Roles::ALL {
            return "any".into();
        }
        let mut parts = Vec::new();
        if self.client {
            parts.push("client".to_string());
        }
        if self.admin {
            parts.push("admin".to_string());
        }
        match self.peer {
            PeerRole::No => {}
            PeerRole::AnyNode => parts.push("peer".into()),
            PeerRole::Node(id) => parts.push(format!("peer-{}", id.0)),
        }
        if parts.is_empty() {
            return "none".into();
        }
        parts.join("+")
    }
}

/// What kind of traffic an op is: who may send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// `auth` and `hello`: they set up a connection.
    Session,
    /// Reads, writes, transactions, locks: clients (and admins).
    Data,
    /// Status and the controls: admins.
    Admin,
}

impl OpClass {
    /// The class of every op (a new op fails to compile until classed).
    pub fn of(op: &Op) -> OpClass {
        match op {
            Op::Auth { .. } | Op::Hello { .. } => OpClass::Session,
            Op::Read { .. }
            | Op::Write { .. }
            | Op::Cas { .. }
            | Op::Append { .. }
            | Op::Add { .. }
            | Op::Txn { .. }
            | Op::Acquire { .. }
            | Op::Renew { .. }
            | Op::Release { .. }
            | Op::FencedWrite { .. } => OpClass::Data,
            Op::Status
            | Op::Filter { .. }
            | Op::Clock { .. }
            | Op::TransferLeader { .. }
            | Op::Groups
            | Op::JoinGroup { .. }
            | Op::LeaveGroup { .. }
            | Op::ChangeMembership { .. }
            | Op::SetMembers { .. } => OpClass::Admin,
        }
    }
}

/// The node's access policy: its tokens, whether it runs TLS, and the
/// planted access bugs.
#[derive(Clone, Debug)]
pub struct Access {
    tokens: Tokens,
    tls: bool,
    client_admin_bug: bool,
    peer_id_unchecked_bug: bool,
}

impl Access {
    pub fn new(tokens: Tokens, tls: bool, bugs: &[Bug]) -> Access {
        Access {
            tokens,
            tls,
            client_admin_bug: bugs.contains(&Bug::ClientAdmin),
            peer_id_unchecked_bug: bugs.contains(&Bug::PeerIdUnchecked),
        }
    }

    /// Whether every connection must open with `auth`.
    pub fn requires_token(&self) -> bool {
        self.tokens.any()
    }

    /// The roles a given `auth` token grants (`None`: a wrong token).
    pub fn token_roles(&self, given: &str) -> Option<Roles> {
        self.tokens.roles(given)
    }

    /// The roles the TLS side grants: every role without TLS; with it,
    /// what the client certificate (verified against the CA in the
    /// handshake) names among the roles and the node's `peers`.
    pub fn certificate_roles(
        &self,
        certificate: Option<&CertificateDer<'_>>,
        peers: impl IntoIterator<Item = NodeId>,
    ) -> Roles {
        self.named_roles(certificate, peers)
    }

    /// [`Access::certificate_roles`] over what a certificate names, without
    /// the certificate's bytes: the decision the node (over a verified
    /// X.509 certificate) and the simulator (over a simulated one) share.
    pub fn named_roles<N: CertificateNames + ?Sized>(
        &self,
        certificate: Option<&N>,
        peers: impl IntoIterator<Item = NodeId>,
    ) -> Roles {
        if !self.tls {
            return Roles::ALL;
        }
        let Some(cert) = certificate else {
            return Roles::NONE;
        };
        let mut roles = Roles::NONE;
        for (role, grants) in [
            (CertRole::Client, Roles::CLIENT),
            (CertRole::Admin, Roles::ADMIN),
        ] {
            if cert.names_role(role) {
                roles = roles.union(grants);
            }
        }
        for id in peers {
            if cert.names_node(id) {
                roles = roles.union(Roles::peer_of(id));
            }
        }
        roles
    }

    /// A connection's roles from both credentials, as the node's
    /// connection decides them: the certificate's roles, cut to what the
    /// `auth` token grants when the node requires one. `None`: refused
    /// before any request (no token or a wrong one).
    pub fn session_roles(&self, certificate_roles: Roles, token: Option<&str>) -> Option<Roles> {
        if !self.requires_token() {
            return Some(certificate_roles);
        }
        let token_roles = self.token_roles(token?)?;
        Some(certificate_roles.intersect(token_roles))
    }

    /// Whether `roles` may send `op` (a client or admin request); the
    /// error is the refusal's reason.
    pub fn check_op(&self, roles: Roles, op: &Op) -> Result<(), String> {
        let allowed = match OpClass::of(op) {
            // `auth` is checked against the tokens; `hello` by check_hello.
            OpClass::Session => true,
            OpClass::Data => roles.client || roles.admin,
            OpClass::Admin => roles.admin || (self.client_admin_bug && roles.client),
        };
        if allowed {
            return Ok(());
        }
        let needs = match OpClass::of(op) {
            OpClass::Data => "a client or admin credential",
            _ => "an admin credential",
        };
        Err(format!(
            "`{}` needs {needs}; this connection's role is {}",
            op.name(),
            roles.label()
        ))
    }

    /// Whether `roles` may open a peer session claiming `node`.
    pub fn check_hello(&self, roles: Roles, node: NodeId) -> Result<(), &'static str> {
        match roles.peer {
            PeerRole::AnyNode => Ok(()),
            PeerRole::Node(id) if id == node => Ok(()),
            PeerRole::Node(_) if self.peer_id_unchecked_bug => Ok(()),
            PeerRole::Node(_) => {
                Err("the peer's certificate does not name the node its hello claims")
            }
            PeerRole::No if self.tls => Err("a peer must present its node certificate"),
            PeerRole::No => Err("this connection's token is not a peer's"),
        }
    }
}

/// What a client certificate names, as far as access cares: the role
/// names and the node ids. The node reads them from a verified X.509
/// certificate; the simulator from its simulated credentials.
pub trait CertificateNames {
    /// Whether it names `role` (`<role>.role.faultline.invalid`).
    fn names_role(&self, role: CertRole) -> bool;
    /// Whether it names node `id` (`node-<id>.faultline.invalid`).
    fn names_node(&self, id: NodeId) -> bool;
}

impl CertificateNames for CertificateDer<'_> {
    fn names_role(&self, role: CertRole) -> bool {
        certificate_names(self, &role_name(role))
    }

    fn names_node(&self, id: NodeId) -> bool {
        certificate_names_node(self, id)
    }
}

/// Whether `cert` carries the DNS name `name`.
fn certificate_names(cert: &CertificateDer<'_>, name: &str) -> bool {
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(server_name) = rustls::pki_types::ServerName::try_from(name) else {
        return false;
    };
    end_entity
        .verify_is_valid_for_subject_name(&server_name)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::CertAuthority;

    fn der(pem: &str) -> CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
    }

    fn tokens() -> Tokens {
        Tokens {
            all: Some("all-t".into()),
            client: Some("client-t".into()),
            admin: Some("admin-t".into()),
            peer: Some("peer-t".into()),
        }
    }

    fn read() -> Op {
        Op::Read { key: "k".into() }
    }

    fn filter() -> Op {
        Op::Filter {
            drop: vec![2],
            delay_ms: 0,
            loss: 0.0,
        }
    }

    #[test]
    fn token_comparison_is_exact() {
        assert!(token_matches("s3cret", "s3cret"));
        assert!(!token_matches("s3cre", "s3cret"));
        assert!(!token_matches("s3cret!", "s3cret"));
        assert!(!token_matches("", "s3cret"));
        assert!(!token_matches("S3cret", "s3cret"));
    }

    #[test]
    fn each_token_grants_its_role_and_a_wrong_one_none() {
        let t = tokens();
        assert_eq!(t.roles("all-t"), Some(Roles::ALL));
        assert_eq!(t.roles("client-t"), Some(Roles::CLIENT));
        assert_eq!(t.roles("admin-t"), Some(Roles::ADMIN));
        assert_eq!(t.roles("peer-t"), Some(Roles::ANY_PEER));
        assert_eq!(t.roles("client-"), None);
        assert_eq!(t.roles(""), None);
        assert_eq!(t.for_peers(), Some("peer-t"));
        assert_eq!(Tokens::shared("s").for_peers(), Some("s"));
        assert!(!Tokens::default().any());
        let shown = format!("{t:?}");
        for secret in ["all-t", "client-t", "admin-t", "peer-t"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn a_client_may_not_call_admin_ops_nor_a_peer_either() {
        let access = Access::new(tokens(), false, &[]);
        assert!(access.check_op(Roles::CLIENT, &read()).is_ok());
        let e = access
            .check_op(Roles::CLIENT, &filter())
            .expect_err("admin op");
        assert!(e.contains("`filter` needs an admin credential"), "{e}");
        assert!(e.contains("role is client"), "{e}");
        assert!(access.check_op(Roles::CLIENT, &Op::Status).is_err());
        assert!(access.check_op(Roles::ADMIN, &filter()).is_ok());
        assert!(access.check_op(Roles::ADMIN, &Op::Status).is_ok());
        // Admins may do data ops too (documented).
        assert!(access.check_op(Roles::ADMIN, &read()).is_ok());
        for op in [read(), filter(), Op::Status] {
            assert!(access.check_op(Roles::ANY_PEER, &op).is_err(), "{op:?}");
            assert!(access.check_op(Roles::NONE, &op).is_err(), "{op:?}");
            assert!(access.check_op(Roles::ALL, &op).is_ok(), "{op:?}");
        }
    }

    #[test]
    fn only_a_peer_credential_opens_a_peer_session_and_only_for_its_id() {
        let access = Access::new(tokens(), true, &[]);
        assert!(access.check_hello(Roles::ANY_PEER, NodeId(3)).is_ok());
        assert!(access
            .check_hello(Roles::peer_of(NodeId(2)), NodeId(2))
            .is_ok());
        let e = access
            .check_hello(Roles::peer_of(NodeId(2)), NodeId(3))
            .expect_err("claims another id");
        assert!(e.contains("does not name"), "{e}");
        for roles in [Roles::CLIENT, Roles::ADMIN, Roles::NONE] {
            assert!(access.check_hello(roles, NodeId(2)).is_err(), "{roles:?}");
        }
    }

    #[test]
    fn the_planted_access_bugs_lift_exactly_their_refusal() {
        let buggy = Access::new(Tokens::default(), true, &[Bug::ClientAdmin]);
        assert!(buggy.check_op(Roles::CLIENT, &filter()).is_ok());
        assert!(buggy.check_op(Roles::ANY_PEER, &filter()).is_err());
        assert!(buggy
            .check_hello(Roles::peer_of(NodeId(2)), NodeId(3))
            .is_err());
        let buggy = Access::new(Tokens::default(), true, &[Bug::PeerIdUnchecked]);
        assert!(buggy
            .check_hello(Roles::peer_of(NodeId(2)), NodeId(3))
            .is_ok());
        assert!(buggy.check_hello(Roles::CLIENT, NodeId(3)).is_err());
        assert!(buggy.check_op(Roles::CLIENT, &filter()).is_err());
    }

    #[test]
    fn roles_combine_as_both_credentials_grant() {
        let node2 = Roles::peer_of(NodeId(2));
        assert_eq!(Roles::ALL.intersect(Roles::CLIENT), Roles::CLIENT);
        assert_eq!(Roles::ALL.intersect(node2), node2);
        assert_eq!(Roles::ANY_PEER.intersect(node2), node2);
        assert_eq!(Roles::CLIENT.intersect(node2), Roles::NONE);
        assert_eq!(node2.intersect(Roles::peer_of(NodeId(3))), Roles::NONE);
        assert_eq!(Roles::CLIENT.union(Roles::ADMIN).label(), "client+admin");
        assert_eq!(node2.label(), "peer-2");
        assert_eq!(Roles::ALL.label(), "any");
        assert_eq!(Roles::NONE.label(), "none");
    }

    #[test]
    fn certificates_grant_the_role_or_the_node_they_name() {
        let ca = CertAuthority::generate().expect("ca");
        let access = Access::new(Tokens::default(), true, &[]);
        let peers = [NodeId(1), NodeId(2), NodeId(3)];
        let client = der(&ca.issue_role(CertRole::Client).expect("issue").cert_pem);
        let admin = der(&ca.issue_role(CertRole::Admin).expect("issue").cert_pem);
        let ip: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
        let node2 = der(&ca.issue_node(NodeId(2), &[ip]).expect("issue").cert_pem);
        assert_eq!(
            access.certificate_roles(Some(&client), peers),
            Roles::CLIENT
        );
        assert_eq!(access.certificate_roles(Some(&admin), peers), Roles::ADMIN);
        assert_eq!(
            access.certificate_roles(Some(&node2), peers),
            Roles::peer_of(NodeId(2))
        );
        assert_eq!(access.certificate_roles(None, peers), Roles::NONE);
        // Node 2's certificate on a node whose peers are 1 and 3: nothing.
        assert_eq!(
            access.certificate_roles(Some(&node2), [NodeId(1), NodeId(3)]),
            Roles::NONE
        );
        let plain = Access::new(Tokens::default(), false, &[]);
        assert_eq!(plain.certificate_roles(None, peers), Roles::ALL);
    }
}
