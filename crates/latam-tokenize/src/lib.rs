//! Training-ready data: documents tokenized with any Hugging Face `tokenizer.json` (by default
//! the Llama 3.1 tokenizer, with a fast byte-level BPE that gives the `tokenizers` library's ids
//! at several times its speed) into Megatron-LM indexed datasets (`PREFIX.bin` + `PREFIX.idx`)
//! or numpy token arrays, with a manifest.

mod bpe;
mod fertility;
mod megatron;
mod mix;
mod split;
mod train;

use std::path::{Path, PathBuf};

use latam_core::Document;
use latam_io::{ReadOptions, RecordKind, RecordReader};
use rayon::prelude::*;
use serde::Serialize;
use serde_json::Value;

pub use bpe::{ByteLevelBpe, Unsupported};
pub use fertility::{
    Counts, Fertility, markdown as fertility_markdown, measure as measure_fertility, words,
};
pub use megatron::{MegatronReader, MegatronWriter, NpyWriter, TokenType, with_suffix};
pub use mix::{GroupRow, MixConfig, MixReport, Targets, mix, mix_markdown, shares, targets};
pub use train::{LLAMA3_PATTERN, TrainBpeConfig, train_bpe};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum TokenizeError {
    /// A tokenizer file that cannot be used.
    #[error("tokenizer {0}: {1}")]
    Tokenizer(PathBuf, String),
    /// A setting that cannot work.
    #[error("{0}")]
    Usage(String),
    /// A file that cannot be read.
    #[error("{0}: {1}")]
    Input(PathBuf, String),
    /// A file that cannot be written.
    #[error("{0}: {1}")]
    Output(PathBuf, String),
    /// A tokenizer that cannot be fetched from the Hugging Face Hub.
    #[error(transparent)]
    Hub(#[from] latam_hub::HubError),
}

/// Which encoder runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// The fast byte-level BPE when the tokenizer is one, else `tokenizers`.
    #[default]
    Auto,
    /// The fast byte-level BPE (an error when the tokenizer is not byte-level BPE).
    Fast,
    /// The `tokenizers` library.
    Hf,
}

/// A loaded tokenizer.
pub struct Tokenizer {
    hf: tokenizers::Tokenizer,
    fast: Option<ByteLevelBpe>,
    /// The file's path.
    pub path: PathBuf,
    /// The file's SHA-256.
    pub sha256: String,
    /// Ids in all, added tokens included.
    pub vocab_size: usize,
}

impl Tokenizer {
    /// Loads `path` for `engine`.
    pub fn load(path: &Path, engine: Engine) -> Result<Self, TokenizeError> {
        let bad = |m: String| TokenizeError::Tokenizer(path.to_owned(), m);
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let hf = tokenizers::Tokenizer::from_bytes(&bytes)
            .map_err(|e| bad(format!("not a tokenizer.json: {e}")))?;
        let fast = match engine {
            Engine::Hf => None,
            Engine::Auto | Engine::Fast => {
                let json: Value = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
                match ByteLevelBpe::from_json(&json) {
                    Ok(fast) => Some(fast),
                    Err(Unsupported(why)) if engine == Engine::Fast => {
                        return Err(bad(format!(
                            "the fast engine cannot run it ({why}); use --engine hf"
                        )));
                    }
                    Err(_) => None,
                }
            }
        };
        Ok(Self {
            vocab_size: hf.get_vocab_size(true),
            hf,
            fast,
            path: path.to_owned(),
            sha256: latam_io::hex(&<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        })
    }

    /// Which engine encodes.
    pub fn engine(&self) -> Engine {
        if self.fast.is_some() {
            Engine::Fast
        } else {
            Engine::Hf
        }
    }

    /// The ids of `text`, without special tokens around it.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.fast {
            Some(fast) => {
                let mut out = Vec::with_capacity(text.len() / 3);
                fast.encode(text, &mut out);
                out
            }
            None => self.encode_hf(text),
        }
    }

    /// The ids the `tokenizers` library gives (`add_special_tokens = false`).
    pub fn encode_hf(&self, text: &str) -> Vec<u32> {
        self.hf
            .encode_fast(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    /// The id of a token.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.hf.token_to_id(token)
    }

    /// The first of `candidates` the vocabulary has.
    fn first_of(&self, candidates: &[&str]) -> Option<(String, u32)> {
        candidates
            .iter()
            .find_map(|t| self.token_id(t).map(|id| ((*t).to_owned(), id)))
    }
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `PREFIX.bin` + `PREFIX.idx`.
    Megatron,
    /// `PREFIX.npy`.
    Npy,
}

/// Settings of a tokenization.
#[derive(Debug, Clone)]
pub struct TokenizeConfig {
    /// Files, directories or globs of documents (JSONL, Parquet, text).
    pub inputs: Vec<String>,
    /// Output prefix.
    pub output: PathBuf,
    /// Output format.
    pub format: Format,
    /// Worker threads.
    pub workers: usize,
    /// Token put before each document (`None`: the tokenizer's `<|begin_of_text|>` or `<s>`
    /// when it has one; `Some("")`: none).
    pub bos: Option<String>,
    /// Token after each document (`None`: `<|end_of_text|>`, `</s>` or `<|endoftext|>`).
    pub eod: Option<String>,
    /// Field holding the text.
    pub text_field: String,
}

/// A special token used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Special {
    /// Its text.
    pub token: String,
    /// Its id.
    pub id: u32,
}

/// Per input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InputSummary {
    /// Its name.
    pub path: String,
    /// SHA-256 of its bytes (not for Parquet).
    pub sha256: Option<String>,
    /// Documents tokenized.
    pub documents: u64,
    /// Tokens written, specials included.
    pub tokens: u64,
    /// Bytes of text.
    pub text_bytes: u64,
}

/// `PREFIX.manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Manifest {
    /// `megatron` or `npy`.
    pub format: Format,
    /// Files written.
    pub files: Vec<String>,
    /// The tokenizer: path, SHA-256, size, engine.
    pub tokenizer: Value,
    /// Token width.
    pub dtype: TokenType,
    /// Before each document.
    pub bos: Option<Special>,
    /// After each document.
    pub eod: Special,
    /// Documents (= sequences).
    pub documents: u64,
    /// Tokens in all.
    pub tokens: u64,
    /// Per input file.
    pub inputs: Vec<InputSummary>,
    /// Records that could not be read (`file:line: why`), left out.
    pub errors: Vec<String>,
    /// The tool's version.
    pub version: String,
}

/// Documents read per parallel batch.
const BATCH: usize = 2048;

/// Tokenizes every document of the inputs, in input order, into `config.output`.
pub fn tokenize(
    tokenizer: &Tokenizer,
    config: &TokenizeConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Manifest, TokenizeError> {
    let (bos, eod) = specials(tokenizer, config)?;
    let dtype = TokenType::for_vocab(tokenizer.vocab_size);
    let inputs = latam_io::resolve_inputs(&config.inputs)
        .map_err(|e| TokenizeError::Usage(e.to_string()))?;
    if inputs.is_empty() {
        return Err(TokenizeError::Usage("no input files".into()));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.workers.max(1))
        .build()
        .map_err(|e| TokenizeError::Usage(e.to_string()))?;
    let mut sink = match config.format {
        Format::Megatron => Sink::Megatron(MegatronWriter::create(&config.output, dtype)?),
        Format::Npy => Sink::Npy(NpyWriter::create(
            &with_suffix(&config.output, "npy"),
            dtype,
        )?),
    };
    let options = ReadOptions {
        fields: latam_core::FieldNames {
            text: config.text_field.clone(),
            ..Default::default()
        },
        ..ReadOptions::default()
    };
    let mut summaries = Vec::new();
    let mut errors = Vec::new();
    for input in &inputs {
        let mut reader = RecordReader::open(input, &options);
        let mut summary = InputSummary {
            path: input.name.clone(),
            sha256: None,
            documents: 0,
            tokens: 0,
            text_bytes: 0,
        };
        loop {
            let batch = next_batch(&mut reader, &input.name, &options.fields, &mut errors);
            if batch.is_empty() {
                break;
            }
            let encoded: Vec<Vec<u32>> = pool.install(|| {
                batch
                    .par_iter()
                    .map(|doc| {
                        let mut ids = Vec::with_capacity(doc.text.len() / 3 + 2);
                        ids.extend(bos.as_ref().map(|b| b.id));
                        ids.extend(tokenizer.encode(&doc.text));
                        ids.push(eod.id);
                        ids
                    })
                    .collect()
            });
            for (doc, ids) in batch.iter().zip(&encoded) {
                sink.push(ids)?;
                summary.documents += 1;
                summary.tokens += ids.len() as u64;
                summary.text_bytes += doc.text.len() as u64;
            }
            progress(batch.iter().map(|d| d.text.len() as u64).sum());
        }
        summary.sha256 = reader.sha256();
        summaries.push(summary);
    }
    let files = sink.finish(&config.output)?;
    let manifest = Manifest {
        format: config.format,
        files,
        tokenizer: serde_json::json!({
            "path": tokenizer.path, "sha256": tokenizer.sha256, "vocab_size": tokenizer.vocab_size,
            "engine": tokenizer.engine(),
        }),
        dtype,
        bos,
        eod,
        documents: summaries.iter().map(|s| s.documents).sum(),
        tokens: summaries.iter().map(|s| s.tokens).sum(),
        inputs: summaries,
        errors,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let path = with_suffix(&config.output, "manifest.json");
    latam_io::write_atomic(&path, &serde_json::to_vec_pretty(&manifest).expect("JSON"))
        .map_err(|e| TokenizeError::Output(path, e.to_string()))?;
    Ok(manifest)
}

/// The beginning-of-text token (if any) and the end-of-document token of a run.
fn specials(
    tokenizer: &Tokenizer,
    config: &TokenizeConfig,
) -> Result<(Option<Special>, Special), TokenizeError> {
    let bos = match config.bos.as_deref() {
        Some("") => None,
        Some(token) => Some(special(tokenizer, token)?),
        None => tokenizer
            .first_of(&["<|begin_of_text|>", "<s>"])
            .map(|(token, id)| Special { token, id }),
    };
    let eod = match config.eod.as_deref() {
        Some(token) => special(tokenizer, token)?,
        None => tokenizer
            .first_of(&["<|end_of_text|>", "</s>", "<|endoftext|>"])
            .map(|(token, id)| Special { token, id })
            .ok_or_else(|| TokenizeError::Usage("the tokenizer has no <|end_of_text|>, </s> or <|endoftext|>: name the end-of-document token with --eod".into()))?,
    };
    Ok((bos, eod))
}

/// The next documents of `reader` (up to a batch); unreadable records go to `errors` as
/// `file:line: why`. Empty at the end of the file.
pub(crate) fn next_batch(
    reader: &mut RecordReader,
    name: &str,
    fields: &latam_core::FieldNames,
    errors: &mut Vec<String>,
) -> Vec<Document> {
    let mut batch = Vec::with_capacity(BATCH);
    for record in reader.by_ref().take(BATCH) {
        match record.kind {
            RecordKind::Json(line) => match Document::from_json_line(&line, fields) {
                Ok(doc) => batch.push(doc),
                Err(e) => errors.push(format!("{name}:{}: {e}", record.line)),
            },
            RecordKind::Doc(doc) => batch.push(doc),
            RecordKind::Error(e) => errors.push(format!("{name}:{}: {e}", record.line)),
        }
    }
    batch
}

fn special(tokenizer: &Tokenizer, token: &str) -> Result<Special, TokenizeError> {
    tokenizer
        .token_id(token)
        .map(|id| Special {
            token: token.to_owned(),
            id,
        })
        .ok_or_else(|| TokenizeError::Usage(format!("the tokenizer has no token `{token}`")))
}

enum Sink {
    Megatron(MegatronWriter),
    Npy(NpyWriter),
}

impl Sink {
    fn push(&mut self, ids: &[u32]) -> Result<(), TokenizeError> {
        match self {
            Sink::Megatron(w) => w.push(ids),
            Sink::Npy(w) => w.push(ids),
        }
    }

    fn finish(self, prefix: &Path) -> Result<Vec<String>, TokenizeError> {
        let names = |exts: &[&str]| {
            exts.iter()
                .map(|e| with_suffix(prefix, e).display().to_string())
                .collect()
        };
        match self {
            Sink::Megatron(w) => w.finish().map(|()| names(&["bin", "idx"])),
            Sink::Npy(w) => w.finish().map(|()| names(&["npy"])),
        }
    }
}

/// The `tokenizer.json` of a Hugging Face model repository (`owner/name`), downloaded once into
/// the Hub cache (`HF_HOME`); `HF_TOKEN` for gated models such as Llama 3.1.
pub fn hub_tokenizer(repo: &str) -> Result<PathBuf, TokenizeError> {
    let instead = "--tokenizer FILE (a local tokenizer.json)";
    let repo = latam_hub::Hub::from_env().repo(latam_hub::Kind::Model, repo, instead)?;
    Ok(repo.get("tokenizer.json")?)
}
