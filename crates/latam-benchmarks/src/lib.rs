//! The region's benchmarks as examples, for evaluation (`latam eval`) and for decontamination of
//! training data: CHOCLO in both column namings, Trueque, multiple-choice exams (ENEM, OAB,
//! UNMSM, the Chile/Colombia exams, or any file with a question, choices and an answer), text
//! for perplexity, and tasks declared in TOML; from CSV, TSV, JSON, JSONL and Parquet.

mod rows;
mod tasks;

use std::path::PathBuf;

pub use rows::{Row, is_data_file, read_rows, text};
pub use tasks::{
    Columns, DataSource, Example, Item, Skipped, SpecKind, TaskKind, TaskSpec, examples,
    spec_examples,
};

/// The data files of `paths`: files as given, directories listed (CSV, TSV, JSON, JSONL,
/// Parquet, sorted by name).
pub fn data_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, BenchmarkError> {
    let mut out = Vec::new();
    for path in paths {
        let fail = |message: String| BenchmarkError {
            path: path.clone(),
            message,
        };
        if path.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| fail(e.to_string()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(is_data_file)
                })
                .collect();
            inside.sort();
            out.extend(inside);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(fail("no such file or directory".into()));
        }
    }
    Ok(out)
}

/// A benchmark file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BenchmarkError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub message: String,
}
