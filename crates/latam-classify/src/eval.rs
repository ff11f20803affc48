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
    /// How often each label was predicted.
    pub fn predictions(&self) -> BTreeMap<&str, u64> {
        let mut out: BTreeMap<&str, u64> = BTreeMap::new();
        for row in self.confusion.values() {
            for (label, n) in row {
                *out.entry(label.as_str()).or_default() += n;
            }
        }
        out
    }

    /// A warning when the model learned little beyond the commonest label: one label takes at
    /// least 90% of the predictions, 10 points more than its share of the gold labels, or
    /// macro-F1 is below half the accuracy. It names the labels never predicted right and what
    /// to try. `None` for a model that tells the labels apart.
    pub fn collapse_warning(&self) -> Option<String> {
        let predictions = self.predictions();
        let (top, n) = predictions.iter().max_by_key(|(_, n)| **n)?;
        let share = |n: u64| n as f64 / self.examples.max(1) as f64;
        let gold = self.labels.get(*top).map_or(0, |l| l.support);
        let dominant = share(*n) >= 0.9 && share(*n) >= share(gold) + 0.1;
        if !dominant && self.macro_f1 >= self.accuracy / 2.0 {
            return None;
        }
        let missed: Vec<&str> = self
            .labels
            .iter()
            .filter(|(_, l)| l.recall == 0.0)
            .map(|(label, _)| label.as_str())
            .collect();
        let mut out = format!(
            "accuracy {:.2}% but macro-F1 {:.4}: `{top}` takes {n} of the {} predictions ({:.0}% \
             of the gold labels are `{top}`)",
            self.accuracy * 100.0,
            self.macro_f1,
            self.examples,
            share(gold) * 100.0
        );
        if !missed.is_empty() {
            let _ = write!(out, "; never predicted right: {}", missed.join(", "));
        }
        out.push_str(
            ". The model learned little beyond the commonest label: train longer (--epochs, \
             e.g. twice as many), with a higher learning rate (--lr), or on fewer examples of \
             the commonest labels (class balance).",
        );
        Some(out)
    }

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

    fn repeat(pairs: &[(&'static str, &'static str, usize)]) -> Vec<(&'static str, &'static str)> {
        pairs
            .iter()
            .flat_map(|&(g, p, n)| std::iter::repeat_n((g, p), n))
            .collect()
    }

    #[test]
    fn a_model_that_predicts_one_label_is_flagged() {
        // The README's case: 86% of one label, every prediction that label.
        let s = score(repeat(&[
            ("spa", "spa", 86),
            ("por", "spa", 8),
            ("gug", "spa", 4),
            ("quy", "spa", 2),
        ]));
        let w = s.collapse_warning().expect("flagged");
        assert!(
            w.contains("`spa` takes 100 of the 100 predictions (86% of the gold labels")
                && w.contains("never predicted right: gug, por, quy")
                && w.contains("--epochs")
                && w.contains("--lr")
                && w.contains("class balance"),
            "{w}"
        );
        // Half the labels lost, though no label takes 90% of the predictions.
        let s = score(repeat(&[
            ("a", "a", 40),
            ("b", "a", 10),
            ("c", "a", 10),
            ("d", "a", 10),
            ("f", "a", 10),
            ("e", "e", 20),
        ]));
        assert!(
            (s.accuracy - 0.6).abs() < 1e-9 && s.macro_f1 < 0.28,
            "{s:?}"
        );
        assert!(s.collapse_warning().is_some());
    }

    #[test]
    fn a_model_that_tells_labels_apart_is_not() {
        let s = score(repeat(&[
            ("spa", "spa", 85),
            ("spa", "por", 1),
            ("por", "por", 8),
            ("gug", "gug", 3),
            ("gug", "spa", 1),
            ("quy", "quy", 2),
        ]));
        assert_eq!(s.collapse_warning(), None);
        // One label nearly everywhere in the gold labels too: predicting it is right.
        let s = score(repeat(&[("a", "a", 95), ("b", "b", 4), ("b", "a", 1)]));
        assert_eq!(s.collapse_warning(), None);
    }
}
