//! Word tokens as the quality rules count them: runs of letters and digits (with inner
//! apostrophes, hyphens, dots and commas: `d'Ávila`, `bem-vindo`, `3,5`), and runs of one
//! punctuation or symbol character (`...`, `#`, `—`) as tokens of their own, the way the NLTK
//! tokenizers used by Gopher and datatrove separate them.

/// One token of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The token's text.
    pub text: &'a str,
    /// Whether it holds a letter or digit (a word), rather than punctuation or symbols only.
    pub is_word: bool,
    /// Whether it holds at least one letter.
    pub has_alpha: bool,
    /// Its length in characters (code points).
    pub chars: u32,
}

/// Where the tokenizer puts its tokens: a list, or a count.
pub trait TokenSink<'a> {
    /// Takes one token.
    fn push(&mut self, token: Token<'a>);
}

impl<'a> TokenSink<'a> for Vec<Token<'a>> {
    fn push(&mut self, token: Token<'a>) {
        Vec::push(self, token);
    }
}

/// Counts tokens without keeping them.
#[derive(Debug, Default)]
pub struct TokenCount(pub usize);

impl TokenSink<'_> for TokenCount {
    fn push(&mut self, _: Token<'_>) {
        self.0 += 1;
    }
}

/// The number of tokens of a text.
pub fn count_tokens(text: &str) -> usize {
    let mut count = TokenCount(0);
    tokenize_into(text, &mut count);
    count.0
}

const ALNUM: u8 = 1;
const ALPHA: u8 = 2;
const SPACE: u8 = 4;
const JOINER: u8 = 8;

/// Classes of ASCII bytes; every byte of 0x80 and above is 0 (decided by [`latin_letter`] or
/// by decoding the character).
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = if c.is_ascii_alphabetic() {
            ALNUM | ALPHA
        } else if c.is_ascii_digit() {
            ALNUM
        } else if c.is_ascii_whitespace() {
            SPACE
        } else if matches!(c, b'\'' | b'-' | b'.' | b',' | b'_') {
            JOINER
        } else {
            0
        };
        b += 1;
    }
    table
};

/// Splits a text into tokens.
pub fn tokenize<'a>(text: &'a str, out: &mut Vec<Token<'a>>) {
    out.reserve(text.len() / 5);
    tokenize_into(text, out);
}

/// Splits a text into tokens, handing each to `out`.
pub fn tokenize_into<'a>(text: &'a str, out: &mut impl TokenSink<'a>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let class = CLASS[b as usize];
        if class & SPACE != 0 {
            i += 1;
        } else if class & ALNUM != 0 {
            i = word(text, i, out);
        } else if b.is_ascii() {
            let start = i;
            i += 1;
            while bytes.get(i) == Some(&b) {
                i += 1;
            }
            out.push(Token {
                text: &text[start..i],
                is_word: false,
                has_alpha: false,
                chars: (i - start) as u32,
            });
        } else if latin_letter(bytes, i) {
            i = word(text, i, out);
        } else {
            let c = char_at(text, i);
            if c.is_whitespace() {
                i += c.len_utf8();
            } else if is_alphanumeric(c) {
                i = word(text, i, out);
            } else {
                let start = i;
                i += c.len_utf8();
                while text[i..].starts_with(c) {
                    i += c.len_utf8();
                }
                out.push(Token {
                    text: &text[start..i],
                    is_word: false,
                    has_alpha: false,
                    chars: ((i - start) / c.len_utf8()) as u32,
                });
            }
        }
    }
}

/// Whether the two bytes at `i` are a letter of U+00C0..=U+027F (lead bytes 0xC3..=0xC9, but
/// × and ÷).
fn latin_letter(bytes: &[u8], i: usize) -> bool {
    match bytes[i] {
        0xc3 => bytes
            .get(i + 1)
            .is_some_and(|&n| n >= 0x80 && n != 0x97 && n != 0xb7),
        0xc4..=0xc9 => true,
        _ => false,
    }
}

fn char_at(text: &str, i: usize) -> char {
    text[i..].chars().next().expect("index on a char boundary")
}

/// Whether a letter or digit starts at byte `i`.
fn alphanumeric_at(text: &str, i: usize) -> bool {
    let bytes = text.as_bytes();
    match bytes.get(i) {
        None => false,
        Some(&b) if b.is_ascii() => CLASS[b as usize] & ALNUM != 0,
        Some(_) => latin_letter(bytes, i) || is_alphanumeric(char_at(text, i)),
    }
}

/// Reads the word starting at `start` (a letter or digit); returns where it ends.
fn word<'a>(text: &'a str, start: usize, out: &mut impl TokenSink<'a>) -> usize {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut classes = 0u8;
    // Bytes that are not a character of their own: the second of Latin letters and the
    // continuation bytes of other characters.
    let mut extra = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let class = CLASS[b as usize];
        if class & ALNUM != 0 {
            classes |= class;
            i += 1;
        } else if class & JOINER != 0 {
            // A joiner inside a word (d'Ávila, bem-vindo, 3,5) when a letter or digit follows.
            if alphanumeric_at(text, i + 1) {
                i += 1;
            } else {
                break;
            }
        } else if b.is_ascii() {
            break;
        } else if latin_letter(bytes, i) {
            classes |= ALPHA;
            i += 2;
            extra += 1;
        } else {
            let c = char_at(text, i);
            if is_alphabetic(c) {
                classes |= ALPHA;
            } else if !(c.is_numeric()
                || is_mark(c)
                || (matches!(c, '’' | '·') && alphanumeric_at(text, i + c.len_utf8())))
            {
                break;
            }
            i += c.len_utf8();
            extra += c.len_utf8() - 1;
        }
    }
    out.push(Token {
        text: &text[start..i],
        is_word: true,
        has_alpha: classes & ALPHA != 0,
        chars: (i - start - extra) as u32,
    });
    i
}

/// Letters of Latin-1 and Latin Extended-A/B (À..ɏ but × and ÷), the bulk of the region's
/// non-ASCII characters, without the Unicode tables; other characters ask them.
fn is_alphabetic(c: char) -> bool {
    match c {
        '×' | '÷' => false,
        'À'..='ɏ' => true,
        GENERAL_PUNCTUATION_START..=GENERAL_PUNCTUATION_END => false,
        _ => c.is_alphabetic(),
    }
}

fn is_alphanumeric(c: char) -> bool {
    match c {
        GENERAL_PUNCTUATION_START..=GENERAL_PUNCTUATION_END => false,
        _ => is_alphabetic(c) || c.is_numeric(),
    }
}

/// General Punctuation (dashes, quotes, the ellipsis, Unicode spaces): no letter or digit, and
/// common enough in the region's text to skip the Unicode tables for.
const GENERAL_PUNCTUATION_START: char = '\u{2000}';
const GENERAL_PUNCTUATION_END: char = '\u{206f}';

/// Combining marks (accents written as separate code points before NFC).
fn is_mark(c: char) -> bool {
    matches!(c, '\u{300}'..='\u{36f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        tokenize(text, &mut out);
        out.iter().map(|t| t.text).collect()
    }

    #[test]
    fn splits_words_and_punctuation() {
        assert_eq!(
            texts("¿Dónde está d'Ávila? Bem-vindo... 3,5% #tag"),
            [
                "¿",
                "Dónde",
                "está",
                "d'Ávila",
                "?",
                "Bem-vindo",
                "...",
                "3,5",
                "%",
                "#",
                "tag"
            ]
        );
        assert_eq!(texts("fin. Otro"), ["fin", ".", "Otro"]);
    }

    #[test]
    fn counts_characters_and_tokens() {
        let text = "¿Dónde está d'Ávila? Ñandú—ñandú… 3,5% Σοφία 東京 e\u{301}xito";
        let mut out = Vec::new();
        tokenize(text, &mut out);
        for t in &out {
            assert_eq!(t.chars as usize, t.text.chars().count(), "{:?}", t.text);
        }
        assert_eq!(count_tokens(text), out.len());
    }

    #[test]
    fn general_punctuation_has_no_letter_or_digit() {
        for c in GENERAL_PUNCTUATION_START..=GENERAL_PUNCTUATION_END {
            assert!(!c.is_alphanumeric(), "{c:?}");
        }
    }

    #[test]
    fn flags_words_and_letters() {
        let mut out = Vec::new();
        tokenize("1999 año —", &mut out);
        let flags: Vec<_> = out.iter().map(|t| (t.is_word, t.has_alpha)).collect();
        assert_eq!(flags, [(true, false), (true, true), (false, false)]);
    }
}
