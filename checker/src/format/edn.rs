//! A small EDN reader, enough for Jepsen histories: nil, booleans,
//! integers (with an `N` suffix too), floats, strings, characters,
//! keywords, symbols, vectors, lists, maps, sets, comments, `#_` discards
//! and tagged literals (the tag is kept, e.g. `#jepsen.history.Op{…}`).
//! Nesting is bounded, so no input overflows the stack.
//!
//! [`parse_history`] turns a file that is one vector of op maps, or one op
//! map a line, into events. Jepsen's independent `[key value]` tuples
//! become the event's `key` and `value`.

use super::History;
use crate::error::HistoryError;
use crate::history::{Event, EventType, Process, Value};

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64, kept as its digits.
    BigInt(String),
    Float(f64),
    Str(String),
    Char(char),
    Keyword(String),
    Symbol(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    /// Entries in order, and the line the map starts on.
    Map(Vec<(Edn, Edn)>, usize),
    Tagged(String, Box<Edn>),
}

const MAX_DEPTH: usize = 200;

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    line: usize,
    source: &'a str,
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> HistoryError {
        HistoryError::Parse {
            source_name: self.source.to_string(),
            line: self.line,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() {
            match self.s[self.pos] {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b' ' | b'\t' | b'\r' | b',' => self.pos += 1,
                b';' => {
                    while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                _ => break,
            }
        }
    }

    fn is_delim(c: u8) -> bool {
        matches!(
            c,
            b' ' | b'\t'
                | b'\r'
                | b'\n'
                | b','
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'"'
                | b';'
        )
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while self.pos < self.s.len() && !Self::is_delim(self.s[self.pos]) {
            self.pos += 1;
        }
        // Delimiters are ASCII, so a token of a &str is valid UTF-8.
        std::str::from_utf8(&self.s[start..self.pos]).unwrap_or("")
    }

    fn value(&mut self, depth: usize) -> Result<Edn, HistoryError> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.skip_ws();
        let Some(&c) = self.s.get(self.pos) else {
            return Err(self.err("expected a value, found the end of the input"));
        };
        match c {
            b'[' => {
                self.pos += 1;
                Ok(Edn::Vector(self.seq(b']', depth)?))
            }
            b'(' => {
                self.pos += 1;
                Ok(Edn::List(self.seq(b')', depth)?))
            }
            b'{' => {
                let line = self.line;
                self.pos += 1;
                let items = self.seq(b'}', depth)?;
                if items.len() % 2 != 0 {
                    return Err(self.err(format!(
                        "map starting on line {line} has an odd number of forms"
                    )));
                }
                let mut it = items.into_iter();
                let mut entries = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Ok(Edn::Map(entries, line))
            }
            b'"' => self.string(),
            b')' | b']' | b'}' => Err(self.err(format!("unexpected {:?}", c as char))),
            b'#' => {
                self.pos += 1;
                match self.s.get(self.pos) {
                    Some(b'{') => {
                        self.pos += 1;
                        Ok(Edn::Set(self.seq(b'}', depth)?))
                    }
                    Some(b'_') => {
                        self.pos += 1;
                        self.value(depth + 1)?;
                        self.value(depth)
                    }
                    _ => {
                        let tag = self.token().to_string();
                        if tag.is_empty() {
                            return Err(self.err("expected a tag, a set or a discard after '#'"));
                        }
                        Ok(Edn::Tagged(tag, Box::new(self.value(depth + 1)?)))
                    }
                }
            }
            b'\\' => {
                self.pos += 1;
                let t = self.token();
                let ch = match t {
                    "newline" => '\n',
                    "space" => ' ',
                    "tab" => '\t',
                    "return" => '\r',
                    _ => {
                        let mut cs = t.chars();
                        match (cs.next(), cs.next()) {
                            (Some(ch), None) => ch,
                            // `\(` and friends: the delimiter itself.
                            (None, _) if self.pos < self.s.len() => {
                                let ch = self.s[self.pos] as char;
                                self.pos += 1;
                                ch
                            }
                            _ => return Err(self.err(format!("bad character literal \\{t}"))),
                        }
                    }
                };
                Ok(Edn::Char(ch))
            }
            _ => {
                let t = self.token();
                if t.is_empty() {
                    // A non-delimiter that token() did not take cannot
                    // happen; be safe anyway.
                    self.pos += 1;
                    return Err(self.err(format!("unexpected byte {c:#04x}")));
                }
                atom(t).ok_or_else(|| self.err(format!("cannot read {t:?}")))
            }
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Vec<Edn>, HistoryError> {
        let open_line = self.line;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.s.get(self.pos) {
                None => {
                    return Err(self.err(format!(
                        "expected {:?} to close the form opened on line {open_line}, found the end of the input",
                        close as char
                    )))
                }
                Some(&c) if c == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(&c @ (b')' | b']' | b'}')) => {
                    return Err(self.err(format!(
                        "expected {:?} to close the form opened on line {open_line}, found {:?}",
                        close as char, c as char
                    )))
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn string(&mut self) -> Result<Edn, HistoryError> {
        let start_line = self.line;
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return Err(self.err(format!("unterminated string starting on line {start_line}")));
            };
            self.pos += 1;
            match c {
                b'"' => break,
                b'\n' => {
                    self.line += 1;
                    out.push(c);
                }
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return Err(self.err("unterminated escape in a string"));
                    };
                    self.pos += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.pos..self.pos + 4)
                                .and_then(|h| std::str::from_utf8(h).ok());
                            let ch = hex
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32);
                            let Some(ch) = ch else {
                                return Err(self.err("bad \\u escape in a string"));
                            };
                            self.pos += 4;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => {
                            return Err(
                                self.err(format!("unknown escape \\{} in a string", other as char))
                            )
                        }
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out)
            .map(Edn::Str)
            .map_err(|_| self.err("string is not valid UTF-8"))
    }
}

fn atom(t: &str) -> Option<Edn> {
    match t {
        "nil" => return Some(Edn::Nil),
        "true" => return Some(Edn::Bool(true)),
        "false" => return Some(Edn::Bool(false)),
        _ => {}
    }
    if let Some(k) = t.strip_prefix(':') {
        return (!k.is_empty()).then(|| Edn::Keyword(k.to_string()));
    }
    let b = t.as_bytes();
    let numeric = b[0].is_ascii_digit()
        || (b.len() > 1 && (b[0] == b'-' || b[0] == b'+') && b[1].is_ascii_digit());
    if numeric {
        let digits = t.strip_suffix('N').unwrap_or(t);
        if let Ok(i) = digits.parse::<i64>() {
            return Some(Edn::Int(i));
        }
        if digits.bytes().skip(1).all(|c| c.is_ascii_digit()) {
            return Some(Edn::BigInt(digits.trim_start_matches('+').to_string()));
        }
        let f = t.strip_suffix('M').unwrap_or(t);
        return f.parse::<f64>().ok().map(Edn::Float);
    }
    Some(Edn::Symbol(t.to_string()))
}

/// Every top-level form of `text`, with the line each starts on.
pub fn parse_all(source_name: &str, text: &str) -> Result<Vec<(usize, Edn)>, HistoryError> {
    let mut p = Parser {
        s: text.as_bytes(),
        pos: 0,
        line: 1,
        source: source_name,
    };
    let mut out = Vec::new();
    loop {
        p.skip_ws();
        if p.pos >= p.s.len() {
            return Ok(out);
        }
        let line = p.line;
        out.push((line, p.value(0)?));
    }
}

/// EDN to JSON: keywords and symbols become strings (without the colon),
/// sets and lists become arrays, map keys become strings.
pub fn to_json(e: &Edn) -> Value {
    match e {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => Value::from(*i),
        Edn::BigInt(s) => s
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(s.clone())),
        Edn::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::String(f.to_string())),
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
            Value::Array(v.iter().map(to_json).collect())
        }
        Edn::Map(entries, _) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Edn::Tagged(_, inner) => to_json(inner),
    }
}

fn get<'a>(entries: &'a [(Edn, Edn)], name: &str) -> Option<&'a Edn> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Edn::Keyword(s) if s == name))
        .map(|(_, v)| v)
}

/// Reads a Jepsen EDN history: one vector of op maps, or op maps one after
/// another (one a line).
pub fn parse_history(source_name: &str, text: &str) -> Result<History, HistoryError> {
    let forms = parse_all(source_name, text)?;
    let maps: Vec<(usize, Edn)> = match forms.as_slice() {
        [(line, Edn::Vector(items))] => items
            .iter()
            .map(|e| match e {
                Edn::Map(_, l) => (*l, e.clone()),
                Edn::Tagged(_, inner) => match &**inner {
                    Edn::Map(_, l) => (*l, e.clone()),
                    _ => (*line, e.clone()),
                },
                _ => (*line, e.clone()),
            })
            .collect(),
        _ => forms,
    };
    let mut h = History::default();
    for (pos, (line, form)) in maps.iter().enumerate() {
        let bad = |message: String| HistoryError::Parse {
            source_name: source_name.to_string(),
            line: *line,
            message,
        };
        let entries = match form {
            Edn::Map(e, _) => e,
            Edn::Tagged(_, inner) => match &**inner {
                Edn::Map(e, _) => e,
                _ => return Err(bad("expected an op map {:process …, :type …, :f …}".into())),
            },
            _ => return Err(bad("expected an op map {:process …, :type …, :f …}".into())),
        };
        let process = match get(entries, "process") {
            Some(Edn::Int(p)) if *p >= 0 => Process::Client(*p as u64),
            Some(Edn::Keyword(k) | Edn::Str(k) | Edn::Symbol(k)) if k == "nemesis" => {
                Process::Nemesis
            }
            Some(other) => {
                return Err(bad(format!(
                    ":process: expected a non-negative integer or :nemesis, got {}",
                    to_json(other)
                )))
            }
            None => return Err(bad("missing :process".into())),
        };
        let kind = match get(entries, "type") {
            Some(Edn::Keyword(k) | Edn::Str(k)) => match k.as_str() {
                "invoke" => EventType::Invoke,
                "ok" => EventType::Ok,
                "fail" => EventType::Fail,
                "info" => EventType::Info,
                other => {
                    return Err(bad(format!(
                        ":type: expected :invoke, :ok, :fail or :info, got :{other}"
                    )))
                }
            },
            Some(other) => {
                return Err(bad(format!(
                    ":type: expected a keyword, got {}",
                    to_json(other)
                )))
            }
            None => return Err(bad("missing :type".into())),
        };
        let f = match get(entries, "f") {
            Some(Edn::Keyword(k) | Edn::Str(k) | Edn::Symbol(k)) => k.clone(),
            Some(other) => to_json(other).to_string(),
            None => return Err(bad("missing :f".into())),
        };
        let uint = |name: &str| match get(entries, name) {
            Some(Edn::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            None | Some(Edn::Nil) => Ok(None),
            Some(other) => Err(bad(format!(
                ":{name}: expected a non-negative integer, got {}",
                to_json(other)
            ))),
        };
        let index = uint("index")?.unwrap_or(pos as u64);
        let time = uint("time")?.unwrap_or(pos as u64);
        let (mut key, mut value) = (
            get(entries, "key").map(to_json),
            get(entries, "value").map(to_json).unwrap_or(Value::Null),
        );
        if let Some(Edn::Tagged(tag, inner)) = get(entries, "value") {
            if tag.ends_with("Tuple") {
                if let Edn::Map(e, _) = &**inner {
                    key = get(e, "key").map(to_json);
                    value = get(e, "value").map(to_json).unwrap_or(Value::Null);
                }
            }
        }
        let error = get(entries, "error").map(|e| match to_json(e) {
            Value::String(s) => s,
            other => other.to_string(),
        });
        let node = get(entries, "node").map(|e| match to_json(e) {
            Value::String(s) => s,
            other => other.to_string(),
        });
        h.events.push(Event {
            index,
            time,
            process,
            kind,
            f,
            key,
            value,
            node,
            error,
        });
        h.lines.push(*line);
    }
    split_independent_tuples(&mut h.events);
    Ok(h)
}

/// Jepsen's independent histories carry `[key value]` tuples as values.
/// When no event has a key, every client value is a pair, and some read
/// invokes a pair (a plain register's read invokes `nil`), the pairs are
/// split into key and value.
fn split_independent_tuples(events: &mut [Event]) {
    let clients = || events.iter().filter(|e| e.process != Process::Nemesis);
    let pair = |v: &Value| v.as_array().is_some_and(|a| a.len() == 2);
    let all_pairs = clients().all(|e| e.key.is_none() && pair(&e.value));
    let read_pair =
        clients().any(|e| e.kind == EventType::Invoke && e.f != "cas" && pair(&e.value));
    if !all_pairs || !read_pair || clients().next().is_none() {
        return;
    }
    for e in events.iter_mut().filter(|e| e.process != Process::Nemesis) {
        if let Value::Array(mut a) = std::mem::take(&mut e.value) {
            let v = a.pop().expect("a pair");
            let k = a.pop().expect("a pair");
            e.key = Some(k);
            e.value = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_edn_values() {
        let forms = parse_all("t", "{:a 1, :b [nil true \"x\\\"y\" :k -3 2.5 12345678901234567890N]} #{1 2} (3) #_ 9 #foo/bar {:x 1}").expect("valid");
        assert_eq!(forms.len(), 4);
        let j = to_json(&forms[0].1);
        assert_eq!(
            j,
            serde_json::json!({"a": 1, "b": [null, true, "x\"y", "k", -3, 2.5, 12345678901234567890u64]})
        );
        assert_eq!(to_json(&forms[1].1), serde_json::json!([1, 2]));
        assert_eq!(to_json(&forms[3].1), serde_json::json!({"x": 1}));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_all("h.edn", "{:a 1}\n{:b [1 2}\n").unwrap_err();
        assert!(e.to_string().starts_with("h.edn:2:"), "{e}");
        let deep = "[".repeat(10_000);
        assert!(parse_all("deep", &deep).is_err());
        let e = parse_history(
            "h.edn",
            "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :done, :f :read}",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("h.edn:2:") && e.to_string().contains(":type"),
            "{e}"
        );
    }

    #[test]
    fn reads_a_vector_history_with_independent_tuples() {
        let text = "[{:type :invoke, :f :read, :value [3 nil], :process 0, :time 10, :index 0}\n {:type :ok, :f :read, :value [3 5], :process 0, :time 20, :index 1}\n {:type :info, :f :start, :value nil, :process :nemesis, :time 30, :index 2}]";
        let h = parse_history("h.edn", text).expect("valid");
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.events[1].key, Some(Value::from(3)));
        assert_eq!(h.events[1].value, Value::from(5));
        assert_eq!(h.events[1].time, 20);
        assert_eq!(h.lines, vec![1, 2, 3]);
        assert_eq!(h.events[2].process, Process::Nemesis);
    }

    #[test]
    fn a_plain_cas_register_is_not_taken_for_tuples() {
        let text = "{:process 0, :type :invoke, :f :read, :value nil}\n{:process 0, :type :ok, :f :read, :value [1 2]}";
        let h = parse_history("h", text).expect("valid");
        assert_eq!(h.events[1].key, None);
    }
}
