//! `decontaminate`: training documents that share a long word n-gram (13 by default, on the
//! normalized text of minhash's shingles) with a benchmark's question or answer are rejected,
//! with the benchmark and the question's id in the reason (`contaminated:<benchmark>:<id>`) and
//! the matched item in `metadata.contamination`. Items shorter than `n` words (CHOCLO's
//! questions often are) match whole, from `min_words` words up; shorter ones are too generic
//! to mean contamination and are left out (counted in the log).

use std::path::PathBuf;

use latam_benchmarks::{Item, Skipped, TaskKind, data_files, examples, read_rows};
use latam_core::{Document, Step, Verdict};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::DedupError;
use crate::minhash::shingles::{shingle_hashes, word_hashes};

/// One benchmark to decontaminate against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchmarkRef {
    /// Its name in reasons (`choclo`, `enem`, ...).
    pub name: String,
    /// How its rows read: `choclo`, `trueque`, `mc` or `perplexity`.
    pub task: TaskKind,
    /// Files or directories of its data.
    pub paths: Vec<PathBuf>,
}

/// Settings of the `decontaminate` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecontaminateConfig {
    /// The benchmarks.
    pub benchmarks: Vec<BenchmarkRef>,
    /// Words per n-gram.
    pub n: usize,
    /// Items shorter than `n` words match whole from this many words; shorter ones are ignored.
    pub min_words: usize,
    /// Reference answers (and right choices) count as well as questions.
    pub answers: bool,
}

impl Default for DecontaminateConfig {
    fn default() -> Self {
        Self {
            benchmarks: Vec::new(),
            n: 13,
            min_words: 8,
            answers: true,
        }
    }
}

/// What an n-gram belongs to.
#[derive(Debug, Clone)]
struct Origin {
    benchmark: usize,
    id: String,
    field: &'static str,
    text: String,
}

/// The `decontaminate` step.
pub struct Decontaminate {
    names: Vec<String>,
    origins: Vec<Origin>,
    /// Words per n-gram → n-gram hash → origin.
    index: Vec<(usize, FxHashMap<u64, u32>)>,
    summary: Value,
}

const SEED: u64 = 0x1ec0;

impl DecontaminateConfig {
    /// Reads the benchmarks and indexes their n-grams.
    pub fn build(&self) -> Result<Decontaminate, DedupError> {
        if self.benchmarks.is_empty() {
            return Err(DedupError::Config(
                "no benchmarks: add [[steps.benchmarks]] with name, task and paths".into(),
            ));
        }
        if self.n == 0 || self.min_words == 0 || self.min_words > self.n {
            return Err(DedupError::Config(format!(
                "n ({}) and min_words ({}) must be positive with min_words <= n",
                self.n, self.min_words
            )));
        }
        let mut step = Decontaminate {
            names: Vec::new(),
            origins: Vec::new(),
            index: Vec::new(),
            summary: json!({}),
        };
        let mut by_n: FxHashMap<usize, FxHashMap<u64, u32>> = FxHashMap::default();
        let mut words = Vec::new();
        let mut grams = Vec::new();
        for (b, bench) in self.benchmarks.iter().enumerate() {
            step.names.push(bench.name.clone());
            let (mut items, mut short, mut skipped) = (0usize, 0usize, Skipped::default());
            for path in data_files(&bench.paths)? {
                let rows = read_rows(&path)?;
                for example in examples(bench.task, &path, &rows, &mut skipped) {
                    for (field, text) in texts(&example.item, self.answers) {
                        words.clear();
                        word_hashes(&text, &mut words);
                        if words.len() < self.min_words {
                            short += 1;
                            continue;
                        }
                        let n = words.len().min(self.n);
                        grams.clear();
                        shingle_hashes(&words, n, SEED, &mut grams);
                        let origin = step.origins.len() as u32;
                        step.origins.push(Origin {
                            benchmark: b,
                            id: example.id.clone(),
                            field,
                            text: text.chars().take(200).collect(),
                        });
                        let map = by_n.entry(n).or_default();
                        for g in &grams {
                            map.entry(*g).or_insert(origin);
                        }
                        items += 1;
                    }
                }
            }
            step.summary[&bench.name] = json!({ "items_indexed": items, "items_too_short": short, "rows_unreadable": skipped.rows.len() });
            tracing::info!(
                "decontaminate: {}: {items} questions and answers indexed, {short} shorter than {} words left out",
                bench.name,
                self.min_words
            );
        }
        let mut index: Vec<(usize, FxHashMap<u64, u32>)> = by_n.into_iter().collect();
        index.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
        step.index = index;
        Ok(step)
    }
}

/// The texts of an item that training data must not contain.
fn texts(item: &Item, answers: bool) -> Vec<(&'static str, String)> {
    match item {
        Item::Open {
            question,
            reference,
        } => {
            let mut out = vec![("question", question.clone())];
            if answers {
                out.push(("answer", reference.clone()));
            }
            out
        }
        Item::Choice {
            question,
            choices,
            answer,
        } => {
            let mut out = vec![("question", question.clone())];
            if answers {
                out.push(("answer", choices[*answer].clone()));
            }
            out
        }
        Item::Text { text } => vec![("text", text.clone())],
    }
}

impl Decontaminate {
    /// Per benchmark: items indexed and left out.
    pub fn summary(&self) -> &Value {
        &self.summary
    }

    /// The first benchmark item whose n-gram the text contains.
    fn find(&self, text: &str) -> Option<&Origin> {
        let mut words = Vec::new();
        word_hashes(text, &mut words);
        let mut grams = Vec::new();
        for (n, map) in &self.index {
            if words.len() < *n {
                continue;
            }
            grams.clear();
            shingle_hashes(&words, *n, SEED, &mut grams);
            if let Some(origin) = grams.iter().find_map(|g| map.get(g)) {
                return Some(&self.origins[*origin as usize]);
            }
        }
        None
    }
}

impl Step for Decontaminate {
    fn process(&self, doc: &mut Document) -> Verdict {
        let Some(origin) = self.find(&doc.text) else {
            return Verdict::Keep;
        };
        let benchmark = &self.names[origin.benchmark];
        doc.metadata.insert(
            "contamination".into(),
            json!({ "benchmark": benchmark, "id": origin.id, "field": origin.field, "item": origin.text }),
        );
        Verdict::reject(format!("contaminated:{benchmark}:{}", origin.id))
    }
}
