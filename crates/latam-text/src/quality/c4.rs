//! The C4 rules (Raffel et al. 2020) as datatrove implements them: lines are dropped for
//! boilerplate, whole documents for lorem ipsum, code braces and too few sentences. Policy
//! boilerplate is matched in English, Spanish and Portuguese.

use serde::{Deserialize, Serialize};

use super::ends_with_terminal_punct;

/// C4 rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct C4Config {
    /// Run these rules.
    pub enabled: bool,
    /// Drop lines that do not end in terminal punctuation (or end in an ellipsis). Off by
    /// default, as in the FineWeb recipe: it deletes headings, verse and dialogue.
    pub filter_no_terminal_punct: bool,
    /// Drop lines with fewer words (0: off).
    pub min_words_per_line: usize,
    /// Drop lines with a longer word, in characters (0: off).
    pub max_word_length: usize,
    /// Fewest sentences a document keeps: `too_few_sentences` (0: off).
    pub min_num_sentences: usize,
    /// Remove citation marks: `[1]`, `[edit]`, `[citation needed]`, `[editar]`, `[cita requerida]`.
    pub remove_citations: bool,
    /// Drop documents with "lorem ipsum": `lorem_ipsum`.
    pub filter_lorem_ipsum: bool,
    /// Drop lines that mention javascript.
    pub filter_javascript: bool,
    /// Drop documents with a `{` in a kept line: `curly_bracket`.
    pub filter_curly_bracket: bool,
    /// Drop lines of cookie, privacy and terms-of-use boilerplate.
    pub filter_policy: bool,
}

impl Default for C4Config {
    fn default() -> Self {
        Self {
            enabled: true,
            filter_no_terminal_punct: false,
            min_words_per_line: 3,
            max_word_length: 1000,
            min_num_sentences: 5,
            remove_citations: true,
            filter_lorem_ipsum: true,
            filter_javascript: true,
            filter_curly_bracket: true,
            filter_policy: true,
        }
    }
}

const POLICY: &[&str] = &[
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
    "política de privacidad",
    "política de cookies",
    "términos de uso",
    "términos y condiciones",
    "uso de cookies",
    "utiliza cookies",
    "utilizamos cookies",
    "usamos cookies",
    "política de privacidade",
    "termos de uso",
    "termos e condições",
    "utilizamos cookies",
];

/// Words that every phrase of [`POLICY`] contains: documents without any skip the full list.
/// Matched in ASCII-lowercased text, so `términos` is listed with both cases of its `é`.
const POLICY_HINTS: &[&str] = &[
    "cookie",
    "privac",
    "terms of use",
    "términos",
    "tÉrminos",
    "termos",
];

/// Whether `needle` (ASCII lowercase but for listed variants) occurs in `haystack`, which is
/// ASCII-lowercased: SIMD substring search, no Unicode case tables.
fn has(haystack: &[u8], needle: &str) -> bool {
    memchr::memmem::find(haystack, needle.as_bytes()).is_some()
}

const CITATIONS: &[&str] = &[
    "[edit]",
    "[citation needed]",
    "[editar]",
    "[cita requerida]",
    "[carece de fontes]",
];

fn remove_citations(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let tail = &rest[open..];
        let lower_tail = tail
            .get(..20.min(tail.len()))
            .map(str::to_lowercase)
            .unwrap_or_default();
        if let Some(c) = CITATIONS.iter().find(|c| lower_tail.starts_with(**c)) {
            rest = &tail[c.len()..];
            continue;
        }
        let digits = tail[1..].bytes().take_while(u8::is_ascii_digit).count();
        if tail[1 + digits..].starts_with(']') {
            rest = &tail[digits + 2..];
        } else {
            out.push('[');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Sentences in a line: runs of terminal punctuation followed by a space or the end; a line
/// without any is one sentence.
fn count_sentences(line: &str) -> usize {
    let mut count = 0;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '.' | '!' | '?' | '…') {
            while chars
                .peek()
                .is_some_and(|n| matches!(n, '.' | '!' | '?' | '…' | '"' | '»' | '”'))
            {
                chars.next();
            }
            if chars.peek().is_none_or(|n| n.is_whitespace()) {
                count += 1;
            }
        }
    }
    count.max(1)
}

/// Whether a line has a word longer than `max` characters (0: no limit). A line of at most
/// `max` bytes cannot, which settles almost every line without looking at its words.
fn has_long_word(line: &str, max: usize) -> bool {
    max > 0
        && line.len() > max
        && line
            .split_ascii_whitespace()
            .any(|w| w.len() > max && w.chars().count() > max)
}

/// Whether a line has at least `min` words; stops counting at `min`.
fn has_words(line: &str, min: usize) -> bool {
    line.split_ascii_whitespace().take(min).count() >= min
}

impl C4Config {
    /// Applies the rules: the cleaned text if lines were dropped, or the reason the document is
    /// rejected.
    pub(crate) fn apply(&self, text: &str) -> Result<Option<String>, &'static str> {
        if !self.enabled {
            return Ok(None);
        }
        // The substring rules look at lowercased lines; most documents contain none of the
        // words, which one ASCII-lowercased copy of the whole text tells at once.
        let lower_text = text.as_bytes().to_ascii_lowercase();
        let lorem = self.filter_lorem_ipsum && has(&lower_text, "lorem ipsum");
        let javascript = self.filter_javascript && has(&lower_text, "javascript");
        let policy = self.filter_policy && POLICY_HINTS.iter().any(|h| has(&lower_text, h));
        let braces = self.filter_curly_bracket && text.contains('{');
        let needs_lower = lorem || javascript || policy;

        let mut kept: Vec<std::borrow::Cow<'_, str>> = Vec::new();
        let mut changed = false;
        let mut sentences = 0;
        for raw in text.split('\n') {
            let line = raw.trim();
            if line.is_empty() {
                // Paragraph breaks are kept as they are.
                kept.push(raw.into());
                continue;
            }
            if has_long_word(line, self.max_word_length) {
                changed = true;
                continue;
            }
            let line: std::borrow::Cow<'_, str> = if self.remove_citations && line.contains('[') {
                remove_citations(line).into()
            } else {
                line.into()
            };
            if (self.filter_no_terminal_punct
                && (!ends_with_terminal_punct(&line)
                    || line.ends_with("...")
                    || line.ends_with('…')))
                || !has_words(&line, self.min_words_per_line)
            {
                changed = true;
                continue;
            }
            if needs_lower {
                let lower = line.to_lowercase();
                if lorem && lower.contains("lorem ipsum") {
                    return Err("lorem_ipsum");
                }
                if (javascript && lower.contains("javascript"))
                    || (policy && POLICY.iter().any(|p| lower.contains(p)))
                {
                    changed = true;
                    continue;
                }
            }
            if braces && line.contains('{') {
                return Err("curly_bracket");
            }
            if sentences < self.min_num_sentences {
                sentences += count_sentences(&line);
            }
            changed |= line.len() != raw.len();
            kept.push(line);
        }
        if self.min_num_sentences > 0 && sentences < self.min_num_sentences {
            return Err("too_few_sentences");
        }
        if !changed {
            return Ok(None);
        }
        let mut out = kept.join("\n");
        // Dropped lines can leave runs of blank lines behind.
        while out.contains("\n\n\n") {
            out = out.replace("\n\n\n", "\n\n");
        }
        let out = out.trim().to_owned();
        if out.is_empty() {
            Err("empty")
        } else {
            Ok(Some(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_boilerplate_lines_and_keeps_the_rest() {
        let text = "Este sitio utiliza cookies para mejorar la experiencia.\n\nEl río nace en los Andes. \
            Cruza tres provincias. Desemboca en el mar.\nTiene dos represas[1] y un puerto. Es navegable.\nMenú";
        let cleaned = C4Config::default().apply(text).unwrap().unwrap();
        assert_eq!(
            cleaned,
            "El río nace en los Andes. Cruza tres provincias. Desemboca en el mar.\nTiene dos represas y un puerto. Es navegable."
        );
    }

    #[test]
    fn whole_document_rules() {
        let c4 = C4Config::default();
        assert_eq!(c4.apply("Una frase corta aquí."), Err("too_few_sentences"));
        assert_eq!(
            c4.apply("Lorem ipsum dolor sit amet. a. b. c. d. e."),
            Err("lorem_ipsum")
        );
        let clean = "Uno dos tres. Cuatro cinco seis. Siete ocho nueve. Diez once doce. Trece catorce quince.";
        assert_eq!(c4.apply(clean), Ok(None));
    }

    #[test]
    fn terminal_punctuation_rule_is_optional() {
        let text = "Título del capítulo\nUno dos tres. Cuatro cinco seis. Siete ocho nueve. Diez once doce. Trece catorce quince.";
        let strict = C4Config {
            filter_no_terminal_punct: true,
            ..C4Config::default()
        };
        assert!(strict.apply(text).unwrap().unwrap().starts_with("Uno"));
        assert_eq!(C4Config::default().apply(text), Ok(None));
    }

    #[test]
    fn policy_hints_match_any_case() {
        let text = "Uno dos tres. Cuatro cinco seis. Siete ocho nueve. Diez once doce. Trece catorce quince.";
        for line in [
            "Lea los TÉRMINOS DE USO del sitio.",
            "Usamos COOKIES aquí, sí.",
            "Ver Política de Privacidad hoy.",
        ] {
            let cleaned = C4Config::default()
                .apply(&format!("{text}\n{line}"))
                .unwrap();
            assert_eq!(cleaned.as_deref(), Some(text), "{line}");
        }
    }

    #[test]
    fn citations() {
        assert_eq!(
            remove_citations("a[1] b[edit] c[12] d[x] e[Cita requerida]"),
            "a b c d[x] e"
        );
        assert_eq!(count_sentences("¿Qué? Sí... Bueno. Fin"), 3);
    }
}
