//! Pipeline stages.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Document;

/// What a step decided about a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The document goes on to the next step.
    Keep,
    /// The document leaves the pipeline; the reason is a short stable code such as
    /// `gopher_short_doc`, counted in `stats.json` and written to `metadata.rejected.reason`.
    Reject(Cow<'static, str>),
}

impl Verdict {
    /// A rejection with a reason code.
    pub fn reject(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::Reject(reason.into())
    }
}

/// Counts of what a step found, by kind (the anonymizer: personal data by type, such as
/// `email` or `cl_rut`). Counts only, never the values; `stats.json` lists them per step.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tally(BTreeMap<String, u64>);

impl Tally {
    /// Counts `n` more of `kind`.
    pub fn add(&mut self, kind: &str, n: u64) {
        if let Some(count) = self.0.get_mut(kind) {
            *count += n;
        } else {
            self.0.insert(kind.to_owned(), n);
        }
    }

    /// Adds another tally's counts.
    pub fn merge(&mut self, other: &Self) {
        for (kind, n) in &other.0 {
            self.add(kind, *n);
        }
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The sum over kinds.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The counts, by kind in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(k, n)| (k.as_str(), *n))
    }
}

/// A step that looks at one document at a time: it may annotate or rewrite it, and keeps or
/// rejects it. Steps run in parallel over batches, so they hold no mutable state.
pub trait Step: Send + Sync {
    /// Processes one document.
    fn process(&self, doc: &mut Document) -> Verdict;

    /// Processes one document and counts what it found into `tally`, by kind. The engine
    /// calls this one; the default counts nothing.
    fn process_tallied(&self, doc: &mut Document, tally: &mut Tally) -> Verdict {
        let _ = tally;
        self.process(doc)
    }
}

impl<F> Step for F
where
    F: Fn(&mut Document) -> Verdict + Send + Sync,
{
    fn process(&self, doc: &mut Document) -> Verdict {
        self(doc)
    }
}

/// A step whose verdict depends on the documents before it in corpus order (exact
/// deduplication: the first copy is kept). The engine computes [`OrderedStep::key`] in parallel
/// and calls [`OrderedStep::admit`] in corpus order, so the result does not depend on the number
/// of workers. Its whole state must follow from the keys it was shown: a resumed run replays the
/// keys of finished shards to restore it.
pub trait OrderedStep: Send + Sync {
    /// A 128-bit key of the document (a hash), computed in parallel.
    fn key(&self, doc: &Document) -> u128;
    /// Decides on the next document, in corpus order.
    fn admit(&mut self, key: u128) -> Verdict;
}

/// Where a document sits in the corpus: `input << 40 | line`, the index of its input file in
/// the run's ordered inputs and its 1-based line (row) there. Ordering positions is ordering
/// the corpus, and a position does not depend on workers, shards or staged tasks.
pub type Position = u64;

/// The position of line `line` of input `input`.
pub fn position(input: u32, line: u64) -> Position {
    (u64::from(input) << 40) | (line & ((1 << 40) - 1))
}

/// The error of a corpus-wide step: the typed error of the crate that implements it
/// (`latam_dedup::DedupError`, ...), boxed, so the engine reports it and a caller can
/// downcast it to decide what to do.
pub type StepError = Box<dyn std::error::Error + Send + Sync>;

/// A step that must see the whole corpus before it decides (near-duplicate clusters keep one
/// document of each cluster, and the one kept learns its cluster's size). The engine runs it in
/// two passes: a scan shows it a sketch of every document that reaches it, in corpus order; then
/// it plans, writing its decisions under its work directory; the final pass applies them.
/// A plan on disk is reused, so a resumed run does not scan again.
pub trait CorpusStep: Send + Sync {
    /// Opens the work directory: `Ok(true)` when a finished plan was found there and loaded
    /// (no scan needed), `Ok(false)` when the step needs a scan.
    fn open(&mut self, dir: &std::path::Path) -> Result<bool, StepError>;
    /// What the step keeps of a document, computed in parallel during the scan.
    fn sketch(&self, doc: &Document) -> Vec<u64>;
    /// Takes the sketch of the next document (its id too), in corpus order.
    fn observe(&mut self, at: Position, id: &str, sketch: Vec<u64>) -> Result<(), StepError>;
    /// After the scan: decides, and saves the plan under the work directory.
    fn plan(&mut self) -> Result<(), StepError>;
    /// The final pass, in parallel: the verdict on the document at `at`, which the step may
    /// annotate or rewrite.
    fn apply(&self, doc: &mut Document, at: Position) -> Verdict;
}
