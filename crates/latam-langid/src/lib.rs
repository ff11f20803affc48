//! The `detect_language` step: labels each document with an ISO 639-3 code
//! (`metadata.language`) and a confidence in 0..=1 (`metadata.language_score`), optionally a
//! per-paragraph breakdown (`metadata.languages`), and keeps the languages asked for.
//!
//! The default engine is our own classifier ([`latam_classify`]), trained on the region's
//! languages and embedded in the binary ([`embedded_model`]; card in `model/README.md`): Spanish,
//! Portuguese, English, French, Haitian Creole and fifteen Indigenous languages, plus `und` for
//! anything else (Italian, Galician, Catalan, German, program code, other languages of the
//! Americas). [whatlang]'s trigram model (69 languages, none Indigenous) is the other engine.
//!
//! ```
//! use latam_core::{Document, Step, Verdict};
//! use latam_langid::DetectLanguageConfig;
//!
//! let step = DetectLanguageConfig::default().build().unwrap();
//! let mut doc = Document::new("1", "A língua portuguesa é falada no Brasil, em Portugal e em vários países da África.");
//! assert_eq!(step.process(&mut doc), Verdict::Keep);
//! assert_eq!(doc.meta_str("language"), Some("por"));
//! let mut doc = Document::new("2", "Mba'éichapa reiko? Che aiko porã, ha nde?");
//! step.process(&mut doc);
//! assert_eq!(doc.meta_str("language"), Some("gug"));
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::LazyLock;

use latam_classify::Classifier;
use latam_core::{Document, Step, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use whatlang::{Detector, Lang};

/// The embedded model's file (`LTMCLASS`), trained by `scripts/langid/train.sh`.
const MODEL: &[u8] = include_bytes!("../model/langid.lcm");

/// The embedded model's labels other than `und`: the languages the default step keeps.
pub const REGIONAL: [&str; 20] = [
    "spa", "por", "eng", "fra", "hat", "quy", "gug", "aym", "nah", "arn", "yua", "quc", "guc",
    "shp", "oto", "tar", "hch", "cni", "bzd", "ctp",
];

static EMBEDDED: LazyLock<Classifier> =
    LazyLock::new(|| Classifier::from_bytes(MODEL).expect("the embedded model is valid"));

/// The language identifier embedded in the binary.
pub fn embedded_model() -> &'static Classifier {
    &EMBEDDED
}

/// Which detector labels the text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Our classifier: the embedded model, or `model` when given.
    #[default]
    Latam,
    /// whatlang's trigram model.
    Whatlang,
}

/// Settings of the `detect_language` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectLanguageConfig {
    /// `latam` (default) or `whatlang`.
    pub engine: Engine,
    /// A classifier file trained with `latam classifier train` that replaces the embedded model
    /// (engine `latam` only).
    pub model: Option<PathBuf>,
    /// Languages kept (ISO 639-3); others are rejected as `language_not_kept`. Empty keeps all.
    pub keep: Vec<String>,
    /// Least confidence to keep a document (`low_language_score`). The default keeps every
    /// score: the model's confidence falls on short and mixed texts that are still right.
    pub min_score: f64,
    /// Characters read from the start of the text (0: all); with `paragraphs`, from the start
    /// of each paragraph. On our corpus documents the first 1,000 give the same labels as the
    /// whole text at a fraction of the time.
    pub max_chars: usize,
    /// Languages the detector may answer (ISO 639-3); empty: every language it knows.
    pub candidates: Vec<String>,
    /// Label every paragraph (lines between line breaks) and write `metadata.languages`, the
    /// share of the document's characters in each language; the document's label is then the
    /// language with the most characters.
    pub paragraphs: bool,
    /// Shortest paragraph labelled, in letters (shorter ones, such as headings and numbers,
    /// count for no language).
    pub min_paragraph_letters: usize,
}

impl Default for DetectLanguageConfig {
    fn default() -> Self {
        Self {
            engine: Engine::Latam,
            model: None,
            keep: REGIONAL.map(String::from).to_vec(),
            min_score: 0.0,
            max_chars: 1000,
            candidates: Vec::new(),
            paragraphs: false,
            min_paragraph_letters: 20,
        }
    }
}

/// A setting the detector cannot follow.
#[derive(Debug, thiserror::Error)]
pub enum LangIdError {
    /// A code that is not ISO 639-3 (three lowercase letters).
    #[error("`{0}` is not an ISO 639-3 code (three lowercase letters, e.g. spa, por, quy)")]
    BadCode(String),
    /// A candidate the detector does not know.
    #[error("the detector does not know `{code}`; it knows: {known}")]
    Unknown {
        /// The code asked for.
        code: String,
        /// The codes it knows.
        known: String,
    },
    /// A score outside 0..=1.
    #[error("min_score must be within 0 and 1, not {0}")]
    BadScore(f64),
    /// A model file that cannot be used.
    #[error("cannot use the language model {path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// Why.
        source: latam_classify::ClassifyError,
    },
    /// A model given to the whatlang engine.
    #[error("`model` is for engine `latam`; whatlang has its own")]
    ModelForWhatlang,
}

impl DetectLanguageConfig {
    /// Validates the settings and builds the step.
    pub fn build(&self) -> Result<DetectLanguage, LangIdError> {
        for code in self.keep.iter().chain(&self.candidates) {
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(LangIdError::BadCode(code.clone()));
            }
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return Err(LangIdError::BadScore(self.min_score));
        }
        let unknown = |code: &str, known: Vec<&str>| LangIdError::Unknown {
            code: code.to_owned(),
            known: known.join(", "),
        };
        let engine = match self.engine {
            Engine::Latam => {
                let model = match &self.model {
                    None => Model::Embedded(embedded_model()),
                    Some(path) => Model::Loaded(Box::new(
                        std::fs::read(path)
                            .map_err(latam_classify::ClassifyError::from)
                            .and_then(|bytes| Classifier::from_bytes(&bytes))
                            .map_err(|source| LangIdError::Model {
                                path: path.clone(),
                                source,
                            })?,
                    )),
                };
                let labels = model.get().labels();
                let allowed = if self.candidates.is_empty() {
                    vec![true; labels.len()]
                } else {
                    for code in &self.candidates {
                        if !labels.contains(code) {
                            return Err(unknown(code, labels.iter().map(String::as_str).collect()));
                        }
                    }
                    labels.iter().map(|l| self.candidates.contains(l)).collect()
                };
                Detect::Latam { model, allowed }
            }
            Engine::Whatlang => {
                if self.model.is_some() {
                    return Err(LangIdError::ModelForWhatlang);
                }
                let langs = self
                    .candidates
                    .iter()
                    .map(|code| {
                        Lang::from_code(code).ok_or_else(|| {
                            unknown(code, Lang::all().iter().map(Lang::code).collect())
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Detect::Whatlang(if langs.is_empty() {
                    Detector::new()
                } else {
                    Detector::with_allowlist(langs)
                })
            }
        };
        Ok(DetectLanguage {
            engine,
            config: self.clone(),
        })
    }
}

/// The embedded model or one read from a file.
enum Model {
    Embedded(&'static Classifier),
    Loaded(Box<Classifier>),
}

impl Model {
    fn get(&self) -> &Classifier {
        match self {
            Model::Embedded(m) => m,
            Model::Loaded(m) => m,
        }
    }
}

enum Detect {
    Latam { model: Model, allowed: Vec<bool> },
    Whatlang(Detector),
}

/// A label with its confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection<'a> {
    /// ISO 639-3 code, `und` when undecided.
    pub language: &'a str,
    /// Confidence in 0..=1.
    pub score: f64,
}

const UNDECIDED: Detection<'static> = Detection {
    language: "und",
    score: 0.0,
};

/// A document's label with the share of its characters in each language.
#[derive(Debug, Clone, PartialEq)]
pub struct Breakdown<'a> {
    /// The language with the most characters, and the mean confidence of its paragraphs.
    pub majority: Detection<'a>,
    /// Share of the labelled characters per language (sums to 1 unless nothing was labelled).
    pub shares: BTreeMap<&'a str, f64>,
}

/// The `detect_language` step.
pub struct DetectLanguage {
    engine: Detect,
    config: DetectLanguageConfig,
}

impl DetectLanguage {
    /// The label of `text` (its first `max_chars` characters).
    pub fn detect(&self, text: &str) -> Detection<'_> {
        let sample = match text.char_indices().nth(self.config.max_chars) {
            Some((end, _)) if self.config.max_chars > 0 => &text[..end],
            _ => text,
        };
        match &self.engine {
            Detect::Latam { model, allowed } => {
                // Every label of the model is written in Latin script: text in another script
                // is another language, whatever its n-grams hash to.
                if !mostly_latin(sample) {
                    return UNDECIDED;
                }
                let model = model.get();
                let Some(probs) = model.probabilities(sample) else {
                    return UNDECIDED;
                };
                probs
                    .iter()
                    .zip(allowed)
                    .enumerate()
                    .filter(|(_, (_, ok))| **ok)
                    .max_by(|a, b| a.1.0.total_cmp(b.1.0).then(b.0.cmp(&a.0)))
                    .map_or(UNDECIDED, |(i, (p, _))| Detection {
                        language: &model.labels()[i],
                        score: f64::from(*p),
                    })
            }
            Detect::Whatlang(detector) => {
                detector.detect(sample).map_or(UNDECIDED, |info| Detection {
                    language: info.lang().code(),
                    score: info.confidence(),
                })
            }
        }
    }

    /// Labels every paragraph of `text` with at least `min_paragraph_letters` letters and
    /// weighs the labels by characters; a text without such paragraph is labelled whole.
    pub fn detect_paragraphs(&self, text: &str) -> Breakdown<'_> {
        let mut chars: BTreeMap<&str, (usize, f64)> = BTreeMap::new();
        let mut total = 0usize;
        for paragraph in text.lines() {
            if paragraph.chars().filter(|c| c.is_alphabetic()).count()
                < self.config.min_paragraph_letters.max(1)
            {
                continue;
            }
            let found = self.detect(paragraph);
            let n = paragraph.chars().count();
            let entry = chars.entry(found.language).or_default();
            entry.0 += n;
            entry.1 += found.score * n as f64;
            total += n;
        }
        if total == 0 {
            let majority = self.detect(text);
            let shares = BTreeMap::from([(majority.language, 1.0)]);
            return Breakdown { majority, shares };
        }
        let (language, (n, weighted)) = chars
            .iter()
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.0.cmp(a.0)))
            .expect("some paragraph was labelled");
        Breakdown {
            majority: Detection {
                language,
                score: weighted / *n as f64,
            },
            shares: chars
                .iter()
                .map(|(l, (n, _))| (*l, *n as f64 / total as f64))
                .collect(),
        }
    }

    /// Writes the label (and with `paragraphs` the breakdown) of `text` into `metadata`.
    pub fn annotate(&self, text: &str, metadata: &mut Map<String, Value>) -> Detection<'_> {
        let found = if self.config.paragraphs {
            let breakdown = self.detect_paragraphs(text);
            let shares = breakdown
                .shares
                .iter()
                .map(|(l, s)| ((*l).to_owned(), Value::from(round4(*s))))
                .collect();
            metadata.insert("languages".into(), Value::Object(shares));
            breakdown.majority
        } else {
            self.detect(text)
        };
        metadata.insert("language".into(), Value::from(found.language));
        metadata.insert("language_score".into(), Value::from(round4(found.score)));
        found
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Whether at least half of the letters are Latin (IPA and modifier letters such as the
/// glottal-stop apostrophe `ʼ` of many Indigenous orthographies included); no letters: false.
fn mostly_latin(text: &str) -> bool {
    let (mut latin, mut letters) = (0usize, 0usize);
    for c in text.chars().filter(|c| c.is_alphabetic()) {
        letters += 1;
        if c.is_ascii_alphabetic()
            || ('\u{00C0}'..='\u{02FF}').contains(&c)
            || ('\u{1E00}'..='\u{1EFF}').contains(&c)
        {
            latin += 1;
        }
    }
    letters > 0 && latin * 2 >= letters
}

impl Step for DetectLanguage {
    fn process(&self, doc: &mut Document) -> Verdict {
        let found = self.annotate(&doc.text, &mut doc.metadata);
        if !self.config.keep.is_empty() && !self.config.keep.iter().any(|k| k == found.language) {
            Verdict::reject("language_not_kept")
        } else if found.score < self.config.min_score {
            Verdict::reject("low_language_score")
        } else {
            Verdict::Keep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(step: &DetectLanguage, text: &str) -> (String, Verdict) {
        let mut doc = Document::new("1", text);
        let verdict = step.process(&mut doc);
        (doc.meta_str("language").unwrap().to_owned(), verdict)
    }

    #[test]
    fn labels_the_region_and_refuses_the_rest() {
        let step = DetectLanguageConfig::default().build().unwrap();
        for (text, language) in [
            (
                "La República de Chile es un país de América del Sur, con capital en Santiago.",
                "spa",
            ),
            ("O Brasil é o maior país da América do Sul.", "por"),
            ("The weather in Buenos Aires is mild in the spring.", "eng"),
            ("La ville de Montréal est la plus grande du Québec.", "fra"),
            ("Tout moun fèt lib, egal ego pou diyite kou wè dwa.", "hat"),
            ("Allin p'unchaw, imaynallam kachkanki?", "quy"),
            ("Mari mari lamngen, chumleymi?", "arn"),
        ] {
            assert_eq!(
                labels(&step, text),
                (language.to_owned(), Verdict::Keep),
                "{text}"
            );
        }
        for text in [
            "Die Bundesrepublik Deutschland ist ein Bundesstaat in Mitteleuropa mit der Hauptstadt Berlin.",
            "L'Italia è una repubblica parlamentare dell'Europa meridionale.",
            "Москва — столица России и крупнейший город страны.",
            "12345 !!!",
        ] {
            assert_eq!(
                labels(&step, text),
                ("und".to_owned(), Verdict::reject("language_not_kept")),
                "{text}"
            );
        }
    }

    #[test]
    fn whatlang_and_candidates() {
        let whatlang = DetectLanguageConfig {
            engine: Engine::Whatlang,
            keep: Vec::new(),
            ..Default::default()
        }
        .build()
        .unwrap();
        let german = "Die Bundesrepublik Deutschland ist ein Bundesstaat in Mitteleuropa.";
        assert_eq!(labels(&whatlang, german).0, "deu");
        // Two candidates: Spanish text is still told from Portuguese, `und` cannot be answered.
        let two = DetectLanguageConfig {
            candidates: vec!["spa".into(), "por".into()],
            keep: Vec::new(),
            ..Default::default()
        }
        .build()
        .unwrap();
        assert_eq!(
            labels(&two, "El perro come en la casa de mi abuela.").0,
            "spa"
        );
        assert!(["spa", "por"].contains(&labels(&two, german).0.as_str()));
    }

    #[test]
    fn paragraphs_give_shares_and_the_majority() {
        let step = DetectLanguageConfig {
            paragraphs: true,
            ..Default::default()
        }
        .build()
        .unwrap();
        let text = "Ñandejára ñane mba'e ha ñane retã Paraguái, ko'ágã jaikove porã.\n\
                    Ko tetã oguereko mokõi ñe'ẽ teete: castellano ha guarani.\n\
                    Paraguay es un país sin litoral de América del Sur, con capital en Asunción.\n\
                    1.\n";
        let mut doc = Document::new("1", text);
        assert_eq!(step.process(&mut doc), Verdict::Keep);
        assert_eq!(doc.meta_str("language"), Some("gug"));
        let shares = doc.metadata["languages"].as_object().unwrap();
        assert_eq!(shares.len(), 2, "{shares:?}");
        let gug = shares["gug"].as_f64().unwrap();
        let spa = shares["spa"].as_f64().unwrap();
        assert!(gug > spa && (gug + spa - 1.0).abs() < 1e-3, "{shares:?}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = |c: DetectLanguageConfig| c.build().err().unwrap().to_string();
        let keep = DetectLanguageConfig {
            keep: vec!["es".into()],
            ..Default::default()
        };
        assert!(bad(keep).contains("not an ISO 639-3 code"));
        let cand = DetectLanguageConfig {
            candidates: vec!["deu".into()],
            ..Default::default()
        };
        assert!(bad(cand).contains("does not know `deu`"));
        let cand = DetectLanguageConfig {
            engine: Engine::Whatlang,
            candidates: vec!["quy".into()],
            ..Default::default()
        };
        assert!(bad(cand).contains("does not know `quy`"));
        let missing = DetectLanguageConfig {
            model: Some("/nonexistent/langid.lcm".into()),
            ..Default::default()
        };
        assert!(bad(missing).contains("/nonexistent/langid.lcm"));
    }

    #[test]
    fn the_embedded_model_knows_every_regional_label() {
        let labels = embedded_model().labels();
        for code in REGIONAL.iter().chain(&["und"]) {
            assert!(labels.iter().any(|l| l == code), "{code}");
        }
        assert_eq!(labels.len(), REGIONAL.len() + 1);
    }
}
