//! `latam eval`: evaluation of any OpenAI-compatible endpoint on the region's benchmarks —
//! CHOCLO and Trueque (open questions: latamgpt-benchmark's deterministic scores and LLM judge),
//! multiple choice (ENEM, OAB, UNMSM, Chile/Colombia exams; by generation with strict and
//! flexible extraction, or by log-likelihood), perplexity and bits per byte, and tasks declared
//! in TOML — with a SQLite cache that makes runs resumable, the Batch API, and reports that set
//! several models side by side.

mod batch;
mod cache;
mod client;
mod difflib;
mod hub;
mod judge;
mod metrics;
mod report;
mod run;

use std::path::PathBuf;

pub use client::{ChatAnswer, Client, EndpointConfig};
pub use judge::{DEFAULT_JUDGE_PROMPT, Verdict};
pub use latam_benchmarks::{Example, Item, TaskKind, TaskSpec};
pub use metrics::{Group, char_similarity, normalize_text, open_answer_scores, token_f1};
pub use report::{Entry, headline, html, markdown};
pub use run::{
    BatchConfig, DEFAULT_SYSTEM_PROMPT, JudgeConfig, McMode, RowResult, RunConfig, Summary, Task,
    read_summary, run,
};

/// What can go wrong in an evaluation.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A setting that cannot work.
    #[error("{0}")]
    Usage(String),
    /// A data file that cannot be read.
    #[error("{path}: {message}")]
    Data {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A dataset of the Hugging Face Hub that cannot be fetched.
    #[error(transparent)]
    Hub(#[from] latam_hub::HubError),
    /// An HTTP error status, after the retries.
    #[error("{url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// No answer at all (connection refused, timeout), after the retries.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// An answer that does not follow the protocol.
    #[error("{url}: {message}")]
    Protocol {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// An endpoint without prompt log-probabilities.
    #[error(
        "{endpoint} gives no prompt log-probabilities (`/v1/completions` with `echo: true` and `logprobs`), which multiple choice by log-likelihood and perplexity need; llama.cpp's server and chat-only APIs (OpenAI's chat models) lack them. Use --mc-mode generate, or serve the model with `latam serve` or vLLM"
    )]
    NoLogprobs {
        /// The endpoint.
        endpoint: String,
    },
    /// A judge whose replies could not be parsed.
    #[error("judge: {0}")]
    Judge(String),
    /// The SQLite cache.
    #[error("cache: {0}")]
    Cache(String),
    /// A benchmark file that cannot be read.
    #[error(transparent)]
    Benchmark(#[from] latam_benchmarks::BenchmarkError),
    /// An output that cannot be written.
    #[error("{path}: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}
