//! Benchmark files as rows of named fields: CSV, JSONL, JSON (an array, or an object holding
//! one), Parquet; `.gz`/`.zst` JSONL and CSV too.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use serde_json::{Map, Value};

use crate::BenchmarkError;

/// A row: column name → value.
pub type Row = Map<String, Value>;

/// Every row of `path`, by its extension.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, BenchmarkError> {
    let extension = data_extension(
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default(),
    );
    let bad = |message: String| BenchmarkError {
        path: path.to_owned(),
        message,
    };
    if extension.as_deref() == Some("parquet") {
        return read_parquet(path).map_err(bad);
    }
    let mut text = String::new();
    open(path)
        .map_err(|e| bad(e.to_string()))?
        .read_to_string(&mut text)
        .map_err(|e| bad(format!("cannot read as UTF-8 text: {e}")))?;
    if matches!(extension.as_deref(), Some("csv" | "tsv")) {
        let delimiter = if extension.as_deref() == Some("tsv") {
            b'\t'
        } else {
            b','
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let headers = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
        return reader
            .records()
            .enumerate()
            .map(|(i, record)| {
                let record = record.map_err(|e| bad(format!("row {}: {e}", i + 2)))?;
                Ok(headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.trim_start_matches('\u{feff}').to_owned(), Value::from(v)))
                    .collect())
            })
            .collect();
    }
    if extension.as_deref() == Some("json") {
        let value: Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("malformed JSON: {e}")))?;
        let list = match value {
            Value::Array(list) => list,
            Value::Object(object) => object
                .into_iter()
                .find_map(|(_, v)| match v {
                    Value::Array(list) => Some(list),
                    _ => None,
                })
                .ok_or_else(|| bad("a JSON object without a list of rows".into()))?,
            _ => return Err(bad("expected a JSON array of rows".into())),
        };
        return list
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::Object(row) => Ok(row),
                _ => Err(bad(format!("item {} is not an object", i + 1))),
            })
            .collect();
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(row)) => Ok(row),
            Ok(_) => Err(bad(format!("line {}: expected a JSON object", i + 1))),
            Err(e) => Err(bad(format!("line {}: malformed JSON: {e}", i + 1))),
        })
        .collect()
}

fn open(path: &Path) -> std::io::Result<Box<dyn Read>> {
    let file = BufReader::new(File::open(path)?);
    let compression = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(if compression.as_deref() == Some("gz") {
        Box::new(flate2::bufread::MultiGzDecoder::new(file))
    } else if compression.as_deref() == Some("zst") {
        Box::new(zstd::Decoder::with_buffer(file)?)
    } else {
        Box::new(file) as Box<dyn Read>
    })
}

fn read_parquet(path: &Path) -> Result<Vec<Row>, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
    let rows = reader.get_row_iter(None).map_err(|e| e.to_string())?;
    rows.map(
        |row| match row.map_err(|e| e.to_string())?.to_json_value() {
            Value::Object(row) => Ok(row),
            _ => Err("a Parquet row that is not a record".into()),
        },
    )
    .collect()
}

/// A field as text: strings as they are, numbers and booleans printed, null and absent empty.
pub fn text(row: &Row, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// Whether the reader handles this file name.
pub fn is_data_file(name: &str) -> bool {
    matches!(
        data_extension(name).as_deref(),
        Some("csv" | "tsv" | "json" | "jsonl" | "parquet")
    )
}

/// The lowercase extension of a file name under its `.gz` / `.zst`.
fn data_extension(name: &str) -> Option<String> {
    let lower = name.to_lowercase();
    let stem = lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".zst"))
        .unwrap_or(&lower);
    Path::new(stem)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_owned)
}
