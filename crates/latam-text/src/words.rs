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
}

fn is_joiner(c: char) -> bool {
    matches!(c, '\'' | '’' | '-' | '.' | ',' | '_' | '·')
}

/// Splits a text into tokens.
pub fn tokenize<'a>(text: &'a str, out: &mut Vec<Token<'a>>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii() {
            if b.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if b.is_ascii_alphanumeric() {
                i = word(text, i, out);
                continue;
            }
        }
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
            });
        }
    }
}

fn char_at(text: &str, i: usize) -> char {
    text[i..].chars().next().expect("index on a char boundary")
}

/// Reads the word starting at `start` (a letter or digit); returns where it ends.
fn word<'a>(text: &'a str, start: usize, out: &mut Vec<Token<'a>>) -> usize {
    let bytes = text.as_bytes();
    let mut i = start;
    let mut has_alpha = false;
    loop {
        // ASCII letters and digits, the bulk of most words.
        while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
            has_alpha |= bytes[i].is_ascii_alphabetic();
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let c = char_at(text, i);
        if c.is_ascii() && !is_joiner(c) {
            break;
        }
        if is_alphabetic(c) {
            has_alpha = true;
            i += c.len_utf8();
        } else if c.is_numeric() || is_mark(c) {
            i += c.len_utf8();
        } else if is_joiner(c) {
            let next = i + c.len_utf8();
            if next < bytes.len() && is_alphanumeric(char_at(text, next)) {
                i = next;
            } else {
                break;
            }
        } else {
            break;
        }
    }
    out.push(Token {
        text: &text[start..i],
        is_word: true,
        has_alpha,
    });
    i
}

/// Letters of Latin-1 and Latin Extended-A/B (À..ɏ but × and ÷), the bulk of the region's
/// non-ASCII characters, without the Unicode tables; other characters ask them.
fn is_alphabetic(c: char) -> bool {
    match c {
        '×' | '÷' => false,
        'À'..='ɏ' => true,
        _ => c.is_alphabetic(),
    }
}

fn is_alphanumeric(c: char) -> bool {
    is_alphabetic(c) || c.is_numeric()
}

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
    fn flags_words_and_letters() {
        let mut out = Vec::new();
        tokenize("1999 año —", &mut out);
        let flags: Vec<_> = out.iter().map(|t| (t.is_word, t.has_alpha)).collect();
        assert_eq!(flags, [(true, false), (true, true), (false, false)]);
    }
}
