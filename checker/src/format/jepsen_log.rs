//! Jepsen's console logs, as in the Porcupine and Horn–Kroening test data:
//!
//! ```text
//! INFO  jepsen.util - 4	:invoke	:read	nil
//! INFO  jepsen.util - 2	:fail	:cas	[2 4]
//! INFO  jepsen.util - 1	:info	:write	:timed-out
//! ```
//!
//! Fields are separated by tabs or runs of spaces; the value is the rest of
//! the line, read as EDN. Lines that are not op lines are ignored. In these
//! logs `:fail :cas` means the compare ran and did not match: it becomes an
//! `ok` completion with the value `false`. A `:fail` whose value is
//! `:timed-out` is unknown and becomes `info`.

use super::edn::{parse_all, to_json};
use super::History;
use crate::error::HistoryError;
use crate::history::{Event, EventType, Process, Value};

/// The first field of `s` (separated by tabs or runs of spaces) and the rest.
fn next_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

pub fn parse(source_name: &str, text: &str) -> Result<History, HistoryError> {
    let mut h = History::default();
    for (i, raw) in text.lines().enumerate() {
        let Some((_, rest)) = raw.split_once("jepsen.util - ") else {
            continue;
        };
        let (p, rest) = next_field(rest);
        let (kind, rest) = next_field(rest);
        let (f, rest) = next_field(rest);
        let value_text = rest.trim();
        // Nemesis lines and anything else that is not a client op are ignored.
        let Ok(process) = p.parse::<u64>() else {
            continue;
        };
        let bad = |message: String| HistoryError::Parse {
            source_name: source_name.to_string(),
            line: i + 1,
            message,
        };
        let kind = match kind.trim() {
            ":invoke" => EventType::Invoke,
            ":ok" => EventType::Ok,
            ":fail" => EventType::Fail,
            ":info" => EventType::Info,
            _ => continue,
        };
        let f = f.trim().strip_prefix(':').unwrap_or(f.trim()).to_string();
        let value = if value_text.is_empty() {
            Value::Null
        } else {
            let forms = parse_all(source_name, value_text)
                .map_err(|e| bad(format!("value {value_text:?}: {e}")))?;
            match forms.as_slice() {
                [(_, v)] => to_json(v),
                _ => return Err(bad(format!("expected one EDN value, got {value_text:?}"))),
            }
        };
        let timed_out = value.as_str() == Some("timed-out");
        let (kind, value) = match kind {
            EventType::Fail if timed_out => (EventType::Info, Value::Null),
            EventType::Fail if f == "cas" => (EventType::Ok, Value::Bool(false)),
            EventType::Info => (EventType::Info, Value::Null),
            k => (k, value),
        };
        let n = h.events.len() as u64;
        h.events.push(Event {
            index: n,
            time: n,
            process: Process::Client(process),
            kind,
            f,
            key: None,
            value,
            node: None,
            error: timed_out.then(|| "timed-out".to_string()),
        });
        h.lines.push(i + 1);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_cas_completed_false_and_timeouts_are_unknown() {
        let text = "garbage\nINFO  jepsen.util - 4\t:invoke\t:read\tnil\nINFO  jepsen.util - 4\t:ok\t:read\t3\nINFO  jepsen.util - 2\t:invoke\t:cas\t[2 4]\nINFO  jepsen.util - 2\t:fail\t:cas\t[2 4]\nINFO  jepsen.util - 1  :invoke  :read  nil\nINFO  jepsen.util - 1\t:fail\t:read\t:timed-out\n";
        let h = parse("e.log", text).expect("valid");
        assert_eq!(h.events.len(), 6);
        assert_eq!(h.lines[0], 2);
        assert_eq!(h.events[1].value, Value::from(3));
        assert_eq!(h.events[2].value, serde_json::json!([2, 4]));
        assert_eq!(h.events[3].kind, EventType::Ok);
        assert_eq!(h.events[3].value, Value::Bool(false));
        assert_eq!(h.events[4].process, Process::Client(1));
        assert_eq!(h.events[5].kind, EventType::Info);
    }

    #[test]
    fn a_bad_value_names_the_line() {
        let e = parse("e.log", "INFO  jepsen.util - 4\t:ok\t:read\t[1 2").unwrap_err();
        assert!(e.to_string().starts_with("e.log:1:"), "{e}");
    }
}
