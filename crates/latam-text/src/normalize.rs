//! `normalize`: Unicode normalization form, control and zero-width characters, Unicode spaces,
//! whitespace runs and blank lines, and mojibake (UTF-8 decoded as Latin-1 or Windows-1252,
//! which turns `é` into `Ã©` and `’` into `â€™`; Spanish and Portuguese text is full of it).

use std::borrow::Cow;

use latam_core::{Document, Step, Verdict};
use serde::{Deserialize, Serialize};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick, is_nfkc_quick};

/// Unicode normalization form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnicodeForm {
    /// Canonical composition (the default: `e` + combining acute becomes `é`).
    Nfc,
    /// Compatibility composition (also folds ligatures, full-width forms, superscripts).
    Nfkc,
    /// Leave the form as it is.
    None,
}

/// Settings of the `normalize` step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    /// Repair UTF-8 that was decoded as Latin-1 or Windows-1252 (`Ã©` → `é`, `â€œ` → `“`).
    pub fix_mojibake: bool,
    /// Unicode normalization form: `nfc`, `nfkc` or `none`.
    pub form: UnicodeForm,
    /// Remove control characters (but newline and tab), zero-width spaces, soft hyphens, BOMs.
    pub remove_control: bool,
    /// Turn no-break, thin, ideographic and other Unicode spaces into plain spaces, and Unicode
    /// line and paragraph separators into newlines.
    pub unicode_spaces: bool,
    /// Collapse runs of spaces and tabs into one space, strip them at line ends, trim the text.
    pub collapse_whitespace: bool,
    /// Most blank lines kept in a row (paragraph breaks); more are dropped.
    pub max_blank_lines: usize,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            fix_mojibake: true,
            form: UnicodeForm::Nfc,
            remove_control: true,
            unicode_spaces: true,
            collapse_whitespace: true,
            max_blank_lines: 1,
        }
    }
}

impl NormalizeConfig {
    /// Builds the step.
    pub fn build(&self) -> Normalize {
        Normalize {
            config: self.clone(),
        }
    }
}

/// The `normalize` step. Rejects documents left empty (`empty`).
#[derive(Debug, Clone)]
pub struct Normalize {
    config: NormalizeConfig,
}

impl Normalize {
    /// Normalizes one text.
    pub fn normalize(&self, text: &str) -> String {
        let c = &self.config;
        let mut text: Cow<'_, str> = Cow::Borrowed(text);
        if c.fix_mojibake
            && let Cow::Owned(fixed) = fix_mojibake(&text)
        {
            text = Cow::Owned(fixed);
        }
        let mut out = String::with_capacity(text.len());
        clean_chars(&text, c, &mut out);
        // Characters below U+0300 are all in NFC and NFKC with combining class 0, so only the
        // others are checked: leaving such characters out can only make the check stricter.
        // Their UTF-8 starts with a byte of 0xCC or above, which most texts lack altogether.
        if !out.bytes().any(|b| b >= 0xcc) {
            return out;
        }
        let may_change = || out.chars().filter(|&ch| ch >= '\u{300}');
        match c.form {
            UnicodeForm::Nfc if is_nfc_quick(may_change()) != IsNormalized::Yes => {
                out = out.nfc().collect();
            }
            UnicodeForm::Nfkc if is_nfkc_quick(may_change()) != IsNormalized::Yes => {
                out = out.nfkc().collect();
            }
            _ => {}
        }
        out
    }
}

impl Step for Normalize {
    fn process(&self, doc: &mut Document) -> Verdict {
        doc.text = self.normalize(&doc.text);
        if doc.text.is_empty() {
            Verdict::reject("empty")
        } else {
            Verdict::Keep
        }
    }
}

fn is_unicode_space(c: char) -> bool {
    matches!(
        c,
        '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}'
    )
}

fn is_removable(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200b}' | '\u{2060}' | '\u{feff}' | '\u{ad}')
}

/// Length of the UTF-8 character at `i` if it is one that cleaning leaves as it is (not a
/// space, control, separator or zero-width character), told from its bytes; `None` when the
/// character needs a closer look.
#[inline]
fn plain_char_len(bytes: &[u8], i: usize) -> Option<usize> {
    let b = bytes[i];
    let next = |k: usize| bytes.get(i + k).copied().unwrap_or(0);
    match b {
        0x21..=0x7e => Some(1),
        // U+0080..U+00BF: C1 controls, no-break space, soft hyphen need care.
        0xc2 => (next(1) >= 0xa1 && next(1) != 0xad).then_some(2),
        0xc3..=0xdf => Some(2),
        // General punctuation: spaces, zero-width and separators live in E2 80 80..AF and
        // E2 81 9F..A0; dashes, quotes and the ellipsis are plain.
        0xe2 => match (next(1), next(2)) {
            (0x80, 0x80..=0x8f | 0xa8 | 0xa9 | 0xaf) | (0x81, 0x9f | 0xa0) => None,
            _ => Some(3),
        },
        0xe1 if next(1) == 0x9a && next(2) == 0x80 => None, // ogham space mark
        0xe3 if next(1) == 0x80 && next(2) == 0x80 => None, // ideographic space
        0xef if next(1) == 0xbb && next(2) == 0xbf => None, // BOM
        0xe0..=0xef => Some(3),
        0xf0..=0xf4 => Some(4),
        _ => None,
    }
}

/// One pass over the text: line breaks, controls, spaces, whitespace runs, blank lines.
/// Runs of plain characters joined by single spaces (most of any line) are copied as slices;
/// everything else goes one character at a time.
fn clean_chars(text: &str, c: &NormalizeConfig, out: &mut String) {
    let mut state = Cleaner {
        out,
        config: c,
        blank_run: 0,
        pending_space: false,
        at_line_start: true,
    };
    let bytes = text.as_bytes();
    let plain = |i: usize| {
        if c.remove_control && c.unicode_spaces {
            plain_char_len(bytes, i)
        } else {
            None
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let mut end = i;
        while end < bytes.len() {
            if matches!(bytes[end], 0x21..=0x7e) && c.remove_control {
                end += 1;
            } else if let Some(len) = plain(end) {
                end += len;
            } else if bytes[end] == b' '
                && end > i
                && end + 1 < bytes.len()
                && plain(end + 1).is_some()
            {
                end += 1;
            } else {
                break;
            }
        }
        if end > i {
            state.push_str(&text[i..end]);
            i = end;
            continue;
        }
        let ch = text[i..].chars().next().expect("index on a char boundary");
        i += ch.len_utf8();
        if ch == '\r' && bytes.get(i) == Some(&b'\n') {
            continue;
        }
        state.push_char(ch);
    }
    if c.collapse_whitespace {
        let end = state.out.trim_end().len();
        state.out.truncate(end);
    }
}

struct Cleaner<'a> {
    out: &'a mut String,
    config: &'a NormalizeConfig,
    /// Newlines in a row so far, minus one.
    blank_run: usize,
    pending_space: bool,
    at_line_start: bool,
}

impl Cleaner<'_> {
    /// Plain characters, with single spaces between them only.
    fn push_str(&mut self, s: &str) {
        if self.pending_space {
            self.out.push(' ');
            self.pending_space = false;
        }
        self.out.push_str(s);
        self.at_line_start = false;
    }

    fn push_char(&mut self, mut ch: char) {
        let c = self.config;
        if ch == '\r' {
            ch = '\n';
        }
        if c.unicode_spaces {
            if is_unicode_space(ch) {
                ch = ' ';
            } else if matches!(ch, '\u{2028}' | '\u{2029}' | '\u{85}') {
                ch = '\n';
            }
        }
        if c.remove_control && is_removable(ch) {
            return;
        }
        if !c.collapse_whitespace {
            self.out.push(ch);
            return;
        }
        match ch {
            ' ' | '\t' => self.pending_space = !self.at_line_start,
            '\n' => {
                self.pending_space = false;
                if self.at_line_start {
                    self.blank_run += 1;
                } else {
                    self.blank_run = 0;
                }
                if !self.out.is_empty() && self.blank_run <= c.max_blank_lines {
                    self.out.push('\n');
                }
                self.at_line_start = true;
            }
            _ => {
                let mut buf = [0u8; 4];
                self.push_str(ch.encode_utf8(&mut buf));
            }
        }
    }
}

/// The Windows-1252 byte a character came from when UTF-8 was decoded as Windows-1252 or
/// Latin-1, for the bytes 0x80..=0xFF.
fn cp1252_byte(c: char) -> Option<u8> {
    let b = match c {
        '\u{80}'..='\u{ff}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        'ƒ' => 0x83,
        '„' => 0x84,
        '…' => 0x85,
        '†' => 0x86,
        '‡' => 0x87,
        'ˆ' => 0x88,
        '‰' => 0x89,
        'Š' => 0x8a,
        '‹' => 0x8b,
        'Œ' => 0x8c,
        'Ž' => 0x8e,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        '˜' => 0x98,
        '™' => 0x99,
        'š' => 0x9a,
        '›' => 0x9b,
        'œ' => 0x9c,
        'ž' => 0x9e,
        'Ÿ' => 0x9f,
        _ => return None,
    };
    Some(b)
}

/// Repairs mojibake: runs of characters that are the Windows-1252/Latin-1 reading of one UTF-8
/// sequence (`Ã©` → `é`, `Ã£` → `ã`, `â€™` → `’`) are decoded back. Only complete, valid UTF-8
/// sequences are replaced, so `NÃO` or `Ángel` stay as they are. Double-encoded text is
/// repaired too (up to three rounds).
pub fn fix_mojibake(text: &str) -> Cow<'_, str> {
    let mut current = Cow::Borrowed(text);
    for _ in 0..3 {
        match fix_once(&current) {
            Some(fixed) => current = Cow::Owned(fixed),
            None => break,
        }
    }
    current
}

fn fix_once(text: &str) -> Option<String> {
    // Every mojibake sequence starts with a lead byte 0xC2..=0xF4 read as Â..ô, which UTF-8
    // encodes as 0xC3 0x82..=0xB4: only those places are looked at.
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `text` already in `out`
    for start in memchr::memchr_iter(0xc3, bytes) {
        if start < copied || !matches!(bytes.get(start + 1), Some(0x82..=0xb4)) {
            continue;
        }
        let lead = u32::from(bytes[start + 1] & 0x3f) | 0xc0;
        let needed = match lead {
            0xc2..=0xdf => 1,
            0xe0..=0xef => 2,
            _ => 3,
        };
        let mut seq = [lead as u8, 0, 0, 0];
        let mut rest = text[start + 2..].char_indices();
        let mut end = start + 2;
        let complete = seq[1..=needed].iter_mut().all(|slot| match rest.next() {
            Some((i, next)) => match cp1252_byte(next) {
                Some(b @ 0x80..=0xbf) => {
                    *slot = b;
                    end = start + 2 + i + next.len_utf8();
                    true
                }
                _ => false,
            },
            None => false,
        });
        if !complete {
            continue;
        }
        let Ok(decoded) = std::str::from_utf8(&seq[..=needed]) else {
            continue;
        };
        let out = out.get_or_insert_with(|| String::with_capacity(text.len()));
        out.push_str(&text[copied..start]);
        out.push_str(decoded);
        copied = end;
    }
    let mut out = out?;
    out.push_str(&text[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(text: &str) -> String {
        NormalizeConfig::default().build().normalize(text)
    }

    #[test]
    fn repairs_spanish_and_portuguese_mojibake() {
        assert_eq!(fix_mojibake("La canciÃ³n del niÃ±o"), "La canción del niño");
        assert_eq!(fix_mojibake("InformaÃ§Ã£o pÃºblica"), "Informação pública");
        assert_eq!(
            fix_mojibake("It didnâ€™t â€œworkâ€\u{9d}"),
            "It didn’t “work”"
        );
        assert_eq!(fix_mojibake("Â¿QuÃ© pasÃ³?"), "¿Qué pasó?");
        // Double encoding: é → Ã© → ÃƒÂ©.
        assert_eq!(fix_mojibake("cafÃƒÂ©"), "café");
    }

    #[test]
    fn leaves_correct_text_alone() {
        for text in [
            "NÃO",
            "Ángel Ñandú",
            "São Paulo — «ação»",
            "Ã ver",
            "plain ascii",
        ] {
            assert!(matches!(fix_mojibake(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn whitespace_controls_and_blank_lines() {
        assert_eq!(
            norm("  a \t b  \r\n\r\n\r\n\r\nc\u{200b}d\u{0}e  "),
            "a b\n\ncde"
        );
        assert_eq!(norm("x\u{a0}y\u{2028}z"), "x y\nz");
        assert_eq!(norm(" \n\t\n"), "");
    }

    #[test]
    fn plain_runs_and_special_characters() {
        // Characters the fast path must not copy as they are.
        assert_eq!(
            norm("a\u{ad}b c\u{a0}d e\u{2009}f g\u{200b}h i\u{3000}j\u{feff}k"),
            "ab c d e f gh i jk"
        );
        assert_eq!(
            norm("—¿Qué? «Sí»… “ok” 中文 😀"),
            "—¿Qué? «Sí»… “ok” 中文 😀"
        );
        assert_eq!(norm("uno  dos \t tres \n cuatro"), "uno dos tres\ncuatro");
        assert_eq!(norm("x\u{85}y\u{9f}z"), "x\nyz");
    }

    #[test]
    fn composes_to_nfc() {
        assert_eq!(norm("Jose\u{301}"), "José");
        let nfkc = NormalizeConfig {
            form: UnicodeForm::Nfkc,
            ..Default::default()
        }
        .build();
        assert_eq!(nfkc.normalize("ﬁesta"), "fiesta");
    }

    #[test]
    fn empty_documents_are_rejected() {
        let mut doc = Document::new("x", "\u{feff}  \n");
        assert_eq!(
            NormalizeConfig::default().build().process(&mut doc),
            Verdict::reject("empty")
        );
    }
}
