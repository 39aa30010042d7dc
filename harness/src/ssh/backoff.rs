//! The retry schedule for SSH connects: exponential back-off with a cap,
//! bounded by a total budget (the connect timeout).
//!
//! Guarantee: the sum of the delays that [`Backoff::schedule`] returns never
//! exceeds the budget, so an unreachable host is reported within the connect
//! timeout however many attempts fit in it.

use std::time::Duration;

/// Exponential back-off: `initial`, `initial*factor`, ... capped at `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub initial_ms: u64,
    pub factor: u32,
    pub max_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial_ms: 100,
            factor: 2,
            max_ms: 2_000,
        }
    }
}

impl Backoff {
    /// The pause after failed attempt number `attempt` (0-based).
    pub fn delay(&self, attempt: u32) -> Duration {
        let mut ms = self.initial_ms;
        for _ in 0..attempt {
            ms = ms.saturating_mul(u64::from(self.factor));
            if ms >= self.max_ms {
                break;
            }
        }
        Duration::from_millis(ms.min(self.max_ms))
    }

    /// Every pause that fits in `budget`, in order: the schedule a connect
    /// that keeps failing goes through before it gives up.
    pub fn schedule(&self, budget: Duration) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut spent = Duration::ZERO;
        for attempt in 0.. {
            let d = self.delay(attempt);
            if d.is_zero() || spent + d > budget {
                break;
            }
            spent += d;
            out.push(d);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_then_stay_at_the_cap() {
        let b = Backoff {
            initial_ms: 100,
            factor: 2,
            max_ms: 1_000,
        };
        let ms: Vec<u64> = (0..7).map(|a| b.delay(a).as_millis() as u64).collect();
        assert_eq!(ms, vec![100, 200, 400, 800, 1_000, 1_000, 1_000]);
        // No overflow for absurd attempt numbers.
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(1_000));
    }

    #[test]
    fn schedule_fits_in_the_budget() {
        let b = Backoff::default();
        let s = b.schedule(Duration::from_secs(5));
        let total: Duration = s.iter().sum();
        assert!(total <= Duration::from_secs(5));
        // 100+200+400+800+1600 = 3100; the next 2000 would exceed 5000.
        assert_eq!(s.len(), 5);
        assert!(b.schedule(Duration::from_millis(50)).is_empty());
        let zero = Backoff {
            initial_ms: 0,
            factor: 2,
            max_ms: 0,
        };
        assert!(
            zero.schedule(Duration::from_secs(1)).is_empty(),
            "a zero delay must not loop forever"
        );
    }
}
