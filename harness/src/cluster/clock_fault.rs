//! A clock fault: an offset from true time and a rate.
//!
//! Two mechanisms make it (docs/store.md, "clock faults"):
//! - libfaketime reads a spec such as `+10.000 x2` from a file. Its rate
//!   applies to the time elapsed since the process loaded the library
//!   (`fake = start + (real − start) × rate + offset`), so a rate set
//!   mid-run would also jump the clock by `(rate − 1) × age`. The spec we
//!   write subtracts that jump from the offset ([`ClockFault::faketime_spec`]):
//!   the clock reads `real + offset` when the fault starts and drifts from
//!   there. libfaketime re-reads the file at most once a second, so up to
//!   `|rate − 1| × 1 s` of jump remains; healing (offset 0, rate 1) puts the
//!   clock back on true time at once.
//! - faultline's node has a clock of its own (the admin `clock` op): its
//!   monotonic clock runs at the rate (ticks and lease timers) without a
//!   jump, and the offset moves its wall clock.

use serde::Serialize;
use std::time::Duration;

/// An offset from true time and a rate (1: true speed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ClockFault {
    pub offset_ms: i64,
    pub rate: f64,
}

impl ClockFault {
    /// True time at true speed: what a heal restores.
    pub const TRUE: ClockFault = ClockFault {
        offset_ms: 0,
        rate: 1.0,
    };

    pub fn is_true(&self) -> bool {
        self.offset_ms == 0 && !self.changes_rate()
    }

    pub fn changes_rate(&self) -> bool {
        (self.rate - 1.0).abs() > 1e-9
    }

    /// The libfaketime spec for a process that loaded libfaketime `age` ago:
    /// the offset less the jump libfaketime's rate would make, so that the
    /// clock reads true time + `offset_ms` now and drifts at `rate` from here.
    pub fn faketime_spec(&self, age: Duration) -> String {
        assert!(
            self.rate > 0.0 && self.rate.is_finite(),
            "clock rate {} must be positive and finite",
            self.rate
        );
        let jump_ms = if self.changes_rate() {
            ((self.rate - 1.0) * age.as_secs_f64() * 1000.0).round() as i64
        } else {
            0
        };
        faketime_spec(self.offset_ms.saturating_sub(jump_ms), self.rate)
    }
}

/// The libfaketime spec for an offset and a rate: `+10.000`, `-0.250 x2`.
pub fn faketime_spec(offset_ms: i64, rate: f64) -> String {
    let sign = if offset_ms < 0 { '-' } else { '+' };
    let abs = offset_ms.unsigned_abs();
    let mut s = format!("{sign}{}.{:03}", abs / 1000, abs % 1000);
    if (rate - 1.0).abs() > 1e-9 {
        s.push_str(&format!(" x{rate}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faketime_specs() {
        assert_eq!(faketime_spec(0, 1.0), "+0.000");
        assert_eq!(faketime_spec(10_000, 1.0), "+10.000");
        assert_eq!(faketime_spec(-250, 1.0), "-0.250");
        assert_eq!(faketime_spec(-3_600_000, 2.0), "-3600.000 x2");
        assert_eq!(faketime_spec(1, 0.5), "+0.001 x0.5");
    }

    #[test]
    fn a_rate_set_mid_run_takes_libfaketimes_jump_off_the_offset() {
        let age = Duration::from_secs(60);
        // x2 after 60 s would jump 60 s ahead: the offset takes it back.
        let fast = ClockFault {
            offset_ms: 5_000,
            rate: 2.0,
        };
        assert_eq!(fast.faketime_spec(age), "-55.000 x2");
        // x0.5 would jump 30 s back: the offset adds it.
        let slow = ClockFault {
            offset_ms: 0,
            rate: 0.5,
        };
        assert_eq!(slow.faketime_spec(age), "+30.000 x0.5");
        // An offset alone needs no correction, whatever the age.
        let offset_only = ClockFault {
            offset_ms: -250,
            rate: 1.0,
        };
        assert_eq!(offset_only.faketime_spec(age), "-0.250");
        assert_eq!(ClockFault::TRUE.faketime_spec(age), "+0.000");
        assert!(ClockFault::TRUE.is_true());
        assert!(!slow.is_true());
    }

    /// Prints `FAKE_EPOCH UPTIME` every 50 ms.
    const PERL_LOOP: &str = "$|=1; while (1) { open(my $u, '<', '/proc/uptime') or die; \
        my ($up) = split(/ /, <$u>); close $u; \
        printf(\"%.6f %s\\n\", clock_gettime(CLOCK_REALTIME), $up); \
        select(undef, undef, undef, 0.05); }";

    /// Parses `FAKE_EPOCH UPTIME` lines of the loop below.
    fn samples(text: &str) -> Vec<(f64, f64)> {
        text.lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
            })
            .collect()
    }

    /// Against the real libfaketime: a process that has run a while gets
    /// a rate without the jump libfaketime would add, and drifts at it.
    /// The process stamps each line with its faked clock and with
    /// /proc/uptime (which libfaketime does not touch), so the load on the
    /// machine does not enter the measurement.
    #[test]
    fn a_rate_fault_drifts_from_the_offset_without_libfaketimes_jump() {
        let Some(lib) = crate::cluster::local::libfaketime() else {
            // CI installs libfaketime (.ci/run), so there this test runs.
            crate::errln!("libfaketime is not installed: skipped");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("clock");
        std::fs::write(&file, "+0.000\n").expect("write");
        let out = dir.path().join("out");
        let started = std::time::Instant::now();
        // perl's clock_gettime, as the node's: bash's $EPOCHREALTIME (from
        // gettimeofday) does not see libfaketime's file change when bash is
        // started directly, a quirk of bash's, not of the nodes' clocks.
        let mut child = match std::process::Command::new("perl")
            .arg("-MTime::HiRes=clock_gettime,CLOCK_REALTIME")
            .arg("-e")
            .arg(PERL_LOOP)
            .env("LD_PRELOAD", lib)
            .env("FAKETIME_TIMESTAMP_FILE", &file)
            .env("FAKETIME_CACHE_DURATION", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .stdout(std::fs::File::create(&out).expect("create"))
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                // CI installs perl (.ci/run), so there this test runs.
                crate::errln!("perl cannot run ({e}): skipped");
                return;
            }
        };
        std::thread::sleep(Duration::from_secs(3));
        let fault = ClockFault {
            offset_ms: 10_000,
            rate: 2.0,
        };
        std::fs::write(
            &file,
            format!("{}\n", fault.faketime_spec(started.elapsed())),
        )
        .expect("write");
        let switched_up = {
            let s = samples(&std::fs::read_to_string(&out).expect("read"));
            s.last().expect("the loop prints").1
        };
        std::thread::sleep(Duration::from_secs(4));
        child.kill().expect("kill");
        child.wait().expect("wait");
        let s = samples(&std::fs::read_to_string(&out).expect("read"));
        // Fake time minus uptime is the boot time the process would infer:
        // constant at true speed, it moves by the offset and then grows by
        // (rate - 1) per second of uptime.
        let (before, after): (Vec<(f64, f64)>, Vec<(f64, f64)>) =
            s.iter().partition(|&&(_, up)| up < switched_up);
        let boot = |&(fake, up): &(f64, f64)| fake - up;
        let true_boot = boot(before.last().expect("samples before the fault"));
        // libfaketime takes the new spec within its 1 s cache.
        let faulted: Vec<(f64, f64)> = after
            .into_iter()
            .filter(|&(fake, up)| fake - up - true_boot > 5.0 && up > switched_up)
            .collect();
        let first = faulted.first().unwrap_or_else(|| {
            panic!(
                "the clock never moved by the offset: switched at {switched_up}; last samples {:?}",
                &s[s.len().saturating_sub(25)..]
            )
        });
        let jump = boot(first) - true_boot;
        assert!(
            (9.0..=11.5).contains(&jump),
            "the clock should read about true + 10 s when the fault starts, \
             not + 13 s (libfaketime's own jump after 3 s at x2): it read + {jump:.3} s"
        );
        let last = faulted.last().expect("samples");
        let rate = (last.0 - first.0) / (last.1 - first.1);
        assert!((1.7..=2.3).contains(&rate), "drift rate {rate:.3}, not 2");
    }
}
