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

use super::edn::parse_all;
use super::input::Input;
use crate::error::HistoryError;
use crate::history::{Event, EventType, Process, Value};
use std::io::Read;

/// The first field of `s` (separated by tabs or runs of spaces) and the rest.
fn next_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find([' ', '\t']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Reads every op line, handing each event with its line to `sink`.
pub fn read<R: Read>(
    input: &mut Input<R>,
    sink: &mut impl FnMut(Event, usize) -> Result<(), HistoryError>,
) -> Result<(), HistoryError> {
    let mut position = 0u64;
    loop {
        let number = input.line;
        let Some(raw) = input.line()? else {
            return Ok(());
        };
        let raw = String::from_utf8_lossy(raw).into_owned();
        let event = op_line(&raw).map_err(|message| input.error_at(number, message))?;
        if let Some(mut event) = event {
            event.index = position;
            event.time = position;
            position += 1;
            sink(event, number)?;
        }
    }
}

/// The event of an op line; `None` for any other line.
fn op_line(raw: &str) -> Result<Option<Event>, String> {
    let Some((_, rest)) = raw.split_once("jepsen.util - ") else {
        return Ok(None);
    };
    let (p, rest) = next_field(rest);
    let (kind, rest) = next_field(rest);
    let (f, rest) = next_field(rest);
    let value_text = rest.trim();
    // Nemesis lines and anything else that is not a client op are ignored.
    let Ok(process) = p.parse::<u64>() else {
        return Ok(None);
    };
    let kind = match kind.trim() {
        ":invoke" => EventType::Invoke,
        ":ok" => EventType::Ok,
        ":fail" => EventType::Fail,
        ":info" => EventType::Info,
        _ => return Ok(None),
    };
    let f = f.trim().strip_prefix(':').unwrap_or(f.trim()).to_string();
    let value = if value_text.is_empty() {
        Value::Null
    } else {
        let forms =
            parse_all("value", value_text).map_err(|e| format!("value {value_text:?}: {e}"))?;
        match <[_; 1]>::try_from(forms) {
            Ok([(_, v)]) => v.into_json(),
            Err(_) => return Err(format!("expected one EDN value, got {value_text:?}")),
        }
    };
    let timed_out = value.as_str() == Some("timed-out");
    let (kind, value) = match kind {
        EventType::Fail if timed_out => (EventType::Info, Value::Null),
        EventType::Fail if f == "cas" => (EventType::Ok, Value::Bool(false)),
        EventType::Info => (EventType::Info, Value::Null),
        k => (k, value),
    };
    Ok(Some(Event {
        index: 0,
        time: 0,
        process: Process::Client(process),
        kind,
        f,
        key: None,
        value,
        node: None,
        error: timed_out.then(|| "timed-out".to_string()),
    }))
}

#[cfg(test)]
mod tests {
    use crate::format::{read_history, Format};
    use crate::history::{EventType, Process, Value};

    #[test]
    fn fail_cas_completed_false_and_timeouts_are_unknown() {
        let text = "garbage\nINFO  jepsen.util - 4\t:invoke\t:read\tnil\nINFO  jepsen.util - 4\t:ok\t:read\t3\nINFO  jepsen.util - 2\t:invoke\t:cas\t[2 4]\nINFO  jepsen.util - 2\t:fail\t:cas\t[2 4]\nINFO  jepsen.util - 1  :invoke  :read  nil\nINFO  jepsen.util - 1\t:fail\t:read\t:timed-out\n";
        let h = read_history("e.log", text, Some(Format::JepsenLog)).expect("valid");
        assert_eq!(h.events.len(), 6);
        assert_eq!(h.lines[0], 2);
        assert_eq!(h.events[1].value, Value::from(3));
        assert_eq!(h.events[1].index, 1);
        assert_eq!(h.events[2].value, serde_json::json!([2, 4]));
        assert_eq!(h.events[3].kind, EventType::Ok);
        assert_eq!(h.events[3].value, Value::Bool(false));
        assert_eq!(h.events[4].process, Process::Client(1));
        assert_eq!(h.events[5].kind, EventType::Info);
    }

    #[test]
    fn a_bad_value_names_the_line() {
        let text =
            "INFO  jepsen.util - 4\t:invoke\t:read\tnil\nINFO  jepsen.util - 4\t:ok\t:read\t[1 2";
        let e = read_history("e.log", text, None).unwrap_err();
        assert!(e.to_string().starts_with("e.log:2:"), "{e}");
    }
}
