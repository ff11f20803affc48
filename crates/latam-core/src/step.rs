//! Pipeline stages.

use std::borrow::Cow;

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

/// A step that looks at one document at a time: it may annotate or rewrite it, and keeps or
/// rejects it. Steps run in parallel over batches, so they hold no mutable state.
pub trait Step: Send + Sync {
    /// Processes one document.
    fn process(&self, doc: &mut Document) -> Verdict;
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
