//! Text steps of the curation pipeline: [`Normalize`] (Unicode NFC, control characters,
//! whitespace, mojibake), [`FilterLength`] and [`FilterQuality`] (the Gopher quality and
//! repetition rules, the C4 line and document rules, the FineWeb rules), each built from its
//! `...Config`.
//!
//! ```
//! use latam_core::{Document, Step, Verdict};
//! use latam_text::NormalizeConfig;
//!
//! let normalize = NormalizeConfig::default().build();
//! let mut doc = Document::new("1", "  CanciÃ³n   de\r\ncuna  ");
//! assert_eq!(normalize.process(&mut doc), Verdict::Keep);
//! assert_eq!(doc.text, "Canción de\ncuna");
//! ```

mod length;
mod normalize;
pub mod quality;
mod stopwords;
pub mod words;

pub use length::{FilterLength, FilterLengthConfig};
pub use normalize::{Normalize, NormalizeConfig, UnicodeForm, fix_mojibake};
pub use quality::{FilterQuality, FilterQualityConfig, QualityConfigError};
pub use stopwords::stop_words;
