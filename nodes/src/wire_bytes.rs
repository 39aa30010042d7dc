//! wire_bytes: how opaque bytes (a log entry's command, a snapshot's data)
//! travel in JSON: as one base64 string, about 4/3 of their size. serde's
//! default, an array of numbers, took about 3.6 bytes per byte, so a batch
//! of large values passed the peer line limit and a lagging follower never
//! caught up (issue 21, finding 3).
//!
//! Decoding also accepts the old array of numbers, so a message or file
//! written by an older node still reads. Anything else is an error naming
//! what was found, never a panic; the line reader bounds the input's size.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

/// `#[serde(with = "crate::wire_bytes")]` on a `Vec<u8>`.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&B64.encode(bytes))
}

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_any(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("bytes as a base64 string (or an array of numbers 0-255)")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        B64.decode(text)
            .map_err(|e| E::custom(format!("bad base64 bytes: {e}")))
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // No capacity from the size hint: the input decides nothing up front.
        let mut out = Vec::new();
        while let Some(byte) = seq.next_element::<u8>()? {
            out.push(byte);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder(#[serde(with = "crate::wire_bytes")] Vec<u8>);

    #[test]
    fn bytes_travel_as_base64_and_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        let json = serde_json::to_string(&Holder(bytes.clone())).expect("serializes");
        assert!(json.starts_with('"'), "one string, not an array: {json}");
        assert!(
            json.len() < 256 * 4 / 3 + 8,
            "about 4/3 of the size: {}",
            json.len()
        );
        let back: Holder = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back.0, bytes);
    }

    #[test]
    fn the_old_array_of_numbers_still_reads() {
        let back: Holder = serde_json::from_str("[0,1,255]").expect("old form reads");
        assert_eq!(back.0, vec![0, 1, 255]);
    }

    #[test]
    fn bad_input_is_an_error_naming_it() {
        let err = serde_json::from_str::<Holder>("\"not base64!\"").expect_err("refused");
        assert!(err.to_string().contains("bad base64"), "{err}");
        let err = serde_json::from_str::<Holder>("[1,256]").expect_err("refused");
        assert!(err.to_string().contains("256"), "{err}");
        let err = serde_json::from_str::<Holder>("{}").expect_err("refused");
        assert!(err.to_string().contains("base64"), "{err}");
    }
}
