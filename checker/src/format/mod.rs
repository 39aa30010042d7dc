//! History importers: the native JSON Lines, Jepsen's EDN (one vector of
//! maps, or one map a line, which also covers Porcupine's kv logs) and
//! Jepsen's console logs. [`read_history`] detects the format from the
//! text unless one is forced.
//!
//! Every importer returns events and, for each, the line it came from, so
//! later errors (a completion without an invoke) can name the line. No
//! input makes an importer panic: malformed input is a [`HistoryError`]
//! naming the source, the line and what was expected.

pub mod edn;
pub mod jepsen_log;
pub mod jsonl;

use crate::error::HistoryError;
use crate::history::Event;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The formats a history may come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// faultline's history.jsonl (docs/history-format.md).
    Jsonl,
    /// Jepsen's history.edn: one vector of op maps, or one map a line.
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

/// Guesses the format from the first meaningful line.
pub fn detect(text: &str) -> Option<Format> {
    for line in text.lines() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with(';') {
            continue;
        }
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
        if t.starts_with('[') || t.starts_with('#') {
            return Some(Format::Edn);
        }
        return None;
    }
    None
}

/// Reads a history from text. `source_name` (a file name) appears in
/// every error. An empty text is [`HistoryError::Empty`].
pub fn read_history(
    source_name: &str,
    text: &str,
    format: Option<Format>,
) -> Result<History, HistoryError> {
    let format = match format {
        Some(f) => f,
        None => match detect(text) {
            Some(f) => f,
            None if text.trim().is_empty() => {
                return Err(HistoryError::Empty(source_name.to_string()))
            }
            None => {
                let (line, first) = text
                    .lines()
                    .enumerate()
                    .find(|(_, l)| !l.trim().is_empty())
                    .map(|(i, l)| (i + 1, l))
                    .unwrap_or((1, ""));
                return Err(HistoryError::Parse {
                    source_name: source_name.to_string(),
                    line,
                    message: format!(
                        "cannot tell the format from {:?}: expected a JSON object (jsonl), an EDN map or vector (edn) or a Jepsen log line (jepsen-log); use --format",
                        first.chars().take(60).collect::<String>()
                    ),
                });
            }
        },
    };
    let mut h = match format {
        Format::Jsonl => jsonl::parse(source_name, text)?,
        Format::Edn => edn::parse_history(source_name, text)?,
        Format::JepsenLog => jepsen_log::parse(source_name, text)?,
    };
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
        assert_eq!(
            detect("INFO  jepsen.util - 4\t:invoke\t:read\tnil"),
            Some(Format::JepsenLog)
        );
        assert_eq!(detect("hello"), None);
        assert!(matches!(
            read_history("e.log", "", None),
            Err(HistoryError::Empty(_))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        #[test]
        fn no_bytes_make_any_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = read_history("fuzz", &text, None);
            for f in Format::ALL {
                let _ = read_history("fuzz", &text, Some(f));
            }
        }

        #[test]
        fn no_edn_like_text_makes_a_parser_panic(s in "[\\[\\]{}():#\"\\\\ a-z0-9,.\\-+\n]{0,120}") {
            for f in Format::ALL {
                let _ = read_history("fuzz", &s, Some(f));
            }
            let _ = edn::parse_all("fuzz", &s);
        }
    }
}
