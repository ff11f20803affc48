//! The corpus pipeline behind `latam corpus run`: a TOML [`PipelineConfig`] names the steps;
//! [`run`] streams the inputs through them on a pool of workers and writes the documented
//! layout:
//!
//! ```text
//! OUT/documents/part-00000.jsonl.zst     kept documents
//! OUT/rejected/<step>/part-00000.jsonl.zst  rejected ones, with metadata.rejected = {step, reason}
//! OUT/errors.jsonl                       unreadable input: {file, line, error}
//! OUT/stats.json                         per step: in, out, dropped by reason, time; totals
//! OUT/manifest.json                      config, version, seeds, inputs and outputs with hashes
//! OUT/report.html                        the data card
//! ```
//!
//! ```no_run
//! use latam_pipeline::{run, PipelineConfig, RunOptions, NoProgress};
//!
//! let config = PipelineConfig::default_pipeline();
//! let inputs = latam_io::resolve_inputs(&["corpus/".into()])?;
//! let options = RunOptions { workers: 2, ..RunOptions::new(inputs, "out") };
//! let summary = run(&config, &options, &NoProgress)?;
//! println!("kept {} of {}", summary.stats.documents.kept, summary.stats.documents.read);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod engine;
mod report;
mod scan;
mod spool;
mod state;
mod stats;
mod steps;

use std::time::Duration;

pub use config::{DEFAULT_PIPELINE, InputConfig, OutputConfig, PipelineConfig, StepConfig};
pub use engine::{ErrorRecord, InputSummary, RunOptions, RunSummary, run};
pub use scan::scan_step;
pub use stats::{ByteTotals, DocumentTotals, GroupCounts, RunStats, StepStats};
pub use steps::{FilterMetadata, FilterMetadataConfig, FilterMetadataError};

/// Errors that stop a run (unreadable records do not: they go to `errors.jsonl`).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A pipeline file that does not parse or validate.
    #[error("{origin}: {message}")]
    Config {
        /// The file.
        origin: String,
        /// What is wrong, with the line and the accepted values.
        message: String,
    },
    /// A step whose settings are invalid.
    #[error("step `{step}`: {message}")]
    Step {
        /// The step's name.
        step: String,
        /// What is wrong.
        message: String,
    },
    /// A corpus-wide step that failed in its work directory; the source is the step's own
    /// typed error (`latam_dedup::DedupError`), to tell a wrong setup from an I/O failure.
    #[error("step `{step}`: {source}")]
    CorpusStep {
        /// The step's name.
        step: String,
        /// What went wrong.
        source: latam_core::StepError,
    },
    /// An output directory that holds something else.
    #[error("{path}: {reason}; pass --overwrite to replace it, or choose another --output")]
    OutputInUse {
        /// The directory.
        path: String,
        /// What it holds.
        reason: String,
    },
    /// Reading or writing files failed.
    #[error(transparent)]
    Io(#[from] latam_io::IoError),
    /// A broken state file of a previous run.
    #[error("{path}: {message}")]
    State {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A failure inside the engine.
    #[error("internal error: {0}")]
    Internal(String),
    /// The run was interrupted (Ctrl-C); the shards finished so far are kept.
    #[error("interrupted; run the same command again to resume where it stopped")]
    Interrupted,
}

/// A size in the unit that shows it best: `812 B`, `4.2 kB`, `4.6 MB`, `1.23 GB` (SI units).
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1000 {
        format!("{bytes} B")
    } else if b < 1e6 {
        format!("{:.1} kB", b / 1e3)
    } else if b < 1e9 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.2} GB", b / 1e9)
    }
}

/// Where a run stands, reported after every wave of batches.
#[derive(Debug, Clone, Copy)]
pub struct ProgressUpdate {
    /// Documents processed.
    pub docs: u64,
    /// Their text bytes.
    pub text_bytes: u64,
    /// Documents kept.
    pub kept: u64,
    /// Stored input bytes read (compressed size), for a completion fraction.
    pub stored_bytes: u64,
    /// Stored size of all inputs.
    pub stored_total: u64,
    /// Time since the start.
    pub elapsed: Duration,
}

/// A receiver of progress (a progress bar, JSON lines, nothing).
pub trait Progress: Sync {
    /// A pass over the corpus begins: `scan for <step>` (a corpus-wide step's scan) or
    /// `writing` (the final pass); positions start again from zero.
    fn begin(&self, _pass: &str) {}
    /// A new position.
    fn update(&self, update: &ProgressUpdate);
    /// The pass is over.
    fn finish(&self) {}
}

/// No progress output.
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: &ProgressUpdate) {}
}
