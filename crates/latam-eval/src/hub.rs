//! Benchmarks from the Hugging Face Hub (`hf://owner/name`), downloaded once into the Hub's
//! cache (`HF_HOME`, default `~/.cache/huggingface`) with `HF_TOKEN` for gated datasets;
//! `HF_ENDPOINT` points elsewhere (a mirror).

use std::path::PathBuf;

use hf_hub::api::sync::ApiBuilder;

use crate::EvalError;
use latam_benchmarks::is_data_file;

/// Local paths of the data files of dataset `id`: `file` alone, or every CSV/JSON/JSONL/Parquet
/// file whose path names `split` (all of them when none does).
pub fn files(id: &str, file: Option<&str>, split: &str) -> Result<Vec<PathBuf>, EvalError> {
    let hub = |e: hf_hub::api::sync::ApiError| EvalError::Hub {
        id: id.to_owned(),
        message: e.to_string(),
    };
    let mut builder = ApiBuilder::from_env().with_progress(false);
    if let Ok(token) = std::env::var("HF_TOKEN") {
        builder = builder.with_token(Some(token));
    }
    let api = builder.build().map_err(hub)?;
    let repo = api.dataset(id.to_owned());
    let names: Vec<String> = if let Some(file) = file {
        vec![file.to_owned()]
    } else {
        let all: Vec<String> = repo
            .info()
            .map_err(hub)?
            .siblings
            .into_iter()
            .map(|s| s.rfilename)
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
        return Err(EvalError::Hub {
            id: id.to_owned(),
            message: "no CSV, JSON(L) or Parquet file in the dataset".into(),
        });
    }
    names.iter().map(|n| repo.get(n).map_err(hub)).collect()
}
