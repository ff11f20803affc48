//! `latam langid`: JSONL in, JSONL out, with the language of each document.

use std::path::PathBuf;

use clap::Args;
use latam_langid::DetectLanguageConfig;
use serde_json::Value;

use crate::Failure;

/// Adds `metadata.language` (ISO 639-3: spa, por, eng, fra, ...; `und` when undecided) and
/// `metadata.language_score` (0 to 1) to JSONL documents; every other field is kept. Lines that
/// are not documents are reported on stderr with their number and skipped (exit 1).
///
/// The detector is whatlang's trigram model over its 69 languages, on the first --max-chars
/// characters; it does not know the region's Indigenous languages yet.
///
/// Examples:
///   latam langid --input docs.jsonl --output labelled.jsonl
///   zstdcat docs.jsonl.zst | latam langid | jq -r .metadata.language | sort | uniq -c
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct LangidArgs {
    /// JSONL input (default: standard input).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// JSONL output (default: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Characters read from the start of each text (0: all).
    #[arg(long, default_value_t = 1000)]
    max_chars: usize,
}

pub(crate) fn run(args: &LangidArgs) -> Result<u8, Failure> {
    let config = DetectLanguageConfig {
        keep: Vec::new(),
        max_chars: args.max_chars,
        ..DetectLanguageConfig::default()
    };
    let detector = config.build().map_err(Failure::usage)?;
    crate::jsonl::filter(args.input.as_deref(), args.output.as_deref(), |record| {
        let (language, score) = detector.detect(crate::jsonl::text(record)?);
        let metadata = crate::jsonl::metadata(record)?;
        metadata.insert("language".into(), Value::from(language));
        metadata.insert(
            "language_score".into(),
            Value::from((score * 10_000.0).round() / 10_000.0),
        );
        Ok(())
    })
}
