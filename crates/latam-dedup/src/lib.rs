//! Deduplication steps. `dedup_exact` keeps the first document of each normalized text, in
//! corpus order, whatever the number of workers.
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

use latam_core::{Document, OrderedStep, Verdict};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

/// Settings of the `dedup_exact` step: what "the same text" means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupExactConfig {
    /// Compare lowercased text.
    pub lowercase: bool,
    /// Treat every run of whitespace as one space and ignore it at the ends.
    pub collapse_whitespace: bool,
    /// Ignore punctuation and symbols.
    pub ignore_punctuation: bool,
}

impl Default for DedupExactConfig {
    fn default() -> Self {
        Self {
            lowercase: true,
            collapse_whitespace: true,
            ignore_punctuation: false,
        }
    }
}

impl DedupExactConfig {
    /// Builds the step.
    pub fn build(&self) -> DedupExact {
        DedupExact {
            config: self.clone(),
            seen: FxHashSet::default(),
        }
    }
}

/// The `dedup_exact` step: a set of 128-bit XXH3 hashes of the normalized texts seen
/// (16 bytes a document; the chance of one false match among a billion documents is below
/// 10^-20).
pub struct DedupExact {
    config: DedupExactConfig,
    seen: FxHashSet<u128>,
}

impl DedupExact {
    /// The text as compared.
    pub fn normalized(&self, text: &str) -> String {
        let c = &self.config;
        let mut out = String::with_capacity(text.len());
        let mut space = false;
        for ch in text.chars() {
            if c.collapse_whitespace && ch.is_whitespace() {
                space = !out.is_empty();
                continue;
            }
            if c.ignore_punctuation && !ch.is_alphanumeric() && !ch.is_whitespace() {
                continue;
            }
            if space {
                out.push(' ');
                space = false;
            }
            if c.lowercase && !ch.is_lowercase() {
                out.extend(ch.to_lowercase());
            } else {
                out.push(ch);
            }
        }
        out
    }
}

impl OrderedStep for DedupExact {
    fn key(&self, doc: &Document) -> u128 {
        xxhash_rust::xxh3::xxh3_128(self.normalized(&doc.text).as_bytes())
    }

    fn admit(&mut self, key: u128) -> Verdict {
        if self.seen.insert(key) {
            Verdict::Keep
        } else {
            Verdict::reject("duplicate")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_options() {
        let exact = DedupExactConfig {
            lowercase: false,
            collapse_whitespace: false,
            ignore_punctuation: false,
        }
        .build();
        assert_eq!(exact.normalized(" A  b "), " A  b ");
        let loose = DedupExactConfig {
            ignore_punctuation: true,
            ..Default::default()
        }
        .build();
        assert_eq!(loose.normalized("  ¡Hola,   MUNDO!  "), "hola mundo");
    }

    #[test]
    fn first_copy_is_kept() {
        let mut dedup = DedupExactConfig::default().build();
        let keys: Vec<_> = ["uno", "dos", "UNO", "dos "]
            .iter()
            .map(|t| dedup.key(&Document::new("", *t)))
            .collect();
        let verdicts: Vec<_> = keys.into_iter().map(|k| dedup.admit(k)).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Keep,
                Verdict::Keep,
                Verdict::reject("duplicate"),
                Verdict::reject("duplicate")
            ]
        );
    }
}
