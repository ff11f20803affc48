//! `latam corpus ...`

use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use latam_core::Document;
use latam_io::{
    Compression, Format, InputFile, OutputFormat, ReadOptions, RecordKind, RecordReader,
    resolve_inputs,
};
use latam_pipeline::{
    DEFAULT_PIPELINE, PipelineConfig, PipelineError, RunOptions, RunSummary, human_size,
};

use crate::progress::{ProgressMode, make_progress};
use crate::{EXIT_INPUT_ERRORS, Failure};

/// The sample corpus built into the binary (see data/sample/README.md).
pub(crate) const SAMPLE: &[u8] = include_bytes!("../../../data/sample/latam-sample.jsonl.zst");
/// Its name in stats and the manifest.
pub(crate) const SAMPLE_NAME: &str = "bundled:latam-sample.jsonl.zst";

#[derive(Subcommand)]
pub(crate) enum CorpusCommand {
    /// Run a pipeline over a corpus.
    ///
    /// With no arguments, runs the built-in default pipeline over the bundled sample corpus into
    /// ./latam-out. Output: documents/ (kept), rejected/<step>/ (dropped, with the reason),
    /// errors.jsonl (unreadable records), stats.json, manifest.json and report.html (the data
    /// card). Rerunning the same command after a crash resumes where it stopped.
    ///
    /// Ctrl-C (or SIGTERM) stops cleanly: the finished shards are kept and the same command
    /// resumes. `--input -` reads JSONL (plain, gzip or zstd) from stdin.
    ///
    /// Exit status: 0 done; 1 done, but some records were unreadable (see errors.jsonl);
    /// 2 usage or configuration error (retrying as it is cannot help); 3 aborted (an I/O error
    /// such as a full disk, an internal error: a scheduler may retry); 130 interrupted.
    ///
    /// Examples:
    ///   latam corpus run
    ///   latam corpus run my-pipeline.toml --input data/ --input 'more/*.jsonl.zst' --output out
    #[command(verbatim_doc_comment)]
    Run(RunArgs),
    /// Print the built-in default pipeline (TOML), to copy and edit.
    DefaultConfig,
    /// Build a training mix under a token budget by a metadata key (language, country, topic,
    /// source): target weights or UniMax, down-sampling by deterministic hashing, up-sampling by
    /// repetition up to max_epochs. Writes OUT/documents/<group>.jsonl.zst, OUT/mix.json (the token table
    /// before and after) and prints the Megatron-LM --data-path blend; then
    /// `latam tokenize --input OUT/documents --per-file --output <data_prefix>` writes the shards
    /// the blend names.
    ///
    /// MIX.toml:
    ///   key = "language"
    ///   budget_tokens = 2_000_000_000
    ///   max_epochs = 4
    ///   data_prefix = "data/"      # where the tokenized groups will be
    ///   [weights]                  # leave out for UniMax
    ///   spa = 0.6
    ///   por = 0.3
    ///   gug = 0.05
    ///   quy = 0.05
    ///
    /// Example: latam corpus mix mix.toml --input latam-out/documents --tokenizer llama3.json --output mix
    #[command(verbatim_doc_comment)]
    Mix(MixArgs),
}

#[derive(Args)]
pub(crate) struct MixArgs {
    /// The mix file (TOML).
    mix: PathBuf,
    /// Documents: files, directories or globs (repeatable).
    #[arg(short, long = "input", value_name = "PATH", required = true)]
    inputs: Vec<String>,
    /// Tokenizer that counts tokens (tokenizer.json or hf://owner/name)
    /// [default: hf://meta-llama/Llama-3.1-8B, which needs the network and HF_TOKEN]
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<String>,
    /// Output directory.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Args)]
pub(crate) struct RunArgs {
    /// Pipeline file (TOML). Default: the built-in pipeline (`latam corpus default-config`).
    pipeline: Option<PathBuf>,
    /// Input file, directory or glob: JSONL (.jsonl/.json/.ndjson, optionally .gz or .zst),
    /// Parquet, or .txt/.md files (one document each). Repeatable. Default: the pipeline's
    /// [input] paths, else the bundled sample corpus.
    #[arg(short, long = "input", value_name = "PATH")]
    inputs: Vec<String>,
    /// Output directory.
    #[arg(short, long, default_value = "latam-out")]
    output: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(short, long)]
    workers: Option<usize>,
    /// Progress display on stderr: a bar, JSON lines, or nothing (default: bar on a terminal).
    #[arg(long, value_enum)]
    progress: Option<ProgressMode>,
    /// Replace an output directory that holds another run.
    #[arg(long)]
    overwrite: bool,
    /// Output format, overriding the pipeline's [output] format.
    #[arg(long, value_enum)]
    output_format: Option<FormatArg>,
    /// Output compression (JSONL), overriding the pipeline's [output] compression.
    #[arg(long, value_enum)]
    compression: Option<CompressionArg>,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum FormatArg {
    Jsonl,
    Parquet,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum CompressionArg {
    Zstd,
    Gzip,
    None,
}

pub(crate) fn run(command: CorpusCommand) -> Result<u8, Failure> {
    match command {
        CorpusCommand::DefaultConfig => {
            std::io::stdout().write_all(DEFAULT_PIPELINE.as_bytes())?;
            Ok(0)
        }
        CorpusCommand::Run(args) => run_pipeline(&args),
        CorpusCommand::Mix(args) => mix(&args),
    }
}

fn mix(args: &MixArgs) -> Result<u8, Failure> {
    let text = std::fs::read_to_string(&args.mix)
        .with_context(|| format!("cannot read {}", args.mix.display()))
        .map_err(Failure::usage)?;
    let config: latam_tokenize::MixConfig = toml::from_str(&text)
        .with_context(|| format!("{} is not a mix file", args.mix.display()))
        .map_err(Failure::usage)?;
    let tokenizer =
        crate::tokenize::load_tokenizer(args.tokenizer.as_deref(), latam_tokenize::Engine::Auto)?;
    let report = latam_tokenize::mix(&tokenizer, &args.inputs, &config, &args.output).map_err(
        |e| match e {
            latam_tokenize::TokenizeError::Usage(_) | latam_tokenize::TokenizeError::Input(..) => {
                Failure::usage(e)
            }
            other => Failure::from(other),
        },
    )?;
    print!("{}", latam_tokenize::mix_markdown(&report));
    println!("\nblend (Megatron-LM --data-path): {}", report.blend);
    println!("report: {}", args.output.join("mix.json").display());
    if let Some(warning) = report.shortfall_warning() {
        eprintln!("warning: {warning}");
    }
    Ok(0)
}

/// Loads the pipeline named on the command line, or the default one.
pub(crate) fn load_pipeline(path: Option<&PathBuf>) -> Result<PipelineConfig, Failure> {
    match path {
        Some(path) => PipelineConfig::from_file(path).map_err(Failure::usage),
        None => Ok(PipelineConfig::default_pipeline()),
    }
}

/// The inputs: the command line's, else the pipeline's, else the bundled sample.
pub(crate) fn inputs_for(
    args: &[String],
    config: &PipelineConfig,
) -> Result<Vec<InputFile>, Failure> {
    let specs = if args.is_empty() {
        &config.input.paths
    } else {
        args
    };
    if specs.is_empty() {
        return Ok(vec![InputFile::in_memory(
            SAMPLE_NAME,
            Format::Jsonl(Compression::Zstd),
            SAMPLE,
        )]);
    }
    resolve_inputs(specs).map_err(Failure::usage)
}

/// Reads up to `limit` documents that `keep` accepts from the inputs named on a command line.
/// With none named, reads the bundled sample and says so; unreadable records are skipped and
/// counted in a warning that names the first.
pub(crate) fn read_documents(
    specs: &[String],
    mut keep: impl FnMut(&Document) -> bool,
    limit: usize,
) -> Result<Vec<Document>, Failure> {
    let inputs = inputs_for(specs, &PipelineConfig::default_pipeline())?;
    if specs.is_empty() {
        tracing::warn!("no --input given: reading the bundled sample corpus ({SAMPLE_NAME})");
    }
    let options = ReadOptions::default();
    let mut out = Vec::new();
    let (mut skipped, mut first_error) = (0usize, None);
    'inputs: for input in &inputs {
        for record in RecordReader::open(input, &options) {
            let doc = match record.kind {
                RecordKind::Json(line) => {
                    Document::from_json_line(&line, &options.fields).map_err(|e| e.to_string())
                }
                RecordKind::Doc(doc) => Ok(doc),
                RecordKind::Error(e) => Err(e),
            };
            match doc {
                Ok(doc) if keep(&doc) => {
                    out.push(doc);
                    if out.len() >= limit {
                        break 'inputs;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    skipped += 1;
                    first_error
                        .get_or_insert_with(|| format!("{}:{}: {e}", input.name, record.line));
                }
            }
        }
    }
    if let Some(first) = first_error {
        tracing::warn!("{skipped} unreadable record(s) skipped; the first: {first}");
    }
    Ok(out)
}

pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

fn run_pipeline(args: &RunArgs) -> Result<u8, Failure> {
    let mut config = load_pipeline(args.pipeline.as_ref())?;
    if let Some(format) = args.output_format {
        config.output.format = match format {
            FormatArg::Jsonl => OutputFormat::Jsonl,
            FormatArg::Parquet => OutputFormat::Parquet,
        };
    }
    if let Some(compression) = args.compression {
        config.output.compression = match compression {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::None => Compression::None,
        };
    }
    let inputs = inputs_for(&args.inputs, &config)?;
    for input in inputs.iter().filter(|i| i.size == 0) {
        tracing::warn!("{} is empty", input.name);
    }
    let options = RunOptions {
        workers: args.workers.unwrap_or_else(default_workers),
        overwrite: args.overwrite,
        command: std::env::args().collect(),
        interrupt: Some(crate::interrupt::stop_flag()?),
        ..RunOptions::new(inputs, &args.output)
    };
    let progress = make_progress(args.progress);
    let summary = latam_pipeline::run(&config, &options, progress.as_ref())
        .map_err(|e| pipeline_failure(e, &options))?;
    print_summary(&summary);
    Ok(if summary.stats.documents.errors > 0 {
        EXIT_INPUT_ERRORS
    } else {
        0
    })
}

/// What a step found, most frequent first: `found name 656, phone 1 (+ 3 in rejected)`.
fn findings_line(step: &latam_pipeline::StepStats) -> String {
    let mut kinds: Vec<(&str, u64)> = step.findings.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let listed: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let mut line = if listed.is_empty() {
        "found nothing".to_owned()
    } else {
        format!("found {}", listed.join(", "))
    };
    let rejected = step.findings_in_rejected.total();
    if rejected > 0 {
        let _ = write!(line, " (+{rejected} in rejected documents)");
    }
    line
}

/// The exit status a failed run calls for: 2 for what the user must change, 130 for an
/// interruption (with the command that resumes it), 3 for the rest.
pub(crate) fn pipeline_failure(error: PipelineError, options: &RunOptions) -> Failure {
    match error {
        PipelineError::Config { .. }
        | PipelineError::Step { .. }
        | PipelineError::OutputInUse { .. } => Failure::usage(error),
        PipelineError::CorpusStep { ref source, .. }
            if source
                .downcast_ref::<latam_dedup::DedupError>()
                .is_some_and(latam_dedup::DedupError::is_usage) =>
        {
            Failure::usage(error)
        }
        PipelineError::Interrupted => Failure {
            code: crate::EXIT_INTERRUPTED,
            error: anyhow::anyhow!(
                "interrupted: the finished shards are kept in {}; resume with the same command:\n  \
                 {}",
                options.output.display(),
                shell_words(&options.command)
            ),
        },
        other => Failure::from(other),
    }
}

/// A command line as a shell would take it back (arguments with spaces or quotes quoted).
fn shell_words(args: &[String]) -> String {
    let quote = |a: &String| {
        if !a.is_empty()
            && a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
        {
            a.clone()
        } else {
            format!("'{}'", a.replace('\'', "'\\''"))
        }
    };
    args.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// The table at the end of a run, on stderr.
pub(crate) fn print_summary(summary: &RunSummary) {
    let s = &summary.stats;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<18} {:>9} {:>9} {:>9}  top reasons",
        "step", "in", "out", "dropped"
    );
    for step in &s.steps {
        let mut reasons: Vec<_> = step.dropped_by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut top: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        if !step.findings.is_empty() || !step.findings_in_rejected.is_empty() {
            top.push(findings_line(step));
        }
        let _ = writeln!(
            out,
            "{:<18} {:>9} {:>9} {:>9}  {}",
            step.name,
            step.input,
            step.out,
            step.dropped,
            top.join(", ")
        );
    }
    let d = &s.documents;
    let secs = summary.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "\nread {} documents ({} of text); kept {} ({}), rejected {}, unreadable records {}",
        d.read,
        human_size(s.bytes.read),
        d.kept,
        human_size(s.bytes.kept),
        d.rejected,
        d.errors
    );
    if summary.resumed_shards > 0 {
        let _ = writeln!(
            out,
            "resumed: {} of {} shards were already done",
            summary.resumed_shards, summary.shards
        );
    }
    let _ = write!(
        out,
        "{:.2} s, {:.1} MB/s, {:.0} docs/s\n\n",
        secs,
        s.bytes.read as f64 / 1e6 / secs,
        d.read as f64 / secs
    );
    let root = summary.output.display();
    let _ = writeln!(
        out,
        "data card:  {root}/report.html\nstats:      {root}/stats.json\ndocuments:  {root}/documents/"
    );
    if d.errors > 0 {
        let _ = writeln!(
            out,
            "errors:     {root}/errors.jsonl ({} unreadable records)",
            d.errors
        );
    }
    eprint!("{out}");
}
