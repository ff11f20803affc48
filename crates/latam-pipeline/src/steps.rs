//! Building runtime steps from their configs, and `filter_metadata`.

use latam_core::{CorpusStep, Document, OrderedStep, Step, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::PipelineError;
use crate::config::{PipelineConfig, StepConfig};

/// A built step, as the engine runs it.
pub(crate) enum Stage {
    /// One document at a time, in parallel.
    Map(Box<dyn Step>),
    /// Keys in parallel, verdicts in corpus order.
    Ordered(Box<dyn OrderedStep>),
    /// A scan of the corpus, a plan, then verdicts in parallel.
    Corpus(Box<dyn CorpusStep>),
}

/// Validates every step's settings and builds the steps, before any data flows.
pub(crate) fn build_stages(config: &PipelineConfig) -> Result<Vec<Stage>, PipelineError> {
    let names = config.step_names();
    config
        .steps
        .iter()
        .zip(&names)
        .enumerate()
        .map(|(i, (step, name))| {
            let invalid = |e: &dyn std::fmt::Display| PipelineError::Step {
                step: name.clone(),
                message: e.to_string(),
            };
            Ok(match step {
                StepConfig::Normalize(c) => Stage::Map(Box::new(c.build())),
                StepConfig::DetectLanguage(c) => {
                    Stage::Map(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::FilterLength(c) => Stage::Map(Box::new(c.build())),
                StepConfig::FilterQuality(c) => {
                    Stage::Map(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::FilterMetadata(c) => {
                    Stage::Map(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::DedupExact(c) => Stage::Ordered(Box::new(c.build())),
                StepConfig::Anonymize(c) => {
                    Stage::Map(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::DedupMinhash(c) => {
                    Stage::Corpus(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::Decontaminate(c) => {
                    Stage::Map(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::DedupParagraph(c) => {
                    Stage::Corpus(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::ClassifyToxicity(c) => {
                    Stage::Map(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
                StepConfig::FilterToxicity(c) => {
                    let scored = config.steps[..i]
                        .iter()
                        .any(|s| matches!(s, StepConfig::ClassifyToxicity(_)));
                    if !scored {
                        return Err(invalid(&"needs a classify_toxicity step before it"));
                    }
                    Stage::Map(Box::new(c.build().map_err(|e| invalid(&e))?))
                }
            })
        })
        .collect()
}

/// Settings of the `filter_metadata` step: keep or drop documents by the value of a metadata
/// field, e.g. `field = "country"`, `keep = ["AR", "CL", "UY"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterMetadataConfig {
    /// The field; dots reach into objects (`source.name`).
    pub field: String,
    /// Keep only documents whose value is one of these (`value_not_kept`).
    #[serde(default)]
    pub keep: Vec<String>,
    /// Drop documents whose value is one of these (`value_dropped`).
    #[serde(default)]
    pub drop: Vec<String>,
    /// Keep documents without the field (or with null); otherwise `field_missing`.
    #[serde(default)]
    pub keep_missing: bool,
}

impl FilterMetadataConfig {
    /// Validates and builds the step: exactly one of `keep` and `drop` must be given.
    pub fn build(&self) -> Result<FilterMetadata, FilterMetadataError> {
        if self.keep.is_empty() == self.drop.is_empty() {
            return Err(FilterMetadataError::KeepOrDrop);
        }
        if self.field.is_empty() || self.field.split('.').any(str::is_empty) {
            return Err(FilterMetadataError::NotAFieldPath(self.field.clone()));
        }
        Ok(FilterMetadata {
            config: self.clone(),
        })
    }
}

/// Settings of `filter_metadata` that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum FilterMetadataError {
    /// Neither or both of `keep` and `drop`.
    #[error("give exactly one of `keep` and `drop` (a list of values)")]
    KeepOrDrop,
    /// A field path with an empty part.
    #[error("`{0}` is not a field path (e.g. `country`, `source.name`)")]
    NotAFieldPath(String),
}

/// The `filter_metadata` step.
#[derive(Debug, Clone)]
pub struct FilterMetadata {
    config: FilterMetadataConfig,
}

fn lookup<'a>(doc: &'a Document, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = doc.metadata.get(parts.next()?)?;
    for part in parts {
        value = value.get(part)?;
    }
    (!value.is_null()).then_some(value)
}

impl Step for FilterMetadata {
    fn process(&self, doc: &mut Document) -> Verdict {
        let c = &self.config;
        let Some(value) = lookup(doc, &c.field) else {
            return if c.keep_missing {
                Verdict::Keep
            } else {
                Verdict::reject("field_missing")
            };
        };
        let text = match value {
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        };
        if !c.keep.is_empty() && !c.keep.iter().any(|k| *k == text) {
            Verdict::reject("value_not_kept")
        } else if c.drop.iter().any(|d| *d == text) {
            Verdict::reject("value_dropped")
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(metadata: Value) -> Document {
        let Value::Object(metadata) = metadata else {
            unreachable!()
        };
        Document {
            metadata,
            ..Document::new("d", "texto")
        }
    }

    #[test]
    fn keep_drop_and_missing() {
        let keep = FilterMetadataConfig {
            field: "country".into(),
            keep: vec!["AR".into(), "CL".into()],
            drop: vec![],
            keep_missing: false,
        }
        .build()
        .unwrap();
        assert_eq!(
            keep.process(&mut doc(serde_json::json!({"country": "CL"}))),
            Verdict::Keep
        );
        assert_eq!(
            keep.process(&mut doc(serde_json::json!({"country": "MX"}))),
            Verdict::reject("value_not_kept")
        );
        assert_eq!(
            keep.process(&mut doc(serde_json::json!({}))),
            Verdict::reject("field_missing")
        );

        let drop = FilterMetadataConfig {
            field: "source.year".into(),
            keep: vec![],
            drop: vec!["1890".into()],
            keep_missing: true,
        }
        .build()
        .unwrap();
        assert_eq!(
            drop.process(&mut doc(serde_json::json!({"source": {"year": 1890}}))),
            Verdict::reject("value_dropped")
        );
        assert_eq!(
            drop.process(&mut doc(serde_json::json!({"source": {"year": 1891}}))),
            Verdict::Keep
        );
        assert_eq!(
            drop.process(&mut doc(serde_json::json!({"source": null}))),
            Verdict::Keep
        );
    }

    #[test]
    fn needs_exactly_one_list() {
        let both = FilterMetadataConfig {
            field: "a".into(),
            keep: vec!["x".into()],
            drop: vec!["y".into()],
            keep_missing: false,
        };
        assert!(
            both.build()
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
    }
}

#[cfg(test)]
mod toxicity_tests {
    use super::*;

    fn stages(toml: &str) -> Result<Vec<Stage>, PipelineError> {
        build_stages(&PipelineConfig::from_toml(toml, "p.toml").unwrap())
    }

    #[test]
    fn filter_toxicity_needs_classify_toxicity_before_it() {
        let err = stages(
            "[[steps]]\ntype = \"filter_toxicity\"\n[[steps]]\ntype = \"classify_toxicity\"\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("filter_toxicity"), "{err}");
        assert!(
            err.contains("needs a classify_toxicity step before it"),
            "{err}"
        );
        let built = stages(
            "[[steps]]\ntype = \"classify_toxicity\"\n[[steps]]\ntype = \"filter_toxicity\"\nthreshold = 0.7\n",
        )
        .unwrap();
        assert_eq!(built.len(), 2);
        let err = stages("[[steps]]\ntype = \"classify_toxicity\"\nfallback_lists = [\"fra\"]\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no list for `fra`"), "{err}");
    }
}
