//! `latam dedup ...`: near-duplicate detection as separate stages, each a task a cluster
//! scheduler can run on its own machine, and its evaluation.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use latam_dedup::minhash::{self, SignatureTask};
use latam_pipeline::{PipelineConfig, RunOptions, StepConfig};

use crate::corpus::{default_workers, inputs_for, print_summary};
use crate::progress::{ProgressMode, make_progress};
use crate::{EXIT_INPUT_ERRORS, Failure};

#[derive(Subcommand)]
pub(crate) enum DedupCommand {
    /// Near-duplicates by MinHash-LSH, stage by stage (what `dedup_minhash` in
    /// `latam corpus run` does in one process).
    ///
    /// The stages share a work directory (on a shared file system when the tasks run on
    /// several machines):
    ///
    ///   1. signatures  one task per slice of the inputs (--task I --tasks N)
    ///   2. buckets     one task per band (--band B; all bands by default)
    ///   3. cluster     one task
    ///   4. filter      one task per slice of the inputs, each into its own --output
    ///
    /// The inputs must be named the same way, in the same order, in stages 1 and 4: a document
    /// is known by its input's index and its line. The result equals the one-process run's.
    ///
    /// Example, two machines:
    ///   latam dedup minhash signatures --input 'data/*.jsonl.zst' --work w --task 0 --tasks 2
    ///   latam dedup minhash signatures --input 'data/*.jsonl.zst' --work w --task 1 --tasks 2
    ///   latam dedup minhash buckets --work w
    ///   latam dedup minhash cluster --work w
    ///   latam dedup minhash filter --input 'data/*.jsonl.zst' --work w --task 0 --tasks 2 --output out/0
    ///   latam dedup minhash filter --input 'data/*.jsonl.zst' --work w --task 1 --tasks 2 --output out/1
    #[command(subcommand, verbatim_doc_comment)]
    Minhash(MinhashCommand),
    /// Measure near-duplicate detection against exact Jaccard similarity, on real documents
    /// and generated near-copies at known edit rates.
    Eval(crate::dedup_eval::EvalArgs),
}

#[derive(Subcommand)]
pub(crate) enum MinhashCommand {
    /// Stage 1: the signatures of a slice of the inputs.
    Signatures(TaskArgs),
    /// Stage 2: the candidate pairs of one band (or all).
    Buckets(BucketArgs),
    /// Stage 3: clusters and the documents to remove.
    Cluster(WorkArgs),
    /// Stage 4: a slice of the inputs, less the near-duplicates, into a run directory.
    Filter(FilterArgs),
}

#[derive(Args)]
pub(crate) struct WorkArgs {
    /// The work directory shared by the stages.
    #[arg(long, value_name = "DIR")]
    work: PathBuf,
}

#[derive(Args)]
pub(crate) struct TaskArgs {
    /// Pipeline file (TOML) holding a `dedup_minhash` step: its settings are used, its
    /// [input] table too, and the steps before it run first. Default: `dedup_minhash` alone,
    /// with its default settings.
    pipeline: Option<PathBuf>,
    /// Input file, directory or glob (repeatable), as for `latam corpus run`.
    #[arg(short, long = "input", value_name = "PATH")]
    inputs: Vec<String>,
    #[command(flatten)]
    work: WorkArgs,
    /// This task's index, from 0.
    #[arg(long, default_value_t = 0)]
    task: usize,
    /// Tasks the inputs are split into: contiguous pieces of about the same size, in order (a
    /// file larger than a task's share is split at record boundaries).
    #[arg(long, default_value_t = 1)]
    tasks: usize,
    /// Worker threads (default: one per core).
    #[arg(short, long)]
    workers: Option<usize>,
    /// Progress display on stderr.
    #[arg(long, value_enum)]
    progress: Option<ProgressMode>,
}

#[derive(Args)]
pub(crate) struct BucketArgs {
    #[command(flatten)]
    work: WorkArgs,
    /// The band (repeatable); default: every band.
    #[arg(long = "band")]
    bands: Vec<usize>,
}

#[derive(Args)]
pub(crate) struct FilterArgs {
    #[command(flatten)]
    task: TaskArgs,
    /// Output directory of this task.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an output directory that holds another run.
    #[arg(long)]
    overwrite: bool,
}

pub(crate) fn run(command: DedupCommand) -> Result<u8, Failure> {
    match command {
        DedupCommand::Minhash(MinhashCommand::Signatures(args)) => signatures(&args),
        DedupCommand::Minhash(MinhashCommand::Buckets(args)) => {
            let params = minhash::Params::load(&args.work.work).map_err(dedup_failure)?;
            let bands = if args.bands.is_empty() {
                (0..params.config.bands).collect()
            } else {
                args.bands
            };
            for band in bands {
                if band >= params.config.bands {
                    return Err(Failure::usage(anyhow::anyhow!(
                        "band {band}: the run has bands 0..{}",
                        params.config.bands
                    )));
                }
                let pairs = minhash::buckets(&args.work.work, band).map_err(dedup_failure)?;
                tracing::info!("band {band}: {pairs} candidate pairs");
            }
            Ok(0)
        }
        DedupCommand::Minhash(MinhashCommand::Cluster(args)) => {
            let summary = minhash::cluster(&args.work).map_err(dedup_failure)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(0)
        }
        DedupCommand::Minhash(MinhashCommand::Filter(args)) => filter(&args),
        DedupCommand::Eval(args) => crate::dedup_eval::run(&args),
    }
}

/// The exit status of a stage's error: 2 when the setup is wrong (an earlier stage to run,
/// another run's work directory), 3 for an I/O failure.
fn dedup_failure(error: latam_dedup::DedupError) -> Failure {
    if error.is_usage() {
        Failure::usage(error)
    } else {
        Failure::from(error)
    }
}

/// The pipeline of a staged run, and the index of its `dedup_minhash` step.
fn staged_pipeline(args: &TaskArgs) -> Result<(PipelineConfig, usize), Failure> {
    let config = match &args.pipeline {
        Some(path) => PipelineConfig::from_file(path).map_err(Failure::usage)?,
        None => PipelineConfig::from_toml("[[steps]]\ntype = \"dedup_minhash\"\n", "default")
            .expect("a valid pipeline"),
    };
    let corpus_wide: Vec<usize> = (0..config.steps.len())
        .filter(|&i| config.steps[i].is_corpus_wide())
        .collect();
    match corpus_wide.as_slice() {
        [i] if matches!(config.steps[*i], StepConfig::DedupMinhash(_)) => Ok((config, *i)),
        _ => Err(Failure::usage(anyhow::anyhow!(
            "a staged run needs a pipeline with one corpus-wide step, `dedup_minhash` \
             (`dedup_paragraph` runs in `latam corpus run`)"
        ))),
    }
}

/// The run options of a task: its slice of the inputs, and their index in the whole list.
fn task_options(
    args: &TaskArgs,
    config: &PipelineConfig,
    output: PathBuf,
) -> Result<RunOptions, Failure> {
    if args.tasks == 0 || args.task >= args.tasks {
        return Err(Failure::usage(anyhow::anyhow!(
            "--task {} of --tasks {}: give 0 <= task < tasks",
            args.task,
            args.tasks
        )));
    }
    let all = inputs_for(&args.inputs, config)?;
    let (first, inputs) = latam_io::task_inputs(&all, args.task, args.tasks)?;
    if inputs.is_empty() {
        tracing::warn!(
            "task {} of {} has no input: the {} input file(s) hold too few records for {} tasks",
            args.task,
            args.tasks,
            all.len(),
            args.tasks
        );
    }
    Ok(RunOptions {
        workers: args.workers.unwrap_or_else(default_workers),
        command: std::env::args().collect(),
        interrupt: Some(crate::interrupt::stop_flag()?),
        first_input: u32::try_from(first)?,
        ..RunOptions::new(inputs, output)
    })
}

fn signatures(args: &TaskArgs) -> Result<u8, Failure> {
    let (mut config, step) = staged_pipeline(args)?;
    let StepConfig::DedupMinhash(settings) = config.steps[step].clone() else {
        unreachable!("checked by staged_pipeline")
    };
    settings.validate().map_err(Failure::usage)?;
    config.steps.truncate(step);
    let options = task_options(args, &config, args.work.work.clone())?;
    let mut task = SignatureTask::new(&settings, args.task, args.tasks);
    let progress = make_progress(args.progress);
    let scanned = latam_pipeline::scan_step(
        &config,
        &options,
        ("dedup_minhash", &mut task),
        &args.work.work,
        progress.as_ref(),
    )
    .map_err(|e| crate::corpus::pipeline_failure(e, &options))?;
    if scanned {
        eprintln!(
            "task {} of {}: {} signatures from {} input(s)",
            args.task,
            args.tasks,
            task.documents(),
            options.inputs.len()
        );
    } else {
        eprintln!(
            "task {} of {}: already done in {}",
            args.task,
            args.tasks,
            args.work.work.display()
        );
    }
    Ok(0)
}

fn filter(args: &FilterArgs) -> Result<u8, Failure> {
    let work = &args.task.work.work;
    if !minhash::Decisions::exist(work) {
        return Err(Failure::usage(anyhow::anyhow!(
            "{} has no clusters: run `latam dedup minhash cluster --work {}` first",
            work.display(),
            work.display()
        )));
    }
    let (config, step) = staged_pipeline(&args.task)?;
    let mut options = task_options(&args.task, &config, args.output.clone())?;
    options.overwrite = args.overwrite;
    let name = config.step_names().swap_remove(step);
    options.step_dirs.insert(name, work.clone());
    let progress = make_progress(args.task.progress);
    let summary = latam_pipeline::run(&config, &options, progress.as_ref())
        .map_err(|e| crate::corpus::pipeline_failure(e, &options))?;
    print_summary(&summary);
    Ok(if summary.stats.documents.errors > 0 {
        EXIT_INPUT_ERRORS
    } else {
        0
    })
}
