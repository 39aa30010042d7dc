//! The impostor's attempts against the nodes ([`crate::sim::impostor`]):
//! each admitted or refused by the node's own access check
//! ([`connection`]); an admitted one takes effect as the node would let
//! it: an admin op through the node's request path and answered as the
//! node answers it (server/admin.rs), a forged consensus message stepped
//! into the core.

use super::*;
use crate::server::admin::AdminAnswer;
use crate::server::group_status::{GroupStatus, RuntimeReport};
use crate::server::requests as node_requests;
use crate::sim::impostor::{Attempt, AttemptOutcome, ImpostorAttempt};

impl<C: SimCore> World<C> {
    /// One attempt, recorded; the next is scheduled while clients run.
    pub(super) fn impostor_attempt(&mut self) -> Result<(), Violation> {
        let (node, attempt) = self.impostor.next_attempt(&self.pool);
        let outcome = if self.hosts[Self::idx(node)].core.is_none() {
            Ok(AttemptOutcome::NoAnswer)
        } else {
            match &attempt {
                Attempt::Request { credential, op, .. } => {
                    self.impostor_request(node, credential, op)
                }
                Attempt::Peer { presents, claims } => self.impostor_peer(node, *presents, *claims),
            }
        };
        let (outcome, stepped) = match outcome {
            Ok(outcome) => (outcome, Ok(())),
            // The forged message broke the core: the attempt was let in,
            // and the seed fails with what it broke.
            Err(violation) => (
                AttemptOutcome::Accepted(format!("broke the node: {violation}")),
                Err(violation),
            ),
        };
        if self.opts.trace {
            let line = format!(
                "{:>9}µs impostor at {node}: {} asks {}: {outcome:?}",
                self.now_us,
                attempt.credential(),
                attempt.ask()
            );
            self.trace.push(line);
        }
        self.impostor.record(ImpostorAttempt {
            time_us: self.now_us,
            node,
            attempt,
            outcome,
        });
        if self.now_us < self.stop_ops_us {
            let d = self.impostor.next_delay_us();
            self.schedule(d, Ev::Impostor);
        }
        stepped
    }

    /// A request with `credential`: refused, or let in and served as the
    /// node's request path routes it.
    fn impostor_request(
        &mut self,
        node: NodeId,
        credential: &Credential,
        op: &crate::protocol::Op,
    ) -> Result<AttemptOutcome, Violation> {
        if let Err(reason) = connection::admit_request(&self.access, credential, op, &self.pool) {
            return Ok(AttemptOutcome::Refused(reason));
        }
        let host = &mut self.hosts[Self::idx(node)];
        let answer = match node_requests::route(op.clone(), None, &host.applier) {
            node_requests::Request::Status => {
                AdminAnswer::Status(Box::new(self.group_status(node))).reply_line(None, address)
            }
            node_requests::Request::TransferLeader { to } => {
                let answer = self.transfer_leader(node, to);
                let transferred = answer == AdminAnswer::Transferred;
                self.note(18, node.0, to.0, || {
                    format!("impostor's transfer-leader at {node} to {to}: {transferred}")
                });
                self.post_step(node)?;
                answer.reply_line(None, address)
            }
            other => format!("{other:?}"),
        };
        Ok(AttemptOutcome::Accepted(answer))
    }

    /// `transfer-leader` to `to` at the live node `node`, as the node's
    /// group answers it ([`AdminAnswer::transfer_leader`]); the caller
    /// handles the core's Readys after ([`World::post_step`]). The
    /// nemesis's transfers come here too.
    pub(super) fn transfer_leader(&mut self, node: NodeId, to: NodeId) -> AdminAnswer {
        let host = &mut self.hosts[Self::idx(node)];
        let core = host.core.as_mut().expect("a live node");
        AdminAnswer::transfer_leader(core, to, host.leader, node)
    }

    /// The live node `node`'s `status` ([`GroupStatus`]): no WAL, a clock
    /// with no offset at rate 1 (virtual time), the run's planted bugs.
    fn group_status(&self, node: NodeId) -> GroupStatus {
        let host = &self.hosts[Self::idx(node)];
        let core = host.core.as_ref().expect("a live node");
        let stored = host.storage.durable().snapshot.as_ref();
        let runtime = RuntimeReport {
            consensus: C::PROTOCOL,
            stored_snapshot_index: stored.map_or(LogIndex(0), |snapshot| snapshot.meta.index),
            wal_bytes: None,
            clock_offset_ms: 0,
            clock_rate: 1.0,
            bugs: self.opts.bugs.iter().map(|bug| bug.name()).collect(),
        };
        GroupStatus::new(&core.status(), &host.applier, runtime)
    }

    /// Node `presents`'s own peer credential with a `hello` claiming
    /// `claims`: refused, or let in, and then a forged message from
    /// `claims` ([`SimCore::forged_message`]) stepped into the core.
    fn impostor_peer(
        &mut self,
        node: NodeId,
        presents: NodeId,
        claims: NodeId,
    ) -> Result<AttemptOutcome, Violation> {
        let credential = Credential::node(presents);
        if let Err(reason) = connection::admit_peer(&self.access, &credential, claims, &self.pool) {
            return Ok(AttemptOutcome::Refused(reason));
        }
        let core = self.hosts[Self::idx(node)]
            .core
            .as_ref()
            .expect("a live node");
        let Some(payload) = core.forged_message(claims) else {
            return Ok(AttemptOutcome::Accepted(
                "hello accepted (nothing forged for this core's state)".into(),
            ));
        };
        let answer = format!("hello accepted, forged {} stepped", payload.kind());
        self.note(19, node.0, claims.0, || {
            format!(
                "impostor's forged {} from {claims} to {node}",
                payload.summary()
            )
        });
        let message = Message {
            group: GroupId(1),
            from: claims,
            to: node,
            payload,
        };
        // The core may assert on what it was fed (two leaders in a term):
        // that ends the run as a violation, with this attempt recorded.
        let stepped =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.step_message(message)));
        match stepped {
            Ok(result) => result?,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                return Err(Violation {
                    property: "a forged message is harmless",
                    detail: format!("{node} panicked on a forged message from {claims}: {what}"),
                    time_us: self.now_us,
                });
            }
        }
        Ok(AttemptOutcome::Accepted(answer))
    }
}

/// A simulated node's name for clients: its id (the simulator has no
/// addresses).
fn address(node: NodeId) -> Option<String> {
    Some(node.to_string())
}
