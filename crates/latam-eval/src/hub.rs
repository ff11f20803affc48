//! Benchmarks from the Hugging Face Hub (`hf://owner/name`), downloaded once into the Hub's
//! cache through `latam-hub` (`HF_HOME`, `HF_TOKEN` for gated datasets, `HF_ENDPOINT` for a
//! mirror).

use std::path::PathBuf;

use latam_benchmarks::is_data_file;
use latam_hub::{Hub, Kind};

use crate::EvalError;

/// What a user gives instead of a dataset of the Hub.
const INSTEAD: &str = "--data FILE (a CSV, JSON(L) or Parquet file, or a folder of them)";

/// Local paths of the data files of dataset `id`: `file` alone, or every CSV/JSON/JSONL/Parquet
/// file whose path names `split` (all of them when none does).
pub fn files(id: &str, file: Option<&str>, split: &str) -> Result<Vec<PathBuf>, EvalError> {
    let repo = Hub::from_env().repo(Kind::Dataset, id, INSTEAD)?;
    let names: Vec<String> = if let Some(file) = file {
        vec![file.to_owned()]
    } else {
        let all: Vec<String> = repo
            .files()?
            .into_iter()
            .filter(|n| is_data_file(n))
            .collect();
        let of_split: Vec<String> = all
            .iter()
            .filter(|n| n.to_lowercase().contains(split))
            .cloned()
            .collect();
        if of_split.is_empty() { all } else { of_split }
    };
    if names.is_empty() {
        return Err(EvalError::Usage(format!(
            "hf://{id}: no CSV, JSON(L) or Parquet file in the dataset"
        )));
    }
    names
        .iter()
        .map(|n| repo.get(n).map_err(EvalError::from))
        .collect()
}
