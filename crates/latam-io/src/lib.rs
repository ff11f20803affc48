//! Readers and writers of corpus files.
//!
//! Inputs are resolved from paths, directories and globs ([`resolve_inputs`]) into a sorted
//! list of [`InputFile`]s; a [`RecordReader`] streams each one as [`Record`]s (a JSON line still
//! to parse, a ready document, or an error with its line), never holding a whole file in memory.
//! Outputs are written by [`PartWriter`]s, atomically (temp file + rename), as JSONL (zstd,
//! gzip or plain) or Parquet.
//!
//! ```
//! use latam_io::{Compression, Format, InputFile, ReadOptions, RecordKind, RecordReader};
//!
//! let input = InputFile::in_memory("inline.jsonl", Format::Jsonl(Compression::None),
//!     b"{\"text\": \"hola\"}\nnot json\n");
//! let mut reader = RecordReader::open(&input, &ReadOptions::default());
//! let first = reader.next().unwrap();
//! assert!(matches!(first.kind, RecordKind::Json(ref line) if line.contains("hola")));
//! assert_eq!(reader.next().unwrap().line, 2);
//! ```

mod atomic;
mod hash;
mod inputs;
mod parquet_io;
mod reader;
mod tasks;
mod writer;

pub use atomic::{AtomicFile, create_new, write_atomic};
pub use hash::{hex, sha256_file};
pub use inputs::{Compression, Format, InputFile, Source, resolve_inputs};
pub use reader::{ReadOptions, Record, RecordKind, RecordReader};
pub use tasks::{describe_lines, task_inputs};
pub use writer::{OutputFormat, PartWriter, compress_block, encode_jsonl_block};

use std::path::PathBuf;

/// Errors of file handling, each naming the path.
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    /// An input path that does not exist.
    #[error("input `{0}` does not exist")]
    NotFound(String),
    /// Standard input (`-`) named twice among the inputs.
    #[error("standard input (`-`) can be read once only")]
    StdinTwice,
    /// A glob that matched no file.
    #[error("the pattern `{0}` matches no file")]
    NoMatch(String),
    /// A malformed glob.
    #[error("invalid glob `{pattern}`: {message}")]
    BadGlob {
        /// The pattern as given.
        pattern: String,
        /// What is wrong with it.
        message: String,
    },
    /// A file whose format cannot be told from its name.
    #[error(
        "cannot tell the format of `{0}`: expected .jsonl, .json or .ndjson (optionally .gz or \
         .zst), .parquet, .txt or .md"
    )]
    UnknownFormat(PathBuf),
    /// An output file whose format cannot be told from its name.
    #[error(
        "cannot tell the output format of `{0}`: name it .jsonl (optionally .gz or .zst) or \
         .parquet"
    )]
    UnknownOutputFormat(PathBuf),
    /// An operating-system error on a path.
    #[error("{path}: {source}")]
    Os {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A Parquet encoding error.
    #[error("{path}: {source}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: parquet::errors::ParquetError,
    },
}

impl IoError {
    pub(crate) fn os(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Os {
            path: path.into(),
            source,
        }
    }
}
