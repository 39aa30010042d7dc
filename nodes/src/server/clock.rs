//! The node's own monotonic clock, skewable by the admin `clock` op.
//!
//! `now_ms = base_ms + (real elapsed since rebase) × rate + offset_ms`. It
//! drives the tick interval (a faster clock ticks faster: elections and
//! lease timers run fast, like under libfaketime) and the leader's lease
//! timers. Changing the rate rebases, so the clock never jumps because of a
//! rate change; changing the offset jumps it on purpose.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct ClockState {
    rebased_at: Instant,
    base_ms: f64,
    rate: f64,
    offset_ms: i64,
}

/// Shared, cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeClock {
    state: Arc<Mutex<ClockState>>,
}

impl Default for NodeClock {
    fn default() -> Self {
        NodeClock::new()
    }
}

impl NodeClock {
    pub fn new() -> NodeClock {
        NodeClock {
            state: Arc::new(Mutex::new(ClockState {
                rebased_at: Instant::now(),
                base_ms: 0.0,
                rate: 1.0,
                offset_ms: 0,
            })),
        }
    }

    /// Milliseconds on the node's clock (may be negative after a negative offset).
    pub fn now_ms(&self) -> f64 {
        let s = self.state.lock().expect("clock lock");
        s.base_ms + s.rebased_at.elapsed().as_secs_f64() * 1000.0 * s.rate + s.offset_ms as f64
    }

    /// Set the offset and the rate. A rate that is not positive and finite
    /// is refused.
    pub fn set(&self, offset_ms: i64, rate: f64) -> Result<(), String> {
        if !(rate.is_finite() && rate > 0.0 && rate <= 1000.0) {
            return Err(format!("rate must be in (0, 1000], got {rate}"));
        }
        let mut s = self.state.lock().expect("clock lock");
        let now = Instant::now();
        s.base_ms += now.duration_since(s.rebased_at).as_secs_f64() * 1000.0 * s.rate;
        s.rebased_at = now;
        s.rate = rate;
        s.offset_ms = offset_ms;
        Ok(())
    }

    pub fn rate(&self) -> f64 {
        self.state.lock().expect("clock lock").rate
    }

    /// Real time that lasts `ms` on this clock.
    pub fn real_duration(&self, ms: f64) -> Duration {
        Duration::from_secs_f64((ms / self.rate()).max(0.0) / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_jumps_and_bad_rates_are_refused() {
        let c = NodeClock::new();
        let before = c.now_ms();
        c.set(10_000, 1.0).expect("valid");
        assert!(c.now_ms() >= before + 10_000.0);
        assert!(c.set(0, 0.0).is_err());
        assert!(c.set(0, -1.0).is_err());
        assert!(c.set(0, f64::NAN).is_err());
        c.set(0, 2.0).expect("valid");
        assert_eq!(c.real_duration(10.0), Duration::from_millis(5));
    }
}
