//! JSONL record filters for `latam anonymize` and `latam langid`: records stream from a file
//! or stdin to a file or stdout; each is edited in place (field order kept), and a line that is
//! not a record is reported with its number and skipped (exit status 1).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::{EXIT_INPUT_ERRORS, Failure};

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

/// Runs `edit` over every record of `input` (stdin when `None`), writing to `output` (stdout
/// when `None`).
pub(crate) fn filter(
    input: Option<&Path>,
    output: Option<&Path>,
    mut edit: impl FnMut(&mut Map<String, Value>) -> Result<(), String>,
) -> Result<u8, Failure> {
    let reader: Box<dyn BufRead> = match input {
        Some(path) => Box::new(BufReader::new(
            File::open(path)
                .with_context(|| format!("cannot open {}", path.display()))
                .map_err(Failure::usage)?,
        )),
        None => Box::new(std::io::stdin().lock()),
    };
    let writer: Box<dyn Write> = match output {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut writer = BufWriter::new(writer);
    let source = input.map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let mut errors = 0usize;
    for (index, line) in reader.split(b'\n').enumerate() {
        let line = line.with_context(|| format!("reading {source}"))?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let edited = std::str::from_utf8(&line)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))
            .and_then(|line| {
                serde_json::from_str::<Value>(line).map_err(|e| format!("malformed JSON: {e}"))
            })
            .and_then(|mut value| {
                let Value::Object(record) = &mut value else {
                    return Err("expected a JSON object".to_owned());
                };
                edit(record)?;
                serde_json::to_vec(&value).map_err(|e| e.to_string())
            });
        match edited {
            Ok(record) => {
                writer.write_all(&record)?;
                writer.write_all(b"\n")?;
            }
            Err(error) => {
                errors += 1;
                eprintln!("{source}:{}: {error}", index + 1);
            }
        }
    }
    writer.flush()?;
    Ok(if errors > 0 { EXIT_INPUT_ERRORS } else { 0 })
}
