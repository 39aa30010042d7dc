//! Watchdog: the bounds every simulated run stays within. A seed that
//! passes one fails as a liveness failure that names what was growing
//! (which nodes sent which kinds of message, what is in flight), instead of
//! running and allocating without end.
//!
//! The bounds, all counted in the run's own deterministic terms (never the
//! wall clock, so a failure replays exactly):
//! - virtual time: the clock may not pass [`SimLimits::virtual_time_us`];
//!   the world's horizon (faults + settle) must lie within it, and no more
//!   than [`SimLimits::events_per_virtual_ms`] events may run in one virtual
//!   millisecond on average over any window of
//!   [`RATE_WINDOW_US`] (a storm runs many events per unit of virtual time,
//!   long before it runs out of total budget);
//! - events processed in the whole run ([`SimLimits::events`]);
//! - messages in flight at once ([`SimLimits::messages_in_flight`]);
//! - Readys drained after one input to one core
//!   ([`SimLimits::readys_per_step`]): a core whose `has_ready` never turns
//!   false would otherwise spin inside one event.
//!
//! The defaults are far above what healthy seeds reach (the sweeps print
//! the peaks they saw: `SimStats::peak_*`).

use std::collections::BTreeMap;

use super::check::Violation;
use crate::consensus::{Message, NodeId};

/// The property a watchdog failure reports.
pub const LIVENESS: &str = "liveness (simulator watchdog)";

/// The width of the window over which the event rate is measured.
pub const RATE_WINDOW_US: u64 = 100_000;

/// The bounds of one run (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimLimits {
    pub virtual_time_us: u64,
    pub events: u64,
    pub events_per_virtual_ms: u64,
    pub messages_in_flight: u64,
    pub readys_per_step: u64,
}

impl Default for SimLimits {
    /// Healthy seeds of the four sweeps stay far below every bound (the
    /// sweeps print their peaks as "watchdog headroom" lines; over 500
    /// membership seeds of Raft: 26k events, 211 messages in flight, 28
    /// events per virtual ms, 1 Ready per input).
    fn default() -> SimLimits {
        SimLimits {
            virtual_time_us: 60_000_000,
            events: 2_000_000,
            events_per_virtual_ms: 1_000,
            messages_in_flight: 10_000,
            readys_per_step: 1_000,
        }
    }
}

/// Messages counted per (sender, kind): who is talking, and about what.
#[derive(Clone, Debug, Default)]
struct Traffic {
    by_sender: BTreeMap<(NodeId, &'static str), u64>,
}

impl Traffic {
    fn count(&mut self, msg: &Message) {
        *self
            .by_sender
            .entry((msg.from, msg.payload.kind()))
            .or_default() += 1;
    }

    /// The largest counts, largest first: "n3 append ×120000".
    fn top(&self, how_many: usize) -> String {
        let mut rows: Vec<(&(NodeId, &'static str), &u64)> = self.by_sender.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = rows
            .iter()
            .take(how_many)
            .map(|((from, kind), n)| format!("{from} {kind} ×{n}"))
            .collect();
        if shown.is_empty() {
            "none".into()
        } else {
            shown.join(", ")
        }
    }
}

/// The peaks one run reached, for the sweeps to report how far healthy
/// seeds stay from the bounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peaks {
    pub messages_in_flight: u64,
    pub readys_per_step: u64,
    /// Events in the busiest [`RATE_WINDOW_US`] window, per virtual ms.
    pub events_per_virtual_ms: u64,
}

/// The watchdog of one run.
#[derive(Debug)]
pub struct Watchdog {
    limits: SimLimits,
    events: u64,
    in_flight: u64,
    window_start_us: u64,
    window_events: u64,
    /// Messages sent in the current and the previous rate window.
    sent_now: Traffic,
    sent_before: Traffic,
    peaks: Peaks,
}

impl Watchdog {
    pub fn new(limits: SimLimits) -> Watchdog {
        Watchdog {
            limits,
            events: 0,
            in_flight: 0,
            window_start_us: 0,
            window_events: 0,
            sent_now: Traffic::default(),
            sent_before: Traffic::default(),
            peaks: Peaks::default(),
        }
    }

    pub fn limits(&self) -> SimLimits {
        self.limits
    }

    pub fn peaks(&self) -> Peaks {
        self.peaks
    }

    /// The world's horizon must fit in the virtual-time bound.
    pub fn check_horizon(&self, horizon_us: u64) -> Result<(), Violation> {
        if horizon_us <= self.limits.virtual_time_us {
            return Ok(());
        }
        Err(self.failure(
            0,
            format!(
                "the run asks for {horizon_us} µs of virtual time, beyond the bound of {} µs",
                self.limits.virtual_time_us
            ),
            None,
        ))
    }

    /// A message copy entered the network.
    pub fn message_sent(&mut self, msg: &Message) {
        self.in_flight += 1;
        self.peaks.messages_in_flight = self.peaks.messages_in_flight.max(self.in_flight);
        self.sent_now.count(msg);
    }

    /// A message copy left the network (delivered, or dropped on arrival).
    pub fn message_arrived(&mut self) {
        self.in_flight = self
            .in_flight
            .checked_sub(1)
            .expect("a message arrives only after it was sent");
    }

    /// One event is about to run at `now_us`; `in_flight` lists what the
    /// network holds (read only when a bound was passed).
    pub fn event<'a>(
        &mut self,
        now_us: u64,
        in_flight: impl FnOnce() -> Vec<&'a Message>,
    ) -> Result<(), Violation> {
        self.events += 1;
        if now_us >= self.window_start_us + RATE_WINDOW_US {
            self.close_window(now_us);
        }
        self.window_events += 1;
        let rate_bound = self.limits.events_per_virtual_ms * (RATE_WINDOW_US / 1_000);
        let what = if now_us > self.limits.virtual_time_us {
            format!(
                "virtual time passed its bound of {} µs",
                self.limits.virtual_time_us
            )
        } else if self.events > self.limits.events {
            format!("more than {} events in one run", self.limits.events)
        } else if self.window_events > rate_bound {
            format!(
                "more than {rate_bound} events within {} virtual ms (from {} µs)",
                RATE_WINDOW_US / 1_000,
                self.window_start_us
            )
        } else if self.in_flight > self.limits.messages_in_flight {
            format!(
                "more than {} messages in flight",
                self.limits.messages_in_flight
            )
        } else {
            return Ok(());
        };
        Err(self.failure(now_us, what, Some(in_flight())))
    }

    /// One more Ready drained within the current step of `node`.
    pub fn ready_drained(
        &mut self,
        node: NodeId,
        readys_this_step: u64,
        now_us: u64,
    ) -> Result<(), Violation> {
        self.peaks.readys_per_step = self.peaks.readys_per_step.max(readys_this_step);
        if readys_this_step <= self.limits.readys_per_step {
            return Ok(());
        }
        Err(self.failure(
            now_us,
            format!(
                "{node} produced more than {} Readys after one input (has_ready never turns false)",
                self.limits.readys_per_step
            ),
            None,
        ))
    }

    fn close_window(&mut self, now_us: u64) {
        let rate = self.window_events / (RATE_WINDOW_US / 1_000);
        self.peaks.events_per_virtual_ms = self.peaks.events_per_virtual_ms.max(rate);
        // Windows are aligned to multiples of the width.
        self.window_start_us = now_us - now_us % RATE_WINDOW_US;
        self.window_events = 0;
        self.sent_before = std::mem::take(&mut self.sent_now);
    }

    fn failure(&self, now_us: u64, what: String, in_flight: Option<Vec<&Message>>) -> Violation {
        let mut detail = format!(
            "{what}; after {} events, {} messages in flight",
            self.events, self.in_flight
        );
        if let Some(messages) = in_flight {
            let mut held = Traffic::default();
            for m in messages {
                held.count(m);
            }
            detail.push_str(&format!("; in flight by sender: {}", held.top(8)));
        }
        detail.push_str(&format!(
            "; sent in this rate window: {}; in the one before: {}",
            self.sent_now.top(8),
            self.sent_before.top(8)
        ));
        Violation {
            property: LIVENESS,
            detail,
            time_us: now_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::{GroupId, Payload, Term};
    use crate::raft::message::RaftMessage;

    fn heartbeat(from: u64) -> Message {
        Message {
            group: GroupId(1),
            from: NodeId(from),
            to: NodeId(9),
            payload: Payload::Raft(RaftMessage::Heartbeat {
                term: Term(1),
                commit: crate::consensus::LogIndex(0),
                read_seq: 0,
                session: 1,
            }),
        }
    }

    #[test]
    fn too_many_messages_in_flight_fails_naming_the_sender() {
        let limits = SimLimits {
            messages_in_flight: 3,
            ..SimLimits::default()
        };
        let mut dog = Watchdog::new(limits);
        let held: Vec<Message> = (0..4).map(|_| heartbeat(2)).collect();
        for m in &held {
            dog.message_sent(m);
        }
        let v = dog
            .event(500, || held.iter().collect())
            .expect_err("four in flight passes a bound of three");
        assert_eq!(v.property, LIVENESS);
        assert!(
            v.detail.contains("more than 3 messages in flight"),
            "{}",
            v.detail
        );
        assert!(v.detail.contains("n2 heartbeat ×4"), "{}", v.detail);
        assert_eq!(dog.peaks().messages_in_flight, 4);
    }

    #[test]
    fn an_event_storm_in_virtual_time_fails_on_the_rate() {
        let limits = SimLimits {
            events_per_virtual_ms: 2,
            ..SimLimits::default()
        };
        let mut dog = Watchdog::new(limits);
        // 200 events allowed per 100 ms window: the 201st at one instant fails.
        for _ in 0..200 {
            dog.event(7, Vec::new).expect("within the rate");
        }
        let v = dog.event(7, Vec::new).expect_err("past the rate");
        assert!(
            v.detail
                .contains("more than 200 events within 100 virtual ms"),
            "{}",
            v.detail
        );
        // A new window starts afresh.
        let mut dog = Watchdog::new(limits);
        for t in 0..1_000 {
            dog.event(t * 1_000, Vec::new)
                .expect("one event a virtual ms is fine");
        }
        assert_eq!(dog.peaks().events_per_virtual_ms, 1);
    }

    #[test]
    fn total_events_time_and_readys_are_bounded() {
        let limits = SimLimits {
            events: 5,
            virtual_time_us: 1_000,
            readys_per_step: 2,
            ..SimLimits::default()
        };
        let mut dog = Watchdog::new(limits);
        for t in 0..5 {
            dog.event(t, Vec::new).expect("five events are allowed");
        }
        assert!(dog.event(6, Vec::new).is_err(), "the sixth is not");
        let mut dog = Watchdog::new(limits);
        assert!(dog.event(1_001, Vec::new).is_err(), "past the clock bound");
        assert!(dog.check_horizon(1_000).is_ok());
        assert!(dog.check_horizon(1_001).is_err());
        assert!(dog.ready_drained(NodeId(1), 2, 0).is_ok());
        let v = dog
            .ready_drained(NodeId(1), 3, 0)
            .expect_err("a third Ready");
        assert!(
            v.detail.contains("n1 produced more than 2 Readys"),
            "{}",
            v.detail
        );
    }
}
