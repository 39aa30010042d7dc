//! A bounded line reader: never allocates more than its limit for one line.
//!
//! `tokio`'s `read_line` grows its buffer without bound; this reader keeps
//! at most `max_line_bytes` of a line and reports [`LineError::TooLarge`] as
//! soon as a line is longer, so a peer cannot make the node allocate
//! unboundedly by never sending a newline.
//!
//! [`LineReader::next_line`] is cancel-safe: a call dropped mid-line (a
//! `select!` that chose another branch) keeps the part already read, and
//! the next call goes on from there. A connection served from one task
//! relies on it (`server::connection`).

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Client lines: 1 MiB (docs/protocol.md).
pub const MAX_CLIENT_LINE_BYTES: usize = 1 << 20;
/// Peer lines carry batches of entries and snapshots: 64 MiB.
pub const MAX_PEER_LINE_BYTES: usize = 64 << 20;
/// Reply lines, as a client reads them: 64 MiB. A reply may be far longer
/// than any request (a read of a set's list that grew by a million appends).
pub const MAX_REPLY_LINE_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("line longer than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading a line: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads newline-terminated lines of at most `limit` bytes.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    limit: usize,
    /// The line being read: a partial line survives a cancelled call.
    buf: Vec<u8>,
    /// Whether `buf` holds the line the last call returned (cleared when
    /// the next call starts) rather than a partial one.
    returned: Returned,
}

/// What `LineReader::buf` holds between calls.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Returned {
    /// The start of a line a cancelled call had read: keep it.
    Partial,
    /// A line already handed out: drop it.
    Line,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, limit: usize) -> Self {
        LineReader {
            inner,
            limit,
            buf: Vec::new(),
            returned: Returned::Partial,
        }
    }

    /// Change the limit (a connection that turns out to be a peer's).
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// The next line without its newline (and without a trailing `\r`), or
    /// `None` at end of stream. A partial last line without newline is dropped.
    /// After `TooLarge` the stream is out of sync: close the connection.
    /// Cancel-safe (see the module doc).
    pub async fn next_line(&mut self) -> Result<Option<&[u8]>, LineError> {
        match self.read_line().await? {
            true => Ok(Some(&self.buf)),
            false => Ok(None),
        }
    }

    /// [`LineReader::next_line`] without the borrow: true when a line was
    /// read (it is then [`LineReader::line`]), false at end of stream.
    pub async fn read_line(&mut self) -> Result<bool, LineError> {
        if self.returned == Returned::Line {
            self.buf.clear();
            self.returned = Returned::Partial;
        }
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                return Ok(false);
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    if self.buf.len() + pos > self.limit {
                        return Err(LineError::TooLarge { limit: self.limit });
                    }
                    self.buf.extend_from_slice(&available[..pos]);
                    self.inner.consume(pos + 1);
                    if self.buf.last() == Some(&b'\r') {
                        self.buf.pop();
                    }
                    self.returned = Returned::Line;
                    return Ok(true);
                }
                None => {
                    let n = available.len();
                    if self.buf.len() + n > self.limit {
                        return Err(LineError::TooLarge { limit: self.limit });
                    }
                    self.buf.extend_from_slice(available);
                    self.inner.consume(n);
                }
            }
        }
    }

    /// The line the last [`LineReader::read_line`] returned true for.
    pub fn line(&self) -> &[u8] {
        debug_assert!(self.returned == Returned::Line, "no line was read");
        &self.buf
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The stream under the reader (to write to it, for a stream that is
    /// read and written from one task). Bytes already buffered stay here.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncWriteExt, BufReader};

    fn reader(bytes: &'static [u8], limit: usize) -> LineReader<BufReader<&'static [u8]>> {
        // A tiny buffer so lines span many fill_buf calls.
        LineReader::new(BufReader::with_capacity(3, bytes), limit)
    }

    #[tokio::test]
    async fn splits_lines_and_strips_cr() {
        let mut r = reader(b"abc\r\n\ndefgh\nrest", 10);
        assert_eq!(r.next_line().await.expect("ok"), Some(&b"abc"[..]));
        assert_eq!(r.next_line().await.expect("ok"), Some(&b""[..]));
        assert_eq!(r.next_line().await.expect("ok"), Some(&b"defgh"[..]));
        assert_eq!(
            r.next_line().await.expect("ok"),
            None,
            "partial tail dropped"
        );
    }

    #[tokio::test]
    async fn a_line_over_the_limit_is_refused_before_it_is_buffered() {
        let mut r = reader(b"0123456789ABCDEF\n", 10);
        assert!(matches!(
            r.next_line().await,
            Err(LineError::TooLarge { limit: 10 })
        ));
        assert!(r.buf.len() <= 10, "never buffered past the limit");
        let mut r = reader(b"0123456789\n", 10);
        assert_eq!(
            r.next_line().await.expect("exactly the limit is fine"),
            Some(&b"0123456789"[..])
        );
    }

    /// A call dropped mid-line (a `select!` that chose another branch)
    /// must not lose the part of the line it had read: the server's TLS
    /// connections select between reading a request and writing replies.
    #[tokio::test]
    async fn a_cancelled_call_keeps_the_partial_line() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut r = LineReader::new(BufReader::with_capacity(3, server), 100);
        client.write_all(b"hello wo").await.expect("write");
        let cancelled =
            tokio::time::timeout(std::time::Duration::from_millis(50), r.next_line()).await;
        assert!(cancelled.is_err(), "no newline yet: the call waits");
        client.write_all(b"rld\nnext\n").await.expect("write");
        assert_eq!(r.next_line().await.expect("ok"), Some(&b"hello world"[..]));
        assert_eq!(r.next_line().await.expect("ok"), Some(&b"next"[..]));
    }

    proptest::proptest! {
        /// Fuzz: random bytes never panic and never yield a line over the limit.
        #[test]
        fn never_panics_nor_exceeds_the_limit(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512), limit in 0usize..64) {
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            rt.block_on(async {
                let mut r = LineReader::new(BufReader::with_capacity(7, &bytes[..]), limit);
                while let Ok(Some(line)) = r.next_line().await {
                    assert!(line.len() <= limit);
                }
            });
        }
    }
}
