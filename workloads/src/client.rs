//! Jepsen's Client protocol, system-neutral: one client per worker,
//! opened by its system (`System::client`), asked to [`Client::invoke`]
//! one [`Call`] at a time, and dropped at the end (closing whatever it
//! holds). A client never panics on what a system answers and never waits
//! past the call's timeout: what it cannot know is an `info` answer.

use crate::call::{Answer, Call};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future, so that clients of different systems can sit behind one
/// `Box<dyn Client>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One worker's connection to the system under test.
pub trait Client: Send + 'static {
    /// Performs `call` within `timeout` and says how it ended.
    fn invoke<'a>(&'a mut self, call: &'a Call, timeout: Duration) -> BoxFuture<'a, Answer>;
}

impl Client for Box<dyn Client> {
    fn invoke<'a>(&'a mut self, call: &'a Call, timeout: Duration) -> BoxFuture<'a, Answer> {
        (**self).invoke(call, timeout)
    }
}
