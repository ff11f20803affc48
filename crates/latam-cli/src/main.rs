//! `latam`: the Latam-GPT toolkit, one binary. See `latam --help`.

mod anonymize;
mod bench;
mod bench_model;
mod classifier;
mod corpus;
mod dedup;
mod dedup_eval;
mod eval;
mod jsonl;
mod langid;
mod model;
mod progress;
mod tokenize;
mod tokenizer;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status: finished, but some input records were unreadable (see errors.jsonl).
pub(crate) const EXIT_INPUT_ERRORS: u8 = 1;
/// Exit status: usage or configuration error.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: aborted (a server could not be reached); a scheduler may retry.
pub(crate) const EXIT_ABORTED: u8 = 3;

/// The Latam-GPT toolkit: build, evaluate, serve and improve an open language model for Latin
/// America and the Caribbean.
///
/// Start with `latam corpus run`: it curates the bundled sample corpus with the default
/// pipeline into ./latam-out and writes a data card (report.html) you can open in a browser.
#[derive(Parser)]
#[command(
    name = "latam",
    version,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Curate a pre-training corpus: normalize, identify languages, filter, deduplicate.
    #[command(subcommand)]
    Corpus(corpus::CorpusCommand),
    /// Deduplicate at cluster scale: near-duplicate detection stage by stage, and its
    /// evaluation.
    #[command(subcommand)]
    Dedup(dedup::DedupCommand),
    /// Redact personal data (national IDs with check digits, e-mails, phones, cards, IPs) in
    /// JSONL documents.
    Anonymize(anonymize::AnonymizeArgs),
    /// Train, apply and score fastText-style text classifiers (language, quality, topic).
    #[command(subcommand)]
    Classifier(classifier::ClassifierCommand),
    /// Label JSONL documents with their language (ISO 639-3) and a score.
    Langid(langid::LangidArgs),
    /// Evaluate a model behind an OpenAI-compatible API on CHOCLO, Trueque, multiple-choice
    /// exams and perplexity, with an LLM judge, and compare runs.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Tokenize documents into Megatron .bin/.idx or numpy arrays for pre-training.
    Tokenize(Box<tokenize::TokenizeArgs>),
    /// Train a BPE tokenizer on the corpus and measure tokenizers' fertility by language.
    #[command(subcommand)]
    Tokenizer(tokenizer::TokenizerCommand),
    // The doc comments of `GenerateArgs` and `ServeArgs` (with examples) are their help.
    Generate(Box<model::GenerateArgs>),
    Serve(Box<model::ServeArgs>),
    /// Measure throughput and memory of the pipeline.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// A failure with the exit status it calls for.
pub(crate) struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Self {
            code: 1,
            error: error.into(),
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LATAM_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Corpus(command) => corpus::run(command),
        Command::Dedup(command) => dedup::run(command),
        Command::Anonymize(args) => anonymize::run(&args),
        Command::Langid(args) => langid::run(&args),
        Command::Classifier(command) => classifier::run(command),
        Command::Eval(command) => eval::run(command),
        Command::Tokenize(args) => tokenize::run(&args),
        Command::Tokenizer(command) => tokenizer::run(command),
        Command::Generate(args) => model::generate(&args),
        Command::Serve(args) => model::serve(&args),
        Command::Bench(command) => bench::run(command),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            if is_broken_pipe(&failure.error) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {}", failure.error);
            for cause in failure.error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(failure.code)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
