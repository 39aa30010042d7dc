//! Jepsen and Knossos histories in EDN, one op at a time.
//!
//! Every shape they have been written in: one op map a line (Jepsen's
//! history.edn), a vector, a list or a seq of op maps (Knossos's data,
//! `pr` of a history), tagged records (`#jepsen.history.Op{…}`), with
//! comments and discards anywhere. An op map is read field by field: the
//! fields a history needs are taken, the rest (`:exception` traces, …)
//! skipped without being built, so memory stays that of one op.

use super::parser::{is_delimiter, Parser};
use super::value::Edn;
use crate::error::HistoryError;
use crate::format::input::Input;
use crate::history::{Event, EventType, Process, Value};
use std::io::Read;

/// One op of an EDN history, its fields typed where a history says what
/// they are, the rest (`value`, `key`, `error`, `node`) as EDN.
#[derive(Clone, Debug, PartialEq)]
pub struct EdnOp {
    /// The line the op map starts on.
    pub line: usize,
    pub process: Process,
    pub kind: EventType,
    /// `:f`, by name (`:read` is "read").
    pub f: String,
    pub index: Option<u64>,
    pub time: Option<u64>,
    pub key: Option<Edn>,
    /// `:value`, as written (`Edn::Nil` when absent).
    pub value: Edn,
    pub error: Option<Edn>,
    pub node: Option<Edn>,
}

impl EdnOp {
    /// The op as a history event. `position` (its place in the history)
    /// stands in for a missing `:index` and `:time`. A value written as
    /// Jepsen's independent tuple record (`#jepsen.independent.Tuple{:key
    /// k :value v}`) becomes the event's key and value.
    pub fn into_event(self, position: u64) -> Event {
        let (key, value) = match self.value {
            Edn::Tagged(tag, inner) if tag.ends_with("Tuple") && self.key.is_none() => match *inner
            {
                Edn::Map(entries) => {
                    let mut key = None;
                    let mut value = Value::Null;
                    for (k, v) in entries {
                        match k.name() {
                            Some("key") => key = Some(v.into_json()),
                            Some("value") => value = v.into_json(),
                            _ => {}
                        }
                    }
                    (key, value)
                }
                other => (None, other.into_json()),
            },
            value => (self.key.map(Edn::into_json), value.into_json()),
        };
        Event {
            index: self.index.unwrap_or(position),
            time: self.time.unwrap_or(position),
            process: self.process,
            kind: self.kind,
            f: self.f,
            key,
            value,
            node: self.node.map(Edn::into_text),
            error: self.error.map(Edn::into_text),
        }
    }
}

/// Where the reader is in the file's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// Between top-level forms.
    Top,
    /// Inside a top-level vector or list of ops, closed by this byte.
    InSequence { close: u8, open_line: usize },
}

/// Reads the ops of an EDN history from a stream.
///
/// ```
/// use faultline_checker::format::edn::OpReader;
/// let text = "[{:process 0, :type :invoke, :f :txn, :value [[:append :x 1]]}]";
/// let mut reader = OpReader::new("history.edn", text.as_bytes());
/// let op = reader.next_op()?.expect("one op");
/// assert_eq!(op.f, "txn");
/// assert_eq!(op.value.to_string(), "[[:append :x 1]]");
/// assert!(reader.next_op()?.is_none());
/// # Ok::<(), faultline_checker::HistoryError>(())
/// ```
pub struct OpReader<R> {
    parser: Parser<R>,
    level: Level,
}

impl<R: Read> OpReader<R> {
    pub fn new(source_name: &str, reader: R) -> OpReader<R> {
        OpReader::from_input(Input::new(source_name, reader))
    }

    pub fn from_input(input: Input<R>) -> OpReader<R> {
        OpReader {
            parser: Parser::from_input(input),
            level: Level::Top,
        }
    }

    /// The next op; `None` after the last.
    pub fn next_op(&mut self) -> Result<Option<EdnOp>, HistoryError> {
        loop {
            let Some(c) = self.parser.skip_space(0)? else {
                return match self.level {
                    Level::Top => Ok(None),
                    Level::InSequence { close, open_line } => {
                        Err(self.parser.unclosed(close, open_line, None))
                    }
                };
            };
            match (self.level, c) {
                (Level::Top, b'[' | b'(') => {
                    let open_line = self.parser.line();
                    self.parser.input.bump();
                    let close = if c == b'[' { b']' } else { b')' };
                    self.level = Level::InSequence { close, open_line };
                }
                (Level::InSequence { close, .. }, _) if c == close => {
                    self.parser.input.bump();
                    self.level = Level::Top;
                }
                _ => return self.op().map(Some),
            }
        }
    }

    /// One op map, plain or tagged (at its first byte).
    fn op(&mut self) -> Result<EdnOp, HistoryError> {
        let line = self.parser.line();
        let tagged = self.parser.input.lookahead(2)?;
        if tagged.first() == Some(&b'#') && !matches!(tagged.get(1), Some(b'{' | b'#')) {
            // A record: `#jepsen.history.Op{…}`; the tag says nothing more.
            self.parser.input.bump();
            self.parser.input.take_while(|c| !is_delimiter(c))?;
            self.parser.skip_space(0)?;
        }
        if self.parser.input.peek()? != Some(b'{') {
            let found = self.parser.value(1)?;
            let shown: String = found.to_string().chars().take(60).collect();
            return Err(self.parser.error(format!(
                "expected an op map {{:process …, :type …, :f …}}, found {shown}"
            )));
        }
        self.parser.input.bump();
        let mut fields = Fields::default();
        loop {
            match self.parser.skip_space(1)? {
                None => return Err(self.parser.unclosed(b'}', line, None)),
                Some(b'}') => {
                    self.parser.input.bump();
                    break;
                }
                Some(_) => self.field(&mut fields, line)?,
            }
        }
        fields
            .into_op(line)
            .map_err(|message| self.parser.input.error_at(line, message))
    }

    /// One `key value` entry of an op map.
    fn field(&mut self, fields: &mut Fields, open_line: usize) -> Result<(), HistoryError> {
        let name = if self.parser.input.peek()? == Some(b':') {
            self.parser.input.bump();
            Name::of(self.parser.input.take_while(|c| !is_delimiter(c))?)
        } else {
            match self.parser.value(2)? {
                Edn::Str(s) | Edn::Symbol(s) => Name::of(s.as_bytes()),
                _ => Name::Other,
            }
        };
        match self.parser.skip_space(1)? {
            None | Some(b'}') => {
                return Err(self.parser.error(format!(
                    "the op map opened on line {open_line} has a key without a value"
                )))
            }
            Some(_) => {}
        }
        let slot = match name {
            Name::Process => &mut fields.process,
            Name::Type => &mut fields.kind,
            Name::F => &mut fields.f,
            Name::Index => &mut fields.index,
            Name::Time => &mut fields.time,
            Name::Key => &mut fields.key,
            Name::Value => &mut fields.value,
            Name::Error => &mut fields.error,
            Name::Node => &mut fields.node,
            Name::Other => return self.parser.skip_value(2),
        };
        *slot = Some(self.parser.value(2)?);
        Ok(())
    }
}

impl<R: Read> Iterator for OpReader<R> {
    type Item = Result<EdnOp, HistoryError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_op().transpose()
    }
}

/// The fields of an op map a history uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    Process,
    Type,
    F,
    Index,
    Time,
    Key,
    Value,
    Error,
    Node,
    Other,
}

impl Name {
    fn of(name: &[u8]) -> Name {
        match name {
            b"process" => Name::Process,
            b"type" => Name::Type,
            b"f" => Name::F,
            b"index" => Name::Index,
            b"time" => Name::Time,
            b"key" => Name::Key,
            b"value" => Name::Value,
            b"error" => Name::Error,
            b"node" => Name::Node,
            _ => Name::Other,
        }
    }
}

/// An op map's fields as read, before they are checked.
#[derive(Default)]
struct Fields {
    process: Option<Edn>,
    kind: Option<Edn>,
    f: Option<Edn>,
    index: Option<Edn>,
    time: Option<Edn>,
    key: Option<Edn>,
    value: Option<Edn>,
    error: Option<Edn>,
    node: Option<Edn>,
}

impl Fields {
    fn into_op(self, line: usize) -> Result<EdnOp, String> {
        let process = match self.process {
            Some(Edn::Int(p)) if p >= 0 => Process::Client(p as u64),
            Some(ref named) if named.name() == Some("nemesis") => Process::Nemesis,
            Some(other) => {
                return Err(format!(
                    ":process: expected a non-negative integer or :nemesis, got {other}"
                ))
            }
            None => return Err("missing :process".into()),
        };
        let kind = match self.kind.as_ref().and_then(Edn::name) {
            Some("invoke") => EventType::Invoke,
            Some("ok") => EventType::Ok,
            Some("fail") => EventType::Fail,
            Some("info") => EventType::Info,
            _ => {
                return Err(match self.kind {
                    Some(other) => {
                        format!(":type: expected :invoke, :ok, :fail or :info, got {other}")
                    }
                    None => "missing :type".into(),
                })
            }
        };
        let f = match self.f {
            Some(Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s)) => s,
            Some(other) => other.to_string(),
            None if process == Process::Nemesis => String::new(),
            None => return Err("missing :f".into()),
        };
        let count = |name: &str, v: Option<Edn>| match v {
            Some(Edn::Int(i)) if i >= 0 => Ok(Some(i as u64)),
            None | Some(Edn::Nil) => Ok(None),
            Some(other) => Err(format!(
                ":{name}: expected a non-negative integer, got {other}"
            )),
        };
        Ok(EdnOp {
            line,
            process,
            kind,
            f,
            index: count("index", self.index)?,
            time: count("time", self.time)?,
            key: self.key,
            value: self.value.unwrap_or(Edn::Nil),
            error: self.error,
            node: self.node,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(text: &str) -> Result<Vec<EdnOp>, HistoryError> {
        OpReader::new("h.edn", text.as_bytes()).collect()
    }

    const INVOKE: &str = "{:process 0, :type :invoke, :f :read, :value nil}";
    const OK: &str = "{:process 0, :type :ok, :f :read, :value 3}";

    #[test]
    fn every_shape_gives_the_same_ops() {
        let lines = format!("{INVOKE}\n{OK}\n");
        let shapes = [
            lines.clone(),
            format!("[{INVOKE}\n {OK}]"),
            format!("({INVOKE}\n {OK})"),
            format!("; a comment\n[#_ {{:junk 1}} #jepsen.history.Op{INVOKE}\n #jepsen.history.Op {OK} ; end\n]\n"),
            format!("#_[1 2]\n{INVOKE} #_ {OK}\n{OK}"),
        ];
        for text in &shapes {
            let got = ops(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(got.len(), 2, "{text}");
            assert_eq!(got[0].kind, EventType::Invoke);
            assert_eq!(got[1].value, Edn::Int(3));
            assert_eq!(got[1].f, "read");
        }
        assert_eq!(ops(&lines).expect("ok")[1].line, 2);
    }

    #[test]
    fn other_fields_are_skipped_and_nemesis_ops_kept() {
        let text = "{:index 7, :time 9, :type :info, :process :nemesis, :f :start-partition, \
                    :value #{\"n1\" \"n2\"}, :exception {:via [{:type java.io.IOException}] :trace [[a b \"c.clj\" 1]]}, \
                    :error [:timeout \"slow\"], :node \"n3\", \"extra\" #object[java.lang.Object 0x1 \"x\"]}";
        let got = ops(text).expect("ok");
        assert_eq!(got.len(), 1);
        let op = got.into_iter().next().expect("one");
        assert_eq!(op.process, Process::Nemesis);
        assert_eq!((op.index, op.time), (Some(7), Some(9)));
        let ev = op.into_event(0);
        assert_eq!(ev.value, serde_json::json!(["n1", "n2"]));
        assert_eq!(ev.error.as_deref(), Some("[:timeout \"slow\"]"));
        assert_eq!(ev.node.as_deref(), Some("n3"));
    }

    #[test]
    fn a_tuple_record_becomes_key_and_value() {
        let text = "{:process 1, :type :ok, :f :write, :value #jepsen.independent.Tuple{:key :k1, :value 5}}";
        let ev = ops(text).expect("ok").remove(0).into_event(4);
        assert_eq!(ev.key, Some(Value::from("k1")));
        assert_eq!(ev.value, Value::from(5));
        assert_eq!((ev.index, ev.time), (4, 4));
    }

    #[test]
    fn bad_ops_name_the_line_and_the_field() {
        let e = ops(&format!("{INVOKE}\n{{:process 0, :type :done, :f :read}}")).unwrap_err();
        assert!(
            e.to_string().starts_with("h.edn:2:") && e.to_string().contains(":type"),
            "{e}"
        );
        let e = ops("[1 2]").unwrap_err();
        assert!(e.to_string().contains("expected an op map"), "{e}");
        let e = ops(&format!("[{INVOKE}")).unwrap_err();
        assert!(
            e.to_string().contains("close the form opened on line 1"),
            "{e}"
        );
        let e = ops("{:process -1, :type :ok, :f :read}").unwrap_err();
        assert!(e.to_string().contains(":process"), "{e}");
        let e = ops("{:process 1, :type :ok, :f :read, :value}").unwrap_err();
        assert!(e.to_string().contains("without a value"), "{e}");
    }
}
