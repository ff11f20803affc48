//! `filter_length`: bounds on characters and words.

use latam_core::{Document, Step, Verdict};
use serde::{Deserialize, Serialize};

/// Settings of the `filter_length` step. A bound of 0 is off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterLengthConfig {
    /// Fewest characters: `too_short`.
    pub min_chars: usize,
    /// Most characters: `too_long`.
    pub max_chars: usize,
    /// Fewest whitespace-separated words: `too_few_words`.
    pub min_words: usize,
    /// Most words: `too_many_words`.
    pub max_words: usize,
}

impl Default for FilterLengthConfig {
    fn default() -> Self {
        Self {
            min_chars: 200,
            max_chars: 1_000_000,
            min_words: 0,
            max_words: 0,
        }
    }
}

impl FilterLengthConfig {
    /// Builds the step.
    pub fn build(&self) -> FilterLength {
        FilterLength {
            config: self.clone(),
        }
    }
}

/// The `filter_length` step.
#[derive(Debug, Clone)]
pub struct FilterLength {
    config: FilterLengthConfig,
}

impl Step for FilterLength {
    fn process(&self, doc: &mut Document) -> Verdict {
        let c = &self.config;
        // A character is at most 4 bytes: the byte length settles most documents.
        let bytes = doc.text.len();
        if c.min_chars > 0 && (bytes < c.min_chars || doc.text.chars().count() < c.min_chars) {
            return Verdict::reject("too_short");
        }
        if c.max_chars > 0 && bytes > c.max_chars && doc.text.chars().count() > c.max_chars {
            return Verdict::reject("too_long");
        }
        if c.min_words > 0 || c.max_words > 0 {
            let words = doc.text.split_whitespace().count();
            if c.min_words > 0 && words < c.min_words {
                return Verdict::reject("too_few_words");
            }
            if c.max_words > 0 && words > c.max_words {
                return Verdict::reject("too_many_words");
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_count_characters_not_bytes() {
        let step = FilterLengthConfig {
            min_chars: 5,
            max_chars: 6,
            min_words: 0,
            max_words: 0,
        }
        .build();
        let verdict = |t: &str| step.process(&mut Document::new("x", t));
        assert_eq!(verdict("ñandú"), Verdict::Keep); // 5 chars, 7 bytes
        assert_eq!(verdict("ñaú"), Verdict::reject("too_short"));
        assert_eq!(verdict("ñandúes"), Verdict::reject("too_long"));
        let words = FilterLengthConfig {
            min_words: 3,
            ..FilterLengthConfig::default()
        }
        .build();
        let mut doc = Document::new("x", "una dos ".repeat(10) + &"x".repeat(200));
        assert_eq!(words.process(&mut doc), Verdict::Keep);
    }
}
