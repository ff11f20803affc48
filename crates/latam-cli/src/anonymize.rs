//! `latam anonymize`: JSONL in, JSONL out.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use latam_anonymize::{AnonymizeConfig, RedactMode};
use latam_core::{Document, FieldNames, Step};

use crate::{EXIT_INPUT_ERRORS, Failure};

/// Reads JSONL documents, writes them with `text` redacted and `metadata.pii` = the list of
/// `{type, start, end}` found (byte offsets into the original text); every other field is kept.
/// Lines that are not documents are reported on stderr with their number and skipped (exit 1).
///
/// Examples:
///   latam anonymize --input docs.jsonl --output clean.jsonl
///   zstdcat docs.jsonl.zst | latam anonymize --mode mask | zstd > clean.jsonl.zst
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct AnonymizeArgs {
    /// JSONL input (default: standard input).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// JSONL output (default: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// How found data is replaced: `[CPF]`-style tags, or `*` masks that keep separators.
    #[arg(long, value_enum, default_value = "tag")]
    mode: ModeArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    Tag,
    Mask,
}

pub(crate) fn run(args: &AnonymizeArgs) -> Result<u8, Failure> {
    let mode = match args.mode {
        ModeArg::Tag => RedactMode::Tag,
        ModeArg::Mask => RedactMode::Mask,
    };
    let step = AnonymizeConfig {
        mode,
        skip: Vec::new(),
    }
    .build();
    let input: Box<dyn BufRead> = match &args.input {
        Some(path) => Box::new(BufReader::new(
            File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))
                .map_err(Failure::usage)?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut output = BufWriter::new(output);
    let fields = FieldNames::default();
    let source = args
        .input
        .as_ref()
        .map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let (mut errors, mut buf) = (0usize, Vec::new());
    for (index, line) in input.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {source}"))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let parsed = std::str::from_utf8(&line)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))
            .and_then(|text| Document::from_json_line(text, &fields).map_err(|e| e.to_string()));
        match parsed {
            Ok(mut doc) => {
                step.process(&mut doc);
                buf.clear();
                doc.write_json_line(&mut buf);
                output.write_all(&buf)?;
            }
            Err(error) => {
                errors += 1;
                eprintln!("{source}:{}: {error}", index + 1);
            }
        }
    }
    output.flush()?;
    Ok(if errors > 0 { EXIT_INPUT_ERRORS } else { 0 })
}
