//! Counts of a run: documents and bytes, per step with drop reasons, per language, country and
//! source. Shards count their own; a run's stats are the sum of its shards' (`stats.json`).

use std::collections::BTreeMap;

use latam_core::{Document, Tally};
use serde::{Deserialize, Serialize};

/// One step's counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// The step's name (its type, numbered when repeated).
    pub name: String,
    /// The step's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Documents that reached the step.
    #[serde(rename = "in")]
    pub input: u64,
    /// Documents it passed on.
    pub out: u64,
    /// Documents it rejected (`in - out`).
    pub dropped: u64,
    /// Rejections by reason.
    pub dropped_by_reason: BTreeMap<String, u64>,
    /// Seconds of worker time spent in the step (summed over workers).
    pub time_s: f64,
    /// What the step found in the documents that passed through it, by kind (the anonymizer:
    /// personal data redacted, by type). Counts only.
    #[serde(default, skip_serializing_if = "Tally::is_empty")]
    pub findings: Tally,
    /// What the step found and redacted in documents that earlier steps rejected, before they
    /// were written to `rejected/` (the anonymizer's promise holds for every file of a run).
    #[serde(default, skip_serializing_if = "Tally::is_empty")]
    pub findings_in_rejected: Tally,
}

/// Documents and text bytes read and kept for one language, country or source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCounts {
    /// Documents read.
    pub read: u64,
    /// Documents kept.
    pub kept: u64,
    /// Text bytes read.
    pub read_bytes: u64,
    /// Text bytes kept.
    pub kept_bytes: u64,
}

/// Totals over documents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentTotals {
    /// Documents read: records the readers produced that are documents, counted before any
    /// step. Every one is kept or rejected, so `read = kept + rejected`.
    pub read: u64,
    /// Documents written to `documents/`.
    pub kept: u64,
    /// Documents rejected by a step.
    pub rejected: u64,
    /// Records that could not be read (see `errors.jsonl`); not documents.
    pub errors: u64,
}

/// Totals over text bytes (UTF-8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteTotals {
    /// Text bytes of the documents as read.
    pub read: u64,
    /// Text bytes of the kept documents as written.
    pub kept: u64,
}

/// The statistics of a shard or a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    /// Document totals.
    pub documents: DocumentTotals,
    /// Byte totals.
    pub bytes: ByteTotals,
    /// Per step, in pipeline order.
    pub steps: Vec<StepStats>,
    /// By `metadata.language` as last set (`unknown` when absent).
    pub by_language: BTreeMap<String, GroupCounts>,
    /// By `metadata.country`.
    pub by_country: BTreeMap<String, GroupCounts>,
    /// By `metadata.source`.
    pub by_source: BTreeMap<String, GroupCounts>,
}

impl RunStats {
    /// Empty counts for the given steps (`(name, type)`).
    pub fn new(steps: &[(String, String)]) -> Self {
        Self {
            steps: steps
                .iter()
                .map(|(name, kind)| StepStats {
                    name: name.clone(),
                    kind: kind.clone(),
                    ..StepStats::default()
                })
                .collect(),
            ..Self::default()
        }
    }

    /// Adds another shard's counts.
    pub fn merge(&mut self, other: &Self) {
        let d = &mut self.documents;
        d.read += other.documents.read;
        d.kept += other.documents.kept;
        d.rejected += other.documents.rejected;
        d.errors += other.documents.errors;
        self.bytes.read += other.bytes.read;
        self.bytes.kept += other.bytes.kept;
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            mine.input += theirs.input;
            mine.out += theirs.out;
            mine.dropped += theirs.dropped;
            mine.time_s += theirs.time_s;
            mine.findings.merge(&theirs.findings);
            mine.findings_in_rejected
                .merge(&theirs.findings_in_rejected);
            for (reason, n) in &theirs.dropped_by_reason {
                *mine.dropped_by_reason.entry(reason.clone()).or_default() += n;
            }
        }
        for (mine, theirs) in [
            (&mut self.by_language, &other.by_language),
            (&mut self.by_country, &other.by_country),
            (&mut self.by_source, &other.by_source),
        ] {
            for (key, counts) in theirs {
                let slot = mine.entry(key.clone()).or_default();
                slot.read += counts.read;
                slot.kept += counts.kept;
                slot.read_bytes += counts.read_bytes;
                slot.kept_bytes += counts.kept_bytes;
            }
        }
    }

    /// Counts a document as a reader produced it, before any step.
    pub(crate) fn count_read(&mut self, doc: &Document) {
        self.documents.read += 1;
        self.bytes.read += doc.text.len() as u64;
    }

    /// Counts a document that left the pipeline, kept or rejected, with its text size as read,
    /// by its language, country and source.
    pub(crate) fn count_document(&mut self, doc: &Document, read_bytes: u64, kept: bool) {
        if kept {
            self.documents.kept += 1;
            self.bytes.kept += doc.text.len() as u64;
        } else {
            self.documents.rejected += 1;
        }
        for (field, groups) in [
            ("language", &mut self.by_language),
            ("country", &mut self.by_country),
            ("source", &mut self.by_source),
        ] {
            let key = match doc.metadata.get(field) {
                Some(serde_json::Value::String(s)) => s.clone(),
                None | Some(serde_json::Value::Null) => "unknown".to_owned(),
                Some(other) => other.to_string(),
            };
            let slot = groups.entry(key).or_default();
            slot.read += 1;
            slot.read_bytes += read_bytes;
            if kept {
                slot.kept += 1;
                slot.kept_bytes += doc.text.len() as u64;
            }
        }
    }
}
