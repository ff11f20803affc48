//! The errors of the deduplication steps and of the stages of a staged run.

use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, with the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    /// Settings that cannot work.
    #[error("{0}")]
    Config(String),
    /// A benchmark of `decontaminate` that cannot be read.
    #[error(transparent)]
    Benchmark(#[from] latam_benchmarks::BenchmarkError),
    /// A stage run before the one whose files it needs.
    #[error("{0}")]
    EarlierStage(String),
    /// A work directory that holds a run with other settings.
    #[error("{path}: {message}")]
    OtherRun {
        /// The file that records the other run.
        path: PathBuf,
        /// How it differs, and what to do.
        message: String,
    },
    /// A file of the work directory that is not what this version writes.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Writing a file atomically failed.
    #[error(transparent)]
    File(#[from] latam_io::IoError),
}

impl DedupError {
    /// Whether retrying as it is cannot help (settings, order of stages, a foreign or broken
    /// work directory), as opposed to an I/O failure.
    pub fn is_usage(&self) -> bool {
        !matches!(self, Self::Io { .. } | Self::File(_))
    }
}

/// Wraps an I/O error with its file.
pub(crate) fn at(path: &Path) -> impl Fn(io::Error) -> DedupError + '_ {
    move |source| DedupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A corrupt file of the work directory.
pub(crate) fn corrupt(path: &Path, message: impl std::fmt::Display) -> DedupError {
    DedupError::Corrupt {
        path: path.to_owned(),
        message: message.to_string(),
    }
}
