//! The client side of one worker: sends a request, follows redirects, and
//! says how it ended.

use crate::protocol::{Reply, Request};
use std::future::Future;
use std::time::Duration;

/// How a call ended, from the client's point of view.
#[derive(Clone, Debug, PartialEq)]
pub enum CallResult {
    /// A node replied (ok, or an error with its `definite` flag).
    Replied { node: String, reply: Reply },
    /// The request reached no node that could take it (refused connections,
    /// redirects only): it certainly did not take effect.
    NotSent { node: Option<String>, error: String },
    /// The request was sent but no reply came (timeout, connection closed):
    /// it may or may not take effect.
    Unknown { node: String, error: String },
}

/// One worker's connection to the cluster. Follows `not-leader` redirects
/// itself (they are definite, so retrying is safe) within `timeout`.
pub trait Client: Send + 'static {
    fn call(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> impl Future<Output = CallResult> + Send;
}
