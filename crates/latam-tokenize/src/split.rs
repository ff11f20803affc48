//! Llama 3's pre-tokenizer regex, hand-written: `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+
//! |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, with the regex engine's
//! leftmost-first, greedy, backtracking semantics; several times faster than running the regex.
//! `\p{L}` comes from the same Unicode tables as the regex (regex-syntax), `\p{N}` and `\s` from
//! the standard library's (general category N, White_Space).

use regex_syntax::hir::{Class, HirKind};

/// The letter ranges of `\p{L}`.
pub(crate) struct Llama3Split {
    letters: Vec<(char, char)>,
}

impl Llama3Split {
    pub(crate) fn new() -> Self {
        let hir = regex_syntax::Parser::new()
            .parse(r"\p{L}")
            .expect("a valid class");
        let HirKind::Class(Class::Unicode(class)) = hir.kind() else {
            unreachable!("\\p{{L}} is a Unicode class")
        };
        Self {
            letters: class
                .ranges()
                .iter()
                .map(|r| (r.start(), r.end()))
                .collect(),
        }
    }

    fn letter(&self, c: char) -> bool {
        if c.is_ascii() {
            return c.is_ascii_alphabetic();
        }
        self.letters
            .binary_search_by(|(lo, hi)| {
                if *hi < c {
                    std::cmp::Ordering::Less
                } else if *lo > c {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Equal
                }
            })
            .is_ok()
    }

    /// Calls `piece` with each piece of `text`, in order (together they are `text`).
    pub(crate) fn split<'t>(&self, text: &'t str, mut piece: impl FnMut(&'t str)) {
        let mut i = 0;
        while i < text.len() {
            let end = self.match_at(text, i);
            piece(&text[i..end]);
            i = end;
        }
    }

    /// The end of the regex's match at byte `i`.
    fn match_at(&self, text: &str, i: usize) -> usize {
        let rest = &text[i..];
        let mut chars = rest.char_indices();
        let (_, c) = chars.next().expect("i is inside the text");
        let next = rest[c.len_utf8()..].chars().next();
        let number = |c: char| c.is_numeric();
        let other = |c: char| !c.is_whitespace() && !self.letter(c) && !number(c);
        // 's 't 're 've 'm 'll 'd, any case.
        if c == '\'' {
            let mut after = rest[1..].chars();
            let (a, b) = (after.next(), after.next());
            let one = |x: Option<char>, set: &[char]| x.is_some_and(|x| set.contains(&x));
            if one(a, &['s', 'S', 'ſ', 't', 'T', 'm', 'M', 'd', 'D']) {
                return i + 1 + a.map_or(0, char::len_utf8);
            }
            if (one(a, &['r', 'R', 'v', 'V']) && one(b, &['e', 'E']))
                || (one(a, &['l', 'L']) && one(b, &['l', 'L']))
            {
                return i + 3;
            }
        }
        // An optional non-letter, non-number, non-newline, then letters.
        let letters_from = |start: usize| {
            text[start..]
                .char_indices()
                .find(|(_, c)| !self.letter(*c))
                .map_or(text.len(), |(j, _)| start + j)
        };
        if self.letter(c) {
            return letters_from(i);
        }
        if c != '\r' && c != '\n' && !number(c) && next.is_some_and(|n| self.letter(n)) {
            return letters_from(i + c.len_utf8());
        }
        // One to three numbers.
        if number(c) {
            let mut end = i + c.len_utf8();
            for (n, (j, d)) in rest.char_indices().skip(1).enumerate() {
                if n >= 2 || !number(d) {
                    break;
                }
                end = i + j + d.len_utf8();
            }
            return end;
        }
        // An optional space, symbols, then newlines.
        let start = if c == ' ' && next.is_some_and(other) {
            Some(i + 1)
        } else if other(c) {
            Some(i)
        } else {
            None
        };
        if let Some(start) = start {
            let symbols_end = text[start..]
                .char_indices()
                .find(|(_, c)| !other(*c))
                .map_or(text.len(), |(j, _)| start + j);
            return text[symbols_end..]
                .char_indices()
                .find(|(_, c)| *c != '\r' && *c != '\n')
                .map_or(text.len(), |(j, _)| symbols_end + j);
        }
        // Whitespace: up to its last newline; else all but the last space before a non-space;
        // else all of it.
        let run_end = rest
            .char_indices()
            .find(|(_, c)| !c.is_whitespace())
            .map_or(text.len(), |(j, _)| i + j);
        let run = &text[i..run_end];
        if let Some(last) = run.rfind(['\r', '\n']) {
            return i + last + 1;
        }
        if run_end == text.len() {
            return run_end;
        }
        let last_char = run.chars().next_back().expect("a whitespace run");
        if run.len() > last_char.len_utf8() {
            return run_end - last_char.len_utf8();
        }
        run_end
    }
}
