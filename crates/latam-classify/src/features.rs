//! Text to features: hashed character n-grams of every word (with `<` and `>` marking its
//! ends, as fastText does) and hashed word n-grams, each an index below the number of buckets.

use serde::{Deserialize, Serialize};

/// How a text becomes features.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeatureConfig {
    /// Hash buckets (rows of the input matrix).
    pub buckets: u32,
    /// Shortest character n-gram (0: none).
    pub min_char_ngram: usize,
    /// Longest character n-gram.
    pub max_char_ngram: usize,
    /// Longest word n-gram (1: words alone; 0: no word features).
    pub word_ngrams: usize,
    /// Lowercase the text first.
    pub lowercase: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        Self {
            buckets: 1 << 18,
            min_char_ngram: 1,
            max_char_ngram: 4,
            word_ngrams: 1,
            lowercase: true,
        }
    }
}

/// FNV-1a over code points: character n-grams extend the hash of their prefix.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(h: u64, c: char) -> u64 {
    (h ^ u64::from(u32::from(c))).wrapping_mul(FNV_PRIME)
}

/// `h % buckets`, by a mask when `buckets` is a power of two (the defaults): a division
/// costs tens of cycles, and there are several per character.
#[derive(Clone, Copy)]
struct Bucket {
    buckets: u64,
    mask: Option<u64>,
}

impl Bucket {
    fn new(buckets: u32) -> Self {
        let buckets = u64::from(buckets.max(1));
        Self {
            buckets,
            mask: buckets.is_power_of_two().then(|| buckets - 1),
        }
    }

    #[inline]
    fn of(self, h: u64) -> u32 {
        (match self.mask {
            Some(mask) => h & mask,
            None => h % self.buckets,
        }) as u32
    }
}

/// A finalizer (SplitMix64's): spreads FNV's low-entropy bits before the modulo.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl FeatureConfig {
    /// Appends the features of `text` to `out`.
    pub fn features(&self, text: &str, out: &mut Vec<u32>) {
        let bucket = Bucket::new(self.buckets);
        let mut word: Vec<char> = Vec::with_capacity(32);
        let mut words: Vec<u64> = Vec::new();
        for c in text.chars() {
            if c.is_alphanumeric() || c == '\'' || c == '’' {
                if self.lowercase && !c.is_lowercase() {
                    word.extend(c.to_lowercase());
                } else {
                    word.push(c);
                }
            } else if !word.is_empty() {
                self.word_features(&word, bucket, &mut words, out);
                word.clear();
            }
        }
        if !word.is_empty() {
            self.word_features(&word, bucket, &mut words, out);
        }
        // Longer n-grams than there are words have no window (and a hostile model file may ask
        // for 2^64 of them).
        for n in 1..=self.word_ngrams.min(words.len()) {
            for gram in words.windows(n) {
                let h = gram
                    .iter()
                    .fold(n as u64, |h, &w| mix(h.rotate_left(17) ^ w));
                out.push(bucket.of(h));
            }
        }
    }

    /// The character n-grams of `<word>`, and the word's hash for the word n-grams.
    fn word_features(
        &self,
        word: &[char],
        bucket: Bucket,
        words: &mut Vec<u64>,
        out: &mut Vec<u32>,
    ) {
        words.push(mix(word.iter().fold(FNV_OFFSET, |h, &c| fnv(h, c))));
        if self.min_char_ngram == 0 {
            return;
        }
        let len = word.len() + 2;
        let at = |i: usize| match i {
            0 => '<',
            i if i == len - 1 => '>',
            i => word[i - 1],
        };
        for start in 0..len {
            let mut h = FNV_OFFSET;
            for n in 1..=self.max_char_ngram.min(len - start) {
                h = fnv(h, at(start + n - 1));
                // The markers alone are no feature.
                if n < self.min_char_ngram || (n == 1 && (start == 0 || start == len - 1)) {
                    continue;
                }
                out.push(bucket.of(mix(h ^ (n as u64) << 56)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_char_ngrams() {
        let config = FeatureConfig {
            min_char_ngram: 2,
            max_char_ngram: 3,
            word_ngrams: 2,
            ..Default::default()
        };
        let mut f = Vec::new();
        config.features("Ñandú, ave", &mut f);
        // "<ñandú>": 6 bigrams + 5 trigrams; "<ave>": 4 + 3; 2 words + 1 bigram.
        assert_eq!(f.len(), 6 + 5 + 4 + 3 + 3);
        let mut g = Vec::new();
        config.features("ñandú ave", &mut g);
        assert_eq!(f, g, "case and punctuation do not matter");
        assert!(f.iter().all(|&x| x < config.buckets));
    }

    #[test]
    fn buckets_are_the_remainder() {
        for buckets in [1u32 << 18, 1000, 1] {
            let bucket = Bucket::new(buckets);
            for i in 0..10_000u64 {
                let h = mix(i);
                assert_eq!(u64::from(bucket.of(h)), h % u64::from(buckets));
            }
        }
    }
}
