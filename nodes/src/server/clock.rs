//! The node's own monotonic clock, skewable by the admin `clock` op.
//!
//! Monotonic: `now_ms = base_ms + (real elapsed since rebase) × rate`. It
//! drives the tick interval (a faster clock ticks faster: elections and
//! lease timers run fast) and the leader's lease timers. Changing the rate
//! rebases, so the clock never jumps. The offset shifts only the node's
//! wall clock ([`NodeClock::wall_ms`]), as libfaketime does with
//! `FAKETIME_DONT_FAKE_MONOTONIC=1`: a monotonic clock never jumps, so an
//! offset cannot end a lease early; a rate (drift) can, and that is the
//! fault the lock workload should see.

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

    /// Milliseconds on the node's monotonic clock since it started.
    pub fn now_ms(&self) -> f64 {
        let s = self.state.lock().expect("clock lock");
        s.base_ms + s.rebased_at.elapsed().as_secs_f64() * 1000.0 * s.rate
    }

    /// The node's wall clock: Unix milliseconds plus the offset.
    pub fn wall_ms(&self) -> i64 {
        let offset = self.state.lock().expect("clock lock").offset_ms;
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        unix_ms.saturating_add(offset)
    }

    pub fn offset_ms(&self) -> i64 {
        self.state.lock().expect("clock lock").offset_ms
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
    fn offset_moves_the_wall_clock_only_and_bad_rates_are_refused() {
        let c = NodeClock::new();
        let before = c.now_ms();
        let wall_before = c.wall_ms();
        c.set(10_000, 1.0).expect("valid");
        assert!(
            c.now_ms() < before + 10_000.0,
            "the monotonic clock does not jump"
        );
        assert!(c.wall_ms() >= wall_before + 10_000);
        assert_eq!(c.offset_ms(), 10_000);
        assert!(c.set(0, 0.0).is_err());
        assert!(c.set(0, -1.0).is_err());
        assert!(c.set(0, f64::NAN).is_err());
        c.set(0, 2.0).expect("valid");
        assert_eq!(c.real_duration(10.0), Duration::from_millis(5));
    }
}
