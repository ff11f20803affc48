//! Streaming record readers.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use latam_core::{Document, FieldNames};
use sha2::{Digest, Sha256};

use crate::inputs::{Compression, Format, InputFile, Source};
use crate::parquet_io::ParquetRows;

/// How records are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Field names of the text and the id.
    pub fields: FieldNames,
    /// Largest record (line, row or text file) read, in bytes; larger ones are reported as
    /// errors instead of exhausting memory.
    pub max_record_bytes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            fields: FieldNames::default(),
            max_record_bytes: 256 << 20,
        }
    }
}

/// One record of an input: its line (row, for Parquet; 1 for a text file) and what was read.
#[derive(Debug)]
pub struct Record {
    /// 1-based line or row number; 0 when the file could not be opened at all.
    pub line: u64,
    /// The payload.
    pub kind: RecordKind,
}

/// The payload of a [`Record`].
#[derive(Debug)]
pub enum RecordKind {
    /// A JSON line, valid UTF-8, still to be parsed (parsing runs in parallel).
    Json(String),
    /// A document read whole (text file, Parquet row).
    Doc(Document),
    /// The record could not be read; the message says why and what to do.
    Error(String),
}

/// Feeds the bytes read from a file into a SHA-256 shared with the [`RecordReader`].
struct Hashing<R> {
    inner: R,
    state: Arc<Mutex<Sha256>>,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.state.lock().expect("hash lock").update(&buf[..n]);
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

enum Inner {
    Lines {
        reader: Box<dyn BufRead + Send>,
        compression: Compression,
    },
    Text(Box<dyn Read + Send>),
    Parquet(ParquetRows),
    Failed(String),
    Done,
}

/// Streams the records of one input file. Never fails: problems come out as
/// [`RecordKind::Error`] records, and an error that stops the file (truncated stream) is the last.
pub struct RecordReader {
    inner: Inner,
    options: ReadOptions,
    text_id: String,
    line: u64,
    buf: Vec<u8>,
    hash: Arc<Mutex<Sha256>>,
    hashed: bool,
    stored: Arc<AtomicU64>,
    lines: Option<std::ops::Range<u64>>,
}

impl RecordReader {
    /// Opens an input.
    pub fn open(input: &InputFile, options: &ReadOptions) -> Self {
        let hash = Arc::new(Mutex::new(Sha256::new()));
        let stored = Arc::new(AtomicU64::new(0));
        // A zero-byte file is an empty input, whatever its compression says.
        let inner = match open_inner(input, &hash, &stored) {
            _ if input.size == 0 && !matches!(input.source, Source::Stdin) => Inner::Done,
            Ok(inner) => inner,
            Err(message) => Inner::Failed(message),
        };
        Self {
            inner,
            options: options.clone(),
            text_id: input.text_id.clone(),
            line: 0,
            buf: Vec::new(),
            hash,
            // The hash of a part of a file would pass for the whole file's.
            hashed: input.format != Format::Parquet && input.lines.is_none(),
            stored,
            lines: input.lines.clone(),
        }
    }

    /// The SHA-256 (hex) of the stored bytes read so far, which is the whole file once the reader
    /// is exhausted; `None` for Parquet, which is read by row groups, not as a stream.
    pub fn sha256(&self) -> Option<String> {
        if self.hashed {
            let digest = self.hash.lock().expect("hash lock").clone().finalize();
            Some(crate::hex(&digest))
        } else {
            None
        }
    }

    /// Stored (compressed) bytes read so far, for progress (0 for Parquet).
    pub fn stored_bytes_read(&self) -> u64 {
        self.stored.load(Ordering::Relaxed)
    }

    fn next_line(&mut self, reader_error: &str) -> Option<Record> {
        let Inner::Lines { reader, .. } = &mut self.inner else {
            return None;
        };
        loop {
            self.buf.clear();
            self.line += 1;
            match read_line_bounded(
                reader.as_mut(),
                &mut self.buf,
                self.options.max_record_bytes,
            ) {
                Ok(LineRead::Eof) => {
                    self.inner = Inner::Done;
                    return None;
                }
                Ok(LineRead::TooLarge) => {
                    let message = format!(
                        "record of more than {} bytes (raise [input] max_record_bytes to read it)",
                        self.options.max_record_bytes
                    );
                    return Some(Record {
                        line: self.line,
                        kind: RecordKind::Error(message),
                    });
                }
                Ok(LineRead::Line) => {
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let kind = match String::from_utf8(std::mem::take(&mut self.buf)) {
                        Ok(s) => RecordKind::Json(s),
                        Err(e) => RecordKind::Error(format!(
                            "invalid UTF-8 at byte {} of the line",
                            e.utf8_error().valid_up_to()
                        )),
                    };
                    return Some(Record {
                        line: self.line,
                        kind,
                    });
                }
                Err(e) => {
                    self.inner = Inner::Failed(String::new());
                    let message = format!("{reader_error}: {e}; the lines before it were read");
                    return Some(Record {
                        line: self.line,
                        kind: RecordKind::Error(message),
                    });
                }
            }
        }
    }
}

impl Iterator for RecordReader {
    type Item = Record;

    /// The next record of the file, or of its line range: records before the range are read
    /// and skipped, and the reader stops at the range's end.
    fn next(&mut self) -> Option<Record> {
        let Some(lines) = self.lines.clone() else {
            return self.next_record();
        };
        loop {
            let record = self.next_record()?;
            if record.line >= lines.end {
                self.inner = Inner::Done;
                return None;
            }
            if record.line >= lines.start {
                return Some(record);
            }
        }
    }
}

impl RecordReader {
    fn next_record(&mut self) -> Option<Record> {
        match &mut self.inner {
            Inner::Done => None,
            Inner::Failed(message) => {
                let message = std::mem::take(message);
                self.inner = Inner::Done;
                (!message.is_empty()).then_some(Record {
                    line: 0,
                    kind: RecordKind::Error(message),
                })
            }
            Inner::Lines { compression, .. } => {
                let what = match compression {
                    Compression::None => "read error",
                    Compression::Gzip => "truncated or corrupt gzip stream",
                    Compression::Zstd => "truncated or corrupt zstd stream",
                };
                self.next_line(what)
            }
            Inner::Text(reader) => {
                let max = self.options.max_record_bytes;
                let mut bytes = Vec::new();
                let result = reader.take(max as u64 + 1).read_to_end(&mut bytes);
                self.inner = Inner::Done;
                let kind = match result {
                    Err(e) => RecordKind::Error(format!("read error: {e}")),
                    Ok(n) if n > max => RecordKind::Error(format!(
                        "text file of more than {max} bytes (raise [input] max_record_bytes)"
                    )),
                    Ok(_) => match String::from_utf8(bytes) {
                        Ok(text) => RecordKind::Doc(Document::new(self.text_id.clone(), text)),
                        Err(e) => RecordKind::Error(format!(
                            "invalid UTF-8 at byte {} (convert the file to UTF-8 first, e.g. \
                             with iconv)",
                            e.utf8_error().valid_up_to()
                        )),
                    },
                };
                Some(Record { line: 1, kind })
            }
            Inner::Parquet(rows) => {
                let (line, row) = rows.next()?;
                let kind = match row {
                    Ok(value) => match Document::from_value(value, &self.options.fields) {
                        Ok(mut doc) => {
                            if doc.id.is_empty() {
                                doc.id = format!("{}:{line}", self.text_id);
                            }
                            RecordKind::Doc(doc)
                        }
                        Err(e) => RecordKind::Error(e.to_string()),
                    },
                    Err(message) => {
                        self.inner = Inner::Done;
                        RecordKind::Error(message)
                    }
                };
                Some(Record { line, kind })
            }
        }
    }
}

fn open_inner(
    input: &InputFile,
    hash: &Arc<Mutex<Sha256>>,
    stored: &Arc<AtomicU64>,
) -> Result<Inner, String> {
    if input.format == Format::Parquet {
        return match &input.source {
            Source::Path(path) => ParquetRows::open(path).map(Inner::Parquet),
            Source::Memory(_) | Source::Stdin => {
                Err("Parquet is read from files only, not from memory or stdin".into())
            }
        };
    }
    let source: Box<dyn Read + Send> = match &input.source {
        Source::Path(path) => Box::new(File::open(path).map_err(|e| format!("cannot open: {e}"))?),
        Source::Memory(bytes) => Box::new(Cursor::new(*bytes)),
        Source::Stdin => Box::new(std::io::stdin()),
    };
    let mut hashing = Hashing {
        inner: source,
        state: Arc::clone(hash),
        count: Arc::clone(stored),
    };
    let (format, raw): (Format, Box<dyn Read + Send>) = match input.source {
        Source::Stdin => {
            let magic = read_prefix(&mut hashing).map_err(|e| format!("read error: {e}"))?;
            let format = Format::Jsonl(sniff_compression(&magic));
            (format, Box::new(Cursor::new(magic).chain(hashing)))
        }
        _ => (input.format, Box::new(hashing)),
    };
    let raw = BufReader::with_capacity(1 << 20, raw);
    Ok(match format {
        Format::Jsonl(compression) => {
            let reader: Box<dyn BufRead + Send> = match compression {
                Compression::None => Box::new(raw),
                Compression::Gzip => Box::new(BufReader::with_capacity(
                    1 << 20,
                    flate2::bufread::MultiGzDecoder::new(raw),
                )),
                Compression::Zstd => {
                    let decoder = zstd::stream::read::Decoder::with_buffer(raw)
                        .map_err(|e| format!("not a zstd stream: {e}"))?;
                    Box::new(BufReader::with_capacity(1 << 20, decoder))
                }
            };
            Inner::Lines {
                reader,
                compression,
            }
        }
        Format::Text => Inner::Text(Box::new(raw)),
        Format::Parquet => unreachable!("handled above"),
    })
}

/// The first bytes of a stream (up to 4, fewer only at its end), to tell its compression.
fn read_prefix(reader: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(4);
    reader.take(4).read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// The compression of a stream, told by its first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`).
fn sniff_compression(magic: &[u8]) -> Compression {
    match magic {
        [0x1f, 0x8b, ..] => Compression::Gzip,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
        _ => Compression::None,
    }
}

enum LineRead {
    Line,
    TooLarge,
    Eof,
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`, holding at most `max` bytes: the rest
/// of a longer line is skipped.
fn read_line_bounded(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<LineRead> {
    let mut too_large = false;
    let mut any = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if too_large {
                LineRead::TooLarge
            } else if any {
                LineRead::Line
            } else {
                LineRead::Eof
            });
        }
        any = true;
        let (chunk, used, end) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if !too_large {
            if buf.len() + chunk.len() > max {
                too_large = true;
                buf.clear();
            } else {
                buf.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if end {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(if too_large {
                LineRead::TooLarge
            } else {
                LineRead::Line
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    fn read_all(name: &str, format: Format, bytes: &'static [u8]) -> Vec<Record> {
        RecordReader::open(
            &InputFile::in_memory(name, format, bytes),
            &ReadOptions::default(),
        )
        .collect()
    }

    fn leak(bytes: Vec<u8>) -> &'static [u8] {
        Box::leak(bytes.into_boxed_slice())
    }

    #[test]
    fn lines_blank_lines_and_crlf() {
        let recs = read_all(
            "a.jsonl",
            Format::Jsonl(Compression::None),
            b"{\"text\":\"a\"}\r\n\n  \n{\"text\":\"b\"}",
        );
        let lines: Vec<_> = recs.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 4]);
        assert!(matches!(&recs[0].kind, RecordKind::Json(s) if s == "{\"text\":\"a\"}"));
    }

    #[test]
    fn invalid_utf8_is_reported_with_its_line() {
        let recs = read_all(
            "a.jsonl",
            Format::Jsonl(Compression::None),
            b"{\"text\":\"ok\"}\n{\"text\":\"\xff\"}\n{\"text\":\"c\"}\n",
        );
        assert_eq!(recs.len(), 3);
        assert!(
            matches!(&recs[1].kind, RecordKind::Error(m) if m.contains("invalid UTF-8 at byte 9"))
        );
        assert!(matches!(recs[2].kind, RecordKind::Json(_)));
    }

    #[test]
    fn oversized_records_are_skipped_not_buffered() {
        let input = InputFile::in_memory(
            "a.jsonl",
            Format::Jsonl(Compression::None),
            b"0123456789\nabc\n",
        );
        let options = ReadOptions {
            max_record_bytes: 5,
            ..ReadOptions::default()
        };
        let recs: Vec<_> = RecordReader::open(&input, &options).collect();
        assert!(matches!(&recs[0].kind, RecordKind::Error(m) if m.contains("more than 5 bytes")));
        assert!(matches!(&recs[1].kind, RecordKind::Json(s) if s == "abc"));
    }

    #[test]
    fn truncated_gzip_and_zstd_keep_the_lines_before_and_report_the_rest() {
        let mut text = String::new();
        // Varied lines, so the zstd stream has many blocks before the cut.
        for i in 0..20_000u64 {
            let n = i.wrapping_mul(2_654_435_761) % 1_000_000_007;
            let _ = writeln!(text, "{{\"text\": \"documento {i}: {n} {}\"}}", n % 97);
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(text.as_bytes(), 3).unwrap();
        for (name, format, bytes) in [
            ("t.jsonl.gz", Format::Jsonl(Compression::Gzip), gz),
            ("t.jsonl.zst", Format::Jsonl(Compression::Zstd), zst),
        ] {
            let cut = leak(bytes[..bytes.len() / 2].to_vec());
            let recs = read_all(name, format, cut);
            let last = recs.last().unwrap();
            assert!(
                matches!(&last.kind, RecordKind::Error(m) if m.contains("truncated or corrupt")),
                "{name}: {last:?}"
            );
            let good = recs
                .iter()
                .filter(|r| matches!(r.kind, RecordKind::Json(_)))
                .count();
            assert!(
                good > 100 && good < 20_000,
                "{name}: {good} lines before the cut"
            );
        }
    }

    #[test]
    fn text_files_are_one_document_and_must_be_utf8() {
        let recs = read_all("notas/a.txt", Format::Text, "Había una vez".as_bytes());
        assert!(
            matches!(&recs[0].kind, RecordKind::Doc(d) if d.id == "notas/a.txt" && d.text == "Había una vez")
        );
        let recs = read_all("b.txt", Format::Text, b"Hab\xeda");
        assert!(matches!(&recs[0].kind, RecordKind::Error(m) if m.contains("invalid UTF-8")));
    }

    #[test]
    fn zero_byte_files_are_empty_in_any_format() {
        for (name, format) in [
            ("a.jsonl.zst", Format::Jsonl(Compression::Zstd)),
            ("a.jsonl.gz", Format::Jsonl(Compression::Gzip)),
            ("a.txt", Format::Text),
        ] {
            assert!(read_all(name, format, b"").is_empty(), "{name}");
        }
    }

    #[test]
    fn hash_covers_the_stored_bytes() {
        let mut reader = RecordReader::open(
            &InputFile::in_memory(
                "a.jsonl",
                Format::Jsonl(Compression::None),
                b"{\"text\":\"a\"}\n",
            ),
            &ReadOptions::default(),
        );
        while reader.next().is_some() {}
        let expected = crate::hex(&Sha256::digest(
            b"{\"text\":\"a\"}
",
        ));
        assert_eq!(reader.sha256(), Some(expected));
    }
}
