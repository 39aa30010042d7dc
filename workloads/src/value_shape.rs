//! Large and deep values: `faultline test --value-size 900KiB
//! --value-depth 20` makes every value a register or kv workload writes
//! travel to the system as a padded, nested JSON value, while the history
//! keeps the workload's small value. So the checkers stay fast and the
//! history small, yet the system stores, replicates, snapshots and reads
//! back values of the size and depth asked (issue 21: a lagging follower that
//! never caught up on 900 KiB values, a value nested 126 deep that made every
//! later snapshot unreadable).
//!
//! [`ShapedClient`] wraps any system's [`Client`]: a write's or a cas's value
//! `v` is sent as `depth` nested arrays around `{"v": v, "pad": "..."}`,
//! the pad a deterministic function of `v` (so a cas's `from` matches what
//! was written); a read's answer is unwrapped back to `v` only if its shape
//! and pad are exactly what `v` gives, else it is recorded as
//! `{"malformed-value": <its first bytes>}`, which no write produced, so a
//! system that damages a value fails the check instead of passing it.

use crate::call::{Answer, Call};
use crate::client::{BoxFuture, Client};
use serde_json::{json, Value};
use std::time::Duration;

/// How values are shaped on the wire; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueShape {
    /// About how long each shaped value's JSON is, in bytes (at least the
    /// bare value's length).
    pub size_bytes: usize,
    /// How many arrays nest around the padded object (0: none).
    pub depth: usize,
}

impl ValueShape {
    /// The shaped value sent for `value`.
    pub fn wrap(&self, value: &Value) -> Value {
        let mut shaped = json!({"v": value, "pad": self.pad(value)});
        for _ in 0..self.depth {
            shaped = Value::Array(vec![shaped]);
        }
        shaped
    }

    /// The workload's value inside `shaped`, or a `malformed-value` marker
    /// if `shaped` is not exactly what [`ValueShape::wrap`] makes. Null (an
    /// absent key) stays null.
    pub fn unwrap(&self, shaped: Value) -> Value {
        if shaped.is_null() {
            return shaped;
        }
        match self.inner(&shaped) {
            Some(value) => value,
            None => {
                let text = shaped.to_string();
                let cut = text
                    .char_indices()
                    .nth(200)
                    .map_or(text.len(), |(at, _)| at);
                json!({"malformed-value": &text[..cut]})
            }
        }
    }

    fn inner(&self, shaped: &Value) -> Option<Value> {
        let mut at = shaped;
        for _ in 0..self.depth {
            match at.as_array()?.as_slice() {
                [one] => at = one,
                _ => return None,
            }
        }
        let object = at.as_object()?;
        let value = object.get("v")?;
        let pad_ok = object.len() == 2 && object.get("pad")?.as_str()? == self.pad(value);
        pad_ok.then(|| value.clone())
    }

    /// `value`'s text repeated (then cut) to fill the size asked.
    fn pad(&self, value: &Value) -> String {
        let seed = format!("{value}.");
        let overhead = seed.len() + 20 + 2 * self.depth;
        let len = self.size_bytes.saturating_sub(overhead);
        seed.chars().cycle().take(len).collect()
    }

    fn shape_call(&self, call: &Call) -> Call {
        match call {
            Call::Write { key, value } => Call::Write {
                key: key.clone(),
                value: self.wrap(value),
            },
            Call::Cas { key, from, to } => Call::Cas {
                key: key.clone(),
                from: self.wrap(from),
                to: self.wrap(to),
            },
            other => other.clone(),
        }
    }
}

/// A client that shapes values on their way to `inner` and back.
pub struct ShapedClient<C> {
    pub inner: C,
    pub shape: ValueShape,
}

impl<C: Client> Client for ShapedClient<C> {
    fn invoke<'a>(&'a mut self, call: &'a Call, timeout: Duration) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let shaped = self.shape.shape_call(call);
            let mut answer = self.inner.invoke(&shaped, timeout).await;
            // A read's value, and the current value a refused cas names.
            if matches!(call, Call::Read { .. } | Call::Cas { .. }) {
                answer.value = answer.value.map(|v| self.shape.unwrap(v));
            }
            answer
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_client::FakeStore;

    const SHAPE: ValueShape = ValueShape {
        size_bytes: 4096,
        depth: 3,
    };

    #[test]
    fn a_value_is_sent_large_and_deep_and_read_back_as_itself() {
        let shaped = SHAPE.wrap(&json!(17));
        let text = shaped.to_string();
        assert!(
            (4000..=4096).contains(&text.len()),
            "about the size asked: {}",
            text.len()
        );
        assert!(
            text.starts_with("[[[{"),
            "three arrays deep: {}",
            &text[..8]
        );
        assert_eq!(SHAPE.unwrap(shaped), json!(17));
        assert_eq!(SHAPE.unwrap(Value::Null), Value::Null);
    }

    #[test]
    fn a_damaged_value_reads_as_malformed_never_as_a_written_value() {
        let mut shaped = SHAPE.wrap(&json!(17));
        let inner = &mut shaped[0][0][0];
        let pad = inner["pad"].as_str().expect("a pad").to_string();
        inner["pad"] = json!(format!("{}x", &pad[..pad.len() - 1]));
        let read = SHAPE.unwrap(shaped);
        assert!(read.get("malformed-value").is_some(), "{read}");
        // Another value's shape around this value is damage too.
        let mut swapped = SHAPE.wrap(&json!(18));
        swapped[0][0][0]["v"] = json!(17);
        assert!(SHAPE.unwrap(swapped).get("malformed-value").is_some());
        assert!(SHAPE.unwrap(json!(17)).get("malformed-value").is_some());
    }

    #[test]
    fn writes_cas_and_reads_go_through_shaped() {
        let store = FakeStore::default();
        let mut client = ShapedClient {
            inner: store.client("n1"),
            shape: SHAPE,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let t = Duration::from_secs(1);
            let write = Call::Write {
                key: "k".into(),
                value: json!(1),
            };
            assert_eq!(client.invoke(&write, t).await.outcome, crate::Outcome::Ok);
            let cas = Call::Cas {
                key: "k".into(),
                from: json!(1),
                to: json!(2),
            };
            assert_eq!(client.invoke(&cas, t).await.outcome, crate::Outcome::Ok);
            let read = Call::Read { key: "k".into() };
            assert_eq!(client.invoke(&read, t).await.value, Some(json!(2)));
        });
        let stored = store
            .execute(&Call::Read { key: "k".into() })
            .value
            .expect("written");
        assert!(
            stored.to_string().len() > 4000,
            "the store holds the large value"
        );
    }
}
