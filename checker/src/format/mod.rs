//! History importers: the native JSON Lines, Jepsen's and Knossos's EDN
//! (every shape: see [`edn`]) and Jepsen's console logs. The format is
//! detected from the first meaningful line unless one is forced.
//!
//! Every importer streams: [`read_events`] hands each event, with the line
//! it came from, to a sink as the input is read, so a history of any size
//! is read in the memory of one event (plus what the sink keeps;
//! [`crate::Operations::read`] pairs them as they come). No input makes
//! an importer panic. Malformed input is a [`HistoryError`] naming the
//! source, the line and what was expected; input that is no history at all
//! (a README, a binary) is [`HistoryError::NotAHistory`], quoting its first
//! line, and blank input is [`HistoryError::Empty`].

pub mod edn;
pub mod input;
pub mod jepsen_log;
pub mod jsonl;

use crate::error::HistoryError;
use crate::history::Event;
use input::Input;
use serde::Serialize;
use std::fmt;
use std::io::Read;
use std::str::FromStr;

/// The formats a history may come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// faultline's history.jsonl (docs/history-format.md).
    Jsonl,
    /// Jepsen's history.edn and Knossos's histories: op maps one a line,
    /// or in a vector, list or seq; plain or tagged records.
    Edn,
    /// Jepsen's console log (`INFO  jepsen.util - 4 :invoke :read nil`).
    JepsenLog,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Jsonl, Format::Edn, Format::JepsenLog];
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown format {s:?}; expected one of: jsonl, edn, jepsen-log"))
    }
}

/// A parsed history: its events and the source line of each.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
    pub lines: Vec<usize>,
    pub format: Option<Format>,
}

/// Guesses the format from the first meaningful line (blank lines and EDN
/// comments skipped); `None` when it looks like no history.
pub fn detect(text: &str) -> Option<Format> {
    let (_, line) = first_line(text)?;
    let t = line.trim_start();
    if t.contains("jepsen.util") || t.starts_with("INFO") {
        return Some(Format::JepsenLog);
    }
    if let Some(rest) = t.strip_prefix('{') {
        let rest = rest.trim_start();
        return Some(if rest.starts_with('"') || rest.starts_with('}') {
            Format::Jsonl
        } else {
            Format::Edn
        });
    }
    if t.starts_with(['[', '(', '#']) {
        return Some(Format::Edn);
    }
    None
}

/// The first line that is neither blank nor an EDN comment, with its
/// number.
fn first_line(text: &str) -> Option<(usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .find(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with(';')
        })
}

/// How much of the input detection looks at.
const SNIFF_BYTES: usize = 64 << 10;

/// Reads a history from a stream, handing each event and its source line
/// to `sink` as it is read. `source_name` (a file name) appears in every
/// error. Returns the format read.
pub fn read_events<R: Read>(
    source_name: &str,
    reader: R,
    format: Option<Format>,
    mut sink: impl FnMut(Event, usize) -> Result<(), HistoryError>,
) -> Result<Format, HistoryError> {
    let mut input = Input::new(source_name, reader);
    let start = String::from_utf8_lossy(input.lookahead(SNIFF_BYTES)?).into_owned();
    let Some((first_line_number, first)) = first_line(&start) else {
        return Err(HistoryError::Empty(source_name.to_string()));
    };
    let not_a_history = |line: usize, reason: String| HistoryError::NotAHistory {
        source_name: source_name.to_string(),
        line,
        first_line: first.trim().chars().take(80).collect(),
        reason,
    };
    let format = match format.or_else(|| detect(&start)) {
        Some(f) => f,
        None => {
            return Err(not_a_history(
                first_line_number,
                "expected faultline JSON Lines, Jepsen EDN or a Jepsen console log (--format forces one)".into(),
            ))
        }
    };
    let mut events = 0u64;
    let result = {
        let mut counted = |event: Event, line: usize| {
            events += 1;
            sink(event, line)
        };
        match format {
            Format::Jsonl => jsonl::read(&mut input, &mut counted),
            Format::Edn => edn_events(input, &mut counted),
            Format::JepsenLog => jepsen_log::read(&mut input, &mut counted),
        }
    };
    match result {
        // Before the first event, a parse error means the file is not a
        // history of this format at all; say that, not the parser's detail.
        Err(HistoryError::Parse { line, message, .. }) if events == 0 => Err(not_a_history(
            line,
            format!("not {} ({message})", format.article_name()),
        )),
        Err(e) => Err(e),
        Ok(()) if events == 0 => Err(match format {
            Format::Edn => HistoryError::Empty(source_name.to_string()),
            _ => not_a_history(
                first_line_number,
                format!("no operation in it as {}", format.article_name()),
            ),
        }),
        Ok(()) => Ok(format),
    }
}

impl Format {
    fn article_name(self) -> &'static str {
        match self {
            Format::Jsonl => "faultline JSON Lines",
            Format::Edn => "a Jepsen EDN history",
            Format::JepsenLog => "a Jepsen console log",
        }
    }
}

fn edn_events<R: Read>(
    input: Input<R>,
    sink: &mut impl FnMut(Event, usize) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    let mut reader = edn::OpReader::from_input(input);
    let mut position = 0u64;
    while let Some(op) = reader.next_op()? {
        let line = op.line;
        sink(op.into_event(position), line)?;
        position += 1;
    }
    Ok(())
}

/// Reads a history held in memory. See [`read_events`].
pub fn read_history(
    source_name: &str,
    text: &str,
    format: Option<Format>,
) -> Result<History, HistoryError> {
    let mut h = History::default();
    let format = read_events(source_name, text.as_bytes(), format, |event, line| {
        h.events.push(event);
        h.lines.push(line);
        Ok(())
    })?;
    h.format = Some(format);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn detects_each_format() {
        assert_eq!(detect("{\"index\":0}"), Some(Format::Jsonl));
        assert_eq!(detect("\n{:process 0, :type :invoke}"), Some(Format::Edn));
        assert_eq!(detect("[{:process 0}]"), Some(Format::Edn));
        assert_eq!(detect("; a comment\n({:process 0})"), Some(Format::Edn));
        assert_eq!(detect("#jepsen.history.Op{:process 0}"), Some(Format::Edn));
        assert_eq!(
            detect("INFO  jepsen.util - 4\t:invoke\t:read\tnil"),
            Some(Format::JepsenLog)
        );
        assert_eq!(detect("hello"), None);
    }

    #[test]
    fn blank_input_is_empty_and_no_history_says_so_with_its_first_line() {
        for blank in ["", "\n  \n", "; only a comment\n"] {
            let e = read_history("e.log", blank, None).unwrap_err();
            assert!(matches!(e, HistoryError::Empty(_)), "{blank:?}: {e}");
        }
        let e = read_history("e.edn", "[]", None).unwrap_err();
        assert!(matches!(e, HistoryError::Empty(_)), "{e}");
        let cases = [
            (
                "README.md",
                "\n# faultline\n\nA test harness.\n",
                "# faultline",
                2,
            ),
            ("a.bin", "\u{7f}ELF\u{2}\u{1}\u{0}garbage", "\u{7f}ELF", 1),
            ("data.json", "[1, 2, 3]\n", "[1, 2, 3]", 1),
            ("conf.json", "{\"name\": \"x\"}\n", "{\"name\": \"x\"}", 1),
            ("app.log", "INFO starting\nINFO done\n", "INFO starting", 1),
        ];
        for (name, text, first, line) in cases {
            let e = read_history(name, text, None).unwrap_err();
            let HistoryError::NotAHistory {
                line: l,
                first_line,
                ..
            } = &e
            else {
                panic!("{name}: {e}");
            };
            assert!(first_line.starts_with(first), "{name}: {e}");
            assert_eq!(*l, line, "{name}: {e}");
            assert!(e.to_string().contains("not a history"), "{e}");
        }
        // Forced, too: a README is no EDN history.
        let e = read_history("README.md", "# faultline\n", Some(Format::Edn)).unwrap_err();
        assert!(e.to_string().contains("not a history"), "{e}");
    }

    #[test]
    fn a_bad_line_after_good_ones_is_named_not_called_no_history() {
        let text = "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok :f}\n";
        let e = read_history("h.edn", text, None).unwrap_err();
        assert!(matches!(e, HistoryError::Parse { line: 2, .. }), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn no_bytes_make_any_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = read_events("fuzz", &bytes[..], None, |_, _| Ok(()));
            for f in Format::ALL {
                let _ = read_events("fuzz", &bytes[..], Some(f), |_, _| Ok(()));
            }
        }

        #[test]
        fn no_edn_like_text_makes_a_parser_panic(s in "[\\[\\]{}():#_\"\\\\ a-z0-9,.\\-+;\n]{0,160}") {
            for f in Format::ALL {
                let _ = read_history("fuzz", &s, Some(f));
            }
            let _ = edn::parse_all("fuzz", &s);
            let mut p = edn::Parser::new("fuzz", s.as_bytes());
            let _ = p.skip_value(0);
        }

        #[test]
        fn op_maps_with_random_fields_never_panic(
            fields in proptest::collection::vec("(:process|:type|:f|:value|:index|:time|:key|:x) (0|-1|:ok|:invoke|:nemesis|nil|\\[1 2\\]|#\\{\\}|\"s\"|#t \\{\\})", 0..8)
        ) {
            let text = format!("{{{}}}", fields.join(" "));
            let _ = read_history("fuzz", &text, Some(Format::Edn));
        }
    }
}
