//! An EDN value, as read: what the reader hands out for a field it does
//! not interpret itself (an op's `:value`, a fault's details).

use crate::history::Value;
use std::fmt;

/// An EDN value. Keywords and symbols keep their names without the colon;
/// tagged literals keep their tag (`jepsen.history.Op`, `inst`, `object`).
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer too large for i64 (or written with `N`), as its digits.
    BigInt(String),
    /// A float (`1.5`, `1e3`, `1.5M`, `##Inf`, `##NaN`).
    Float(f64),
    Str(String),
    Char(char),
    Keyword(String),
    /// A symbol (also a Clojure ratio such as `1/3`, kept as its text).
    Symbol(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    Set(Vec<Edn>),
    /// Entries in the order written.
    Map(Vec<(Edn, Edn)>),
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The entry of a map (or of a tagged map, such as a record) whose key
    /// is the keyword `name`.
    pub fn get(&self, name: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries
                .iter()
                .find(|(k, _)| matches!(k, Edn::Keyword(s) if s == name))
                .map(|(_, v)| v),
            Edn::Tagged(_, inner) => inner.get(name),
            _ => None,
        }
    }

    /// The elements of a vector, list or set.
    pub fn elements(&self) -> Option<&[Edn]> {
        match self {
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => Some(v),
            _ => None,
        }
    }

    /// The name of a keyword, symbol or string.
    pub fn name(&self) -> Option<&str> {
        match self {
            Edn::Keyword(s) | Edn::Symbol(s) | Edn::Str(s) => Some(s),
            _ => None,
        }
    }

    /// EDN to JSON, the form histories carry values in: keywords and
    /// symbols become strings (without the colon), vectors, lists and sets
    /// arrays, maps objects (keys as strings), tagged values their value.
    /// Integers beyond i64 become u64 where they fit, else strings.
    pub fn to_json(&self) -> Value {
        self.clone().into_json()
    }

    /// As [`Edn::to_json`], consuming the value (no string is copied).
    pub fn into_json(self) -> Value {
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(b),
            Edn::Int(i) => Value::from(i),
            Edn::BigInt(s) => match s.parse::<u64>() {
                Ok(u) => Value::from(u),
                Err(_) => Value::String(s),
            },
            Edn::Float(f) => serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(Edn::Float(f).to_string())),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s),
            Edn::Char(c) => Value::String(c.to_string()),
            Edn::Vector(v) | Edn::List(v) | Edn::Set(v) => {
                Value::Array(v.into_iter().map(Edn::into_json).collect())
            }
            Edn::Map(entries) => Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| {
                        let key = match k.into_json() {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, v.into_json())
                    })
                    .collect(),
            ),
            Edn::Tagged(_, inner) => inner.into_json(),
        }
    }

    /// The value as text for a message field (`:error`, `:node`): strings,
    /// keywords and symbols by name, anything else as EDN.
    pub fn into_text(self) -> String {
        match self {
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s,
            other => other.to_string(),
        }
    }
}

/// Writes EDN back (strings quoted, keywords with their colon).
impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = |f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str| {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        };
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::BigInt(s) => write!(f, "{s}N"),
            Edn::Float(x) if x.is_nan() => f.write_str("##NaN"),
            Edn::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "##Inf" } else { "##-Inf" })
            }
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Char(c) => write!(f, "\\{c}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::Vector(v) => seq(f, "[", v, "]"),
            Edn::List(v) => seq(f, "(", v, ")"),
            Edn::Set(v) => seq(f, "#{", v, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, inner) => write!(f, "#{tag} {inner}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_to_json_and_prints_back() {
        let v = Edn::Map(vec![
            (
                Edn::Keyword("a".into()),
                Edn::Set(vec![Edn::Int(1), Edn::Nil]),
            ),
            (Edn::Int(2), Edn::BigInt("18446744073709551615".into())),
            (Edn::Str("s".into()), Edn::Float(f64::INFINITY)),
        ]);
        assert_eq!(
            v.to_json(),
            json!({"a": [1, null], "2": 18446744073709551615u64, "s": "##Inf"})
        );
        assert_eq!(
            v.to_string(),
            "{:a #{1 nil}, 2 18446744073709551615N, \"s\" ##Inf}"
        );
        assert_eq!(
            v.get("a").and_then(Edn::elements).map(<[Edn]>::len),
            Some(2)
        );
    }
}
