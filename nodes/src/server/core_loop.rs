//! The node's event loop: one OS thread owns every group.
//!
//! It blocks for the next event or tick, then drains every event already
//! queued (client requests, peer messages) into the cores before it drives
//! them: all the proposals that arrived meanwhile land in one Ready. The
//! fsync runs on each WAL's sync thread, which wakes this loop when it is
//! done ([`Event::Wake`]); this thread keeps taking events meanwhile, and
//! what they write shares the next fsync (group commit).

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::clock::NodeClock;
use super::group::ClientOp;
use super::host::Host;
use crate::consensus::{GroupId, Message};
use crate::storage::StorageError;
use crate::transport::Transport;

/// What the event loop receives.
#[derive(Debug)]
pub enum Event {
    /// A request; `group` None: routed by its key (see [`Host::handle`]).
    Client {
        group: Option<GroupId>,
        op: ClientOp,
    },
    Peer(Message),
    /// A WAL's sync thread finished an fsync: drive the groups.
    Wake,
    Shutdown,
}

/// Events handled before the cores are driven, at most.
const MAX_EVENTS_PER_BATCH: usize = 8192;
/// How often to time out requests and run the lazy flusher.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(50);

/// Run until `Shutdown` or until every sender is gone. An error is a storage
/// failure: the node must stop (it cannot promise durability any more).
pub fn run(
    mut host: Host,
    events: Receiver<Event>,
    transport: Transport,
    clock: NodeClock,
    tick_ms: u64,
) -> Result<(), StorageError> {
    let mut next_tick = Instant::now() + clock.real_duration(tick_ms as f64);
    let mut next_housekeeping = Instant::now() + HOUSEKEEPING_INTERVAL;
    let result = 'outer: loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let first = match events.recv_timeout(wait) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break 'outer Ok(()),
        };
        let now = Instant::now();
        let mut handled = 0;
        let mut next = first;
        while let Some(ev) = next {
            match ev {
                Event::Shutdown => break 'outer Ok(()),
                Event::Client { group, op } => host.handle(group, op, now),
                Event::Peer(msg) => host.step(msg),
                Event::Wake => {}
            }
            handled += 1;
            next = if handled < MAX_EVENTS_PER_BATCH {
                events.try_recv().ok()
            } else {
                None
            };
        }

        let now = Instant::now();
        if now >= next_tick {
            host.tick(&clock);
            let interval = clock.real_duration(tick_ms as f64);
            next_tick += interval;
            if next_tick < now {
                // Fell behind (a long fsync, a pause): do not burst ticks.
                next_tick = now + interval;
            }
        }
        if let Err(e) = host.drive(&transport, &clock) {
            break 'outer Err(e);
        }
        if now >= next_housekeeping {
            next_housekeeping = now + HOUSEKEEPING_INTERVAL;
            if let Err(e) = host.housekeeping(now) {
                break 'outer Err(e);
            }
        }
    };
    host.shut_down();
    result
}
