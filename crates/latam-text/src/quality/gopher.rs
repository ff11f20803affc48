//! The Gopher rules (Rae et al. 2021, "Scaling Language Models", appendix A), with datatrove's
//! default thresholds.

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::duplicates;
use crate::words::Token;

/// Gopher quality rules. A threshold of 0 turns its rule off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherQualityConfig {
    /// Run these rules.
    pub enabled: bool,
    /// Fewest words (tokens with a letter or digit): `gopher_short_doc`.
    pub min_doc_words: usize,
    /// Most words: `gopher_long_doc`.
    pub max_doc_words: usize,
    /// Shortest mean word length, in characters: `gopher_below_avg_threshold`.
    pub min_avg_word_length: f64,
    /// Longest mean word length: `gopher_above_avg_threshold`.
    pub max_avg_word_length: f64,
    /// Most `#` per token, and most `...`/`…` per token: `gopher_too_many_hashes`,
    /// `gopher_too_many_ellipsis`.
    pub max_symbol_word_ratio: f64,
    /// Most lines starting with a bullet: `gopher_too_many_bullets`.
    pub max_bullet_lines_ratio: f64,
    /// Most lines ending with an ellipsis: `gopher_too_many_end_ellipsis`.
    pub max_ellipsis_lines_ratio: f64,
    /// Least share of tokens with a letter (punctuation tokens count in the total):
    /// `gopher_below_alpha_threshold`.
    pub min_alpha_words_ratio: f64,
    /// Fewest stop words of the document's language: `gopher_too_few_stop_words`.
    pub min_stop_words: usize,
}

impl Default for GopherQualityConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_doc_words: 50,
            max_doc_words: 100_000,
            min_avg_word_length: 3.0,
            max_avg_word_length: 10.0,
            max_symbol_word_ratio: 0.1,
            max_bullet_lines_ratio: 0.9,
            max_ellipsis_lines_ratio: 0.3,
            min_alpha_words_ratio: 0.8,
            min_stop_words: 2,
        }
    }
}

fn is_bullet_line(line: &str) -> bool {
    line.trim_start()
        .starts_with(['•', '-', '*', '·', '▪', '◦', '●', '‣'])
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl GopherQualityConfig {
    /// The first rule the text breaks, if any.
    pub(crate) fn check(
        &self,
        text: &str,
        tokens: &[Token<'_>],
        stop_words: Option<&FxHashSet<String>>,
    ) -> Option<&'static str> {
        if !self.enabled {
            return None;
        }
        let n_tokens = tokens.len();
        let (mut n_words, mut word_chars, mut n_alpha) = (0usize, 0usize, 0usize);
        for t in tokens {
            if t.is_word {
                n_words += 1;
                word_chars += t.chars as usize;
            }
            n_alpha += usize::from(t.has_alpha);
        }
        if self.min_doc_words > 0 && n_words < self.min_doc_words {
            return Some("gopher_short_doc");
        }
        if self.max_doc_words > 0 && n_words > self.max_doc_words {
            return Some("gopher_long_doc");
        }
        let mean = ratio(word_chars, n_words);
        if self.min_avg_word_length > 0.0 && mean < self.min_avg_word_length {
            return Some("gopher_below_avg_threshold");
        }
        if self.max_avg_word_length > 0.0 && mean > self.max_avg_word_length {
            return Some("gopher_above_avg_threshold");
        }
        if self.max_symbol_word_ratio > 0.0 {
            let hashes = count_byte(b'#', text);
            if ratio(hashes, n_tokens) > self.max_symbol_word_ratio {
                return Some("gopher_too_many_hashes");
            }
            let ellipses = memchr::memmem::find_iter(text.as_bytes(), "...").count()
                + memchr::memmem::find_iter(text.as_bytes(), "…").count();
            if ratio(ellipses, n_tokens) > self.max_symbol_word_ratio {
                return Some("gopher_too_many_ellipsis");
            }
        }
        if self.max_bullet_lines_ratio > 0.0 || self.max_ellipsis_lines_ratio > 0.0 {
            let (mut lines, mut bullets, mut ellipsis) = (0, 0, 0);
            for line in text.lines() {
                lines += 1;
                bullets += usize::from(is_bullet_line(line));
                let end = line.trim_end();
                ellipsis += usize::from(end.ends_with("...") || end.ends_with('…'));
            }
            if self.max_bullet_lines_ratio > 0.0
                && ratio(bullets, lines) > self.max_bullet_lines_ratio
            {
                return Some("gopher_too_many_bullets");
            }
            if self.max_ellipsis_lines_ratio > 0.0
                && ratio(ellipsis, lines) > self.max_ellipsis_lines_ratio
            {
                return Some("gopher_too_many_end_ellipsis");
            }
        }
        if self.min_alpha_words_ratio > 0.0 && ratio(n_alpha, n_tokens) < self.min_alpha_words_ratio
        {
            return Some("gopher_below_alpha_threshold");
        }
        if let Some(stop_words) = stop_words
            && self.min_stop_words > 0
        {
            let mut found = 0;
            let mut lower = String::new();
            for t in tokens.iter().filter(|t| t.is_word && t.text.len() <= 8) {
                let word = if t.text.chars().any(char::is_uppercase) {
                    lower.clear();
                    lower.extend(t.text.chars().flat_map(char::to_lowercase));
                    lower.as_str()
                } else {
                    t.text
                };
                if stop_words.contains(word) {
                    found += 1;
                    if found >= self.min_stop_words {
                        break;
                    }
                }
            }
            if found < self.min_stop_words {
                return Some("gopher_too_few_stop_words");
            }
        }
        None
    }
}

/// Characters in a string: its UTF-8 bytes but continuation bytes.
pub(crate) fn char_count(text: &str) -> usize {
    text.bytes().filter(|&b| b.cast_signed() >= -0x40).count()
}

fn count_byte(byte: u8, text: &str) -> usize {
    text.bytes().filter(|&b| b == byte).count()
}

/// Gopher repetition rules. A fraction of 0 turns its rule off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GopherRepetitionConfig {
    /// Run these rules.
    pub enabled: bool,
    /// Most lines that repeat an earlier line, as a share of lines: `dup_line_frac`.
    pub dup_line_frac: f64,
    /// Most paragraphs (separated by blank lines) that repeat an earlier one: `dup_para_frac`.
    pub dup_para_frac: f64,
    /// Most characters in repeated lines, as a share of the text: `dup_line_char_frac`.
    pub dup_line_char_frac: f64,
    /// Most characters in repeated paragraphs: `dup_para_char_frac`.
    pub dup_para_char_frac: f64,
    /// `[n, fraction]`: most characters covered by the most frequent (repeated) n-gram:
    /// `top_<n>_gram`.
    pub top_n_grams: Vec<(usize, f64)>,
    /// `[n, fraction]`: most characters in n-grams that repeat an earlier one:
    /// `duplicated_<n>_n_grams`.
    pub dup_n_grams: Vec<(usize, f64)>,
}

impl Default for GopherRepetitionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dup_line_frac: 0.3,
            dup_para_frac: 0.3,
            dup_line_char_frac: 0.2,
            dup_para_char_frac: 0.2,
            top_n_grams: vec![(2, 0.2), (3, 0.18), (4, 0.16)],
            dup_n_grams: vec![
                (5, 0.15),
                (6, 0.14),
                (7, 0.13),
                (8, 0.12),
                (9, 0.11),
                (10, 0.10),
            ],
        }
    }
}

/// Paragraphs: the text between blank lines, trimmed.
fn paragraphs(text: &str) -> Vec<&str> {
    let text = text.trim();
    let mut out = Vec::new();
    let mut start = 0;
    for at in memchr::memmem::find_iter(text.as_bytes(), "\n\n") {
        if at >= start {
            out.push(&text[start..at]);
            start = at + 2;
        }
    }
    out.push(&text[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn top_gram_reason(n: usize) -> &'static str {
    match n {
        1 => "top_1_gram",
        2 => "top_2_gram",
        3 => "top_3_gram",
        4 => "top_4_gram",
        _ => "top_n_gram",
    }
}

fn dup_gram_reason(n: usize) -> &'static str {
    match n {
        5 => "duplicated_5_n_grams",
        6 => "duplicated_6_n_grams",
        7 => "duplicated_7_n_grams",
        8 => "duplicated_8_n_grams",
        9 => "duplicated_9_n_grams",
        10 => "duplicated_10_n_grams",
        _ => "duplicated_n_grams",
    }
}

/// Hashes of the n-grams starting at each position (`len - n + 1` of them): a polynomial
/// rolling hash over the token hashes, so each position costs O(1) whatever `n`.
fn ngram_hashes(token_hashes: &[u64], n: usize, out: &mut Vec<u64>) {
    const BASE: u64 = 0x0000_0100_0000_01b3;
    out.clear();
    if n == 0 || token_hashes.len() < n {
        return;
    }
    let drop = BASE.wrapping_pow(n as u32 - 1);
    let mut h = token_hashes[..n]
        .iter()
        .fold(0u64, |h, &w| h.wrapping_mul(BASE).wrapping_add(w));
    out.push(mix(h));
    for i in n..token_hashes.len() {
        h = h
            .wrapping_sub(token_hashes[i - n].wrapping_mul(drop))
            .wrapping_mul(BASE)
            .wrapping_add(token_hashes[i]);
        out.push(mix(h));
    }
}

/// The MurmurHash3 finalizer: spreads every input bit over the output, for the hash tables.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl GopherRepetitionConfig {
    /// The first rule the text breaks, if any.
    pub(crate) fn check(&self, text: &str, tokens: &[Token<'_>]) -> Option<&'static str> {
        if !self.enabled || text.is_empty() {
            return None;
        }
        let total = text.len();
        let exceeds =
            |limit: f64, part: usize, whole: usize| limit > 0.0 && ratio(part, whole) > limit;

        let paragraphs = paragraphs(text);
        let (dup, chars) = duplicates(paragraphs.iter().copied());
        if exceeds(self.dup_para_frac, dup, paragraphs.len()) {
            return Some("dup_para_frac");
        }
        if exceeds(self.dup_para_char_frac, chars, total) {
            return Some("dup_para_char_frac");
        }
        let lines: Vec<&str> = text.split('\n').filter(|l| !l.is_empty()).collect();
        let (dup, chars) = duplicates(lines.iter().copied());
        if exceeds(self.dup_line_frac, dup, lines.len()) {
            return Some("dup_line_frac");
        }
        if exceeds(self.dup_line_char_frac, chars, total) {
            return Some("dup_line_char_frac");
        }

        let word_hashes: Vec<u64> = tokens
            .iter()
            .map(|t| xxhash_rust::xxh3::xxh3_64(t.text.as_bytes()))
            .collect();
        // prefix[i] = bytes of the first i tokens
        let mut prefix = Vec::with_capacity(tokens.len() + 1);
        prefix.push(0usize);
        for t in tokens {
            prefix.push(prefix.last().copied().unwrap_or(0) + t.text.len());
        }
        let mut hashes = Vec::new();
        let mut counts: FxHashMap<u64, (u32, u32)> = FxHashMap::default();
        let mut sketch = Vec::new();
        for &(n, limit) in &self.top_n_grams {
            ngram_hashes(&word_hashes, n, &mut hashes);
            if limit <= 0.0 || hashes.is_empty() {
                continue;
            }
            // Over-estimated counts that stay under the limit clear the exact count.
            let gram_len = |start: usize| prefix[start + n] - prefix[start] + (n - 1);
            if top_grams_within(&hashes, gram_len, limit * total as f64, &mut sketch) {
                continue;
            }
            counts.clear();
            counts.reserve(hashes.len());
            let mut best = (1u32, 0u32); // (count, first position)
            for (i, &h) in hashes.iter().enumerate() {
                let entry = counts.entry(h).or_insert((0, i as u32));
                entry.0 += 1;
                if entry.0 > best.0 || (entry.0 == best.0 && entry.1 < best.1) {
                    best = *entry;
                }
            }
            if best.0 > 1 {
                let start = best.1 as usize;
                let len = gram_len(start);
                if exceeds(limit, len * best.0 as usize, total) {
                    return Some(top_gram_reason(n));
                }
            }
        }
        let mut seen: FxHashSet<u64> = FxHashSet::default();
        if let Some(bound) = dup_ngram_bound(
            &self.dup_n_grams,
            &word_hashes,
            &prefix,
            &mut hashes,
            &mut seen,
        ) && self
            .dup_n_grams
            .iter()
            .all(|&(_, limit)| !exceeds(limit, bound, total))
        {
            return None;
        }
        for &(n, limit) in &self.dup_n_grams {
            ngram_hashes(&word_hashes, n, &mut hashes);
            let repeated = greedy_repeated(&hashes, n, &prefix, &mut seen);
            if exceeds(limit, repeated, total) {
                return Some(dup_gram_reason(n));
            }
        }
        None
    }
}

/// Bytes in n-grams that repeat an earlier one, counted as datatrove does: after a repeat the
/// scan jumps past it, so counted n-grams never overlap.
fn greedy_repeated(hashes: &[u64], n: usize, prefix: &[usize], seen: &mut FxHashSet<u64>) -> usize {
    seen.clear();
    seen.reserve(hashes.len());
    let (mut repeated, mut i) = (0usize, 0usize);
    while i < hashes.len() {
        if seen.insert(hashes[i]) {
            i += 1;
        } else {
            repeated += prefix[i + n] - prefix[i];
            i += n;
        }
    }
    repeated
}

/// Whether no n-gram can break a `top_<n>_gram` rule: a count-min sketch (two rows of
/// counters, each at least the true count) bounds every n-gram's count from above, so when
/// `length × estimate` stays within `max_chars` for all of them, so do the exact counts.
fn top_grams_within(
    hashes: &[u64],
    gram_len: impl Fn(usize) -> usize,
    max_chars: f64,
    sketch: &mut Vec<u32>,
) -> bool {
    let width = (hashes.len() * 2).next_power_of_two().max(64);
    let mask = (width - 1) as u64;
    sketch.clear();
    sketch.resize(width * 2, 0);
    let slots = |h: u64| ((h & mask) as usize, width + ((h >> 32) & mask) as usize);
    // The largest counter of the first row and the longest n-gram bound every product: when
    // their product stays within the limit (most documents), no n-gram is looked at again.
    let (mut top_count, mut longest) = (0u32, 0usize);
    for (i, &h) in hashes.iter().enumerate() {
        let (a, b) = slots(h);
        sketch[a] += 1;
        sketch[b] += 1;
        top_count = top_count.max(sketch[a]);
        longest = longest.max(gram_len(i));
    }
    if top_count < 2 || (longest as f64) * f64::from(top_count) <= max_chars {
        return true;
    }
    hashes.iter().enumerate().all(|(i, &h)| {
        let (a, b) = slots(h);
        let estimate = sketch[a].min(sketch[b]);
        estimate < 2 || (gram_len(i) as f64) * f64::from(estimate) <= max_chars
    })
}

/// An upper bound, in bytes, of the repeated characters that every `duplicated_<n>_n_grams`
/// rule can count, from one pass over the shortest n-grams: a repeated n-gram at a position
/// starts with a repeated shortest n-gram there, and the greedy count covers disjoint windows of
/// at most the longest n tokens, so the union of those windows after every repeated shortest
/// n-gram bounds them all. Most documents stay under every limit and skip the other passes.
fn dup_ngram_bound(
    rules: &[(usize, f64)],
    token_hashes: &[u64],
    prefix: &[usize],
    hashes: &mut Vec<u64>,
    seen: &mut FxHashSet<u64>,
) -> Option<usize> {
    let shortest = rules.iter().map(|r| r.0).min()?;
    let longest = rules.iter().map(|r| r.0).max()?;
    if shortest == 0 {
        return None;
    }
    ngram_hashes(token_hashes, shortest, hashes);
    seen.clear();
    seen.reserve(hashes.len());
    let tokens = token_hashes.len();
    let (mut bound, mut covered_to) = (0usize, 0usize);
    for (i, &h) in hashes.iter().enumerate() {
        if !seen.insert(h) {
            let end = (i + longest).min(tokens);
            let start = i.max(covered_to);
            if end > start {
                bound += prefix[end] - prefix[start];
                covered_to = end;
            }
        }
    }
    Some(bound)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::tokenize;

    fn quality(text: &str) -> Option<&'static str> {
        let mut tokens = Vec::new();
        tokenize(text, &mut tokens);
        GopherQualityConfig::default().check(text, &tokens, None)
    }

    fn repetition(text: &str) -> Option<&'static str> {
        let mut tokens = Vec::new();
        tokenize(text, &mut tokens);
        GopherRepetitionConfig::default().check(text, &tokens)
    }

    #[test]
    fn quality_rules() {
        let words = |w: &str, n: usize| vec![w; n].join(" ");
        assert_eq!(quality(&words("palabra", 49)), Some("gopher_short_doc"));
        assert_eq!(
            quality(&words("de", 60)),
            Some("gopher_below_avg_threshold")
        );
        assert_eq!(
            quality(&words("anticonstitucionalmente", 60)),
            Some("gopher_above_avg_threshold")
        );
        assert_eq!(
            quality(&words("#hashtag", 60)),
            Some("gopher_too_many_hashes")
        );
        assert_eq!(
            quality(&vec!["- punto de la lista"; 20].join("\n")),
            Some("gopher_too_many_bullets")
        );
        assert_eq!(
            quality(&words("1234 5678", 40)),
            Some("gopher_below_alpha_threshold")
        );
        assert_eq!(quality(&words("palabra", 60)), None);
    }

    #[test]
    fn repetition_rules() {
        let mut text = "El río nace en los Andes.\nCruza tres provincias del norte.\n\
            Tiene dos represas y un puerto.\nSus aguas riegan los valles.\n\
            En invierno baja con mucha fuerza.\nLos pescadores salen al alba."
            .to_owned();
        assert_eq!(repetition(&text), None);
        for _ in 0..5 {
            text.push_str("\nmenú principal");
        }
        assert_eq!(repetition(&text), Some("dup_line_frac"));
        let spam = "compre ahora compre ahora ".repeat(20);
        assert_eq!(repetition(&spam), Some("top_2_gram"));
    }

    #[test]
    fn the_sketch_never_hides_a_top_n_gram() {
        // A phrase repeated k times among distinct words, around the 20% limit: the filter
        // must decide as an exact count of the most frequent bigram does.
        for k in 20..60 {
            let mut words: Vec<String> = (0..300).map(|i| format!("p{i}")).collect();
            for j in 0..k {
                words.insert(j * 5, "gran oferta".into());
            }
            let text = words.join(" ");
            let mut tokens = Vec::new();
            tokenize(&text, &mut tokens);
            let mut counts: std::collections::HashMap<String, usize> =
                std::collections::HashMap::new();
            for pair in tokens.windows(2) {
                *counts
                    .entry(format!("{} {}", pair[0].text, pair[1].text))
                    .or_default() += 1;
            }
            let top = counts.iter().map(|(g, c)| g.len() * c).max().unwrap();
            let expected = top as f64 / text.len() as f64 > 0.2;
            assert_eq!(repetition(&text) == Some("top_2_gram"), expected, "k={k}");
        }
    }

    #[test]
    fn the_bound_never_hides_a_duplicated_n_gram() {
        // Long repeated passages in otherwise varied text, at several lengths: whenever a
        // greedy pass would reject, the bound must let the passes run.
        let base: Vec<String> = (0..400)
            .map(|i| format!("w{}", (i * 7919) % 1009))
            .collect();
        for repeat_len in [5, 6, 8, 10, 12, 30, 60] {
            let mut words = base.clone();
            let passage: Vec<String> = base[10..10 + repeat_len].to_vec();
            for k in 0..4 {
                let at = 100 + k * 70;
                words.splice(at..at, passage.iter().cloned());
            }
            let text = words.join(" ");
            let mut tokens = Vec::new();
            tokenize(&text, &mut tokens);
            let config = GopherRepetitionConfig {
                top_n_grams: vec![],
                ..GopherRepetitionConfig::default()
            };
            let hashes: Vec<u64> = tokens
                .iter()
                .map(|t| xxhash_rust::xxh3::xxh3_64(t.text.as_bytes()))
                .collect();
            let mut prefix = vec![0];
            for t in &tokens {
                prefix.push(prefix.last().unwrap() + t.text.len());
            }
            let bound = dup_ngram_bound(
                &config.dup_n_grams,
                &hashes,
                &prefix,
                &mut Vec::new(),
                &mut FxHashSet::default(),
            )
            .unwrap();
            for &(n, _) in &config.dup_n_grams {
                let mut grams = Vec::new();
                ngram_hashes(&hashes, n, &mut grams);
                let repeated = greedy_repeated(&grams, n, &prefix, &mut FxHashSet::default());
                assert!(
                    repeated <= bound,
                    "n={n} len={repeat_len}: {repeated} > {bound}"
                );
            }
        }
    }
}
