//! `filter_quality`: the heuristic quality rules of the open pre-training pipelines, in the
//! order of the FineWeb recipe: Gopher repetition, Gopher quality, C4, FineWeb. Every rule has
//! the threshold of its reference implementation (datatrove) as default; any of them can be
//! changed for all documents or per language (`metadata.language`, ISO 639-3), e.g.
//!
//! ```toml
//! [[steps]]
//! type = "filter_quality"
//! [steps.gopher_quality]
//! min_doc_words = 50
//! [steps.languages.spa.gopher_quality]
//! min_alpha_words_ratio = 0.7
//! ```
//!
//! Fractions of "characters" are fractions of UTF-8 bytes.

mod c4;
mod fineweb;
mod gopher;

use std::collections::{BTreeMap, HashMap};

use latam_core::{Document, Step, Verdict};
use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use c4::C4Config;
pub use fineweb::FineWebConfig;
pub use gopher::{GopherQualityConfig, GopherRepetitionConfig};

use crate::words::{Token, tokenize};

/// The four rule sets; a per-language table overrides any of their fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct QualityRules {
    /// Gopher repetition rules (duplicate lines, paragraphs and n-grams).
    pub gopher_repetition: GopherRepetitionConfig,
    /// Gopher quality rules (word counts and lengths, symbols, bullets, stop words).
    pub gopher_quality: GopherQualityConfig,
    /// C4 rules: drops lines (no terminal punctuation, too few words, boilerplate) and
    /// documents (lorem ipsum, curly brackets, too few sentences).
    pub c4: C4Config,
    /// FineWeb rules (line punctuation, short lines, duplicated characters, list-like text).
    pub fineweb: FineWebConfig,
}

/// Settings of the `filter_quality` step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FilterQualityConfig {
    /// Gopher repetition rules.
    pub gopher_repetition: GopherRepetitionConfig,
    /// Gopher quality rules.
    pub gopher_quality: GopherQualityConfig,
    /// C4 rules.
    pub c4: C4Config,
    /// FineWeb rules.
    pub fineweb: FineWebConfig,
    /// Overrides per language (ISO 639-3 key), merged over the settings above:
    /// `[steps.languages.por.fineweb] line_punct_thr = 0.1`.
    pub languages: BTreeMap<String, Value>,
    /// Stop-word lists per language, replacing the built-in ones (`spa`, `por`, `eng`, `fra`,
    /// `hat`). Documents in a language with no list skip the stop-word rule.
    pub stop_words: BTreeMap<String, Vec<String>>,
}

/// A per-language override that does not fit the rules.
#[derive(Debug, thiserror::Error)]
#[error("[steps.languages.{language}]: {message}")]
pub struct QualityConfigError {
    /// The language table at fault.
    pub language: String,
    /// What is wrong.
    pub message: String,
}

impl FilterQualityConfig {
    fn base_rules(&self) -> QualityRules {
        QualityRules {
            gopher_repetition: self.gopher_repetition.clone(),
            gopher_quality: self.gopher_quality.clone(),
            c4: self.c4.clone(),
            fineweb: self.fineweb.clone(),
        }
    }

    /// Validates the per-language tables and builds the step.
    pub fn build(&self) -> Result<FilterQuality, QualityConfigError> {
        let base = self.base_rules();
        let base_value = serde_json::to_value(&base).expect("rules serialize to JSON");
        let mut per_language = HashMap::new();
        for (language, patch) in &self.languages {
            let mut merged = base_value.clone();
            merge(&mut merged, patch);
            let rules: QualityRules =
                serde_json::from_value(merged).map_err(|e| QualityConfigError {
                    language: language.clone(),
                    message: e.to_string(),
                })?;
            per_language.insert(language.clone(), rules);
        }
        let mut stop_words: HashMap<String, FxHashSet<String>> = HashMap::new();
        for language in ["spa", "por", "eng", "fra", "hat"] {
            let list = crate::stop_words(language).unwrap_or_default();
            stop_words.insert(
                language.into(),
                list.iter().map(|s| (*s).to_owned()).collect(),
            );
        }
        for (language, list) in &self.stop_words {
            stop_words.insert(
                language.clone(),
                list.iter().map(|s| s.to_lowercase()).collect(),
            );
        }
        Ok(FilterQuality {
            base,
            per_language,
            stop_words,
        })
    }
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, value) => *slot = value.clone(),
    }
}

/// The `filter_quality` step.
#[derive(Debug, Clone)]
pub struct FilterQuality {
    base: QualityRules,
    per_language: HashMap<String, QualityRules>,
    stop_words: HashMap<String, FxHashSet<String>>,
}

impl FilterQuality {
    /// The rules that apply to a language.
    pub fn rules_for(&self, language: Option<&str>) -> &QualityRules {
        language
            .and_then(|l| self.per_language.get(l))
            .unwrap_or(&self.base)
    }
}

impl Step for FilterQuality {
    fn process(&self, doc: &mut Document) -> Verdict {
        let language = doc.meta_str("language").map(str::to_owned);
        let rules = self.rules_for(language.as_deref());
        let stop_words = language.as_deref().and_then(|l| self.stop_words.get(l));
        let mut tokens: Vec<Token<'_>> = Vec::new();
        tokenize(&doc.text, &mut tokens);
        if let Some(reason) = rules.gopher_repetition.check(&doc.text, &tokens) {
            return Verdict::reject(reason);
        }
        if let Some(reason) = rules.gopher_quality.check(&doc.text, &tokens, stop_words) {
            return Verdict::reject(reason);
        }
        let mut token_count = Some(tokens.len());
        drop(tokens);
        match rules.c4.apply(&doc.text) {
            Ok(Some(cleaned)) => {
                doc.text = cleaned;
                token_count = None;
            }
            Ok(None) => {}
            Err(reason) => return Verdict::reject(reason),
        }
        if let Some(reason) = rules.fineweb.check(&doc.text, token_count) {
            return Verdict::reject(reason);
        }
        Verdict::Keep
    }
}

/// Terminal punctuation of a sentence or line, in the scripts of the region.
pub(crate) fn ends_with_terminal_punct(line: &str) -> bool {
    line.ends_with([
        '.', '!', '?', '"', '\'', '…', '»', '”', '’', ')', '。', '！', '？',
    ])
}

/// Elements that repeat an earlier one: their count and their total length in bytes.
pub(crate) fn duplicates<'a>(items: impl Iterator<Item = &'a str>) -> (usize, usize) {
    let mut seen = FxHashSet::default();
    let (mut count, mut bytes) = (0, 0);
    for item in items {
        if !seen.insert(item) {
            count += 1;
            bytes += item.len();
        }
    }
    (count, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROSE: &str = "La Constitución de la República establece que el Estado reconoce y garantiza \
        los derechos de las personas, y que la soberanía reside en el pueblo, que la ejerce por \
        medio de sus representantes. Los ciudadanos tienen el derecho de participar en la vida \
        política del país, de elegir y de ser elegidos, y de presentar peticiones a las \
        autoridades. La ley determinará la forma en que se organizan los poderes del Estado y \
        las garantías que protegen a cada uno de los habitantes del territorio nacional.\n\n\
        Todas las personas nacen libres e iguales en dignidad y derechos. Ninguna persona ni \
        grupo tiene privilegios, y la ley no puede establecer diferencias arbitrarias entre \
        ellas. El Estado debe promover la integración armónica de todos los sectores de la \
        nación y asegurar el derecho de las personas a participar con igualdad de \
        oportunidades en la vida nacional.";

    fn run(config: &FilterQualityConfig, text: &str, language: &str) -> Verdict {
        let mut doc = Document::new("t", text);
        doc.metadata.insert("language".into(), language.into());
        config.build().unwrap().process(&mut doc)
    }

    #[test]
    fn real_prose_passes() {
        assert_eq!(
            run(&FilterQualityConfig::default(), PROSE, "spa"),
            Verdict::Keep
        );
    }

    #[test]
    fn each_rule_set_rejects_its_case() {
        let config = FilterQualityConfig::default();
        assert_eq!(
            run(&config, "Hola mundo.", "spa"),
            Verdict::reject("gopher_short_doc")
        );
        let repeated = format!("{PROSE}\n\n{PROSE}\n\n{PROSE}");
        assert_eq!(
            run(&config, &repeated, "spa"),
            Verdict::reject("dup_para_frac")
        );
        let english_words = PROSE.replace(" la ", " xa ").replace(" de ", " xe ");
        assert_eq!(
            run(&config, &english_words, "eng"),
            Verdict::reject("gopher_too_few_stop_words")
        );
        let braces = format!("{PROSE}\nfunction f() {{ return 1; }} es una función de prueba.");
        assert_eq!(
            run(&config, &braces, "spa"),
            Verdict::reject("curly_bracket")
        );
    }

    #[test]
    fn languages_override_the_base_rules() {
        let mut config = FilterQualityConfig::default();
        config.languages.insert(
            "por".into(),
            serde_json::json!({"gopher_quality": {"min_doc_words": 5}}),
        );
        let quality = config.build().unwrap();
        assert_eq!(
            quality.rules_for(Some("por")).gopher_quality.min_doc_words,
            5
        );
        assert_eq!(
            quality.rules_for(Some("spa")).gopher_quality.min_doc_words,
            50
        );
        assert_eq!(quality.rules_for(None).gopher_quality.min_doc_words, 50);

        config.languages.insert(
            "spa".into(),
            serde_json::json!({"gopher_quality": {"min_words": 5}}),
        );
        let err = config.build().unwrap_err().to_string();
        assert!(
            err.starts_with("[steps.languages.spa]: unknown field `min_words`"),
            "{err}"
        );
    }

    #[test]
    fn languages_without_stop_words_skip_that_rule() {
        let config = FilterQualityConfig::default();
        let english_words = PROSE.replace(" la ", " xa ").replace(" de ", " xe ");
        assert_eq!(run(&config, &english_words, "quy"), Verdict::Keep);
    }
}
