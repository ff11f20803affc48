//! Output parts: `part-00000.jsonl.zst`, written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use latam_core::Document;
use serde::{Deserialize, Serialize};

use crate::parquet_io::ParquetPart;
use crate::{AtomicFile, Compression, IoError};

/// The format of output parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// JSONL, one document per line (`--output-format jsonl`).
    Jsonl,
    /// Parquet with `id`, `text`, `metadata` and `extra` string columns (zstd inside).
    Parquet,
}

enum Sink {
    Plain(AtomicFile),
    Gzip(flate2::write::GzEncoder<AtomicFile>),
    Zstd(zstd::stream::write::Encoder<'static, AtomicFile>),
    Parquet(Box<ParquetPart>),
}

/// One output part being written; it appears under its final name only on [`PartWriter::finish`].
pub struct PartWriter {
    sink: Sink,
    path: PathBuf,
    line: Vec<u8>,
    docs: u64,
}

impl PartWriter {
    /// The file name of part `index`: `part-00042.jsonl.zst`, `part-00042.parquet`.
    pub fn file_name(index: usize, format: OutputFormat, compression: Compression) -> String {
        match format {
            OutputFormat::Jsonl => format!("part-{index:05}.jsonl{}", compression.suffix()),
            OutputFormat::Parquet => format!("part-{index:05}.parquet"),
        }
    }

    /// Starts writing `path` (through `<path>.tmp`).
    pub fn create(
        path: &Path,
        format: OutputFormat,
        compression: Compression,
    ) -> Result<Self, IoError> {
        let file = AtomicFile::create(path)?;
        let sink = match (format, compression) {
            (OutputFormat::Parquet, _) => Sink::Parquet(Box::new(
                ParquetPart::new(file).map_err(|e| parquet_error(path, e))?,
            )),
            (OutputFormat::Jsonl, Compression::None) => Sink::Plain(file),
            (OutputFormat::Jsonl, Compression::Gzip) => Sink::Gzip(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::new(6),
            )),
            (OutputFormat::Jsonl, Compression::Zstd) => {
                let mut encoder =
                    zstd::stream::write::Encoder::new(file, 3).map_err(|e| IoError::os(path, e))?;
                encoder
                    .include_checksum(true)
                    .map_err(|e| IoError::os(path, e))?;
                Sink::Zstd(encoder)
            }
        };
        Ok(Self {
            sink,
            path: path.to_owned(),
            line: Vec::new(),
            docs: 0,
        })
    }

    /// Documents written so far.
    pub fn docs(&self) -> u64 {
        self.docs
    }

    /// Appends a document.
    pub fn write(&mut self, doc: &Document) -> Result<(), IoError> {
        self.docs += 1;
        let writer: &mut dyn Write = match &mut self.sink {
            Sink::Parquet(part) => {
                return part.write(doc).map_err(|e| parquet_error(&self.path, e));
            }
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
            Sink::Zstd(w) => w,
        };
        self.line.clear();
        doc.write_json_line(&mut self.line);
        writer
            .write_all(&self.line)
            .map_err(|e| IoError::os(&self.path, e))
    }

    /// Completes the part and moves it under its final name.
    pub fn finish(self) -> Result<(), IoError> {
        let path = &self.path;
        let file = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(|e| IoError::os(path, e))?,
            Sink::Zstd(w) => w.finish().map_err(|e| IoError::os(path, e))?,
            Sink::Parquet(part) => part.finish().map_err(|e| parquet_error(path, e))?,
        };
        file.commit()
    }
}

fn parquet_error(path: &Path, source: parquet::errors::ParquetError) -> IoError {
    IoError::Parquet {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReadOptions, RecordKind, RecordReader, resolve_inputs};

    fn sample_docs() -> Vec<Document> {
        let mut a = Document::new("a", "Dos más dos son cuatro.");
        a.metadata.insert("country".into(), "MX".into());
        let mut b = Document::new("b", "Olá\nmundo");
        b.extra.insert("url".into(), "https://example.org".into());
        vec![a, b]
    }

    fn read_back(path: &Path) -> Vec<Document> {
        let inputs = resolve_inputs(&[path.display().to_string()]).unwrap();
        RecordReader::open(&inputs[0], &ReadOptions::default())
            .map(|r| match r.kind {
                RecordKind::Json(line) => {
                    Document::from_json_line(&line, &Default::default()).unwrap()
                }
                RecordKind::Doc(doc) => doc,
                RecordKind::Error(e) => panic!("{e}"),
            })
            .collect()
    }

    #[test]
    fn every_format_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        for (format, compression) in [
            (OutputFormat::Jsonl, Compression::Zstd),
            (OutputFormat::Jsonl, Compression::Gzip),
            (OutputFormat::Jsonl, Compression::None),
            (OutputFormat::Parquet, Compression::None),
        ] {
            let path = dir
                .path()
                .join(PartWriter::file_name(7, format, compression));
            let mut writer = PartWriter::create(&path, format, compression).unwrap();
            for doc in sample_docs() {
                writer.write(&doc).unwrap();
            }
            assert!(!path.exists(), "the final name appears only when finished");
            writer.finish().unwrap();
            assert_eq!(read_back(&path), sample_docs(), "{}", path.display());
        }
    }
}
