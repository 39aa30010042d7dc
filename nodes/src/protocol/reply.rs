//! Replies: `{"id":N,"ok":true,...}` or `{"id":N,"ok":false,"error":CODE,"definite":B,...}`.
//!
//! Every reply is definite (ok, or an error that guarantees nothing
//! happened) or says `definite:false` (the node cannot tell). A reply's
//! extra fields (`value`, `leader`, `token`, `holder`, status fields) live in
//! a map so that `"value": null` survives a round trip.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// The error codes of docs/protocol.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    NotLeader,
    BadRequest,
    Unauthorized,
    TooLarge,
    Timeout,
    ShuttingDown,
    CasMismatch,
    LockHeld,
    NotHolder,
    StaleToken,
    /// The node's queue is full; nothing was done (definite).
    Overloaded,
    /// The request's shard is not hosted here (definite); the reply names
    /// the `shard` and a replica's address in `leader`.
    Moved,
    /// A membership change is already running in that group (definite).
    InProgress,
    /// The consensus core cannot change membership (definite).
    Unsupported,
    /// A plain (not TLS) connection to a node that speaks TLS only; sent
    /// once, in plain text, before the node closes (definite).
    TlsRequired,
    /// A code this version does not know (a newer node): treated as not definite.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Whether this error guarantees the operation did not take effect.
    pub fn definite(self) -> bool {
        !matches!(
            self,
            ErrorCode::Timeout | ErrorCode::ShuttingDown | ErrorCode::Unknown
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotLeader => "not-leader",
            ErrorCode::BadRequest => "bad-request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ShuttingDown => "shutting-down",
            ErrorCode::CasMismatch => "cas-mismatch",
            ErrorCode::LockHeld => "lock-held",
            ErrorCode::NotHolder => "not-holder",
            ErrorCode::StaleToken => "stale-token",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Moved => "moved",
            ErrorCode::InProgress => "in-progress",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::TlsRequired => "tls-required",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reply line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id; null when the request's id could not be read.
    pub id: Option<u64>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definite: Option<bool>,
    /// `value`, `leader`, `token`, `holder`, `reason`, status fields.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl Reply {
    pub fn ok(id: Option<u64>) -> Reply {
        Reply {
            id,
            ok: true,
            error: None,
            definite: None,
            fields: Map::new(),
        }
    }

    pub fn error(id: Option<u64>, code: ErrorCode) -> Reply {
        Reply {
            id,
            ok: false,
            error: Some(code),
            definite: Some(code.definite()),
            fields: Map::new(),
        }
    }

    /// `not-leader` with the leader's client address (null if unknown).
    pub fn not_leader(id: Option<u64>, leader: Option<String>) -> Reply {
        Reply::error(id, ErrorCode::NotLeader)
            .with("leader", leader.map_or(Value::Null, Value::String))
    }

    /// `moved`: `shard` lives elsewhere; `leader` is a replica's client
    /// address in this node's ring view (null if none is known).
    pub fn moved(id: Option<u64>, shard: u32, leader: Option<String>) -> Reply {
        Reply::error(id, ErrorCode::Moved)
            .with("shard", shard)
            .with("leader", leader.map_or(Value::Null, Value::String))
    }

    /// `bad-request` with a human-readable reason.
    pub fn bad_request(id: Option<u64>, reason: impl Into<String>) -> Reply {
        Reply::error(id, ErrorCode::BadRequest).with("reason", Value::String(reason.into()))
    }

    /// Add a field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Reply {
        self.fields.insert(key.to_string(), value.into());
        self
    }

    /// `value` (null when absent).
    pub fn value(&self) -> &Value {
        self.fields.get("value").unwrap_or(&Value::Null)
    }

    /// `leader` of a `not-leader` or `moved` reply, when known.
    pub fn leader(&self) -> Option<&str> {
        self.fields.get("leader").and_then(Value::as_str)
    }

    /// `token` of an `acquire` or `stale-token` reply.
    pub fn token(&self) -> Option<u64> {
        self.fields.get("token").and_then(Value::as_u64)
    }

    /// Whether the operation certainly did not take effect (ok replies: false).
    pub fn is_definite_failure(&self) -> bool {
        !self.ok && self.definite.unwrap_or(false)
    }

    /// Encode as one line, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("replies always serialize");
        out.push(b'\n');
        out
    }

    /// Decode one line (without its newline).
    pub fn decode(line: &[u8]) -> Result<Reply, serde_json::Error> {
        serde_json::from_slice(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_as_the_protocol_doc_shows() {
        let r = Reply::ok(Some(2)).with("value", json!(5));
        assert_eq!(
            serde_json::from_slice::<Value>(&r.encode()).expect("json"),
            json!({"id":2,"ok":true,"value":5})
        );
        let r = Reply::error(Some(3), ErrorCode::CasMismatch).with("value", json!(5));
        assert_eq!(
            serde_json::from_slice::<Value>(&r.encode()).expect("json"),
            json!({"id":3,"ok":false,"error":"cas-mismatch","definite":true,"value":5})
        );
        let r = Reply::not_leader(Some(4), None);
        assert_eq!(
            serde_json::from_slice::<Value>(&r.encode()).expect("json"),
            json!({"id":4,"ok":false,"error":"not-leader","definite":true,"leader":null})
        );
        let r = Reply::error(Some(5), ErrorCode::Timeout);
        assert_eq!(r.definite, Some(false));
        let r = Reply::moved(Some(6), 3, Some("127.0.0.1:7002".into()));
        assert_eq!(
            serde_json::from_slice::<Value>(&r.encode()).expect("json"),
            json!({"id":6,"ok":false,"error":"moved","definite":true,"shard":3,"leader":"127.0.0.1:7002"})
        );
        for code in [
            ErrorCode::Moved,
            ErrorCode::InProgress,
            ErrorCode::Unsupported,
            ErrorCode::TlsRequired,
        ] {
            let line = serde_json::to_string(&code).expect("code");
            assert_eq!(line, format!("\"{}\"", code.as_str()));
            assert!(code.definite());
        }
    }

    #[test]
    fn null_value_survives_a_round_trip() {
        let r = Reply::ok(Some(1)).with("value", Value::Null);
        let line = r.encode();
        let back = Reply::decode(&line[..line.len() - 1]).expect("decodes");
        assert_eq!(back, r);
        assert!(back.fields.contains_key("value"));
    }

    #[test]
    fn unknown_error_codes_are_not_definite() {
        let r = Reply::decode(br#"{"id":1,"ok":false,"error":"brand-new","definite":false}"#)
            .expect("decodes");
        assert_eq!(r.error, Some(ErrorCode::Unknown));
        assert!(!ErrorCode::Unknown.definite());
    }

    proptest::proptest! {
        /// Fuzz: the client's decoder never panics on random bytes.
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = Reply::decode(&bytes);
        }
    }
}
