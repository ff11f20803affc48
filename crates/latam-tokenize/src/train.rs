//! `latam tokenizer train`: a byte-level BPE trained on the corpus with the Llama 3
//! pre-tokenizer (the `tokenizers` library's trainer), saved as a `tokenizer.json` that the
//! fast encoder runs.

use std::path::Path;

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper,
    SplitDelimiterBehavior, TokenizerImpl,
};

use crate::TokenizeError;

/// The pre-tokenizer regex of Llama 3 (and of OpenAI's cl100k).
pub const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Settings of a BPE training.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBpeConfig {
    /// Ids in all, special tokens included.
    pub vocab_size: usize,
    /// Fewest occurrences of a pair merged.
    pub min_frequency: u64,
    /// Special tokens, first ids.
    pub special_tokens: Vec<String>,
}

impl Default for TrainBpeConfig {
    fn default() -> Self {
        Self {
            vocab_size: 32_000,
            min_frequency: 2,
            special_tokens: vec!["<|begin_of_text|>".into(), "<|end_of_text|>".into()],
        }
    }
}

/// Trains on `texts` and writes `output`; returns the vocabulary size reached.
pub fn train_bpe<I>(
    texts: I,
    config: &TrainBpeConfig,
    output: &Path,
) -> Result<usize, TokenizeError>
where
    I: Iterator<Item = String> + Send,
{
    let fail = |e: &dyn std::fmt::Display| TokenizeError::Output(output.to_owned(), e.to_string());
    let mut trainer = BpeTrainerBuilder::new()
        .vocab_size(config.vocab_size)
        .min_frequency(config.min_frequency)
        .show_progress(false)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .special_tokens(
            config
                .special_tokens
                .iter()
                .map(|t| AddedToken::from(t.clone(), true))
                .collect(),
        )
        .build();
    let split = Split::new(
        SplitPattern::Regex(LLAMA3_PATTERN.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| fail(&e))?;
    let mut tokenizer: TokenizerImpl<
        BPE,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    > = TokenizerImpl::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ]))));
    tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
    tokenizer.train(&mut trainer, texts).map_err(|e| fail(&e))?;
    let vocab = tokenizer.get_vocab_size(true);
    // As Llama 3's: a pre-token the vocabulary has whole is one token.
    let mut json: serde_json::Value =
        serde_json::from_str(&tokenizer.to_string(true).map_err(|e| fail(&e))?)
            .map_err(|e| fail(&e))?;
    json["model"]["ignore_merges"] = serde_json::Value::Bool(true);
    latam_io::write_atomic(
        output,
        serde_json::to_string_pretty(&json)
            .map_err(|e| fail(&e))?
            .as_bytes(),
    )
    .map_err(|e| fail(&e))?;
    Ok(vocab)
}
