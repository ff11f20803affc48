//! Record filters for `latam anonymize`, `latam langid` and `latam classifier predict`.
//!
//! Records stream from `--input` (a file, directory or glob in any form `latam corpus run`
//! reads: JSONL plain, gzip or zstd, Parquet, text files) or from stdin (JSONL, plain or
//! compressed), to `--output` (JSONL, `.gz`/`.zst` by its name, or Parquet; written under a temp
//! name and renamed when complete) or stdout. Each JSONL record is edited in place, its fields
//! in their order; a record that cannot be read is reported with its file and line and skipped
//! (exit status 1). An output that is one of the inputs (the same path, a symlink or a hard
//! link to it) is refused before anything is written.

use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use latam_core::{Document, FieldNames};
use latam_io::{
    Compression, InputFile, OutputFormat, PartWriter, ReadOptions, RecordKind, RecordReader,
    compress_block,
};
use serde_json::{Map, Value};

use crate::{EXIT_INPUT_ERRORS, Failure};

/// A JSONL block is compressed and written once it holds this many bytes.
const BLOCK_BYTES: usize = 1 << 20;

/// A record's `text`.
pub(crate) fn text(record: &Map<String, Value>) -> Result<&str, String> {
    match record.get("text") {
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err("`text` is not a string".into()),
        None => Err("no `text` field".into()),
    }
}

/// A record's `metadata` object, created when absent.
pub(crate) fn metadata(record: &mut Map<String, Value>) -> Result<&mut Map<String, Value>, String> {
    match record
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(metadata) => Ok(metadata),
        _ => Err("`metadata` is not an object".into()),
    }
}

/// The inputs of `--input` (stdin when `None`).
fn inputs(input: Option<&Path>) -> Result<Vec<InputFile>, Failure> {
    match input {
        None => Ok(vec![InputFile::stdin()]),
        Some(path) => {
            latam_io::resolve_inputs(&[path.display().to_string()]).map_err(Failure::usage)
        }
    }
}

/// Refuses an output that is one of the inputs: writing it would destroy what is being read.
fn check_not_an_input(output: &Path, inputs: &[InputFile]) -> Result<(), Failure> {
    for input in inputs.iter().filter_map(InputFile::path) {
        if same_file::is_same_file(input, output).unwrap_or(false) {
            return Err(Failure::usage(anyhow::anyhow!(
                "--output {} is the input {}: writing it would destroy the input; name another \
                 output file",
                output.display(),
                input.display()
            )));
        }
    }
    Ok(())
}

/// Where edited records go.
enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    Jsonl {
        part: PartWriter,
        compression: Compression,
        block: Vec<u8>,
        lines: u64,
    },
    Parquet(PartWriter),
}

impl Sink {
    fn open(output: Option<&Path>) -> Result<Self, Failure> {
        let Some(path) = output else {
            return Ok(Self::Stdout(std::io::BufWriter::new(std::io::stdout())));
        };
        let (format, compression) = OutputFormat::from_path(path).map_err(Failure::usage)?;
        let part = PartWriter::create(path, format, compression)?;
        Ok(match format {
            OutputFormat::Jsonl => Self::Jsonl {
                part,
                compression,
                block: Vec::with_capacity(BLOCK_BYTES + (64 << 10)),
                lines: 0,
            },
            OutputFormat::Parquet => Self::Parquet(part),
        })
    }

    fn write(&mut self, record: Map<String, Value>) -> anyhow::Result<()> {
        match self {
            Self::Stdout(out) => {
                serde_json::to_writer(&mut *out, &record)?;
                out.write_all(b"\n")?;
            }
            Self::Jsonl {
                part,
                compression,
                block,
                lines,
            } => {
                serde_json::to_writer(&mut *block, &record)?;
                block.push(b'\n');
                *lines += 1;
                if block.len() >= BLOCK_BYTES {
                    flush_block(part, *compression, block, lines)?;
                }
            }
            Self::Parquet(part) => {
                let doc = Document::from_value(Value::Object(record), &FieldNames::default())?;
                part.write(&doc)?;
            }
        }
        Ok(())
    }

    /// Completes the output: the file appears under its name only now.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            Self::Stdout(mut out) => out.flush()?,
            Self::Jsonl {
                mut part,
                compression,
                mut block,
                mut lines,
            } => {
                flush_block(&mut part, compression, &mut block, &mut lines)?;
                part.finish()?;
            }
            Self::Parquet(part) => part.finish()?,
        }
        Ok(())
    }
}

/// Compresses and writes the `lines` records of `block`, emptying both.
fn flush_block(
    part: &mut PartWriter,
    compression: Compression,
    block: &mut Vec<u8>,
    lines: &mut u64,
) -> anyhow::Result<()> {
    if block.is_empty() {
        return Ok(());
    }
    let bytes = compress_block(std::mem::take(block), compression)?;
    part.write_block(&bytes, std::mem::take(lines))?;
    Ok(())
}

/// A record as read: a JSONL line parsed into its object, or a document read whole (Parquet
/// row, text file) in its JSONL form.
fn record_of(kind: RecordKind) -> Result<Map<String, Value>, String> {
    match kind {
        RecordKind::Json(line) => match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(record)) => Ok(record),
            Ok(_) => Err("expected a JSON object".into()),
            Err(e) => Err(format!("malformed JSON: {e}")),
        },
        RecordKind::Doc(doc) => Ok(doc.into_record()),
        RecordKind::Error(message) => Err(message),
    }
}

/// Runs `edit` over every record of `input` (stdin when `None`), writing to `output` (stdout
/// when `None`). Returns the exit status: 0, or 1 when some records were unreadable.
pub(crate) fn filter(
    input: Option<&Path>,
    output: Option<&Path>,
    mut edit: impl FnMut(&mut Map<String, Value>) -> Result<(), String>,
) -> Result<u8, Failure> {
    let inputs = inputs(input)?;
    if let Some(output) = output {
        check_not_an_input(output, &inputs)?;
    }
    let mut sink = Sink::open(output)?;
    let options = ReadOptions::default();
    let mut errors = 0usize;
    for input in &inputs {
        for record in RecordReader::open(input, &options) {
            let edited = record_of(record.kind).and_then(|mut r| edit(&mut r).map(|()| r));
            match edited {
                Ok(edited) => sink.write(edited).with_context(|| {
                    format!("writing the record of {}:{}", input.name, record.line)
                })?,
                Err(error) => {
                    errors += 1;
                    eprintln!("{}:{}: {error}", input.name, record.line);
                }
            }
        }
    }
    sink.finish()?;
    Ok(if errors > 0 { EXIT_INPUT_ERRORS } else { 0 })
}
