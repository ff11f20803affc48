//! `latam classifier train|predict|eval`: fastText-style text classifiers on JSONL.

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand, ValueEnum};
use latam_classify::{Classifier, Example, FeatureConfig, Loss, TrainConfig, score};
use latam_io::{ReadOptions, RecordKind, RecordReader, resolve_inputs};
use serde_json::Value;

use crate::Failure;

#[derive(Subcommand)]
pub(crate) enum ClassifierCommand {
    /// Train a model on JSONL examples: `{"text": ..., "label": "spa"}` (or a list of labels
    /// with `--loss one-vs-all`). Deterministic for a seed.
    ///
    /// Example:
    ///   latam classifier train --input train.jsonl --valid valid.jsonl --output lang.lcm
    #[command(verbatim_doc_comment)]
    Train(TrainArgs),
    /// Label JSONL documents: adds `metadata.<field>` (the best label) and
    /// `metadata.<field>_score`, and with --k above 1 `metadata.<field>_top` (the k best).
    Predict(PredictArgs),
    /// Score a model on labelled JSONL: accuracy, macro-F1, precision/recall/F1 by label and
    /// the confusion matrix (Markdown on stdout; --json for a file).
    Eval(EvalArgs),
}

#[derive(Args)]
pub(crate) struct Labelled {
    /// Labelled JSONL (file, directory or glob; repeatable; .gz/.zst too).
    #[arg(short, long = "input", value_name = "PATH", required = true)]
    inputs: Vec<String>,
    /// Field of the label (top level or in `metadata`).
    #[arg(long, default_value = "label")]
    label_field: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum LossArg {
    Softmax,
    OneVsAll,
}

#[derive(Args)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    data: Labelled,
    /// Validation JSONL, scored after training.
    #[arg(long, value_name = "PATH")]
    valid: Vec<String>,
    /// The model file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Size of the hidden vector.
    #[arg(long, default_value_t = TrainConfig::default().dim)]
    dim: usize,
    /// Passes over the data.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    epochs: usize,
    /// Initial learning rate (decays linearly to 0).
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    lr: f32,
    /// Hash buckets of the features.
    #[arg(long, default_value_t = FeatureConfig::default().buckets)]
    buckets: u32,
    /// Shortest character n-gram (0: none).
    #[arg(long, default_value_t = FeatureConfig::default().min_char_ngram)]
    minn: usize,
    /// Longest character n-gram.
    #[arg(long, default_value_t = FeatureConfig::default().max_char_ngram)]
    maxn: usize,
    /// Longest word n-gram (0: no word features).
    #[arg(long, default_value_t = FeatureConfig::default().word_ngrams)]
    word_ngrams: usize,
    /// How labels compete.
    #[arg(long, value_enum, default_value = "softmax")]
    loss: LossArg,
    /// Seed of the weights and the order of examples.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep 32-bit rows instead of 8-bit ones (a 4× larger file).
    #[arg(long)]
    no_quantize: bool,
    /// What the model's card says of its training data (sources, licences).
    #[arg(long, default_value = "")]
    card: String,
}

#[derive(Args)]
pub(crate) struct PredictArgs {
    /// The model file.
    #[arg(short, long)]
    model: PathBuf,
    /// Input: a file, directory or glob in any form `corpus run` reads (JSONL, .gz, .zst,
    /// Parquet); default: standard input (JSONL, plain or compressed).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Output file, written when complete: .jsonl, .jsonl.gz, .jsonl.zst or .parquet by its
    /// name; never one of the inputs. Default: standard output (JSONL).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// The metadata field written.
    #[arg(long, default_value = "label")]
    field: String,
    /// Labels listed in `<field>_top`.
    #[arg(long, default_value_t = 1)]
    k: usize,
}

#[derive(Args)]
pub(crate) struct EvalArgs {
    /// The model file.
    #[arg(short, long)]
    model: PathBuf,
    #[command(flatten)]
    data: Labelled,
    /// Write the scores as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) fn run(command: ClassifierCommand) -> Result<u8, Failure> {
    match command {
        ClassifierCommand::Train(args) => train(&args),
        ClassifierCommand::Predict(args) => predict(&args),
        ClassifierCommand::Eval(args) => eval(&args),
    }
}

/// Reads labelled examples; a record without text or label stops with its file and line.
pub(crate) fn read_examples(specs: &[String], field: &str) -> Result<Vec<Example>, Failure> {
    let inputs = resolve_inputs(specs).map_err(Failure::usage)?;
    let options = ReadOptions::default();
    let mut examples = Vec::new();
    for input in &inputs {
        for record in RecordReader::open(input, &options) {
            let at = || format!("{}:{}", input.name, record.line);
            let line = match record.kind {
                RecordKind::Json(line) => line,
                RecordKind::Doc(_) => {
                    return Err(Failure::usage(anyhow!(
                        "{}: labelled examples are JSONL records",
                        input.name
                    )));
                }
                RecordKind::Error(e) => return Err(Failure::usage(anyhow!("{}: {e}", at()))),
            };
            let value: Value = serde_json::from_str(&line)
                .with_context(at)
                .map_err(Failure::usage)?;
            let text = value["text"]
                .as_str()
                .ok_or_else(|| Failure::usage(anyhow!("{}: no `text` string", at())))?;
            let label = value
                .get(field)
                .or_else(|| value["metadata"].get(field))
                .ok_or_else(|| Failure::usage(anyhow!("{}: no `{field}`", at())))?;
            let labels = match label {
                Value::String(l) => vec![l.clone()],
                Value::Array(ls) => ls
                    .iter()
                    .map(|l| l.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        Failure::usage(anyhow!("{}: `{field}` is not a list of strings", at()))
                    })?,
                _ => {
                    return Err(Failure::usage(anyhow!(
                        "{}: `{field}` is not a string",
                        at()
                    )));
                }
            };
            examples.push(Example {
                text: text.to_owned(),
                labels,
            });
        }
    }
    Ok(examples)
}

pub(crate) fn load_model(path: &Path) -> Result<Classifier, Failure> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the model {}", path.display()))
        .map_err(Failure::usage)?;
    Classifier::from_bytes(&bytes)
        .with_context(|| path.display().to_string())
        .map_err(Failure::usage)
}

fn train(args: &TrainArgs) -> Result<u8, Failure> {
    let examples = read_examples(&args.data.inputs, &args.data.label_field)?;
    let config = TrainConfig {
        features: FeatureConfig {
            buckets: args.buckets,
            min_char_ngram: args.minn,
            max_char_ngram: args.maxn,
            word_ngrams: args.word_ngrams,
            lowercase: true,
        },
        dim: args.dim,
        epochs: args.epochs,
        lr: args.lr,
        loss: match args.loss {
            LossArg::Softmax => Loss::Softmax,
            LossArg::OneVsAll => Loss::OneVsAll,
        },
        seed: args.seed,
        quantize: !args.no_quantize,
    };
    let started = Instant::now();
    let model = Classifier::train(&examples, &config, &args.card).map_err(Failure::usage)?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = model.to_bytes();
    latam_io::write_atomic(&args.output, &bytes)?;
    eprintln!(
        "{} examples, {} labels, trained in {secs:.1} s; {} ({:.2} MB)",
        examples.len(),
        model.labels().len(),
        args.output.display(),
        bytes.len() as f64 / 1e6
    );
    if args.valid.is_empty() {
        warn_if_collapsed(&scores(&model, &examples), "the training set");
    } else {
        let valid = read_examples(&args.valid, &args.data.label_field)?;
        let scores = scores(&model, &valid);
        print!("{}", scores.to_markdown());
        warn_if_collapsed(&scores, "the validation set");
    }
    Ok(0)
}

/// Prints on stderr what `Scores::collapse_warning` finds, naming the examples scored.
fn warn_if_collapsed(scores: &latam_classify::Scores, on: &str) {
    if let Some(warning) = scores.collapse_warning() {
        eprintln!("warning: on {on}, {warning}");
    }
}

/// The scores of the model's best label against the first gold label.
fn scores(model: &Classifier, examples: &[Example]) -> latam_classify::Scores {
    let guesses: Vec<String> = examples
        .iter()
        .map(|e| {
            model
                .predict(&e.text, 1)
                .first()
                .map_or_else(|| "none".to_owned(), |(l, _)| (*l).to_owned())
        })
        .collect();
    score(
        examples
            .iter()
            .zip(&guesses)
            .map(|(e, g)| (e.labels[0].as_str(), g.as_str())),
    )
}

fn predict(args: &PredictArgs) -> Result<u8, Failure> {
    let model = load_model(&args.model)?;
    let field = &args.field;
    crate::records::filter(args.input.as_deref(), args.output.as_deref(), |record| {
        let top = model.predict(crate::records::text(record)?, args.k.max(1));
        let metadata = crate::records::metadata(record)?;
        let round = |p: f32| (f64::from(p) * 10_000.0).round() / 10_000.0;
        let (label, p) = top.first().copied().unwrap_or(("und", 0.0));
        metadata.insert(field.clone(), Value::from(label));
        metadata.insert(format!("{field}_score"), Value::from(round(p)));
        if args.k > 1 {
            let list = top
                .iter()
                .map(|(l, p)| serde_json::json!({"label": l, "score": round(*p)}))
                .collect();
            metadata.insert(format!("{field}_top"), Value::Array(list));
        }
        Ok(())
    })
}

fn eval(args: &EvalArgs) -> Result<u8, Failure> {
    let model = load_model(&args.model)?;
    let examples = read_examples(&args.data.inputs, &args.data.label_field)?;
    let scores = scores(&model, &examples);
    print!("{}", scores.to_markdown());
    warn_if_collapsed(&scores, "these examples");
    if let Some(path) = &args.json {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        serde_json::to_writer_pretty(BufWriter::new(file), &scores)?;
    }
    Ok(0)
}
