//! Pipeline files: TOML with an `[input]` table, an `[output]` table and a list of
//! `[[steps]]`, each tagged with its `type` from a closed registry. Every table rejects unknown
//! keys, so a typo fails before any data flows, with the file, line and accepted keys.

use std::path::Path;

use latam_anonymize::AnonymizeConfig;
use latam_core::FieldNames;
use latam_dedup::{
    DecontaminateConfig, DedupExactConfig, DedupMinhashConfig, DedupParagraphConfig,
};
use latam_io::{Compression, OutputFormat, ReadOptions};
use latam_langid::DetectLanguageConfig;
use latam_text::{FilterLengthConfig, FilterQualityConfig, NormalizeConfig};
use latam_toxicity::{ClassifyToxicityConfig, FilterToxicityConfig};
use serde::{Deserialize, Serialize};

use crate::PipelineError;
use crate::steps::FilterMetadataConfig;

/// The built-in default pipeline, as a TOML file.
pub const DEFAULT_PIPELINE: &str = include_str!("../default.toml");

/// A whole pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Where documents come from.
    #[serde(default)]
    pub input: InputConfig,
    /// How results are written.
    #[serde(default)]
    pub output: OutputConfig,
    /// The steps, in order.
    pub steps: Vec<StepConfig>,
}

/// The `[input]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Files, directories or globs read when the command line names no `--input`.
    pub paths: Vec<String>,
    /// The field holding the text (JSONL and Parquet).
    pub text_field: String,
    /// The field holding the id; documents without one get `<file>:<line>`.
    pub id_field: String,
    /// Largest record read, in bytes; larger ones are reported in errors.jsonl.
    pub max_record_bytes: usize,
}

impl Default for InputConfig {
    fn default() -> Self {
        let read = ReadOptions::default();
        Self {
            paths: Vec::new(),
            text_field: read.fields.text,
            id_field: read.fields.id,
            max_record_bytes: read.max_record_bytes,
        }
    }
}

impl InputConfig {
    /// The reader options.
    pub fn read_options(&self) -> ReadOptions {
        ReadOptions {
            fields: FieldNames {
                text: self.text_field.clone(),
                id: self.id_field.clone(),
            },
            max_record_bytes: self.max_record_bytes,
        }
    }
}

/// The `[output]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// `jsonl` or `parquet`.
    pub format: OutputFormat,
    /// `zstd`, `gzip` or `none` (JSONL only; Parquet compresses its columns with zstd).
    pub compression: Compression,
    /// Input per shard, in MB (10^6 bytes) of records as read (JSON lines; the text of text
    /// files and Parquet rows). A shard is the unit of output parts (`part-00000...`) and of
    /// resumption after a crash; shards end on a batch boundary (256 documents or 4 MB).
    pub shard_mb: u64,
    /// Write rejected documents to `rejected/<step>/`.
    pub write_rejected: bool,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self {
            format: OutputFormat::Jsonl,
            compression: Compression::Zstd,
            shard_mb: 256,
            write_rejected: true,
        }
    }
}

/// One step of the registry, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StepConfig {
    /// Unicode and whitespace normalization, mojibake repair.
    Normalize(NormalizeConfig),
    /// Language label and score; keep-list.
    DetectLanguage(DetectLanguageConfig),
    /// Bounds on characters and words.
    FilterLength(FilterLengthConfig),
    /// Gopher, C4 and FineWeb quality rules.
    FilterQuality(Box<FilterQualityConfig>),
    /// Keep or drop by a metadata field's value.
    FilterMetadata(FilterMetadataConfig),
    /// Exact duplicates by normalized-text hash.
    DedupExact(DedupExactConfig),
    /// Near-duplicates by MinHash-LSH (corpus-wide: scans first).
    DedupMinhash(DedupMinhashConfig),
    /// Lines seen in earlier documents removed (corpus-wide: scans first).
    DedupParagraph(DedupParagraphConfig),
    /// Personal data redacted, recorded in `metadata.pii`.
    Anonymize(AnonymizeConfig),
    /// Documents sharing a long n-gram with a benchmark's question or answer removed.
    Decontaminate(DecontaminateConfig),
    /// `metadata.toxicity_score` and `toxicity_labels` from lexicons and an optional model.
    ClassifyToxicity(ClassifyToxicityConfig),
    /// Documents whose `toxicity_score` reaches a threshold removed (after
    /// `classify_toxicity`).
    FilterToxicity(FilterToxicityConfig),
}

impl StepConfig {
    /// The step's `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Normalize(_) => "normalize",
            Self::DetectLanguage(_) => "detect_language",
            Self::FilterLength(_) => "filter_length",
            Self::FilterQuality(_) => "filter_quality",
            Self::FilterMetadata(_) => "filter_metadata",
            Self::DedupExact(_) => "dedup_exact",
            Self::Anonymize(_) => "anonymize",
            Self::DedupMinhash(_) => "dedup_minhash",
            Self::DedupParagraph(_) => "dedup_paragraph",
            Self::Decontaminate(_) => "decontaminate",
            Self::ClassifyToxicity(_) => "classify_toxicity",
            Self::FilterToxicity(_) => "filter_toxicity",
        }
    }

    /// Whether the step decides from the whole corpus, scanned before the documents are
    /// written.
    pub fn is_corpus_wide(&self) -> bool {
        matches!(self, Self::DedupMinhash(_) | Self::DedupParagraph(_))
    }
}

impl PipelineConfig {
    /// Parses a pipeline; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, PipelineError> {
        let config: Self = toml::from_str(text).map_err(|e| PipelineError::Config {
            origin: origin.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        if config.steps.is_empty() {
            return Err(PipelineError::Config {
                origin: origin.to_owned(),
                message: "the pipeline has no [[steps]]".into(),
            });
        }
        if config.output.shard_mb == 0 {
            return Err(PipelineError::Config {
                origin: origin.to_owned(),
                message: "[output] shard_mb must be at least 1".into(),
            });
        }
        Ok(config)
    }

    /// Reads a pipeline file.
    pub fn from_file(path: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| PipelineError::Config {
            origin: path.display().to_string(),
            message: format!("cannot read the pipeline file: {e}"),
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The built-in default pipeline.
    pub fn default_pipeline() -> Self {
        Self::from_toml(DEFAULT_PIPELINE, "default.toml").expect("the built-in pipeline is valid")
    }

    /// Names of the steps in stats and `rejected/`: the type, with `_2`, `_3`, ... for repeats.
    pub fn step_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for step in &self.steps {
            let base = step.type_name();
            let n = names
                .iter()
                .filter(|n| n.as_str() == base || n.starts_with(&format!("{base}_")))
                .count();
            names.push(if n == 0 {
                base.to_owned()
            } else {
                format!("{base}_{}", n + 1)
            });
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(toml: &str) -> String {
        PipelineConfig::from_toml(toml, "p.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn default_pipeline_round_trips() {
        let config = PipelineConfig::default_pipeline();
        let again: PipelineConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(config, again);
        assert_eq!(config.steps[0].type_name(), "normalize");
    }

    #[test]
    fn unknown_step_type_names_the_line_and_the_choices() {
        let err = error("[[steps]]\ntype = \"normalize\"\n\n[[steps]]\ntype = \"anonymise\"\n");
        assert!(err.contains("p.toml"), "{err}");
        assert!(err.contains("line 5"), "{err}");
        assert!(err.contains("unknown variant `anonymise`"), "{err}");
        assert!(err.contains("`normalize`, `detect_language`"), "{err}");
    }

    #[test]
    fn unknown_key_names_the_line_and_the_accepted_keys() {
        let err = error("[[steps]]\ntype = \"filter_length\"\nmin_char = 10\n");
        assert!(err.contains("unknown field `min_char`"), "{err}");
        assert!(err.contains("min_chars"), "{err}");
        assert!(err.contains("line 1") || err.contains("line 3"), "{err}");
        let err = error("[output]\nformat = \"csv\"\n[[steps]]\ntype = \"normalize\"\n");
        assert!(
            err.contains("unknown variant `csv`, expected `jsonl` or `parquet`"),
            "{err}"
        );
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn repeated_steps_get_numbered_names() {
        let config = PipelineConfig::from_toml(
            "[[steps]]\ntype = \"filter_length\"\n[[steps]]\ntype = \"normalize\"\n[[steps]]\ntype = \"filter_length\"\n",
            "p.toml",
        )
        .unwrap();
        assert_eq!(
            config.step_names(),
            ["filter_length", "normalize", "filter_length_2"]
        );
    }
}
