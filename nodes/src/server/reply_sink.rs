//! Where the answer to one request goes: its connection's writer.
//!
//! A connection may owe at most [`MAX_OWED_REPLIES`] replies at a time.
//! The reader takes a permit before it reads each request line; the permit
//! travels with the request ([`ReplySink`]) and with its reply
//! ([`OwedReply`]) and is given back only once the writer has written the
//! reply to the socket. A client that sends requests and never reads the
//! replies therefore stops being read after that many: TCP pushes back on
//! it, and the node's memory for it stays bounded (issue 21, finding 4)
//! instead of queueing replies without limit.

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OwnedSemaphorePermit;

use super::audit::PendingAudit;
use crate::protocol::Reply;

/// Replies a connection may owe (requests read, replies not yet written)
/// before the node stops reading it.
pub const MAX_OWED_REPLIES: usize = 64;

/// A reply on its way to the connection's writer, with the permit of the
/// request it answers (None for a reply no request is owed, e.g. a refusal
/// before the connection closes).
#[derive(Debug)]
pub struct OwedReply {
    pub reply: Reply,
    permit: Option<OwnedSemaphorePermit>,
}

impl OwedReply {
    /// The reply is written: give the request's permit back.
    pub fn written(self) {
        drop(self.permit);
    }
}

/// Where the one reply to a request goes. Sending consumes it; dropping it
/// unanswered gives the permit back too, so a connection never loses one.
#[derive(Debug)]
pub struct ReplySink {
    tx: UnboundedSender<OwedReply>,
    permit: Option<OwnedSemaphorePermit>,
    /// An admin op's audit entry, recorded with the reply's outcome. Boxed:
    /// every request's sink is moved through the core thread (the event
    /// channel, the read batches and queues, the pending writes), and the
    /// entry inline made each sink over 200 bytes where data ops (which
    /// never have one) need 32.
    audit: Option<Box<PendingAudit>>,
}

impl ReplySink {
    /// A sink not counted against any budget (tests, tools).
    pub fn new(tx: UnboundedSender<OwedReply>) -> ReplySink {
        ReplySink {
            tx,
            permit: None,
            audit: None,
        }
    }

    /// The sink of a request read under `permit`.
    pub fn owed(tx: UnboundedSender<OwedReply>, permit: OwnedSemaphorePermit) -> ReplySink {
        ReplySink {
            tx,
            permit: Some(permit),
            audit: None,
        }
    }

    /// The same sink, recording `audit` with the reply's outcome (or as
    /// unanswered if the sink is dropped).
    pub fn audited(mut self, audit: PendingAudit) -> ReplySink {
        self.audit = Some(Box::new(audit));
        self
    }

    /// Hand the reply to the writer; Err if the connection is gone.
    pub fn send(mut self, reply: Reply) -> Result<(), Reply> {
        if let Some(audit) = self.audit.take() {
            audit.finish(&reply);
        }
        let owed = OwedReply {
            reply,
            permit: self.permit.take(),
        };
        self.tx.send(owed).map_err(|e| e.0.reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::sync::Semaphore;

    /// A regression test: an inline audit entry made every request's sink
    /// (and so every ClientOp, PendingRead and PendingWrite) over 200
    /// bytes, copied at each move on the core thread.
    #[test]
    fn a_reply_sink_stays_four_words_so_requests_move_cheaply() {
        assert!(
            std::mem::size_of::<ReplySink>() <= 4 * std::mem::size_of::<usize>(),
            "ReplySink is {} bytes",
            std::mem::size_of::<ReplySink>()
        );
    }

    #[test]
    fn a_permit_comes_back_only_once_the_reply_is_written_or_never_sent() {
        let budget = Arc::new(Semaphore::new(2));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let permit = |b: &Arc<Semaphore>| b.clone().try_acquire_owned().expect("a permit");
        let answered = ReplySink::owed(tx.clone(), permit(&budget));
        let dropped = ReplySink::owed(tx.clone(), permit(&budget));
        assert_eq!(budget.available_permits(), 0);
        answered
            .send(Reply::ok(Some(1)))
            .expect("the writer is there");
        assert_eq!(budget.available_permits(), 0, "sent is not written");
        drop(dropped);
        assert_eq!(
            budget.available_permits(),
            1,
            "an unanswered request owes nothing"
        );
        let owed = rx.try_recv().expect("queued");
        assert_eq!(owed.reply.id, Some(1));
        owed.written();
        assert_eq!(budget.available_permits(), 2);
    }
}
