//! `latam anonymize`: JSONL in, JSONL out.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use latam_anonymize::{AnonymizeConfig, RedactMode};
use latam_core::{Document, FieldNames};
use serde_json::Value;

use crate::Failure;

/// Reads JSONL documents, writes them with `text` redacted and `metadata.pii` = the list of
/// `{type, start, end}` found (byte offsets into the original text); every other field is kept.
/// Lines that are not documents are reported on stderr with their number and skipped (exit 1).
///
/// With --eval, prints precision and recall per kind on a labelled set instead; --make-eval
/// writes such a set from the bundled sample's real sentences.
///
/// Examples:
///   latam anonymize --input docs.jsonl --output clean.jsonl
///   zstdcat docs.jsonl.zst | latam anonymize --mode mask | zstd > clean.jsonl.zst
///   latam anonymize --eval data/anonymize/eval.jsonl
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct AnonymizeArgs {
    /// Input: a file, directory or glob in any form `corpus run` reads (JSONL, .gz, .zst,
    /// Parquet); default: standard input (JSONL, plain or compressed).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Output file, written when complete: .jsonl, .jsonl.gz, .jsonl.zst or .parquet by its
    /// name; never one of the inputs. Default: standard output (JSONL).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// How found data is replaced: `[CPF]`-style tags, or `*` masks that keep separators.
    #[arg(long, value_enum, default_value = "tag")]
    mode: ModeArg,
    /// Score on a labelled set (JSONL of {text, pii, keep}): precision and recall per kind,
    /// non-personal numbers changed.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "output", "make_eval"])]
    eval: Option<PathBuf>,
    /// Print the --eval figures as JSON.
    #[arg(long, requires = "eval")]
    json: bool,
    /// Write a labelled set built from the bundled sample's sentences.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "output"])]
    make_eval: Option<PathBuf>,
    /// Records per kind in --make-eval.
    #[arg(long, default_value_t = 100)]
    per_kind: usize,
    /// Seed of --make-eval.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Tag,
    Mask,
    /// Realistic fakes, the same for the same value; the key is read from LATAM_ANONYMIZE_KEY.
    Pseudonym,
}

pub(crate) fn run(args: &AnonymizeArgs) -> Result<u8, Failure> {
    let mode = match args.mode {
        ModeArg::Tag => RedactMode::Tag,
        ModeArg::Mask => RedactMode::Mask,
        ModeArg::Pseudonym => RedactMode::Pseudonym,
    };
    let step = AnonymizeConfig {
        mode,
        ..AnonymizeConfig::default()
    }
    .build()
    .map_err(Failure::usage)?;
    if let Some(path) = &args.make_eval {
        return make_eval(path, args.per_kind, args.seed);
    }
    if let Some(path) = &args.eval {
        return evaluate(&step, path, args.json);
    }
    crate::records::filter(args.input.as_deref(), args.output.as_deref(), |record| {
        let text = crate::records::text(record)?;
        // The country, when the record has one, decides how national phone numbers are read.
        let country = record
            .get("metadata")
            .and_then(|m| m.get("country"))
            .and_then(Value::as_str);
        let (redacted, found) = step.redact_in(text, country);
        record.insert("text".into(), Value::String(redacted));
        let pii = serde_json::to_value(&found).map_err(|e| e.to_string())?;
        crate::records::metadata(record)?.insert("pii".into(), pii);
        Ok(())
    })
}

/// Real sentences of the bundled sample (40 to 240 bytes).
fn sample_sentences() -> Result<Vec<String>, Failure> {
    let text = zstd::decode_all(crate::corpus::SAMPLE)?;
    let mut sentences = Vec::new();
    for line in String::from_utf8(text)?.lines() {
        let doc = Document::from_json_line(line, &FieldNames::default())?;
        sentences.extend(
            doc.text
                .split_inclusive(". ")
                .map(str::trim)
                .filter(|s| (40..=240).contains(&s.len()) && !s.contains('\n'))
                .map(str::to_owned),
        );
    }
    Ok(sentences)
}

fn make_eval(path: &Path, per_kind: usize, seed: u64) -> Result<u8, Failure> {
    let sentences = sample_sentences()?;
    let refs: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let records = latam_anonymize::eval::build(&refs, per_kind, seed);
    let mut out = Vec::new();
    for record in &records {
        serde_json::to_writer(&mut out, record)?;
        out.push(b'\n');
    }
    latam_io::write_atomic(path, &out)?;
    eprintln!(
        "wrote {} records ({per_kind} per kind, seed {seed}) to {}",
        records.len(),
        path.display()
    );
    Ok(0)
}

fn evaluate(step: &latam_anonymize::Anonymize, path: &Path, json: bool) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(Failure::usage)?;
    let mut records = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let record = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not an evaluation record", path.display(), i + 1))
            .map_err(Failure::usage)?;
        records.push(record);
    }
    let report = latam_anonymize::eval::score(step, &records);
    if json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(0);
    }
    println!(
        "{:<12} {:>6} {:>6} {:>6} {:>9} {:>7}",
        "kind", "found", "missed", "wrong", "precision", "recall"
    );
    for (kind, s) in &report.kinds {
        let name = serde_json::to_value(kind)?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        println!(
            "{name:<12} {:>6} {:>6} {:>6} {:>8.1}% {:>6.1}%",
            s.true_positives,
            s.false_negatives,
            s.false_positives,
            s.precision() * 100.0,
            s.recall() * 100.0
        );
    }
    let total: u64 = report.keep_total.values().sum();
    let changed: u64 = report.keep_changed.values().sum();
    println!(
        "\nnon-personal numbers changed: {changed} of {total} ({:.2}%)",
        report.keep_changed_rate() * 100.0
    );
    for (kind, n) in &report.keep_total {
        let c = report.keep_changed.get(kind).copied().unwrap_or(0);
        if c > 0 {
            println!("  {kind}: {c} of {n}");
        }
    }
    Ok(0)
}
