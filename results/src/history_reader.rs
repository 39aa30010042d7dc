//! Reads a `history.jsonl` back.
//!
//! Every line must be an event (docs/history-format.md); a bad line is an
//! error naming the file and line. One exception: a final line with no
//! newline that does not parse is a write cut short by a crash, and is
//! dropped (and counted in [`History::truncated_tail`]) so the rest of the
//! run can still be checked.

use faultline_checker::history::Event;
use std::path::{Path, PathBuf};

/// A history read from disk.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
    /// True when a partial last line (a crash mid-write) was dropped.
    pub truncated_tail: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryReadError {
    #[error("cannot read history {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a history event: {message}")]
    BadLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}:{line}: index {index} does not follow {previous} (indexes must strictly increase)"
    )]
    BadIndex {
        path: PathBuf,
        line: usize,
        index: u64,
        previous: u64,
    },
}

/// Reads and validates a JSON Lines history.
pub fn read_history(path: &Path) -> Result<History, HistoryReadError> {
    let bytes = std::fs::read(path).map_err(|source| HistoryReadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_history(path, &bytes)
}

/// Parses history text; `path` only names the source in errors.
pub fn parse_history(path: &Path, bytes: &[u8]) -> Result<History, HistoryReadError> {
    let mut events = Vec::new();
    let mut truncated_tail = false;
    let ends_with_newline = bytes.last() == Some(&b'\n');
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    let count = lines.len();
    let mut previous: Option<u64> = None;
    for (i, line) in lines.into_iter().enumerate() {
        let last = i + 1 == count;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event: Event = match serde_json::from_slice(line) {
            Ok(e) => e,
            Err(e) => {
                if last && !ends_with_newline {
                    truncated_tail = true;
                    break;
                }
                return Err(HistoryReadError::BadLine {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        };
        if let Some(prev) = previous {
            if event.index <= prev {
                return Err(HistoryReadError::BadIndex {
                    path: path.to_path_buf(),
                    line: i + 1,
                    index: event.index,
                    previous: prev,
                });
            }
        }
        previous = Some(event.index);
        events.push(event);
    }
    Ok(History {
        events,
        truncated_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = r#"{"index":0,"time":1200,"process":3,"type":"invoke","f":"write","value":4,"node":"n2"}
{"index":1,"time":3400,"process":3,"type":"ok","f":"write","value":4,"node":"n2"}
{"index":2,"time":5000,"process":"nemesis","type":"info","f":"start-partition","value":{"shape":"majorities-ring","mechanism":"iptables"}}
"#;

    #[test]
    fn reads_the_documented_example() {
        let h = parse_history(Path::new("h"), GOOD.as_bytes()).expect("parses");
        assert_eq!(h.events.len(), 3);
        assert!(!h.truncated_tail);
        assert_eq!(h.events[2].f, "start-partition");
    }

    #[test]
    fn drops_a_partial_last_line_left_by_a_crash() {
        let text = format!("{GOOD}{{\"index\":3,\"time\":60");
        let h = parse_history(Path::new("h"), text.as_bytes()).expect("parses");
        assert_eq!(h.events.len(), 3);
        assert!(h.truncated_tail);
    }

    #[test]
    fn a_bad_line_in_the_middle_names_its_line() {
        let text = GOOD.replace("\"type\":\"ok\"", "\"type\":\"okay\"");
        let err = parse_history(Path::new("h.jsonl"), text.as_bytes()).expect_err("bad type");
        let msg = err.to_string();
        assert!(msg.starts_with("h.jsonl:2:"), "{msg}");
    }

    #[test]
    fn indexes_must_increase() {
        let text = GOOD.replace("\"index\":1", "\"index\":0");
        let err = parse_history(Path::new("h"), text.as_bytes()).expect_err("repeated index");
        assert!(
            matches!(err, HistoryReadError::BadIndex { line: 2, .. }),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_history(Path::new("fuzz"), &bytes);
        }

        #[test]
        fn random_text_never_panics(text in "\\PC{0,300}") {
            let _ = parse_history(Path::new("fuzz"), text.as_bytes());
        }
    }
}
