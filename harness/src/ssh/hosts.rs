//! Every host of a run, each with its own reused connection, worked in
//! parallel (one thread per host: ssh2 is blocking, and a run has few hosts).
//!
//! Guarantee: [`Hosts::each`] returns one result per host, in host order,
//! and waits for all of them; a slow or dead host delays only its own
//! result, up to its own timeouts.

use super::config::{HostAddr, SshConfig};
use super::error::SshError;
use super::session::Session;
use std::sync::{Arc, Mutex};

/// The sessions of one run.
pub struct Hosts {
    sessions: Vec<Session>,
}

impl Hosts {
    pub fn new(addrs: Vec<HostAddr>, cfg: SshConfig) -> Hosts {
        let cfg = Arc::new(cfg);
        let lock = Arc::new(Mutex::new(()));
        Hosts {
            sessions: addrs
                .into_iter()
                .map(|a| Session::new(a, cfg.clone(), lock.clone()))
                .collect(),
        }
    }

    pub fn sessions(&self) -> &[Session] {
        &self.sessions
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    pub fn get(&self, i: usize) -> &Session {
        &self.sessions[i]
    }

    /// Runs `f` on every host at once; one result per host, in order.
    pub fn each<R: Send>(&self, f: impl Fn(usize, &Session) -> R + Sync) -> Vec<R> {
        par_map(&self.sessions, |i, s| f(i, s))
    }

    /// Connects to every host at once. Fails with every host that could not
    /// be reached, each with its cause.
    pub fn connect_all(&self) -> Result<(), HostErrors> {
        all_ok(self.each(|_, s| s.connect())).map(|_| ())
    }
}

/// `f` over `items` on one thread each; results in input order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .iter()
            .enumerate()
            .map(|(i, t)| scope.spawn(move || f(i, t)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("per-host work does not panic"))
            .collect()
    })
}

/// Several hosts failed; the message lists each (host first, then cause).
#[derive(Debug)]
pub struct HostErrors(pub Vec<SshError>);

impl std::fmt::Display for HostErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(f, "{} hosts failed:", many.len())?;
                for e in many {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for HostErrors {}

/// `Ok` if every result is; else every error.
pub fn all_ok<T>(results: Vec<Result<T, SshError>>) -> Result<Vec<T>, HostErrors> {
    let mut oks = Vec::new();
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(oks)
    } else {
        Err(HostErrors(errs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn par_map_keeps_order_and_runs_every_item() {
        let items: Vec<u64> = (0..8).collect();
        let out = par_map(&items, |i, x| {
            std::thread::sleep(std::time::Duration::from_millis(8 - *x));
            (i, x * 10)
        });
        assert_eq!(
            out,
            (0..8).map(|i| (i as usize, i * 10)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn all_ok_lists_every_failed_host() {
        let e = |h: &str| SshError::Lost {
            host: h.into(),
            cause: "reset".into(),
        };
        let r = all_ok(vec![Ok(1), Err(e("a")), Ok(2), Err(e("b"))]);
        let msg = r.unwrap_err().to_string();
        assert!(msg.starts_with("2 hosts failed"), "{msg}");
        assert!(
            msg.contains("a: connection lost") && msg.contains("b: connection lost"),
            "{msg}"
        );
        assert_eq!(all_ok::<i32>(vec![Ok(1), Ok(2)]).unwrap(), vec![1, 2]);
    }
}
