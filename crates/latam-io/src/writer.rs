//! Output parts: `part-00000.jsonl.zst`, written atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

use latam_core::Document;
use serde::{Deserialize, Serialize};

use crate::parquet_io::ParquetPart;
use crate::{AtomicFile, Compression, Format, IoError};

/// The format of output parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// JSONL, one document per line (`--output-format jsonl`).
    Jsonl,
    /// Parquet with `id`, `text`, `metadata` and `extra` string columns (zstd inside).
    Parquet,
}

impl OutputFormat {
    /// The format and compression a file name asks for: `.jsonl`, `.json` or `.ndjson`
    /// (optionally `.gz` or `.zst`), or `.parquet`.
    pub fn from_path(path: &Path) -> Result<(Self, Compression), IoError> {
        match Format::from_path(path) {
            Some(Format::Jsonl(compression)) => Ok((Self::Jsonl, compression)),
            Some(Format::Parquet) => Ok((Self::Parquet, Compression::None)),
            Some(Format::Text) | None => Err(IoError::UnknownOutputFormat(path.to_owned())),
        }
    }
}

/// Encodes documents as one self-contained block of a JSONL part: plain lines, one gzip
/// member or one zstd frame (with checksum). Blocks concatenate into a valid file, so workers
/// encode batches in parallel and the writer only appends them.
pub fn encode_jsonl_block<'a>(
    docs: impl IntoIterator<Item = &'a Document>,
    compression: Compression,
) -> Result<Vec<u8>, std::io::Error> {
    let mut lines = Vec::new();
    for doc in docs {
        doc.write_json_line(&mut lines);
    }
    compress_block(lines, compression)
}

/// Compresses JSONL lines as one self-contained block (see [`encode_jsonl_block`]).
pub fn compress_block(lines: Vec<u8>, compression: Compression) -> Result<Vec<u8>, std::io::Error> {
    match compression {
        Compression::None => Ok(lines),
        Compression::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(
                Vec::with_capacity(lines.len() / 3),
                flate2::Compression::new(6),
            );
            gz.write_all(&lines)?;
            gz.finish()
        }
        Compression::Zstd => {
            let mut zstd = zstd::bulk::Compressor::new(3)?;
            zstd.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))?;
            zstd.compress(&lines)
        }
    }
}

enum Sink {
    Jsonl {
        file: AtomicFile,
        compression: Compression,
        empty: bool,
    },
    Parquet(Box<ParquetPart>),
}

/// One output part being written; it appears under its final name only on [`PartWriter::finish`].
pub struct PartWriter {
    sink: Sink,
    path: PathBuf,
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
        let sink = match format {
            OutputFormat::Parquet => Sink::Parquet(Box::new(
                ParquetPart::new(file).map_err(|e| parquet_error(path, e))?,
            )),
            OutputFormat::Jsonl => Sink::Jsonl {
                file,
                compression,
                empty: true,
            },
        };
        Ok(Self {
            sink,
            path: path.to_owned(),
            docs: 0,
        })
    }

    /// Documents written so far.
    pub fn docs(&self) -> u64 {
        self.docs
    }

    /// Appends a block made by [`encode_jsonl_block`] (with this part's compression) holding
    /// `docs` documents. Parquet parts take documents through [`PartWriter::write`].
    pub fn write_block(&mut self, block: &[u8], docs: u64) -> Result<(), IoError> {
        let Sink::Jsonl { file, empty, .. } = &mut self.sink else {
            let misuse = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a Parquet part takes documents, not JSONL blocks",
            );
            return Err(IoError::os(&self.path, misuse));
        };
        self.docs += docs;
        *empty &= block.is_empty();
        file.write_all(block)
            .map_err(|e| IoError::os(&self.path, e))
    }

    /// Appends a document.
    pub fn write(&mut self, doc: &Document) -> Result<(), IoError> {
        match &mut self.sink {
            Sink::Parquet(part) => {
                self.docs += 1;
                part.write(doc).map_err(|e| parquet_error(&self.path, e))
            }
            Sink::Jsonl { compression, .. } => {
                let block = encode_jsonl_block([doc], *compression)
                    .map_err(|e| IoError::os(&self.path, e))?;
                self.write_block(&block, 1)
            }
        }
    }

    /// Completes the part and moves it under its final name. A compressed part without
    /// documents still holds one empty frame, so every reader sees a valid, empty file.
    pub fn finish(self) -> Result<(), IoError> {
        let path = &self.path;
        let file = match self.sink {
            Sink::Jsonl {
                mut file,
                compression,
                empty,
            } => {
                if empty && compression != Compression::None {
                    let block =
                        encode_jsonl_block([], compression).map_err(|e| IoError::os(path, e))?;
                    file.write_all(&block).map_err(|e| IoError::os(path, e))?;
                }
                file
            }
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
                    Document::from_json_line(&line, &latam_core::FieldNames::default()).unwrap()
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
            let docs = sample_docs();
            if format == OutputFormat::Jsonl {
                // One block of a document, then a document on its own.
                writer
                    .write_block(&encode_jsonl_block(&docs[..1], compression).unwrap(), 1)
                    .unwrap();
                writer.write(&docs[1]).unwrap();
            } else {
                for doc in &docs {
                    writer.write(doc).unwrap();
                }
            }
            assert_eq!(writer.docs(), 2);
            assert!(!path.exists(), "the final name appears only when finished");
            writer.finish().unwrap();
            assert_eq!(read_back(&path), sample_docs(), "{}", path.display());
        }
    }

    #[test]
    fn empty_parts_are_valid_files() {
        let dir = tempfile::tempdir().unwrap();
        for compression in [Compression::Zstd, Compression::Gzip, Compression::None] {
            let path = dir
                .path()
                .join(PartWriter::file_name(0, OutputFormat::Jsonl, compression));
            PartWriter::create(&path, OutputFormat::Jsonl, compression)
                .unwrap()
                .finish()
                .unwrap();
            assert_eq!(read_back(&path), Vec::<Document>::new());
        }
        let path = dir.path().join("empty.jsonl.zst");
        PartWriter::create(&path, OutputFormat::Jsonl, Compression::Zstd)
            .unwrap()
            .finish()
            .unwrap();
        assert!(
            zstd::decode_all(std::fs::File::open(&path).unwrap())
                .unwrap()
                .is_empty()
        );
    }
}
