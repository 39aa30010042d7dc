//! The node protocol's requests and replies (docs/protocol.md), as the
//! client side sees them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A request, without its `id` (the connection adds it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "op")]
pub enum Request {
    #[serde(rename = "read")]
    Read { key: String },
    #[serde(rename = "write")]
    Write { key: String, value: Value },
    #[serde(rename = "cas")]
    Cas { key: String, from: Value, to: Value },
    #[serde(rename = "append")]
    Append { key: String, value: Value },
    #[serde(rename = "add")]
    Add { key: String, delta: i64 },
    #[serde(rename = "acquire")]
    Acquire {
        lock: String,
        owner: String,
        ttl_ms: u64,
    },
    #[serde(rename = "renew")]
    Renew {
        lock: String,
        owner: String,
        token: u64,
        ttl_ms: u64,
    },
    #[serde(rename = "release")]
    Release {
        lock: String,
        owner: String,
        token: u64,
    },
    #[serde(rename = "fenced_write")]
    FencedWrite {
        key: String,
        value: Value,
        token: u64,
    },
    /// Micro-ops `[f, key, value]` (`r`, `w`, `append`) applied atomically.
    #[serde(rename = "txn")]
    Txn { mops: Vec<(String, Value, Value)> },
    #[serde(rename = "status")]
    Status,
}

impl Request {
    /// True for requests that change nothing: an unknown outcome of one can
    /// be recorded as `fail`, since it has no effect to take later.
    pub fn is_read_only(&self) -> bool {
        match self {
            Request::Read { .. } | Request::Status => true,
            Request::Txn { mops } => mops.iter().all(|(f, _, _)| f == "r"),
            _ => false,
        }
    }
}

/// A request with its id, as written on the wire.
#[derive(Serialize)]
pub struct Envelope<'a> {
    pub id: u64,
    #[serde(flatten)]
    pub request: &'a Request,
}

/// A reply. Unknown fields are kept in `rest`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub id: Option<u64>,
    pub ok: bool,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub error: Option<String>,
    /// On an error: true when the operation certainly did not take effect.
    /// Missing counts as false (unknown), the safe reading.
    #[serde(default)]
    pub definite: Option<bool>,
    /// On `not-leader`: the leader's client address, if known.
    #[serde(default)]
    pub leader: Option<Value>,
    #[serde(default)]
    pub token: Option<u64>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

impl Reply {
    pub fn ok(value: Option<Value>) -> Reply {
        Reply {
            id: None,
            ok: true,
            value,
            error: None,
            definite: None,
            leader: None,
            token: None,
            rest: serde_json::Map::new(),
        }
    }

    pub fn error(code: &str, definite: bool) -> Reply {
        Reply {
            ok: false,
            error: Some(code.to_string()),
            definite: Some(definite),
            ..Reply::ok(None)
        }
    }

    pub fn is_definite(&self) -> bool {
        self.definite == Some(true)
    }

    /// The leader's address of a `not-leader` reply, if it named one.
    pub fn leader_addr(&self) -> Option<&str> {
        self.leader.as_ref().and_then(Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requests_serialize_as_the_protocol_documents() {
        let r = Request::Cas {
            key: "x".into(),
            from: json!(4),
            to: json!(6),
        };
        let line = serde_json::to_value(Envelope { id: 3, request: &r }).expect("serializes");
        assert_eq!(line, json!({"id":3,"op":"cas","key":"x","from":4,"to":6}));
        let f = Request::FencedWrite {
            key: "r".into(),
            value: json!(1),
            token: 7,
        };
        let line = serde_json::to_value(Envelope { id: 1, request: &f }).expect("serializes");
        assert_eq!(line["op"], "fenced_write");
        let s = serde_json::to_value(Envelope {
            id: 2,
            request: &Request::Status,
        })
        .expect("serializes");
        assert_eq!(s, json!({"id":2,"op":"status"}));
    }

    #[test]
    fn replies_parse_with_and_without_optional_fields() {
        let r: Reply = serde_json::from_str(
            r#"{"id":3,"ok":false,"error":"cas-mismatch","definite":true,"value":5}"#,
        )
        .expect("parses");
        assert!(r.is_definite());
        assert_eq!(r.value, Some(json!(5)));
        let r: Reply =
            serde_json::from_str(r#"{"id":1,"ok":false,"error":"timeout"}"#).expect("parses");
        assert!(!r.is_definite(), "a missing definite flag is unknown");
        let r: Reply = serde_json::from_str(
            r#"{"id":1,"ok":false,"error":"not-leader","definite":true,"leader":"127.0.0.2:7002"}"#,
        )
        .expect("parses");
        assert_eq!(r.leader_addr(), Some("127.0.0.2:7002"));
    }
}
