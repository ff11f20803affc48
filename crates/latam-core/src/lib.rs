//! Core types of the latam toolkit: the [`Document`] that flows through every pipeline, and the
//! two kinds of pipeline stage, [`Step`] (one document at a time, run in parallel) and
//! [`OrderedStep`] (its verdict depends on the documents before it in corpus order); and
//! GPT-2's byte-to-character table ([`BYTE_CHARS`]), shared by the tokenizer crates.
//!
//! ```
//! use latam_core::{Document, Step, Verdict};
//!
//! let drop_short = |doc: &mut Document| {
//!     if doc.text.len() < 10 { Verdict::reject("too_short") } else { Verdict::Keep }
//! };
//! let mut doc = Document::from_json_line(r#"{"id": "a", "text": "hola"}"#, &Default::default()).unwrap();
//! assert_eq!(drop_short.process(&mut doc), Verdict::reject("too_short"));
//! ```

mod byte_level;
mod document;
pub mod hostile;
mod html;
mod rng;
mod step;

pub use byte_level::{BYTE_CHARS, byte_of};
pub use document::{Document, DocumentError, FieldNames};
pub use html::html_escape;
pub use rng::Rng;
pub use step::{CorpusStep, OrderedStep, Position, Step, StepError, Tally, Verdict, position};
