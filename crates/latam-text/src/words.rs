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
        if b.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let c = if b.is_ascii() {
            b as char
        } else {
            text[i..].chars().next().expect("index on a char boundary")
        };
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        if c.is_alphanumeric() {
            let mut has_alpha = c.is_alphabetic();
            i += c.len_utf8();
            let mut rest = text[i..].chars().peekable();
            while let Some(&n) = rest.peek() {
                if n.is_alphanumeric() || is_mark(n) {
                    has_alpha |= n.is_alphabetic();
                    i += n.len_utf8();
                    rest.next();
                } else if is_joiner(n) {
                    let mut ahead = rest.clone();
                    ahead.next();
                    match ahead.peek() {
                        Some(&m) if m.is_alphanumeric() => {
                            i += n.len_utf8();
                            rest.next();
                        }
                        _ => break,
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
        } else {
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
