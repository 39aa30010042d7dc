//! Jepsen's `--test-count`: run a test again and again, stop at the first
//! run that is not valid, and end with the worst result.
//!
//! Guarantee: at most one run's leftover (a cluster kept up by
//! `--leave-db-running`) exists at a time: the previous run's is stopped
//! before the next run starts, and only the last run's is returned.

use crate::exit::Exit;

/// Calls `once(i)` for i in 1..=`count` until a run is not valid (or
/// fails: its error is returned, after `stop` of nothing, since each run
/// cleans up after its own error). Before each run after the first, the
/// previous run's leftover goes to `stop`. Returns the worst exit and the
/// last run's leftover.
pub fn repeat<T>(
    count: u32,
    mut stop: impl FnMut(T) -> anyhow::Result<()>,
    mut once: impl FnMut(u32) -> anyhow::Result<(Exit, Option<T>)>,
) -> anyhow::Result<(Exit, Option<T>)> {
    assert!(count > 0, "the caller refuses --test-count 0");
    let mut worst = Exit::Valid;
    let mut left: Option<T> = None;
    for i in 1..=count {
        if let Some(previous) = left.take() {
            stop(previous)?;
        }
        let (exit, leftover) = once(i)?;
        left = leftover;
        worst = worst.max(exit);
        if exit != Exit::Valid {
            break;
        }
    }
    Ok((worst, left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Runs `repeat` over scripted results; (calls made, stops made, result).
    fn script(
        count: u32,
        results: &[Exit],
    ) -> (Vec<u32>, Vec<u32>, anyhow::Result<(Exit, Option<u32>)>) {
        let calls = RefCell::new(Vec::new());
        let stops = RefCell::new(Vec::new());
        let result = repeat(
            count,
            |left: u32| {
                stops.borrow_mut().push(left);
                Ok(())
            },
            |i| {
                calls.borrow_mut().push(i);
                Ok((results[i as usize - 1], Some(i)))
            },
        );
        (calls.into_inner(), stops.into_inner(), result)
    }

    #[test]
    fn runs_every_time_while_valid_stopping_each_leftover_before_the_next() {
        let (calls, stops, result) = script(3, &[Exit::Valid; 3]);
        assert_eq!(calls, [1, 2, 3]);
        assert_eq!(stops, [1, 2], "only the last run's cluster is left");
        assert_eq!(result.expect("ok"), (Exit::Valid, Some(3)));
    }

    #[test]
    fn stops_at_the_first_run_that_is_not_valid() {
        let (calls, stops, result) = script(5, &[Exit::Valid, Exit::Invalid, Exit::Valid]);
        assert_eq!(calls, [1, 2], "run 3 never starts");
        assert_eq!(stops, [1]);
        assert_eq!(result.expect("ok"), (Exit::Invalid, Some(2)));
        let (calls, _, result) = script(3, &[Exit::Unknown, Exit::Valid, Exit::Valid]);
        assert_eq!(calls, [1]);
        assert_eq!(result.expect("ok").0, Exit::Unknown);
    }

    #[test]
    fn an_error_ends_the_repeats_with_that_error() {
        let mut calls = 0;
        let result: anyhow::Result<(Exit, Option<u32>)> = repeat(
            3,
            |_| Ok(()),
            |i| {
                calls += 1;
                if i == 2 {
                    anyhow::bail!("run 2 broke");
                }
                Ok((Exit::Valid, None))
            },
        );
        assert_eq!(calls, 2);
        assert_eq!(
            format!("{:#}", result.expect_err("an error")),
            "run 2 broke"
        );
    }
}
