//! The peer sender over a real socket, in a runtime shaped like the node's
//! (two workers; messages queued from a thread outside the runtime, as the
//! core thread does), under the latency fault's message-filter delay.

use super::*;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::mpsc as std_mpsc;

use crate::consensus::{GroupId, Payload, Term};
use crate::raft::message::RaftMessage;

/// How often the test's "core" queues a message: far more often than the
/// delay, as a Paxos node's replies to a leader's heartbeats and
/// accepts are.
const STREAM_INTERVAL: Duration = Duration::from_millis(10);

/// A delay like the latency fault's (116 ms in the run that found the
/// stall), longer so that a loaded runner descheduling the test's stream
/// for a moment does not open the gap that let the old sender write.
const DELAY_MS: u64 = 250;

/// How long a message may take to reach the peer before the test calls the
/// link stalled: generous for a loaded 2-core machine; the stall it catches
/// lasted minutes (until 1 MiB of messages had piled up in the batch).
const STALLED_AFTER: Duration = Duration::from_secs(5);

/// Message number `n` from n1 to n2 (the number rides in the term).
fn numbered(n: u64) -> Message {
    Message {
        group: GroupId(0),
        from: NodeId(1),
        to: NodeId(2),
        payload: Payload::Raft(RaftMessage::TimeoutNow { term: Term(n) }),
    }
}

/// Node n1's transport to a peer n2 listening on loopback, in a runtime
/// like the node's; the peer reports the number of each message it reads,
/// with when it read it.
struct Link {
    _runtime: tokio::runtime::Runtime,
    transport: Transport,
    filter: Filter,
    arrived: std_mpsc::Receiver<(u64, std::time::Instant)>,
}

impl Link {
    fn open() -> Link {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let (arrived_tx, arrived) = std_mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept the sender");
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                // The hello line is a request, not a message: skipped.
                if let Ok(Message {
                    payload: Payload::Raft(RaftMessage::TimeoutNow { term }),
                    ..
                }) = decode_message(line.as_bytes())
                {
                    if arrived_tx
                        .send((term.0, std::time::Instant::now()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        let filter = Filter::default();
        let transport = {
            let _guard = runtime.enter();
            Transport::start(
                NodeId(1),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                [(NodeId(2), addr)].into_iter().collect(),
                None,
                None,
                filter.clone(),
            )
        };
        Link {
            _runtime: runtime,
            transport,
            filter,
            arrived,
        }
    }

    fn set_delay_ms(&self, delay_ms: u64) {
        self.filter.set(FilterRules {
            delay_ms,
            ..FilterRules::default()
        });
    }

    /// Queues messages `first..` one every STREAM_INTERVAL until message
    /// `wanted` has reached the peer (Some(when it was read)) or
    /// STALLED_AFTER has passed (None). `sent_at` records each send.
    fn stream_until_arrived(
        &self,
        first: u64,
        wanted: u64,
        sent_at: &mut BTreeMap<u64, std::time::Instant>,
    ) -> Option<std::time::Instant> {
        let give_up = std::time::Instant::now() + STALLED_AFTER;
        let mut next = first;
        while std::time::Instant::now() < give_up {
            sent_at.insert(next, std::time::Instant::now());
            self.transport.send(numbered(next));
            next += 1;
            std::thread::sleep(STREAM_INTERVAL);
            while let Ok((n, at)) = self.arrived.try_recv() {
                if n >= wanted {
                    return Some(at);
                }
            }
        }
        None
    }
}

/// Regression (issue 21, the Paxos follower left behind after `--nemesis
/// all`): the sender read the delay once per batch and then waited for each
/// further queued message to come due before writing anything, so under a
/// steady stream a batch never closed, and once the delay was cleared the
/// stale 116 ms kept it open: nothing reached the peer for minutes.
#[test]
fn a_steady_stream_keeps_reaching_the_peer_after_the_delay_is_cleared() {
    let link = Link::open();
    let mut sent_at = BTreeMap::new();
    let before = link.stream_until_arrived(1, 1, &mut sent_at);
    assert!(
        before.is_some(),
        "no message reached the peer without a delay"
    );
    link.set_delay_ms(DELAY_MS);
    // Let the sender settle into the delayed stream (a batch under way).
    let first = sent_at.len() as u64 + 1;
    for n in first..first + 30 {
        sent_at.insert(n, std::time::Instant::now());
        link.transport.send(numbered(n));
        std::thread::sleep(STREAM_INTERVAL);
    }
    link.set_delay_ms(0);
    let cleared_at = std::time::Instant::now();
    let first_after = first + 30;
    let arrived = link.stream_until_arrived(first_after, first_after, &mut sent_at);
    assert!(
        arrived.is_some(),
        "message {first_after}, queued after the delay was cleared, did not reach the peer \
         within {STALLED_AFTER:?} while messages kept coming (cleared {:?} ago)",
        cleared_at.elapsed()
    );
}

/// Under the delay, a steady stream still flows (each message written once
/// due, not held until the stream pauses), and no message leaves early.
#[test]
fn under_a_delay_a_steady_stream_flows_and_no_message_leaves_early() {
    let link = Link::open();
    link.set_delay_ms(DELAY_MS);
    let mut sent_at = BTreeMap::new();
    let arrived = link.stream_until_arrived(1, 1, &mut sent_at);
    let arrived = arrived.unwrap_or_else(|| {
        panic!("under a {DELAY_MS} ms delay and a steady stream, message 1 never reached the peer within {STALLED_AFTER:?}")
    });
    let waited = arrived.duration_since(sent_at[&1]);
    assert!(
        waited >= Duration::from_millis(DELAY_MS),
        "message 1 reached the peer {waited:?} after it was queued, before the {DELAY_MS} ms delay"
    );
}
