//! Deduplication steps:
//!
//! - `dedup_exact` ([`DedupExact`]): the first document of each normalized text, in corpus
//!   order, whatever the number of workers.
//! - `dedup_minhash` ([`minhash`]): near-duplicates by MinHash-LSH, in stages that a cluster
//!   can run as separate tasks.
//! - `dedup_paragraph` ([`DedupParagraph`]): lines already seen in earlier documents removed.
//! - `decontaminate` ([`Decontaminate`]): documents sharing a long n-gram with a benchmark's
//!   question or answer removed.
//!
//! ```
//! use latam_core::{Document, OrderedStep, Verdict};
//! use latam_dedup::DedupExactConfig;
//!
//! let mut dedup = DedupExactConfig::default().build();
//! let a = dedup.key(&Document::new("a", "Hola,  mundo"));
//! let b = dedup.key(&Document::new("b", "hola, MUNDO\n"));
//! assert_eq!(dedup.admit(a), Verdict::Keep);
//! assert_eq!(dedup.admit(b), Verdict::reject("duplicate"));
//! ```

mod decontaminate;
mod error;
mod exact;
pub mod minhash;
mod paragraph;

pub use decontaminate::{BenchmarkRef, Decontaminate, DecontaminateConfig};
pub use error::DedupError;
pub use exact::{DedupExact, DedupExactConfig};
pub use minhash::{DedupMinhash, DedupMinhashConfig};
pub use paragraph::{
    Bloom, BloomSummary, DedupParagraph, DedupParagraphConfig, LineMemory, ParagraphSummary,
};
