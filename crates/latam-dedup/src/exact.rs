//! `dedup_exact`: the first document of each normalized text is kept.

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
    ///
    /// ASCII, most of any text, takes a path whose only data-dependent branch is a second
    /// whitespace in a row (rare), so word boundaries cost no mispredictions; the two-byte
    /// letters of Latin-1 (À..ÿ but × and ÷) are lowercased by bit 0x20 of their second byte;
    /// other characters ask the Unicode tables.
    fn normalize_into(&self, text: &str, out: &mut Vec<u8>) {
        let c = &self.config;
        let bytes = text.as_bytes();
        out.reserve(bytes.len());
        // The default settings take 8 ASCII bytes at a time where they hold no two whitespace
        // bytes in a row.
        let words = c.lowercase && c.collapse_whitespace && !c.ignore_punctuation;
        // Whitespace seen last (true at the start, so leading whitespace is dropped).
        let mut after_space = true;
        let mut i = 0;
        while i < bytes.len() {
            if words
                && let Some(chunk) = bytes.get(i..i + 8)
                && let Some((lowered, last_space)) =
                    swar::lower_collapsed(chunk.try_into().expect("8 bytes"), after_space)
            {
                out.extend_from_slice(&lowered);
                after_space = last_space;
                i += 8;
                continue;
            }
            let b = bytes[i];
            if b.is_ascii() {
                i += 1;
                let space = c.collapse_whitespace && b.is_ascii_whitespace();
                if c.ignore_punctuation
                    && !space
                    && !b.is_ascii_alphanumeric()
                    && !b.is_ascii_whitespace()
                {
                    continue;
                }
                let value = if space {
                    b' '
                } else if c.lowercase {
                    b.to_ascii_lowercase()
                } else {
                    b
                };
                if !(space && after_space) {
                    out.push(value);
                }
                after_space = space;
                continue;
            }
            let latin = b == 0xc3
                && bytes
                    .get(i + 1)
                    .is_some_and(|&n| n >= 0x80 && n != 0x97 && n != 0xb7);
            if latin {
                let second = bytes[i + 1];
                let lower = c.lowercase && second < 0xa0 && second != 0x9f;
                out.extend_from_slice(&[0xc3, if lower { second | 0x20 } else { second }]);
                after_space = false;
                i += 2;
                continue;
            }
            let ch = text[i..].chars().next().expect("index on a char boundary");
            i += ch.len_utf8();
            let space = c.collapse_whitespace && ch.is_whitespace();
            if space {
                if !after_space {
                    out.push(b' ');
                }
                after_space = true;
                continue;
            }
            if c.ignore_punctuation && !ch.is_alphanumeric() && !ch.is_whitespace() {
                continue;
            }
            after_space = false;
            let mut buf = [0u8; 4];
            if c.lowercase {
                for lower in ch.to_lowercase() {
                    out.extend_from_slice(lower.encode_utf8(&mut buf).as_bytes());
                }
            } else {
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
        }
        if after_space && c.collapse_whitespace && out.last() == Some(&b' ') {
            out.pop();
        }
    }
}

/// Eight bytes at a time in a `u64` ("SIMD within a register"); each byte's high bit is its
/// flag.
mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    /// Flags the bytes equal to `b` (of an all-ASCII word: no borrow crosses bytes).
    fn equal(w: u64, b: u8) -> u64 {
        !((w ^ (ONES * u64::from(b))) | HIGH).wrapping_sub(ONES) & HIGH
    }

    /// Flags the bytes in `lo..=hi` (of an all-ASCII word, `hi < 0x7f`: no carry crosses
    /// bytes).
    fn within(w: u64, lo: u8, hi: u8) -> u64 {
        let at_least_lo = w + ONES * u64::from(0x80 - lo);
        let above_hi = w + ONES * u64::from(0x7f - hi);
        at_least_lo & !above_hi & HIGH
    }

    /// Eight ASCII bytes lowercased, ASCII whitespace (space, tab, LF, FF, CR) as spaces, and
    /// whether the last is whitespace; `None` when a byte is not ASCII, or two whitespace bytes
    /// meet (within the eight, or the first after whitespace), which the byte loop collapses.
    pub(super) fn lower_collapsed(chunk: [u8; 8], after_space: bool) -> Option<([u8; 8], bool)> {
        let w = u64::from_le_bytes(chunk);
        if w & HIGH != 0 {
            return None;
        }
        let space = equal(w, b' ') | (within(w, 0x09, 0x0d) & !equal(w, 0x0b));
        if space & (space << 8) != 0 || (after_space && space & 0x80 != 0) {
            return None;
        }
        let upper = within(w, b'A', b'Z');
        let lowered = w + (upper >> 2);
        let space_bytes = (space >> 7) * 0xff;
        let out = (lowered & !space_bytes) | ((ONES * u64::from(b' ')) & space_bytes);
        Some((out.to_le_bytes(), space >> 63 != 0))
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
    fn eight_bytes_at_a_time_as_one_at_a_time() {
        // Against an independent normalization: lowercase, whitespace runs as one space.
        let dedup = DedupExactConfig::default().build();
        let texts = [
            "  La Ley 27.275 de Acceso\ta la\r\nInformación   PÚBLICA, art. 1.\n\n",
            "AbCdEfGh IjKlMnOp\tQRSTUVWX  YZ[\\]^_`{|}~ 0123456789 end",
            "ÁRBOL árbol ÑANDÚ\u{a0}ñandú — «cita» ¿Qué? ¡Sí! x",
            "12345678        9\n\n\n\nfin",
        ];
        for text in texts {
            let expected = text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            assert_eq!(dedup.normalized(text), expected, "{text:?}");
        }
        // A vertical tab is not ASCII whitespace for the byte loop, nor for the chunks.
        assert_eq!(
            dedup.normalized("ABCDEFG\u{b} HIJKLMN"),
            "abcdefg\u{b} hijklmn"
        );
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
