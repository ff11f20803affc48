//! Text to shingles: the normalized words of a document, hashed, and the hashes of their
//! n-grams. Normalization follows datatrove's `simplify_text`: lowercase, accents and other
//! combining marks removed (NFKD), every number one `0`, punctuation and symbols a word break.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Appends the 64-bit hashes of the normalized words of `text` to `words`.
pub fn word_hashes(text: &str, words: &mut Vec<u64>) {
    let mut word: Vec<u8> = Vec::with_capacity(32);
    // Inside a number: its digits and single `.`/`,` between digits become one `0`.
    let mut in_number = false;
    let bytes = text.as_bytes();
    let mut flush = |word: &mut Vec<u8>| {
        if !word.is_empty() {
            words.push(xxh3_64(word));
            word.clear();
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            i += 1;
            if b.is_ascii_digit() {
                if !in_number {
                    word.push(b'0');
                    in_number = true;
                }
            } else if b.is_ascii_alphabetic() {
                word.push(b.to_ascii_lowercase());
                in_number = false;
            } else if in_number
                && (b == b'.' || b == b',')
                && bytes.get(i).is_some_and(u8::is_ascii_digit)
            {
                // A separator inside a number: 3,14 and 1.234 are one number.
            } else {
                in_number = false;
                flush(&mut word);
            }
            continue;
        }
        let ch = text[i..].chars().next().expect("index on a char boundary");
        i += ch.len_utf8();
        if ch.is_numeric() {
            if !in_number {
                word.push(b'0');
                in_number = true;
            }
        } else if ch.is_alphanumeric() {
            in_number = false;
            push_folded(ch, &mut word);
        } else if is_combining_mark(ch) {
            // A mark written apart from its letter: dropped, as the marks of composed letters.
        } else {
            in_number = false;
            flush(&mut word);
        }
    }
    flush(&mut word);
}

/// Appends the lowercase letter without its marks: `É` → `e`, `ñ` → `n`, `ﬁ` → `fi`.
fn push_folded(ch: char, out: &mut Vec<u8>) {
    let mut buf = [0u8; 4];
    for lower in ch.to_lowercase() {
        decompose_compatible(lower, |part| {
            if !is_combining_mark(part) {
                out.extend_from_slice(part.encode_utf8(&mut buf).as_bytes());
            }
        });
    }
}

/// The hashes of the `n`-grams of `words` (a text of fewer than `n` words, but at least one,
/// is one shingle of all its words).
pub fn shingle_hashes(words: &[u64], n: usize, seed: u64, out: &mut Vec<u64>) {
    let n = n.max(1);
    if words.is_empty() {
        return;
    }
    let window = n.min(words.len());
    let mut bytes = Vec::with_capacity(window * 8);
    for gram in words.windows(window) {
        bytes.clear();
        for w in gram {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        out.push(xxh3_64_with_seed(&bytes, seed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<u64> {
        let mut out = Vec::new();
        word_hashes(text, &mut out);
        out
    }

    #[test]
    fn normalization_matches_simplified_text() {
        assert_eq!(
            words("¡Él pagó $1.234,56 en AÑO 2024! ﬁn"),
            words("el pago 0 en ano 0 fin")
        );
        assert_eq!(words("covid-19 e\u{301}xito"), words("covid 0 exito"));
        assert_eq!(words("  ...  "), Vec::<u64>::new());
        assert_ne!(words("casa"), words("cosa"));
    }

    #[test]
    fn shingles_slide_over_words() {
        let w = words("uno dos tres cuatro cinco seis");
        let mut s = Vec::new();
        shingle_hashes(&w, 5, 0, &mut s);
        assert_eq!(s.len(), 2);
        let mut short = Vec::new();
        shingle_hashes(&w[..3], 5, 0, &mut short);
        assert_eq!(short.len(), 1);
    }
}
