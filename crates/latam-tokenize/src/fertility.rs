//! Fertility: tokens per word and bytes per token of each tokenizer, by metadata values
//! (language, country, ...) — the "tokenization tax" a language pays.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rayon::prelude::*;
use serde::Serialize;

use crate::Tokenizer;

/// Counts of one group.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    /// Documents.
    pub documents: u64,
    /// Words (runs of letters and digits).
    pub words: u64,
    /// UTF-8 bytes.
    pub bytes: u64,
    /// Tokens of each tokenizer, in the order given.
    pub tokens: Vec<u64>,
}

/// Groups: `key=value` (or `all`) → counts.
pub type Fertility = BTreeMap<String, Counts>;

/// Words: maximal runs of alphanumeric characters (apostrophes inside words kept).
pub fn words(text: &str) -> u64 {
    let mut count = 0;
    let mut inside = false;
    for c in text.chars() {
        let part = c.is_alphanumeric() || (inside && (c == '\'' || c == '’'));
        if part && !inside {
            count += 1;
        }
        inside = part;
    }
    count
}

/// Adds `texts` (each with its group keys) to `into`.
pub fn measure(tokenizers: &[&Tokenizer], texts: &[(String, Vec<String>)], into: &mut Fertility) {
    let measured: Vec<(u64, u64, Vec<u64>)> = texts
        .par_iter()
        .map(|(text, _)| {
            (
                words(text),
                text.len() as u64,
                tokenizers
                    .iter()
                    .map(|t| t.encode(text).len() as u64)
                    .collect(),
            )
        })
        .collect();
    for ((_, groups), (w, b, tokens)) in texts.iter().zip(measured) {
        for group in groups.iter().map(String::as_str).chain(["all"]) {
            let c = into.entry(group.to_owned()).or_insert_with(|| Counts {
                tokens: vec![0; tokens.len()],
                ..Counts::default()
            });
            c.documents += 1;
            c.words += w;
            c.bytes += b;
            c.tokens.iter_mut().zip(&tokens).for_each(|(t, n)| *t += n);
        }
    }
}

/// The table in Markdown: per group, tokens per word and bytes per token of each tokenizer.
pub fn markdown(fertility: &Fertility, names: &[String]) -> String {
    let mut out = String::from("| group | documents | words | MB |");
    for n in names {
        let _ = write!(out, " tokens/word ({n}) | bytes/token ({n}) |");
    }
    out.push_str("\n|---|---:|---:|---:|");
    out.push_str(&"---:|---:|".repeat(names.len()));
    out.push('\n');
    for (group, c) in fertility {
        let _ = write!(
            out,
            "| {group} | {} | {} | {:.2} |",
            c.documents,
            c.words,
            c.bytes as f64 / 1e6
        );
        for t in &c.tokens {
            let _ = write!(
                out,
                " {:.3} | {:.3} |",
                *t as f64 / c.words.max(1) as f64,
                c.bytes as f64 / (*t).max(1) as f64
            );
        }
        out.push('\n');
    }
    out
}
