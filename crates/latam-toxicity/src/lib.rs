//! The `classify_toxicity` and `filter_toxicity` steps.
//!
//! `classify_toxicity` writes `metadata.toxicity_score` (0–1) and `metadata.toxicity_labels`
//! (what fired: lexicon categories such as `insult` or `slur`, and `classifier`) from two
//! sources:
//!
//! * **Lexicons**: the LDNOOBW lists for Spanish, Portuguese and English (CC BY 4.0, embedded;
//!   `data/ldnoobw/`), chosen by `metadata.language` (`spa`, `por`, `eng`, as
//!   `detect_language` writes it; documents in another language or without one use
//!   `fallback_lists`). Matching is on word boundaries, case- and accent-insensitive (`ñ` kept),
//!   multi-word entries across any whitespace, with one Aho-Corasick automaton. The context
//!   rules of `data/rules.toml` give each entry a category, ignore entries whose main sense is
//!   innocent, drop matches inside allowed phrases ("Río Negro", "mar Negro", "agujero negro")
//!   and drop anatomical terms near a clinical word. The score is a function of the density of
//!   matches: `1 - exp(-20 · hits / max(words, 10))` ([`lexicon_score`]): one match in a
//!   10-word sentence gives 0.86, in 20 words 0.63, in 100 words 0.18.
//! * **A classifier** (optional, `model`): a model trained with `latam classifier train`
//!   whose label `model_label` is the toxic class. The document's score is the larger of the
//!   lexicon's score and the model's probability of that label: either kind of evidence alone
//!   can flag a document.
//!
//! `filter_toxicity` rejects documents whose score is at least `threshold` (reason `toxic`).
//!
//! ```
//! use latam_core::{Document, Step, Verdict};
//! use latam_toxicity::{ClassifyToxicityConfig, FilterToxicityConfig};
//!
//! let classify = ClassifyToxicityConfig::default().build()?;
//! let filter = FilterToxicityConfig::default().build()?;
//! let mut doc = Document::new("1", "Cállate, pendejo hijo de puta.");
//! doc.metadata.insert("language".into(), "spa".into());
//! classify.process(&mut doc);
//! assert_eq!(doc.metadata["toxicity_labels"], serde_json::json!(["insult"]));
//! assert_eq!(filter.process(&mut doc), Verdict::reject("toxic"));
//!
//! let mut doc = Document::new("2", "El río Negro cruza la Patagonia argentina.");
//! classify.process(&mut doc);
//! assert_eq!(doc.metadata["toxicity_score"], 0.0);
//! # Ok::<(), latam_toxicity::ToxicityError>(())
//! ```

mod lexicon;

use std::cell::RefCell;
use std::path::PathBuf;

use latam_classify::Classifier;
use latam_core::{Document, Step, Tally, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use lexicon::{Category, Findings, LANGUAGES, LangSet, Lexicon, fold};

/// Matches per word that give the lexicon score `1 - 1/e` (0.63), inverted: 20 means one match
/// in 20 words.
pub const DENSITY_SCALE: f64 = 20.0;
/// Texts shorter than this many words count as this long, so that one match in a two-word
/// text is not certain toxicity.
pub const MIN_WORDS: usize = 10;

/// The lexicon score of `hits` matches in `words` words: `1 - exp(-20 · hits / max(words,
/// 10))`.
pub fn lexicon_score(hits: usize, words: usize) -> f64 {
    1.0 - (-DENSITY_SCALE * hits as f64 / words.max(MIN_WORDS) as f64).exp()
}

/// Settings of the `classify_toxicity` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifyToxicityConfig {
    /// The lists (`spa`, `por`, `eng`) applied to documents whose `metadata.language` has no
    /// list of its own or is missing; empty: such documents get no lexicon score.
    pub fallback_lists: Vec<String>,
    /// A classifier file trained with `latam classifier train` (e.g. on ToLD-Br and HateBR
    /// with `scripts/toxicity_eval.py`); none: the lexicons alone.
    pub model: Option<PathBuf>,
    /// The model's label of the toxic class.
    pub model_label: String,
    /// Languages (ISO 639-3) of the documents the model scores; empty: every document. A
    /// model trained on Portuguese tweets says little of Spanish novels.
    pub model_languages: Vec<String>,
}

impl Default for ClassifyToxicityConfig {
    fn default() -> Self {
        Self {
            fallback_lists: LANGUAGES.map(String::from).to_vec(),
            model: None,
            model_label: "toxic".into(),
            model_languages: Vec::new(),
        }
    }
}

/// Settings the toxicity steps cannot follow.
#[derive(Debug, thiserror::Error)]
pub enum ToxicityError {
    /// A fallback list that does not exist.
    #[error("no list for `{0}`; the lists are: spa, por, eng")]
    UnknownList(String),
    /// A model file that cannot be used.
    #[error("cannot use the toxicity model {path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        source: latam_classify::ClassifyError,
    },
    /// A model without the toxic label.
    #[error("the model {path} has no label `{label}`; its labels: {labels}")]
    NoSuchLabel {
        /// The file.
        path: PathBuf,
        /// The label asked for.
        label: String,
        /// The model's labels.
        labels: String,
    },
    /// `model_languages` without a model.
    #[error("`model_languages` needs a `model`")]
    LanguagesWithoutModel,
    /// A threshold outside 0..=1.
    #[error("threshold must be within 0 and 1, not {0}")]
    BadThreshold(f64),
}

impl ClassifyToxicityConfig {
    /// Validates the settings, reads the model and builds the step.
    pub fn build(&self) -> Result<ClassifyToxicity, ToxicityError> {
        let mut fallback = LangSet::default();
        for code in &self.fallback_lists {
            fallback = fallback
                .with(LangSet::of(code).ok_or_else(|| ToxicityError::UnknownList(code.clone()))?);
        }
        let model = match &self.model {
            None if !self.model_languages.is_empty() => {
                return Err(ToxicityError::LanguagesWithoutModel);
            }
            None => None,
            Some(path) => {
                let model = std::fs::read(path)
                    .map_err(latam_classify::ClassifyError::from)
                    .and_then(|bytes| Classifier::from_bytes(&bytes))
                    .map_err(|source| ToxicityError::Model {
                        path: path.clone(),
                        source,
                    })?;
                let label = model
                    .labels()
                    .iter()
                    .position(|l| *l == self.model_label)
                    .ok_or_else(|| ToxicityError::NoSuchLabel {
                        path: path.clone(),
                        label: self.model_label.clone(),
                        labels: model.labels().join(", "),
                    })?;
                Some((Box::new(model), label))
            }
        };
        Ok(ClassifyToxicity {
            lexicon: Lexicon::embedded(),
            fallback,
            model,
            model_languages: self.model_languages.clone(),
        })
    }
}

/// The `classify_toxicity` step.
#[derive(Debug)]
pub struct ClassifyToxicity {
    lexicon: &'static Lexicon,
    fallback: LangSet,
    /// The model and the index of its toxic label.
    model: Option<(Box<Classifier>, usize)>,
    model_languages: Vec<String>,
}

/// A document's toxicity.
#[derive(Debug, Clone, PartialEq)]
pub struct Toxicity {
    /// The score, 0–1: the larger of the lexicon's and the model's.
    pub score: f64,
    /// The lexicon's score.
    pub lexicon_score: f64,
    /// The model's probability of the toxic label, when it scored the document.
    pub model_score: Option<f64>,
    /// What the lexicons found.
    pub findings: Findings,
}

impl Toxicity {
    /// What fired: the lexicon's categories, then `classifier` when the model's probability
    /// is at least one half.
    pub fn labels(&self) -> Vec<&'static str> {
        let mut labels: Vec<&'static str> =
            self.findings.categories.iter().map(|c| c.name()).collect();
        if self.model_score.is_some_and(|p| p >= 0.5) {
            labels.push("classifier");
        }
        labels
    }
}

thread_local! {
    static FOLDED: RefCell<String> = const { RefCell::new(String::new()) };
}

impl ClassifyToxicity {
    /// The toxicity of `text` in `language` (ISO 639-3; `None`: unknown).
    pub fn score(&self, text: &str, language: Option<&str>) -> Toxicity {
        let langs = language.and_then(LangSet::of).unwrap_or(self.fallback);
        let findings = if langs.is_empty() {
            Findings::default()
        } else {
            FOLDED.with_borrow_mut(|buffer| {
                let findings = self.lexicon.scan(text, langs, buffer);
                // Do not keep a huge document's buffer alive in every thread.
                if buffer.capacity() > 1 << 22 {
                    *buffer = String::new();
                }
                findings
            })
        };
        let lexicon_score = lexicon_score(findings.hits, findings.words);
        let model_score = self.model.as_ref().and_then(|(model, label)| {
            let wanted = self.model_languages.is_empty()
                || language.is_some_and(|l| self.model_languages.iter().any(|m| m == l));
            wanted
                .then(|| model.probabilities(text))
                .flatten()
                .map(|p| f64::from(p[*label]))
        });
        Toxicity {
            score: lexicon_score.max(model_score.unwrap_or(0.0)),
            lexicon_score,
            model_score,
            findings,
        }
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

impl Step for ClassifyToxicity {
    fn process(&self, doc: &mut Document) -> Verdict {
        self.process_tallied(doc, &mut Tally::default())
    }

    fn process_tallied(&self, doc: &mut Document, tally: &mut Tally) -> Verdict {
        let found = self.score(&doc.text, doc.meta_str("language"));
        let labels = found.labels();
        for label in &labels {
            tally.add(label, 1);
        }
        doc.metadata
            .insert("toxicity_score".into(), Value::from(round4(found.score)));
        doc.metadata.insert(
            "toxicity_labels".into(),
            Value::Array(labels.into_iter().map(Value::from).collect()),
        );
        Verdict::Keep
    }
}

/// Settings of the `filter_toxicity` step; it needs a `classify_toxicity` step before it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilterToxicityConfig {
    /// Documents whose `metadata.toxicity_score` is at least this are rejected (`toxic`);
    /// ones without a score are rejected as `toxicity_missing`. The default, 0.5, is one
    /// lexicon match in about 29 words, or a model probability of one half
    /// (`docs/annotators.md` has its precision and recall).
    pub threshold: f64,
}

impl Default for FilterToxicityConfig {
    fn default() -> Self {
        Self { threshold: 0.5 }
    }
}

impl FilterToxicityConfig {
    /// Validates the threshold and builds the step.
    pub fn build(&self) -> Result<FilterToxicity, ToxicityError> {
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(ToxicityError::BadThreshold(self.threshold));
        }
        Ok(FilterToxicity {
            threshold: self.threshold,
        })
    }
}

/// The `filter_toxicity` step.
#[derive(Debug, Clone)]
pub struct FilterToxicity {
    threshold: f64,
}

impl Step for FilterToxicity {
    fn process(&self, doc: &mut Document) -> Verdict {
        match doc.metadata.get("toxicity_score").and_then(Value::as_f64) {
            None => Verdict::reject("toxicity_missing"),
            Some(score) if score >= self.threshold => Verdict::reject("toxic"),
            Some(_) => Verdict::Keep,
        }
    }
}

#[cfg(test)]
mod tests;
