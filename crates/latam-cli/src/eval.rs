//! `latam eval run|report`: evaluate an OpenAI-compatible endpoint on the region's benchmarks.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use latam_eval::{
    BatchConfig, DEFAULT_JUDGE_PROMPT, EndpointConfig, Entry, EvalError, JudgeConfig, McMode,
    RunConfig, Task, TaskKind, TaskSpec,
};

use crate::{EXIT_ABORTED, EXIT_USAGE, Failure};

#[derive(Subcommand)]
pub(crate) enum EvalCommand {
    /// Evaluate a model behind an OpenAI-compatible API on a benchmark; writes rows.jsonl,
    /// summary.json and run.json into --output. Resumable: every answer is cached (SQLite,
    /// <output>/cache.sqlite), so a run that stopped continues where it was.
    ///
    /// Exit status: 0 done; 1 some rows failed (rerun to retry them); 2 bad settings or data, or
    /// an error the server will repeat (a wrong --model: its message is shown); 3 a server that
    /// cannot be reached (checked before the first row, and after 3 rows in a row).
    ///
    /// Examples:
    ///   curl http://127.0.0.1:8080/v1/models     # the model's name at the endpoint, for --model
    ///   latam eval run --task choclo --data hf://latam-gpt/CHOCLO --endpoint http://127.0.0.1:8080/v1 --model latam-gpt --output runs/latam --max-samples 500
    ///   latam eval run --task trueque --data trueque.csv --endpoint https://api.openai.com/v1 --model gpt-4.1-mini --judge-model gpt-4.1-mini --output runs/gpt41
    ///   latam eval run --task mc --data ../shared/data/benchmarks/oab/oab.json --mc-mode both --endpoint http://127.0.0.1:8000/v1 --model m --output runs/oab
    ///   latam eval run --task perplexity --data heldout.jsonl --endpoint http://127.0.0.1:8000/v1 --model m --output runs/ppl
    #[command(verbatim_doc_comment)]
    Run(Box<RunArgs>),
    /// Compare finished runs: overall and per country, category, difficulty, topic; writes
    /// report.md and report.html (charts, self-contained).
    ///
    /// Example: latam eval report runs/latam runs/gpt41 --output report
    Report(ReportArgs),
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// choclo, trueque, mc, perplexity, or a task spec (TOML: columns, prompt, metric, breakdowns).
    #[arg(long)]
    task: String,
    /// Data: a file (CSV, JSONL, JSON, Parquet), a directory of them, or hf://owner/name[/file]
    /// (the Hugging Face Hub, cached; HF_TOKEN for gated datasets). Repeatable.
    #[arg(long, required = true)]
    data: Vec<String>,
    /// Split of a Hub dataset (files whose path names it).
    #[arg(long, default_value = "train")]
    split: String,
    /// Base URL of the OpenAI-compatible API (`/v1` is added when missing).
    #[arg(long)]
    endpoint: String,
    /// Model name at the endpoint.
    #[arg(long)]
    model: String,
    /// Environment variable holding the API key.
    #[arg(long, default_value = "OPENAI_API_KEY")]
    api_key_env: String,
    /// Judge endpoint for open questions (default: --endpoint).
    #[arg(long)]
    judge_endpoint: Option<String>,
    /// Judge model; without it open answers get the deterministic scores only.
    #[arg(long)]
    judge_model: Option<String>,
    /// Environment variable holding the judge's API key (default: --api-key-env).
    #[arg(long)]
    judge_api_key_env: Option<String>,
    /// A file with the judge's instructions (it must ask for the verdict JSON).
    #[arg(long)]
    judge_prompt: Option<PathBuf>,
    /// Judge attempts when its reply is not the verdict JSON.
    #[arg(long, default_value_t = 3)]
    judge_attempts: u32,
    /// Output directory.
    #[arg(short, long)]
    output: PathBuf,
    /// SQLite cache shared between runs (default: <output>/cache.sqlite).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Evaluate at most this many examples (after shuffling and sharding).
    #[arg(long)]
    max_samples: Option<usize>,
    /// Shuffle the examples (seeded) before taking shards and --max-samples.
    #[arg(long)]
    shuffle: bool,
    /// Seed of --shuffle.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Number of contiguous shards.
    #[arg(long, default_value_t = 1)]
    num_shards: usize,
    /// The shard this run evaluates (0-based).
    #[arg(long, default_value_t = 0)]
    shard_index: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// max_tokens of each answer.
    #[arg(long, default_value_t = 256)]
    max_tokens: u32,
    /// Sampling temperature of answers.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// System prompt of open questions (default: latamgpt-benchmark's).
    #[arg(long)]
    system_prompt: Option<String>,
    /// User prompt template: {question}, {choices} (lettered lines), {text}.
    #[arg(long)]
    prompt_template: Option<String>,
    /// Multiple choice: generate the letter (strict and flexible extraction), log-likelihood of
    /// each letter (needs /v1/completions with echo and logprobs), or both.
    #[arg(long, value_enum, default_value = "generate")]
    mc_mode: McModeArg,
    /// Longest text in one perplexity request, in characters.
    #[arg(long, default_value_t = 4000)]
    perplexity_chars: usize,
    /// Seconds a request may take.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Retries after a 408, a 429 (honouring Retry-After), a 5xx or a dropped connection; other
    /// 4xx end the run.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Ask through the Batch API (submit, poll, collect into the cache), as for OpenAI's
    /// half-price batches.
    #[arg(long)]
    batch: bool,
    /// Seconds between batch status checks.
    #[arg(long, default_value_t = 30.0)]
    poll_interval: f64,
    /// completion_window of batches.
    #[arg(long, default_value = "24h")]
    completion_window: String,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value = "bar")]
    progress: ProgressArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum McModeArg {
    Generate,
    Loglik,
    Both,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProgressArg {
    Bar,
    None,
}

#[derive(Args)]
pub(crate) struct ReportArgs {
    /// Output directories of `latam eval run`.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Where report.md and report.html go.
    #[arg(short, long, default_value = "eval-report")]
    output: PathBuf,
}

pub(crate) fn run(command: EvalCommand) -> Result<u8, Failure> {
    match command {
        EvalCommand::Run(args) => run_eval(&args),
        EvalCommand::Report(args) => report(&args),
    }
}

fn task(spec: &str) -> Result<Task, Failure> {
    Ok(match spec {
        "choclo" => Task::Builtin(TaskKind::Choclo),
        "trueque" => Task::Builtin(TaskKind::Trueque),
        "mc" => Task::Builtin(TaskKind::Mc),
        "perplexity" => Task::Builtin(TaskKind::Perplexity),
        path if Path::new(path).is_file() => Task::Spec(Box::new(
            TaskSpec::load(Path::new(path)).map_err(Failure::usage)?,
        )),
        other => {
            return Err(Failure::usage(anyhow::anyhow!(
                "unknown task `{other}`: use choclo, trueque, mc, perplexity or the path of a task spec (TOML)"
            )));
        }
    })
}

fn run_eval(args: &RunArgs) -> Result<u8, Failure> {
    let key = std::env::var(&args.api_key_env).ok();
    let endpoint = EndpointConfig {
        timeout_s: args.timeout,
        max_retries: args.retries,
        ..EndpointConfig::new(&args.endpoint, key.clone())
    };
    let judge = judge_config(args, key)?;
    let mut config = RunConfig::new(
        task(&args.task)?,
        args.data.clone(),
        &args.model,
        endpoint,
        args.output.clone(),
    );
    config.split.clone_from(&args.split);
    config.judge = judge;
    config.cache.clone_from(&args.cache);
    config.max_samples = args.max_samples;
    config.shuffle = args.shuffle;
    config.seed = args.seed;
    config.num_shards = args.num_shards;
    config.shard_index = args.shard_index;
    config.concurrency = args.concurrency;
    config.max_tokens = args.max_tokens;
    config.temperature = args.temperature;
    if let Some(system) = &args.system_prompt {
        config.system_prompt.clone_from(system);
    }
    config.prompt_template.clone_from(&args.prompt_template);
    if let Task::Spec(spec) = &config.task {
        if config.prompt_template.is_none() {
            config.prompt_template.clone_from(&spec.prompt);
        }
        if let Some(system) = &spec.system {
            config.system_prompt.clone_from(system);
        }
    }
    config.mc_mode = match args.mc_mode {
        McModeArg::Generate => McMode::Generate,
        McModeArg::Loglik => McMode::Loglik,
        McModeArg::Both => McMode::Both,
    };
    config.perplexity_chars = args.perplexity_chars;
    config.batch = args.batch.then(|| BatchConfig {
        poll_s: args.poll_interval,
        completion_window: args.completion_window.clone(),
    });
    execute(&config, args)
}

/// The judge's settings, when --judge-model is given.
fn judge_config(args: &RunArgs, key: Option<String>) -> Result<Option<JudgeConfig>, Failure> {
    Ok(match &args.judge_model {
        Some(model) => {
            let key = args
                .judge_api_key_env
                .as_ref()
                .map_or(key, |v| std::env::var(v).ok());
            let prompt = match &args.judge_prompt {
                Some(path) => std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the judge prompt {}", path.display()))
                    .map_err(Failure::usage)?,
                None => DEFAULT_JUDGE_PROMPT.to_owned(),
            };
            Some(JudgeConfig {
                endpoint: EndpointConfig {
                    timeout_s: args.timeout,
                    max_retries: args.retries,
                    ..EndpointConfig::new(
                        args.judge_endpoint.as_deref().unwrap_or(&args.endpoint),
                        key,
                    )
                },
                model: model.clone(),
                prompt,
                attempts: args.judge_attempts,
            })
        }
        None if args.judge_endpoint.is_some() => {
            return Err(Failure::usage(anyhow::anyhow!(
                "--judge-endpoint needs --judge-model"
            )));
        }
        None => None,
    })
}

/// Runs the evaluation with a progress bar and prints the summary.
fn execute(config: &RunConfig, args: &RunArgs) -> Result<u8, Failure> {
    let bar = match args.progress {
        ProgressArg::Bar => ProgressBar::new(0),
        ProgressArg::None => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} rows  {elapsed} (eta {eta})")
            .expect("template"),
    );
    let summary = latam_eval::run(config, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .map_err(failure)?;
    bar.finish_and_clear();
    println!(
        "{} · {}: {} examples",
        summary.task, summary.model, summary.num_examples
    );
    for (name, value) in &summary.metrics {
        println!("  {name:<28} {value:.4}");
    }
    println!(
        "outputs: {}/{{rows.jsonl,summary.json,run.json}}",
        args.output.display()
    );
    if summary.skipped > 0 {
        eprintln!(
            "{} rows of the data could not become examples (listed in run.json `skipped_rows`)",
            summary.skipped
        );
    }
    if summary.errors > 0 {
        eprintln!(
            "error: {} rows failed (their `error` is in rows.jsonl); run the same command again to retry them — answers so far are cached",
            summary.errors
        );
        return Ok(1);
    }
    Ok(0)
}

/// The exit status of an evaluation that stopped: 2 for what the user must fix (settings, data,
/// an error the server will repeat), 3 for a server that could not be reached, else 1.
fn failure(error: EvalError) -> Failure {
    let code = match &error {
        EvalError::Usage(_)
        | EvalError::Data { .. }
        | EvalError::Benchmark(_)
        | EvalError::NoLogprobs { .. } => EXIT_USAGE,
        e if e.is_permanent() => {
            return Failure::usage(anyhow::anyhow!(
                "{e}\nRetrying cannot fix this: check --model, --judge-model, the endpoints and the API key. Answers so far are cached: the corrected command continues where this one stopped."
            ));
        }
        _ => EXIT_ABORTED,
    };
    Failure {
        code,
        error: error.into(),
    }
}

fn report(args: &ReportArgs) -> Result<u8, Failure> {
    let mut entries = Vec::new();
    for dir in &args.runs {
        let summary = latam_eval::read_summary(dir).map_err(Failure::usage)?;
        entries.push(Entry {
            label: format!("{} · {}", summary.model, summary.task),
            summary,
        });
    }
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let md = args.output.join("report.md");
    let html = args.output.join("report.html");
    latam_io::write_atomic(&md, latam_eval::markdown(&entries).as_bytes())?;
    latam_io::write_atomic(&html, latam_eval::html(&entries).as_bytes())?;
    println!("report: {} and {}", md.display(), html.display());
    Ok(0)
}
