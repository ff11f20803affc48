//! `latam tokenizer train|fertility`: a BPE trained on the corpus, and what each tokenizer
//! costs each language.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use latam_core::Document;
use latam_io::{ReadOptions, RecordKind, RecordReader};
use latam_tokenize::{Engine, Fertility, TrainBpeConfig};

use crate::Failure;
use crate::corpus::{default_workers, read_documents};

#[derive(Subcommand)]
pub(crate) enum TokenizerCommand {
    /// Train a byte-level BPE with the Llama 3 pre-tokenizer on documents (JSONL, Parquet,
    /// text); writes a tokenizer.json that `latam tokenize` runs on its fast encoder.
    ///
    /// Example: latam tokenizer train --input latam-out/documents --vocab-size 64000 --output latam-bpe.json
    Train(TrainArgs),
    /// Tokens per word and bytes per token of one or more tokenizers, overall and by metadata
    /// values (language, country, ...): the "tokenization tax" of each language.
    ///
    /// Example: latam tokenizer fertility --tokenizer llama3=tokenizer.json --tokenizer ours=latam-bpe.json --input latam-out/documents --by language --by country
    Fertility(FertilityArgs),
}

#[derive(Args)]
pub(crate) struct TrainArgs {
    /// Documents: files, directories or globs (repeatable).
    #[arg(short, long = "input", value_name = "PATH", required = true)]
    inputs: Vec<String>,
    /// Vocabulary size, special tokens included.
    #[arg(long, default_value_t = 32_000)]
    vocab_size: usize,
    /// Fewest occurrences of a pair merged.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    /// Special tokens (repeatable; default <|begin_of_text|> and <|end_of_text|>).
    #[arg(long = "special")]
    special_tokens: Vec<String>,
    /// The tokenizer.json written.
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Args)]
pub(crate) struct FertilityArgs {
    /// A tokenizer: NAME=PATH or PATH (repeatable; hf://owner/name too).
    #[arg(long = "tokenizer", required = true)]
    tokenizers: Vec<String>,
    /// Documents: files, directories or globs (repeatable).
    #[arg(short, long = "input", value_name = "PATH", required = true)]
    inputs: Vec<String>,
    /// Metadata keys to group by (repeatable; default language and country).
    #[arg(long = "by")]
    keys: Vec<String>,
    /// Also write the counts as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub(crate) fn run(command: TokenizerCommand) -> Result<u8, Failure> {
    match command {
        TokenizerCommand::Train(args) => train(&args),
        TokenizerCommand::Fertility(args) => fertility(&args),
    }
}

fn train(args: &TrainArgs) -> Result<u8, Failure> {
    let inputs = latam_io::resolve_inputs(&args.inputs).map_err(Failure::usage)?;
    let options = ReadOptions::default();
    let texts = inputs.into_iter().flat_map(move |input| {
        let options = options.clone();
        RecordReader::open(&input, &options).filter_map(move |record| match record.kind {
            RecordKind::Json(line) => Document::from_json_line(&line, &options.fields)
                .ok()
                .map(|d| d.text),
            RecordKind::Doc(doc) => Some(doc.text),
            RecordKind::Error(_) => None,
        })
    });
    let mut config = TrainBpeConfig {
        vocab_size: args.vocab_size,
        min_frequency: args.min_frequency,
        ..TrainBpeConfig::default()
    };
    if !args.special_tokens.is_empty() {
        config.special_tokens.clone_from(&args.special_tokens);
    }
    let vocab = latam_tokenize::train_bpe(texts, &config, &args.output)?;
    println!("{} tokens -> {}", vocab, args.output.display());
    Ok(0)
}

fn fertility(args: &FertilityArgs) -> Result<u8, Failure> {
    let mut names = Vec::new();
    let mut tokenizers = Vec::new();
    for spec in &args.tokenizers {
        let (name, path) = spec
            .split_once('=')
            .filter(|(n, _)| !n.contains('/'))
            .unwrap_or((spec, spec));
        names.push(name.to_owned());
        tokenizers.push(crate::tokenize::load_tokenizer(Some(path), Engine::Auto)?);
    }
    let keys = if args.keys.is_empty() {
        vec!["language".to_owned(), "country".to_owned()]
    } else {
        args.keys.clone()
    };
    let docs = read_documents(&args.inputs, |_| true, usize::MAX)?;
    let texts: Vec<(String, Vec<String>)> = docs
        .into_iter()
        .map(|d| {
            let groups = keys
                .iter()
                .filter_map(|k| d.meta_str(k).map(|v| format!("{k}={v}")))
                .collect();
            (d.text, groups)
        })
        .collect();
    let refs: Vec<&latam_tokenize::Tokenizer> = tokenizers.iter().collect();
    let mut table = Fertility::new();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(default_workers())
        .build()?;
    pool.install(|| latam_tokenize::measure_fertility(&refs, &texts, &mut table));
    print!("{}", latam_tokenize::fertility_markdown(&table, &names));
    if let Some(path) = &args.json {
        let value = serde_json::json!({ "tokenizers": names, "groups": table });
        latam_io::write_atomic(path, serde_json::to_string_pretty(&value)?.as_bytes())?;
    }
    Ok(0)
}
