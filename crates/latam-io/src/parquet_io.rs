//! Parquet rows in, Parquet parts out, through the `parquet` crate's row API (no Arrow).
//!
//! Written parts have four string columns: `id`, `text`, `metadata` (a JSON object) and
//! `extra` (the other top-level fields as a JSON object, null when there are none); reading one
//! back gives the same documents.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use latam_core::Document;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::SerializedFileWriter;
use parquet::record::reader::RowIter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value;

/// The rows of a Parquet file as JSON objects, numbered from 1.
pub(crate) struct ParquetRows {
    rows: RowIter<'static>,
    row: u64,
}

impl ParquetRows {
    pub(crate) fn open(path: &Path) -> Result<Self, String> {
        let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
        let reader =
            SerializedFileReader::new(file).map_err(|e| format!("not a Parquet file: {e}"))?;
        let reader: Box<dyn FileReader> = Box::new(reader);
        Ok(Self {
            rows: RowIter::from_file_into(reader),
            row: 0,
        })
    }

    /// The next row: a JSON object with the `extra` column spread back to the top level.
    pub(crate) fn next(&mut self) -> Option<(u64, Result<Value, String>)> {
        let row = self.rows.next()?;
        self.row += 1;
        let value = row
            .map_err(|e| format!("corrupt Parquet data: {e}"))
            .map(|row| {
                let mut value = row.to_json_value();
                if let Value::Object(map) = &mut value
                    && let Some(Value::String(extra)) = map.remove("extra")
                    && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(&extra)
                {
                    for (k, v) in fields {
                        map.entry(k).or_insert(v);
                    }
                }
                value
            });
        Some((self.row, value))
    }
}

/// The rows of a Parquet file, from its footer.
pub(crate) fn row_count(path: &Path) -> Result<u64, crate::IoError> {
    let file = File::open(path).map_err(|e| crate::IoError::os(path, e))?;
    let reader = SerializedFileReader::new(file).map_err(|source| crate::IoError::Parquet {
        path: path.to_owned(),
        source,
    })?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

const SCHEMA: &str = "message document {
    required binary id (STRING);
    required binary text (STRING);
    required binary metadata (STRING);
    optional binary extra (STRING);
}";

/// Documents buffered into row groups of a Parquet file.
pub(crate) struct ParquetPart {
    writer: SerializedFileWriter<crate::AtomicFile>,
    columns: [Vec<ByteArray>; 4],
    extra_levels: Vec<i16>,
    buffered_bytes: usize,
}

/// Row groups are flushed at this many bytes of buffered text.
const ROW_GROUP_BYTES: usize = 64 << 20;

impl ParquetPart {
    pub(crate) fn new(file: crate::AtomicFile) -> parquet::errors::Result<Self> {
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let props = WriterProperties::builder()
            .set_compression(ParquetCompression::ZSTD(ZstdLevel::try_new(3)?))
            .set_created_by(concat!("latam ", env!("CARGO_PKG_VERSION")).into())
            .build();
        Ok(Self {
            writer: SerializedFileWriter::new(file, schema, Arc::new(props))?,
            columns: Default::default(),
            extra_levels: Vec::new(),
            buffered_bytes: 0,
        })
    }

    pub(crate) fn write(&mut self, doc: &Document) -> parquet::errors::Result<()> {
        let json = |v: &serde_json::Map<String, Value>| {
            ByteArray::from(serde_json::to_vec(v).expect("serializing JSON into memory"))
        };
        self.columns[0].push(ByteArray::from(doc.id.as_str()));
        self.columns[1].push(ByteArray::from(doc.text.as_str()));
        self.columns[2].push(json(&doc.metadata));
        if doc.extra.is_empty() {
            self.extra_levels.push(0);
        } else {
            self.extra_levels.push(1);
            self.columns[3].push(json(&doc.extra));
        }
        self.buffered_bytes += doc.text.len();
        if self.buffered_bytes >= ROW_GROUP_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> parquet::errors::Result<()> {
        if self.extra_levels.is_empty() {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            let levels = (index == 3).then_some(self.extra_levels.as_slice());
            column
                .typed::<ByteArrayType>()
                .write_batch(&self.columns[index], levels, None)?;
            column.close()?;
            index += 1;
        }
        group.close()?;
        self.columns.iter_mut().for_each(Vec::clear);
        self.extra_levels.clear();
        self.buffered_bytes = 0;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> parquet::errors::Result<crate::AtomicFile> {
        self.flush()?;
        self.writer.into_inner()
    }
}
