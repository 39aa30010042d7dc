//! A buffered byte stream with line numbers: what every importer reads.
//!
//! The importers pull bytes one at a time (`peek`, `bump`) and take tokens
//! as slices of the buffer. The buffer holds a window of the input, refilled
//! as it is consumed, so a history of any size is read in bounded memory: a
//! token (a number, a string, a line) may be as long as it needs, but only
//! the token is held, never the file.

use crate::error::HistoryError;
use std::io::Read;

/// Bytes read from the input at a time.
const CHUNK: usize = 1 << 20;
/// The longest token (a string, a symbol, one line of a line format) an
/// importer accepts: past this the input is not a history.
pub const MAX_TOKEN: usize = 64 << 20;

/// The input, a window of it in memory, and where the reader is.
pub struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    /// Next byte to read, and the end of the valid bytes, in `buf`.
    pos: usize,
    len: usize,
    eof: bool,
    /// The line of the byte at `pos` (1-based).
    pub line: usize,
    source_name: String,
}

impl<R: Read> Input<R> {
    pub fn new(source_name: &str, reader: R) -> Input<R> {
        Input {
            reader,
            buf: Vec::new(),
            pos: 0,
            len: 0,
            eof: false,
            line: 1,
            source_name: source_name.to_string(),
        }
    }

    pub fn source_name(&self) -> &str {
        &self.source_name
    }

    /// An error at the current line.
    pub fn error(&self, message: impl Into<String>) -> HistoryError {
        self.error_at(self.line, message)
    }

    pub fn error_at(&self, line: usize, message: impl Into<String>) -> HistoryError {
        HistoryError::Parse {
            source_name: self.source_name.clone(),
            line,
            message: message.into(),
        }
    }

    /// Reads more input after the valid bytes, keeping `buf[keep..len]`
    /// (moved to the front). Returns how far the kept bytes moved back,
    /// so a caller holding offsets into the buffer can correct them, and
    /// whether more bytes came (false at the end of the input).
    fn refill(&mut self, keep: usize) -> Result<(usize, bool), HistoryError> {
        if self.eof {
            return Ok((0, false));
        }
        if keep > 0 {
            self.buf.copy_within(keep..self.len, 0);
            self.len -= keep;
            self.pos -= keep;
        }
        if self.buf.len() < self.len + CHUNK {
            self.buf.resize(self.len + CHUNK, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.len..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok((keep, false));
                }
                Ok(n) => {
                    self.len += n;
                    return Ok((keep, true));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(HistoryError::Read {
                        source_name: self.source_name.clone(),
                        message: e.to_string(),
                    })
                }
            }
        }
    }

    /// The next byte, without consuming it; `None` at the end.
    #[inline]
    pub fn peek(&mut self) -> Result<Option<u8>, HistoryError> {
        if self.pos < self.len {
            return Ok(Some(self.buf[self.pos]));
        }
        self.peek_slow()
    }

    #[cold]
    fn peek_slow(&mut self) -> Result<Option<u8>, HistoryError> {
        let keep = self.pos;
        self.refill(keep)?;
        Ok((self.pos < self.len).then(|| self.buf[self.pos]))
    }

    /// Consumes the byte `peek` returned (counting lines).
    #[inline]
    pub fn bump(&mut self) {
        debug_assert!(self.pos < self.len, "bump after a successful peek");
        if self.buf[self.pos] == b'\n' {
            self.line += 1;
        }
        self.pos += 1;
    }

    /// The bytes from here while `keep_going` holds (never a newline),
    /// consumed. The slice lives until the next call.
    pub fn take_while(&mut self, keep_going: impl Fn(u8) -> bool) -> Result<&[u8], HistoryError> {
        let mut start = self.pos;
        let mut end = self.pos;
        loop {
            while end < self.len && keep_going(self.buf[end]) {
                debug_assert_ne!(self.buf[end], b'\n', "tokens never span lines");
                end += 1;
            }
            if end < self.len {
                break;
            }
            if end - start > MAX_TOKEN {
                return Err(self.error(format!("a token longer than {} MiB", MAX_TOKEN >> 20)));
            }
            self.pos = end;
            let (moved, more) = self.refill(start)?;
            start -= moved;
            end -= moved;
            if !more {
                break;
            }
        }
        self.pos = end;
        Ok(&self.buf[start..end])
    }

    /// The rest of the current line, without its `\n` (or `\r\n`), consumed
    /// with the newline; `None` at the end of the input.
    pub fn line(&mut self) -> Result<Option<&[u8]>, HistoryError> {
        if self.peek()?.is_none() {
            return Ok(None);
        }
        let mut start = self.pos;
        let mut end = self.pos;
        let found = loop {
            if let Some(i) = memchr(b'\n', &self.buf[end..self.len]) {
                break Some(end + i);
            }
            end = self.len;
            if end - start > MAX_TOKEN {
                return Err(self.error(format!("a line longer than {} MiB", MAX_TOKEN >> 20)));
            }
            self.pos = end;
            let (moved, more) = self.refill(start)?;
            start -= moved;
            end -= moved;
            if !more {
                break None;
            }
        };
        let mut stop = match found {
            Some(nl) => {
                self.pos = nl + 1;
                self.line += 1;
                nl
            }
            None => {
                self.pos = self.len;
                self.len
            }
        };
        if stop > start && self.buf[stop - 1] == b'\r' {
            stop -= 1;
        }
        Ok(Some(&self.buf[start..stop]))
    }

    /// Up to `n` bytes from here, without consuming them (fewer at the end).
    pub fn lookahead(&mut self, n: usize) -> Result<&[u8], HistoryError> {
        while self.len - self.pos < n {
            let keep = self.pos;
            if !self.refill(keep)?.1 {
                break;
            }
        }
        let end = self.len.min(self.pos + n);
        Ok(&self.buf[self.pos..end])
    }
}

/// The first `needle` in `hay`.
#[inline]
fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte a call: every refill path runs.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn tokens_and_lines_survive_refills_byte_by_byte() {
        let text = b"alpha beta\r\ngamma\n\nlast";
        let mut input = Input::new("t", Trickle(text));
        assert_eq!(input.take_while(|b| b != b' ').expect("ok"), b"alpha");
        assert_eq!(input.peek().expect("ok"), Some(b' '));
        input.bump();
        assert_eq!(input.line().expect("ok"), Some(&b"beta"[..]));
        assert_eq!(input.line, 2);
        assert_eq!(input.lookahead(3).expect("ok"), b"gam");
        assert_eq!(input.line().expect("ok"), Some(&b"gamma"[..]));
        assert_eq!(input.line().expect("ok"), Some(&b""[..]));
        assert_eq!(input.line().expect("ok"), Some(&b"last"[..]));
        assert_eq!(input.line().expect("ok"), None);
        assert_eq!(input.line, 4);
    }

    #[test]
    fn a_read_error_names_the_source() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk on fire"))
            }
        }
        let mut input = Input::new("h.edn", Broken);
        let e = input.peek().unwrap_err();
        assert!(
            e.to_string().contains("h.edn") && e.to_string().contains("disk on fire"),
            "{e}"
        );
    }
}
