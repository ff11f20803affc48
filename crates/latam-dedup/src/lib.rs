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
        let mut out = Vec::with_capacity(text.len());
        self.normalize_into(text, &mut out);
        String::from_utf8(out).expect("built from whole characters")
    }

    /// Appends the UTF-8 of the text as compared to `out`.
    fn normalize_into(&self, text: &str, out: &mut Vec<u8>) {
        let c = &self.config;
        let mut space = false;
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            // ASCII letters and digits, most of any text, one byte at a time.
            if b.is_ascii_alphanumeric() {
                if std::mem::take(&mut space) {
                    out.push(b' ');
                }
                out.push(if c.lowercase {
                    b.to_ascii_lowercase()
                } else {
                    b
                });
                i += 1;
                continue;
            }
            // Other ASCII and the two-byte letters of Latin-1 (À..ÿ but × and ÷) by their
            // bytes: the case of those letters is bit 0x20 of the second byte. Other characters
            // ask the Unicode tables.
            let latin = b == 0xc3
                && bytes
                    .get(i + 1)
                    .is_some_and(|&n| n >= 0x80 && n != 0x97 && n != 0xb7);
            let (is_space, is_word, len) = if b.is_ascii() {
                (b.is_ascii_whitespace(), false, 1)
            } else if latin {
                (false, true, 2)
            } else {
                let ch = text[i..].chars().next().expect("index on a char boundary");
                (ch.is_whitespace(), ch.is_alphanumeric(), ch.len_utf8())
            };
            let here = &bytes[i..i + len];
            i += len;
            if c.collapse_whitespace && is_space {
                space = !out.is_empty();
                continue;
            }
            if c.ignore_punctuation && !is_word && !is_space {
                continue;
            }
            if std::mem::take(&mut space) {
                out.push(b' ');
            }
            if !c.lowercase || len == 1 {
                out.extend_from_slice(here);
            } else if latin {
                let second = here[1];
                out.extend_from_slice(&[
                    0xc3,
                    if second < 0xa0 && second != 0x9f {
                        second | 0x20
                    } else {
                        second
                    },
                ]);
            } else {
                let ch = text[i - len..].chars().next().expect("one character");
                let mut buf = [0u8; 4];
                for lower in ch.to_lowercase() {
                    out.extend_from_slice(lower.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
    }
}

impl OrderedStep for DedupExact {
    fn key(&self, doc: &Document) -> u128 {
        let mut text = Vec::with_capacity(doc.text.len());
        self.normalize_into(&doc.text, &mut text);
        xxhash_rust::xxh3::xxh3_128(&text)
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
    fn latin_letters_lowercase_like_unicode() {
        let dedup = DedupExactConfig::default().build();
        let all: String = ('\u{c0}'..='\u{ff}').collect();
        assert_eq!(dedup.normalized(&all), all.to_lowercase());
        assert_eq!(dedup.normalized("ÁRBOL ÑANDÚ Ç ß ÿ"), "árbol ñandú ç ß ÿ");
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
