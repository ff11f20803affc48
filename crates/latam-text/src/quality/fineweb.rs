//! The FineWeb rules (Penedo et al. 2024) with datatrove's default thresholds.

use serde::{Deserialize, Serialize};

use super::gopher::char_count;
use super::{duplicates, ends_with_terminal_punct};
use crate::words::count_tokens;

/// FineWeb rules. A threshold of 0 turns its rule off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FineWebConfig {
    /// Run these rules.
    pub enabled: bool,
    /// Least share of lines ending in terminal punctuation: `line_punct_ratio`.
    pub line_punct_thr: f64,
    /// Most share of lines of at most `short_line_length` characters: `short_line_ratio`.
    pub short_line_thr: f64,
    /// What a short line is, in characters.
    pub short_line_length: usize,
    /// Most characters in lines that repeat an earlier line: `char_dup_ratio`.
    pub char_duplicates_ratio: f64,
    /// Most newlines per word (list-like text): `list_ratio`.
    pub new_line_ratio: f64,
}

impl Default for FineWebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            line_punct_thr: 0.12,
            short_line_thr: 0.67,
            short_line_length: 30,
            char_duplicates_ratio: 0.01,
            new_line_ratio: 0.3,
        }
    }
}

impl FineWebConfig {
    /// The first rule the text breaks, if any; `tokens` is the text's token count when known.
    pub(crate) fn check(&self, text: &str, tokens: Option<usize>) -> Option<&'static str> {
        if !self.enabled {
            return None;
        }
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return Some("empty");
        }
        let n = lines.len() as f64;
        let punct = lines.iter().filter(|l| ends_with_terminal_punct(l)).count() as f64;
        if self.line_punct_thr > 0.0 && punct / n < self.line_punct_thr {
            return Some("line_punct_ratio");
        }
        let short = lines
            .iter()
            .filter(|l| {
                l.len() <= self.short_line_length || char_count(l) <= self.short_line_length
            })
            .count();
        if self.short_line_thr > 0.0 && short as f64 / n > self.short_line_thr {
            return Some("short_line_ratio");
        }
        let newlines = text.bytes().filter(|&b| b == b'\n').count();
        if self.char_duplicates_ratio > 0.0 {
            let (_, dup_chars) = duplicates(lines.iter().copied());
            let chars = text.len() - newlines;
            if chars > 0 && dup_chars as f64 / chars as f64 > self.char_duplicates_ratio {
                return Some("char_dup_ratio");
            }
        }
        if self.new_line_ratio > 0.0 {
            let tokens = tokens.unwrap_or_else(|| count_tokens(text));
            if tokens > 0 && newlines as f64 / tokens as f64 > self.new_line_ratio {
                return Some("list_ratio");
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let fw = FineWebConfig::default();
        let prose = "El río nace en los Andes y cruza tres provincias antes de llegar al mar.\n\
                     Tiene dos represas y un puerto, y es navegable en casi todo su curso.";
        assert_eq!(fw.check(prose, None), None);
        assert_eq!(
            fw.check(
                "Inicio\nNoticias\nContacto\nUna línea larga que termina con punto final.",
                None
            ),
            Some("short_line_ratio")
        );
        let no_punct = "Una línea larga sin ningún signo de puntuación al final\n".repeat(10);
        assert_eq!(fw.check(&no_punct, None), Some("line_punct_ratio"));
        let dup = format!(
            "{prose}\nTiene dos represas y un puerto, y es navegable en casi todo su curso."
        );
        assert_eq!(fw.check(&dup, None), Some("char_dup_ratio"));
    }
}
