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
pub use judge::{DEFAULT_JUDGE_PROMPT, Verdict, VerdictError};
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
    /// An HTTP error status (after the retries, for those worth retrying).
    #[error("{url} answered {status}: {message}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The server's message (`error.message` of its JSON, else the start of the body).
        message: String,
    },
    /// No answer at all (connection refused, timeout), after the retries.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A server that cannot be reached: before the first row, or for several rows in a row.
    #[error(
        "cannot reach {url}: {message}. Is the server running there? Answers so far are cached: run the same command again when it is"
    )]
    Unreachable {
        /// The base URL.
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
    #[error("judge: {reason} (after {attempts} attempts)")]
    Judge {
        /// Why its last reply is not a verdict.
        reason: VerdictError,
        /// Replies asked for.
        attempts: u32,
    },
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

impl EvalError {
    /// An error that asking again cannot fix: an HTTP 4xx other than 408 and 429 (a wrong
    /// model name, a bad API key, a request the server refuses).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Status { status, .. } if (400..500).contains(status) && !client::retryable(*status))
    }
}
