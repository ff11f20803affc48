//! `latam langid`: JSONL in, JSONL out, with the language of each document.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use latam_langid::{DetectLanguageConfig, Engine};

use crate::Failure;

/// Adds `metadata.language` (ISO 639-3: spa, por, eng, fra, hat, quy, gug, aym, nah, arn, yua,
/// quc, guc, shp, oto, tar, hch, cni, bzd, ctp; `und` for any other language or none) and
/// `metadata.language_score` (0 to 1) to JSONL documents; every other field is kept. Lines that
/// are not documents are reported on stderr with their number and skipped (exit 1).
///
/// The identifier is latam's own, embedded in the binary (trained on the region's languages;
/// its card and scores: crates/latam-langid/model/README.md); it reads the first --max-chars
/// characters. With --paragraphs every line is labelled and `metadata.languages` gives the share
/// of characters per language; the document's label is then the one with the most.
///
/// Examples:
///   latam langid --input docs.jsonl --output labelled.jsonl
///   zstdcat docs.jsonl.zst | latam langid | jq -r .metadata.language | sort | uniq -c
///   latam langid --paragraphs --input mixed.jsonl | jq -c .metadata.languages
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct LangidArgs {
    /// Input: a file, directory or glob in any form `corpus run` reads (JSONL, .gz, .zst,
    /// Parquet); default: standard input (JSONL, plain or compressed).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Output file, written when complete: .jsonl, .jsonl.gz, .jsonl.zst or .parquet by its
    /// name; never one of the inputs. Default: standard output (JSONL).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Characters read from the start of each text (0: all); of each paragraph with --paragraphs.
    #[arg(long, default_value_t = 1000)]
    max_chars: usize,
    /// Label every paragraph and write `metadata.languages` (share of characters per language).
    #[arg(long)]
    paragraphs: bool,
    /// Shortest paragraph labelled with --paragraphs, in letters.
    #[arg(long, default_value_t = 20)]
    min_paragraph_letters: usize,
    /// Which identifier: latam's own or whatlang's (69 languages, none Indigenous).
    #[arg(long, value_enum, default_value = "latam")]
    engine: EngineArg,
    /// A model trained with `latam classifier train` instead of the embedded one.
    #[arg(long)]
    model: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum EngineArg {
    Latam,
    Whatlang,
}

pub(crate) fn run(args: &LangidArgs) -> Result<u8, Failure> {
    let config = DetectLanguageConfig {
        engine: match args.engine {
            EngineArg::Latam => Engine::Latam,
            EngineArg::Whatlang => Engine::Whatlang,
        },
        model: args.model.clone(),
        keep: Vec::new(),
        max_chars: args.max_chars,
        paragraphs: args.paragraphs,
        min_paragraph_letters: args.min_paragraph_letters,
        ..DetectLanguageConfig::default()
    };
    let detector = config.build().map_err(Failure::usage)?;
    crate::records::filter(args.input.as_deref(), args.output.as_deref(), |record| {
        let text = crate::records::text(record)?.to_owned();
        detector.annotate(&text, crate::records::metadata(record)?);
        Ok(())
    })
}
