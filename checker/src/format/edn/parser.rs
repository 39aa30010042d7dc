//! The EDN reader proper: one value at a time from a stream.
//!
//! Reads everything EDN has and what Clojure's printer adds: nil,
//! booleans, integers (`N` too, beyond i64 kept as digits), floats (`M`,
//! `##Inf`, `##-Inf`, `##NaN`), ratios (kept as symbols), strings,
//! characters, keywords, symbols, vectors, lists, maps, sets, comments,
//! `#_` discards anywhere whitespace may be, and tagged literals
//! (`#jepsen.history.Op{…}`, `#inst "…"`, `#object[…]`). Nesting is
//! bounded, so no input overflows the stack; every error names the line.

use super::value::Edn;
use crate::error::HistoryError;
use crate::format::input::Input;
use std::io::Read;

/// Deeper nesting than this is refused.
pub const MAX_DEPTH: usize = 200;

/// Bytes that end a token.
#[inline]
pub(crate) fn is_delimiter(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\r' | b'\n' | b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
    )
}

/// A pull parser over a stream of EDN forms.
pub struct Parser<R> {
    pub(crate) input: Input<R>,
}

impl<R: Read> Parser<R> {
    pub fn new(source_name: &str, reader: R) -> Parser<R> {
        Parser::from_input(Input::new(source_name, reader))
    }

    pub fn from_input(input: Input<R>) -> Parser<R> {
        Parser { input }
    }

    /// The line the reader is on.
    pub fn line(&self) -> usize {
        self.input.line
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> HistoryError {
        self.input.error(message)
    }

    /// Skips whitespace, commas, comments and `#_` discards; the next byte,
    /// not consumed (`None` at the end of the input).
    pub fn skip_space(&mut self, depth: usize) -> Result<Option<u8>, HistoryError> {
        loop {
            let Some(c) = self.input.peek()? else {
                return Ok(None);
            };
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => self.input.bump(),
                b';' => {
                    self.input.line()?;
                }
                b'#' if self.input.lookahead(2)? == b"#_" => {
                    self.input.bump();
                    self.input.bump();
                    self.skip_value(depth + 1)?;
                }
                _ => return Ok(Some(c)),
            }
        }
    }

    /// The next form; `None` at the end of the input.
    pub fn next_form(&mut self) -> Result<Option<Edn>, HistoryError> {
        if self.skip_space(0)?.is_none() {
            return Ok(None);
        }
        self.value(0).map(Some)
    }

    /// Reads one value (whitespace before it skipped).
    pub fn value(&mut self, depth: usize) -> Result<Edn, HistoryError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let Some(c) = self.skip_space(depth)? else {
            return Err(self.error("expected a value, found the end of the input"));
        };
        match c {
            b'[' => {
                self.input.bump();
                self.sequence(b']', depth).map(Edn::Vector)
            }
            b'(' => {
                self.input.bump();
                self.sequence(b')', depth).map(Edn::List)
            }
            b'{' => {
                self.input.bump();
                self.map(depth).map(Edn::Map)
            }
            b'"' => self.string().map(Edn::Str),
            b')' | b']' | b'}' => Err(self.error(format!("unexpected {:?}", c as char))),
            b'#' => self.dispatch(depth),
            b'\\' => self.character().map(Edn::Char),
            _ => self.atom(),
        }
    }

    /// After `#`: a set, a symbolic float, or a tagged value.
    fn dispatch(&mut self, depth: usize) -> Result<Edn, HistoryError> {
        self.input.bump();
        match self.input.peek()? {
            Some(b'{') => {
                self.input.bump();
                self.sequence(b'}', depth).map(Edn::Set)
            }
            Some(b'#') => {
                self.input.bump();
                let name = self.input.take_while(|c| !is_delimiter(c))?;
                match name {
                    b"Inf" => Ok(Edn::Float(f64::INFINITY)),
                    b"-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    b"NaN" => Ok(Edn::Float(f64::NAN)),
                    other => {
                        let message = format!(
                            "unknown symbolic value ##{}",
                            String::from_utf8_lossy(other)
                        );
                        Err(self.error(message))
                    }
                }
            }
            _ => {
                let tag = String::from_utf8_lossy(self.input.take_while(|c| !is_delimiter(c))?)
                    .into_owned();
                if tag.is_empty() {
                    return Err(self.error("expected a tag, a set or a discard after '#'"));
                }
                Ok(Edn::Tagged(tag, Box::new(self.value(depth + 1)?)))
            }
        }
    }

    /// Values up to `close` (the opener consumed).
    fn sequence(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, HistoryError> {
        let open_line = self.input.line;
        let mut items = Vec::new();
        loop {
            match self.skip_space(depth)? {
                None => return Err(self.unclosed(close, open_line, None)),
                Some(c) if c == close => {
                    self.input.bump();
                    return Ok(items);
                }
                Some(c @ (b')' | b']' | b'}')) => {
                    return Err(self.unclosed(close, open_line, Some(c)))
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    pub(crate) fn unclosed(&self, close: u8, open_line: usize, found: Option<u8>) -> HistoryError {
        let found = match found {
            Some(c) => format!("{:?}", c as char),
            None => "the end of the input".to_string(),
        };
        self.error(format!(
            "expected {:?} to close the form opened on line {open_line}, found {found}",
            close as char
        ))
    }

    /// Map entries up to `}` (the `{` consumed).
    fn map(&mut self, depth: usize) -> Result<Vec<(Edn, Edn)>, HistoryError> {
        let open_line = self.input.line;
        let items = self.sequence(b'}', depth)?;
        if items.len() % 2 != 0 {
            return Err(self.error(format!(
                "the map opened on line {open_line} has an odd number of forms"
            )));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(entries)
    }

    /// Skips one value without building it (for fields nobody reads).
    pub fn skip_value(&mut self, depth: usize) -> Result<(), HistoryError> {
        if depth > MAX_DEPTH {
            return Err(self.error(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        let Some(c) = self.skip_space(depth)? else {
            return Err(self.error("expected a value, found the end of the input"));
        };
        let close = match c {
            b'[' => b']',
            b'(' => b')',
            b'{' => b'}',
            b'"' => return self.skip_string(),
            b'#' if self.input.lookahead(2)? == b"#{" => {
                self.input.bump();
                b'}'
            }
            b'#' => {
                self.input.bump();
                if self.input.peek()? == Some(b'#') {
                    self.input.bump();
                    self.input.take_while(|c| !is_delimiter(c))?;
                    return Ok(());
                }
                self.input.take_while(|c| !is_delimiter(c))?;
                return self.skip_value(depth + 1);
            }
            b')' | b']' | b'}' => return Err(self.error(format!("unexpected {:?}", c as char))),
            b'\\' => return self.character().map(drop),
            _ => {
                self.input.take_while(|c| !is_delimiter(c))?;
                return Ok(());
            }
        };
        let open_line = self.input.line;
        self.input.bump();
        loop {
            match self.skip_space(depth)? {
                None => return Err(self.unclosed(close, open_line, None)),
                Some(c) if c == close => {
                    self.input.bump();
                    return Ok(());
                }
                Some(c @ (b')' | b']' | b'}')) => {
                    return Err(self.unclosed(close, open_line, Some(c)))
                }
                Some(_) => self.skip_value(depth + 1)?,
            }
        }
    }

    fn skip_string(&mut self) -> Result<(), HistoryError> {
        self.string_with(|_| {})
    }

    /// A string (at its opening quote).
    pub(crate) fn string(&mut self) -> Result<String, HistoryError> {
        let mut out: Vec<u8> = Vec::new();
        self.string_with(|piece| out.extend_from_slice(piece))?;
        Ok(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Reads a string, handing its unescaped pieces to `sink`.
    fn string_with(&mut self, mut sink: impl FnMut(&[u8])) -> Result<(), HistoryError> {
        let start_line = self.input.line;
        self.input.bump();
        loop {
            sink(
                self.input
                    .take_while(|c| c != b'"' && c != b'\\' && c != b'\n')?,
            );
            let Some(c) = self.input.peek()? else {
                return Err(
                    self.error(format!("unterminated string starting on line {start_line}"))
                );
            };
            self.input.bump();
            match c {
                b'"' => return Ok(()),
                b'\n' => sink(b"\n"),
                _ => {
                    let mut buf = [0u8; 4];
                    sink(self.escape()?.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }

    /// The character of an escape in a string (after the backslash).
    fn escape(&mut self) -> Result<char, HistoryError> {
        let Some(e) = self.input.peek()? else {
            return Err(self.error("unterminated escape in a string"));
        };
        self.input.bump();
        Ok(match e {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'"' => '"',
            b'\\' => '\\',
            b'u' => {
                let hex = self.input.lookahead(4)?;
                let ch = std::str::from_utf8(hex)
                    .ok()
                    .filter(|h| h.len() == 4)
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .map(|u| char::from_u32(u).unwrap_or(char::REPLACEMENT_CHARACTER));
                let Some(ch) = ch else {
                    return Err(self.error("bad \\u escape in a string"));
                };
                for _ in 0..4 {
                    self.input.bump();
                }
                ch
            }
            other => {
                return Err(self.error(format!("unknown escape \\{} in a string", other as char)))
            }
        })
    }

    /// A character literal (at its backslash): `\a`, `\newline`, `\u03bb`.
    fn character(&mut self) -> Result<char, HistoryError> {
        self.input.bump();
        let token = self.input.take_while(|c| !is_delimiter(c))?;
        let text = String::from_utf8_lossy(token).into_owned();
        let ch = match text.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "formfeed" => '\u{c}',
            "backspace" => '\u{8}',
            t if t.len() == 5 && t.starts_with('u') => u32::from_str_radix(&t[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| self.error(format!("bad character literal \\{t}")))?,
            t => {
                let mut chars = t.chars();
                match (chars.next(), chars.next()) {
                    (Some(ch), None) => ch,
                    // `\(`, `\"` and friends: the delimiter itself.
                    (None, _) => match self.input.peek()? {
                        Some(c) if c.is_ascii() => {
                            self.input.bump();
                            c as char
                        }
                        _ => return Err(self.error("a backslash with no character after it")),
                    },
                    _ => return Err(self.error(format!("bad character literal \\{t}"))),
                }
            }
        };
        Ok(ch)
    }

    /// A token: nil, a boolean, a number, a keyword or a symbol.
    fn atom(&mut self) -> Result<Edn, HistoryError> {
        let token = self.input.take_while(|c| !is_delimiter(c))?;
        match atom(token) {
            Some(v) => Ok(v),
            None => {
                let shown: String = String::from_utf8_lossy(token).chars().take(60).collect();
                Err(self.error(format!("cannot read {shown:?}")))
            }
        }
    }
}

/// The value of a token; `None` when it is none.
pub(crate) fn atom(token: &[u8]) -> Option<Edn> {
    let (&first, _) = token.split_first()?;
    match token {
        b"nil" => return Some(Edn::Nil),
        b"true" => return Some(Edn::Bool(true)),
        b"false" => return Some(Edn::Bool(false)),
        _ => {}
    }
    if first == b':' {
        let name = &token[1..];
        return (!name.is_empty())
            .then(|| Edn::Keyword(String::from_utf8_lossy(name).into_owned()));
    }
    let numeric = first.is_ascii_digit()
        || (token.len() > 1 && (first == b'-' || first == b'+') && token[1].is_ascii_digit());
    if !numeric {
        return Some(Edn::Symbol(String::from_utf8_lossy(token).into_owned()));
    }
    if let Some(i) = integer(token) {
        return Some(Edn::Int(i));
    }
    number(token)
}

/// A plain decimal i64 (`-12`, `+7`), quickly; `None` for anything else.
#[inline]
fn integer(token: &[u8]) -> Option<i64> {
    let (negative, digits) = match token[0] {
        b'-' => (true, &token[1..]),
        b'+' => (false, &token[1..]),
        _ => (false, token),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |acc, &d| acc * 10 + i64::from(d - b'0'));
    Some(if negative { -magnitude } else { magnitude })
}

/// Numbers other than short decimal integers: big integers, `N` and `M`
/// suffixes, floats, radix and ratio forms (kept as symbols).
fn number(token: &[u8]) -> Option<Edn> {
    let text = std::str::from_utf8(token).ok()?;
    let digits = text.strip_suffix('N').unwrap_or(text);
    if let Ok(i) = digits.parse::<i64>() {
        return Some(Edn::Int(i));
    }
    let unsigned = digits.trim_start_matches(['+', '-']);
    if !unsigned.is_empty() && unsigned.bytes().all(|c| c.is_ascii_digit()) {
        let sign = if digits.starts_with('-') { "-" } else { "" };
        return Some(Edn::BigInt(format!("{sign}{unsigned}")));
    }
    let float = text.strip_suffix('M').unwrap_or(text);
    if let Ok(f) = float.parse::<f64>() {
        return Some(Edn::Float(f));
    }
    // 1/3, 16r1F, 0x1F: numbers EDN has no type for; keep their text.
    let ratio_or_radix = text
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/+-".contains(&c));
    ratio_or_radix.then(|| Edn::Symbol(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn forms(text: &str) -> Result<Vec<Edn>, HistoryError> {
        let mut p = Parser::new("t", text.as_bytes());
        let mut out = Vec::new();
        while let Some(v) = p.next_form()? {
            out.push(v);
        }
        Ok(out)
    }

    #[test]
    fn reads_every_kind_of_value() {
        let v = forms(
            "{:a 1, :b [nil true \"x\\\"y\\u00e9\" :k -3 2.5 12345678901234567890N 1/3 \\a \\newline]} \
             #{1 2} (3 #_ 4) #_ 9 #foo/bar {:x 1} ##Inf 1.5M 7N ; comment\n [#_ #_ 1 2]",
        )
        .expect("valid");
        assert_eq!(v.len(), 8);
        assert_eq!(
            v[0].to_json(),
            json!({"a": 1, "b": [null, true, "x\"yé", "k", -3, 2.5, 12345678901234567890u64, "1/3", "a", "\n"]})
        );
        assert_eq!(v[1], Edn::Set(vec![Edn::Int(1), Edn::Int(2)]));
        assert_eq!(v[2], Edn::List(vec![Edn::Int(3)]));
        assert_eq!(
            v[3],
            Edn::Tagged(
                "foo/bar".into(),
                Box::new(Edn::Map(vec![(Edn::Keyword("x".into()), Edn::Int(1))]))
            )
        );
        assert_eq!(v[4], Edn::Float(f64::INFINITY));
        assert_eq!(v[5], Edn::Float(1.5));
        assert_eq!(v[6], Edn::Int(7));
        assert_eq!(v[7], Edn::Vector(vec![]));
    }

    #[test]
    fn skipping_reads_what_parsing_reads() {
        let text = "{:a [1 \"]\" #{2} #x (3)] :b \\] :c ##NaN} :after";
        let mut p = Parser::new("t", text.as_bytes());
        p.skip_value(0).expect("skips");
        assert_eq!(
            p.next_form().expect("ok"),
            Some(Edn::Keyword("after".into()))
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = forms("{:a 1}\n{:b [1 2}\n").unwrap_err();
        assert!(e.to_string().starts_with("t:2:"), "{e}");
        assert!(forms(&"[".repeat(10_000)).is_err());
        let deep = "[".repeat(10_000);
        let mut p = Parser::new("t", deep.as_bytes());
        assert!(p.skip_value(0).is_err());
        assert!(forms("\"abc")
            .unwrap_err()
            .to_string()
            .contains("unterminated"));
        assert!(forms("{:a}")
            .unwrap_err()
            .to_string()
            .contains("odd number"));
    }
}
