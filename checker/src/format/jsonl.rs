//! The native format: JSON Lines, one [`Event`] a line
//! (docs/history-format.md). Blank lines are skipped.

use super::History;
use crate::error::HistoryError;
use crate::history::Event;

pub fn parse(source_name: &str, text: &str) -> Result<History, HistoryError> {
    let mut h = History::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let ev: Event = serde_json::from_str(line).map_err(|e| HistoryError::Parse {
            source_name: source_name.to_string(),
            line: i + 1,
            message: format!(
                "expected an event object (index, time, process, type, f, value): {e}"
            ),
        })?;
        if let Some(prev) = h.events.last() {
            if ev.index <= prev.index {
                return Err(HistoryError::Parse {
                    source_name: source_name.to_string(),
                    line: i + 1,
                    message: format!(
                        "index {} after index {}: indices must strictly increase",
                        ev.index, prev.index
                    ),
                });
            }
        }
        h.events.push(ev);
        h.lines.push(i + 1);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_events_and_names_the_bad_line() {
        let text = "{\"index\":0,\"time\":1,\"process\":3,\"type\":\"invoke\",\"f\":\"write\",\"value\":4}\n\n{\"index\":1,\"time\":2,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-kill\"}\n";
        let h = parse("h.jsonl", text).expect("valid");
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.lines, vec![1, 3]);
        let e = parse(
            "h.jsonl",
            "{\"index\":0,\"time\":1,\"process\":-1,\"type\":\"invoke\",\"f\":\"w\"}",
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("h.jsonl:1:"), "{msg}");
        assert!(msg.contains("negative"), "{msg}");
        let e = parse("h.jsonl", "{\"index\":1,\"time\":1,\"process\":1,\"type\":\"invoke\",\"f\":\"w\"}\n{\"index\":1,\"time\":1,\"process\":2,\"type\":\"invoke\",\"f\":\"w\"}").unwrap_err();
        assert!(e.to_string().contains("h.jsonl:2:"), "{e}");
    }
}
