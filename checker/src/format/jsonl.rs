//! The native format: JSON Lines, one [`Event`] a line
//! (docs/history-format.md). Blank lines are skipped; indices must
//! strictly increase.

use super::input::Input;
use crate::error::HistoryError;
use crate::history::Event;
use std::io::Read;

/// Reads every event, handing each with its line to `sink`.
pub fn read<R: Read>(
    input: &mut Input<R>,
    sink: &mut impl FnMut(Event, usize) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    let mut previous: Option<u64> = None;
    loop {
        let number = input.line;
        let Some(line) = input.line()? else {
            return Ok(());
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event: Event = serde_json::from_slice(line).map_err(|e| {
            input.error_at(
                number,
                format!("expected an event object (index, time, process, type, f, value): {e}"),
            )
        })?;
        if let Some(prev) = previous.filter(|&p| event.index <= p) {
            return Err(input.error_at(
                number,
                format!(
                    "index {} after index {prev}: indices must strictly increase",
                    event.index
                ),
            ));
        }
        previous = Some(event.index);
        sink(event, number)?;
    }
}

#[cfg(test)]
mod tests {
    use crate::format::{read_history, Format};

    fn parse(name: &str, text: &str) -> Result<crate::format::History, crate::HistoryError> {
        read_history(name, text, Some(Format::Jsonl))
    }

    #[test]
    fn reads_events_and_names_the_bad_line() {
        let first = "{\"index\":0,\"time\":1,\"process\":3,\"type\":\"invoke\",\"f\":\"write\",\"value\":4}";
        let text = format!("{first}\n\n{{\"index\":1,\"time\":2,\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-kill\"}}\r\n");
        let h = parse("h.jsonl", &text).expect("valid");
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.lines, vec![1, 3]);
        let e = parse(
            "h.jsonl",
            &format!("{first}\n{{\"index\":1,\"time\":1,\"process\":-1,\"type\":\"invoke\",\"f\":\"w\"}}"),
        )
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("h.jsonl:2:"), "{msg}");
        assert!(msg.contains("negative"), "{msg}");
        let e = parse("h.jsonl", &format!("{first}\n{first}")).unwrap_err();
        assert!(e.to_string().contains("h.jsonl:2:"), "{e}");
    }
}
