//! Jepsen's and Knossos's EDN: a streaming reader.
//!
//! - [`Parser`]: EDN values one at a time from any `Read` (every EDN form
//!   and what Clojure's printer adds; see its docs).
//! - [`OpReader`]: the ops of a history in any shape Jepsen or Knossos
//!   wrote (one map a line, a vector, a list, tagged records), each an
//!   [`EdnOp`] whose `:value` is left as an [`Edn`] value for whoever
//!   interprets it (a register, a transaction's micro-ops).
//! - [`Edn::into_json`]: the value as the JSON the rest of the checker
//!   uses (keywords become strings without their colon).
//!
//! Nothing here holds more than one op: a history of any length is read in
//! the memory of its longest op. No input makes it panic or recurse past
//! [`parser::MAX_DEPTH`]; every error names the source and the line.

pub mod op_reader;
pub mod parser;
pub mod value;

pub use op_reader::{EdnOp, OpReader};
pub use parser::Parser;
pub use value::Edn;

use crate::error::HistoryError;

/// Every top-level form of `text`, with the line each starts on.
pub fn parse_all(source_name: &str, text: &str) -> Result<Vec<(usize, Edn)>, HistoryError> {
    let mut parser = Parser::new(source_name, text.as_bytes());
    let mut forms = Vec::new();
    while parser.skip_space(0)?.is_some() {
        let line = parser.line();
        forms.push((line, parser.value(0)?));
    }
    Ok(forms)
}
