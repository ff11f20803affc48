//! `latam tokenize`: documents to Megatron `.bin`/`.idx` or numpy token arrays.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use latam_tokenize::{Engine, Format, TokenizeConfig, Tokenizer};

use crate::Failure;

/// Tokenize documents (JSONL, Parquet, text; files, directories, globs) in input order, one
/// sequence per document: the beginning-of-text token, the text's ids, the end-of-document
/// token. Writes PREFIX.bin + PREFIX.idx (Megatron-LM / NeMo indexed dataset; uint16 tokens
/// for vocabularies up to 65,535, else int32) or PREFIX.npy, and PREFIX.manifest.json.
///
/// Byte-level BPE tokenizers (Llama 3, GPT-2, Qwen without normalizer) run on latam's fast
/// encoder, which gives the `tokenizers` library's ids; others run on `tokenizers` itself.
///
/// Examples:
///   latam tokenize --tokenizer llama3/tokenizer.json --input latam-out/documents --output data/latam_text_document
///   latam tokenize --tokenizer hf://meta-llama/Llama-3.1-8B --input docs.jsonl.zst --output tok --format npy
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct TokenizeArgs {
    /// A tokenizer.json, or hf://owner/name for a model repository's (HF_TOKEN for gated ones)
    /// [default: hf://meta-llama/Llama-3.1-8B, which needs the network and HF_TOKEN]
    #[arg(long, value_name = "FILE")]
    tokenizer: Option<String>,
    /// Documents: files, directories or globs (repeatable).
    #[arg(short, long = "input", value_name = "PATH", required = true)]
    inputs: Vec<String>,
    /// Output prefix: PREFIX.bin, PREFIX.idx (or PREFIX.npy), PREFIX.manifest.json.
    #[arg(short, long)]
    output: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "megatron")]
    format: FormatArg,
    /// Worker threads (default: one per core).
    #[arg(short, long)]
    workers: Option<usize>,
    /// Token before each document (default: <|begin_of_text|> or <s> when the tokenizer has
    /// one; "" for none).
    #[arg(long)]
    bos: Option<String>,
    /// End-of-document token after each document (default: <|end_of_text|>, </s> or
    /// <|endoftext|>).
    #[arg(long)]
    eod: Option<String>,
    /// Encoder: the fast byte-level BPE when possible, always it, or always `tokenizers`.
    #[arg(long, value_enum, default_value = "auto")]
    engine: EngineArg,
    /// Field holding the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// One dataset per input file: OUTPUT<file stem>_text_document.{bin,idx} (what the blend of
    /// `latam corpus mix` names).
    #[arg(long)]
    per_file: bool,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value = "bar")]
    progress: ProgressArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Megatron,
    Npy,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum EngineArg {
    Auto,
    Fast,
    Hf,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Auto => Engine::Auto,
            EngineArg::Fast => Engine::Fast,
            EngineArg::Hf => Engine::Hf,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ProgressArg {
    Bar,
    None,
}

/// The tokenizer of `latam tokenize` and `latam corpus mix` without `--tokenizer`: Llama 3.1's,
/// the tokenizer of Latam-GPT.
pub(crate) const DEFAULT_TOKENIZER: &str = "hf://meta-llama/Llama-3.1-8B";

/// Loads a tokenizer from a path or `hf://owner/name`; `None`: the default, saying so when it
/// cannot be fetched.
pub(crate) fn load_tokenizer(spec: Option<&str>, engine: Engine) -> Result<Tokenizer, Failure> {
    let path = match spec.unwrap_or(DEFAULT_TOKENIZER).strip_prefix("hf://") {
        Some(repo) => latam_tokenize::hub_tokenizer(repo).map_err(|e| {
            let e = anyhow::Error::from(e);
            Failure::usage(match spec {
                Some(_) => e,
                None => e.context(format!(
                    "no --tokenizer given: the default, {DEFAULT_TOKENIZER}, could not be fetched"
                )),
            })
        })?,
        None => PathBuf::from(spec.unwrap_or_default()),
    };
    Tokenizer::load(Path::new(&path), engine).map_err(Failure::usage)
}

pub(crate) fn run(args: &TokenizeArgs) -> Result<u8, Failure> {
    let tokenizer = load_tokenizer(args.tokenizer.as_deref(), args.engine.into())?;
    if !args.per_file {
        return tokenize_into(&tokenizer, args, args.inputs.clone(), args.output.clone());
    }
    let files = latam_io::resolve_inputs(&args.inputs).map_err(Failure::usage)?;
    let mut status = 0;
    for file in files {
        let stem = file
            .name
            .rsplit('/')
            .next()
            .unwrap_or(&file.name)
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut prefix = args.output.clone().into_os_string();
        prefix.push(format!("{stem}_text_document"));
        let Some(path) = file.path().map(|p| p.display().to_string()) else {
            continue;
        };
        status = status.max(tokenize_into(
            &tokenizer,
            args,
            vec![path],
            PathBuf::from(prefix),
        )?);
    }
    Ok(status)
}

fn tokenize_into(
    tokenizer: &Tokenizer,
    args: &TokenizeArgs,
    inputs: Vec<String>,
    output: PathBuf,
) -> Result<u8, Failure> {
    let config = TokenizeConfig {
        inputs,
        output,
        format: match args.format {
            FormatArg::Megatron => Format::Megatron,
            FormatArg::Npy => Format::Npy,
        },
        workers: args.workers.unwrap_or_else(crate::corpus::default_workers),
        bos: args.bos.clone(),
        eod: args.eod.clone(),
        text_field: args.text_field.clone(),
    };
    let bar = match args.progress {
        ProgressArg::Bar => ProgressBar::new_spinner(),
        ProgressArg::None => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {bytes} of text tokenized ({bytes_per_sec})")
            .expect("template"),
    );
    let manifest = latam_tokenize::tokenize(tokenizer, &config, &|bytes| bar.inc(bytes)).map_err(
        |e| match e {
            latam_tokenize::TokenizeError::Usage(_) => Failure::usage(e),
            other => Failure::from(other),
        },
    )?;
    bar.finish_and_clear();
    println!(
        "{} documents, {} tokens ({:?} engine, {} per token) -> {}",
        manifest.documents,
        manifest.tokens,
        tokenizer.engine(),
        manifest.dtype.size(),
        manifest.files.join(", ")
    );
    if !manifest.errors.is_empty() {
        eprintln!(
            "{} records could not be read and were left out (listed in the manifest's `errors`), e.g. {}",
            manifest.errors.len(),
            manifest.errors[0]
        );
        return Ok(crate::EXIT_INPUT_ERRORS);
    }
    Ok(0)
}
