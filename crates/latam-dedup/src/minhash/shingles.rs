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
    let latin = latin_table();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphabetic() {
            // A run of ASCII letters at once.
            let end = bytes[i..]
                .iter()
                .position(|b| !b.is_ascii_alphabetic())
                .map_or(bytes.len(), |n| i + n);
            word.extend(bytes[i..end].iter().map(u8::to_ascii_lowercase));
            in_number = false;
            i = end;
            continue;
        }
        if b.is_ascii() {
            i += 1;
            if b.is_ascii_digit() {
                if !in_number {
                    word.push(b'0');
                    in_number = true;
                }
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
        let class = match latin.get((ch as usize).wrapping_sub(LATIN_START)) {
            Some(class) => *class,
            // Dashes, quotes, the ellipsis, Unicode spaces: word breaks all.
            None if ('\u{2000}'..='\u{206f}').contains(&ch) => CharClass::Break,
            None => CharClass::of(ch),
        };
        match class {
            CharClass::Number => {
                if !in_number {
                    word.push(b'0');
                    in_number = true;
                }
            }
            CharClass::Letter(folded, len) => {
                in_number = false;
                word.extend_from_slice(&folded[..usize::from(len)]);
            }
            CharClass::Other(ch) => {
                in_number = false;
                push_folded(ch, &mut word);
            }
            CharClass::Mark => {
                // A mark written apart from its letter: dropped, as the marks of composed letters.
            }
            CharClass::Break => {
                in_number = false;
                flush(&mut word);
            }
        }
    }
    flush(&mut word);
}

/// What a character does to the normalized words.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CharClass {
    /// A digit of any script: part of a number.
    Number,
    /// A letter whose folded form fits in 8 bytes (the table of Latin letters).
    Letter([u8; 8], u8),
    /// Another letter or digit-like character, folded as it comes.
    Other(char),
    /// A combining mark: dropped.
    Mark,
    /// Punctuation, symbols, spaces: a word break.
    Break,
}

impl CharClass {
    fn of(ch: char) -> Self {
        if ch.is_numeric() {
            Self::Number
        } else if ch.is_alphanumeric() {
            Self::Other(ch)
        } else if is_combining_mark(ch) {
            Self::Mark
        } else {
            Self::Break
        }
    }
}

/// The characters of the Latin-1 Supplement and Latin Extended-A/B (U+0080..U+024F): most
/// non-ASCII characters of the region's text, classified and folded once.
const LATIN_START: usize = 0x80;
const LATIN_END: usize = 0x250;

fn latin_table() -> &'static [CharClass] {
    static TABLE: std::sync::LazyLock<Vec<CharClass>> = std::sync::LazyLock::new(|| {
        (LATIN_START..LATIN_END)
            .map(|cp| {
                let ch = char::from_u32(cp as u32).expect("a scalar value");
                match CharClass::of(ch) {
                    CharClass::Other(ch) => {
                        let mut folded = Vec::new();
                        push_folded(ch, &mut folded);
                        let mut bytes = [0u8; 8];
                        match bytes.get_mut(..folded.len()) {
                            Some(prefix) => {
                                prefix.copy_from_slice(&folded);
                                CharClass::Letter(bytes, folded.len() as u8)
                            }
                            None => CharClass::Other(ch),
                        }
                    }
                    class => class,
                }
            })
            .collect()
    });
    &TABLE
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
    fn the_latin_table_folds_as_the_character_functions_do() {
        // The table against the functions it caches, over every character it holds, in a word.
        for cp in LATIN_START..LATIN_END {
            let ch = char::from_u32(cp as u32).unwrap();
            let text = format!("a{ch}b");
            let mut expected = vec![b'a'];
            match CharClass::of(ch) {
                CharClass::Number => expected.push(b'0'),
                CharClass::Other(ch) => push_folded(ch, &mut expected),
                CharClass::Mark => {}
                CharClass::Letter(..) => unreachable!("of() never folds"),
                CharClass::Break => {
                    assert_eq!(words(&text), [xxh3_64(b"a"), xxh3_64(b"b")], "{ch:?}");
                    continue;
                }
            }
            expected.push(b'b');
            assert_eq!(words(&text), [xxh3_64(&expected)], "{ch:?}");
        }
        assert_eq!(words("Ñandú ÀÉÎÕÜ ǅ"), words("nandu aeiou dz"));
        for ch in '\u{2000}'..='\u{206f}' {
            assert_eq!(CharClass::of(ch), CharClass::Break, "{ch:?}");
        }
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
