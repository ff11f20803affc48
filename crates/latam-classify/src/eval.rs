//! Scores of single-label predictions: accuracy, precision, recall and F1 by label, macro-F1,
//! and the confusion matrix.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

/// Precision, recall and F1 of one label.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelScores {
    /// Gold examples of the label.
    pub support: u64,
    /// Correct predictions / predictions of the label.
    pub precision: f64,
    /// Correct predictions / gold examples.
    pub recall: f64,
    /// Their harmonic mean.
    pub f1: f64,
}

/// The scores of a test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    /// Examples.
    pub examples: u64,
    /// Share predicted right.
    pub accuracy: f64,
    /// Mean F1 over the gold labels.
    pub macro_f1: f64,
    /// By gold label.
    pub labels: BTreeMap<String, LabelScores>,
    /// `confusion[gold][predicted]` = count.
    pub confusion: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Scores `(gold, predicted)` pairs; a text with no prediction counts as `none`.
pub fn score<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Scores {
    let mut confusion: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut predicted: BTreeMap<String, u64> = BTreeMap::new();
    let (mut examples, mut right) = (0u64, 0u64);
    for (gold, guess) in pairs {
        examples += 1;
        right += u64::from(gold == guess);
        *confusion
            .entry(gold.to_owned())
            .or_default()
            .entry(guess.to_owned())
            .or_default() += 1;
        *predicted.entry(guess.to_owned()).or_default() += 1;
    }
    let ratio = |n: u64, d: u64| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let labels: BTreeMap<String, LabelScores> = confusion
        .iter()
        .map(|(gold, row)| {
            let support: u64 = row.values().sum();
            let hits = row.get(gold).copied().unwrap_or(0);
            let precision = ratio(hits, predicted.get(gold).copied().unwrap_or(0));
            let recall = ratio(hits, support);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            (
                gold.clone(),
                LabelScores {
                    support,
                    precision,
                    recall,
                    f1,
                },
            )
        })
        .collect();
    let macro_f1 = labels.values().map(|l| l.f1).sum::<f64>() / labels.len().max(1) as f64;
    Scores {
        examples,
        accuracy: ratio(right, examples),
        macro_f1,
        labels,
        confusion,
    }
}

impl Scores {
    /// The scores as Markdown tables: by label, then the confusion matrix.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "{} examples, accuracy {:.2}%, macro-F1 {:.4}\n\n| label | support | precision | recall | F1 |\n|---|---:|---:|---:|---:|\n",
            self.examples,
            self.accuracy * 100.0,
            self.macro_f1
        );
        for (label, s) in &self.labels {
            let _ = writeln!(
                out,
                "| {label} | {} | {:.4} | {:.4} | {:.4} |",
                s.support, s.precision, s.recall, s.f1
            );
        }
        let columns: Vec<&String> = {
            let mut c: Vec<&String> = self
                .confusion
                .iter()
                .flat_map(|(gold, row)| std::iter::once(gold).chain(row.keys()))
                .collect();
            c.sort();
            c.dedup();
            c
        };
        out.push_str("\n| gold \\ predicted |");
        for c in &columns {
            let _ = write!(out, " {c} |");
        }
        out.push_str("\n|---|");
        out.push_str(&"---:|".repeat(columns.len()));
        out.push('\n');
        for (gold, row) in &self.confusion {
            let _ = write!(out, "| {gold} |");
            for c in &columns {
                match row.get(*c) {
                    Some(n) => {
                        let _ = write!(out, " {n} |");
                    }
                    None => out.push_str(" |"),
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_by_label() {
        let s = score([
            ("spa", "spa"),
            ("spa", "por"),
            ("por", "por"),
            ("glg", "por"),
        ]);
        assert_eq!(s.examples, 4);
        assert!((s.accuracy - 0.5).abs() < 1e-9);
        assert!((s.labels["por"].precision - 1.0 / 3.0).abs() < 1e-9);
        assert!((s.labels["spa"].recall - 0.5).abs() < 1e-9);
        assert!(s.labels["glg"].f1.abs() < 1e-12);
        assert_eq!(s.confusion["spa"]["por"], 1);
        let md = s.to_markdown();
        assert!(
            md.contains("| spa | 2 | 1.0000 | 0.5000 | 0.6667 |"),
            "{md}"
        );
        assert!(md.contains("| glg | | 1 | |"), "{md}");
    }
}
