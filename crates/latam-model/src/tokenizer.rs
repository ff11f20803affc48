//! Tokenizers: Hugging Face `tokenizer.json`, or the byte-level BPE that GGUF files carry in
//! their metadata (rebuilt as a `tokenizers` pipeline), and incremental detokenization.

use std::fmt::Write;
use std::str::FromStr;

use candle_core::quantized::gguf_file;
use serde_json::{Value, json};

use crate::ModelError;
use crate::config::gguf_str;

/// Marker texts of end-of-generation tokens across Llama-family vocabularies; a model stops on
/// any of them that its vocabulary holds, besides the ids its configuration names (a wrong or
/// missing EOS makes chat models repeat "assistant" turns forever).
const END_OF_GENERATION: &[&str] = &[
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end_of_text|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|end|>",
    "<end_of_turn>",
    "</s>",
];

/// Llama 3's pre-tokenizer split (`tokenizer.ggml.pre = "llama-bpe"`).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A text ↔ token-id codec with the model's special tokens.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bos: Option<(u32, String)>,
    eos_text: Option<String>,
}

impl Tokenizer {
    /// Reads a Hugging Face `tokenizer.json`.
    pub fn from_json(text: &str) -> Result<Self, ModelError> {
        let inner = tokenizers::Tokenizer::from_str(text)
            .map_err(|e| ModelError::Tokenizer(format!("tokenizer.json: {e}")))?;
        Ok(Self {
            inner,
            bos: None,
            eos_text: None,
        })
    }

    /// Names the BOS and EOS tokens by their text (from `tokenizer_config.json`).
    pub(crate) fn with_special(mut self, bos: Option<&str>, eos: Option<&str>) -> Self {
        self.bos = bos.and_then(|b| Some((self.inner.token_to_id(b)?, b.to_owned())));
        self.eos_text = eos.map(str::to_owned);
        self
    }

    /// Rebuilds the tokenizer stored in GGUF metadata (`tokenizer.ggml.*`, model `gpt2`).
    pub fn from_gguf(content: &gguf_file::Content) -> Result<Self, ModelError> {
        let kind = gguf_str(content, "tokenizer.ggml.model")?;
        if kind != "gpt2" {
            return Err(ModelError::Tokenizer(format!(
                "GGUF tokenizer {kind:?} is not supported (only byte-level BPE, \"gpt2\")"
            )));
        }
        let strings = |key: &str| -> Result<Vec<String>, ModelError> {
            let values = content
                .metadata
                .get(key)
                .and_then(|v| v.to_vec().ok())
                .ok_or_else(|| ModelError::Tokenizer(format!("GGUF metadata has no {key}")))?;
            values
                .iter()
                .map(|v| v.to_string().cloned())
                .collect::<Result<_, _>>()
                .map_err(|e| ModelError::Tokenizer(format!("{key}: {e}")))
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let types: Vec<i32> = content
            .metadata
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
            .map(|v| v.iter().map(|t| t.to_i32().unwrap_or(1)).collect())
            .unwrap_or_default();
        let pre = content
            .metadata
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok())
            .map_or("default", String::as_str);
        let id = |key: &str| {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_u32().ok())
                .filter(|&i| (i as usize) < tokens.len())
        };
        let add_bos = content
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|v| v.to_bool().ok())
            .unwrap_or(false);
        let bos = id("tokenizer.ggml.bos_token_id").map(|i| (i, tokens[i as usize].clone()));
        let eos_text = id("tokenizer.ggml.eos_token_id").map(|i| tokens[i as usize].clone());
        let json = byte_level_bpe_json(
            &tokens,
            &merges,
            &types,
            pre,
            bos.as_ref().filter(|_| add_bos),
        )?;
        let inner = tokenizers::Tokenizer::from_str(&json.to_string())
            .map_err(|e| ModelError::Tokenizer(format!("GGUF tokenizer: {e}")))?;
        Ok(Self {
            inner,
            bos,
            eos_text,
        })
    }

    /// Token ids of `text`; `special` adds what the tokenizer adds around a text (BOS).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>, ModelError> {
        self.inner
            .encode(text, special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// Token ids of `text` with each token's first character (a character offset into `text`;
    /// 0 for added tokens such as BOS).
    pub fn encode_with_offsets(
        &self,
        text: &str,
        special: bool,
    ) -> Result<(Vec<u32>, Vec<usize>), ModelError> {
        let encoding = self
            .inner
            .encode_char_offsets(text, special)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))?;
        let offsets = encoding.get_offsets().iter().map(|o| o.0).collect();
        Ok((encoding.get_ids().to_vec(), offsets))
    }

    /// Text of `ids`, without special tokens.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner
            .decode(ids, true)
            .map_err(|e| ModelError::Tokenizer(e.to_string()))
    }

    /// The text of one token as it appears in output (special tokens included), for logprobs;
    /// a token that is part of a UTF-8 character is written `bytes:\xe2\x80`, as OpenAI does.
    pub fn token_text(&self, id: u32) -> String {
        let text = self.inner.decode(&[id], false).unwrap_or_default();
        if !text.contains('\u{FFFD}') {
            return text;
        }
        let bytes: Option<Vec<u8>> = self
            .inner
            .id_to_token(id)
            .and_then(|token| token.chars().map(latam_core::byte_of).collect());
        match bytes.map(String::from_utf8) {
            Some(Ok(text)) => text,
            Some(Err(e)) => e
                .into_bytes()
                .iter()
                .fold("bytes:".to_owned(), |mut out, b| {
                    let _ = write!(out, "\\x{b:02x}");
                    out
                }),
            None => text,
        }
    }

    /// Size of the vocabulary, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The BOS token's text, for chat templates.
    pub fn bos_text(&self) -> Option<&str> {
        self.bos.as_ref().map(|(_, t)| t.as_str())
    }

    /// The EOS token's text, for chat templates.
    pub fn eos_text(&self) -> Option<&str> {
        self.eos_text.as_deref()
    }

    /// The ids of end-of-generation markers present in the vocabulary.
    pub fn end_of_generation_ids(&self) -> Vec<u32> {
        END_OF_GENERATION
            .iter()
            .filter_map(|t| self.inner.token_to_id(t))
            .chain(
                self.eos_text
                    .as_deref()
                    .and_then(|t| self.inner.token_to_id(t)),
            )
            .collect()
    }
}

/// The `tokenizer.json` of a byte-level BPE given as GGUF stores it: tokens by id, their types
/// (3 control, 4 user-defined), merges, the pre-tokenizer's name and the BOS to add.
pub(crate) fn byte_level_bpe_json(
    tokens: &[String],
    merges: &[String],
    types: &[i32],
    pre: &str,
    bos: Option<&(u32, String)>,
) -> Result<Value, ModelError> {
    let byte_level = |use_regex: bool| {
        json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
               "use_regex": use_regex})
    };
    let (pre_tokenizer, ignore_merges) = match pre {
        "llama-bpe" | "llama3" | "llama-v3" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated",
                 "invert": false},
                byte_level(false)]}),
            true,
        ),
        "smollm" => (
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
            false,
        ),
        "default" | "gpt2" | "gpt-2" => (byte_level(true), false),
        other => {
            return Err(ModelError::Tokenizer(format!(
                "GGUF pre-tokenizer {other:?} is not supported (llama-bpe, smollm, gpt2)"
            )));
        }
    };
    // Control (3) and user-defined (4) tokens are matched whole in text, as llama.cpp does.
    let added: Vec<Value> = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| matches!(types.get(*i), Some(3 | 4)))
        .map(|(i, t)| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": types[i] == 3})
        })
        .collect();
    let vocab: serde_json::Map<String, Value> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), json!(i)))
        .collect();
    let post_processor = match bos {
        Some((id, text)) => json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": text, "type_id": 0}},
                       {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": text, "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {text.as_str(): {"id": text, "ids": [id], "tokens": [text]}}}),
        None => Value::Null,
    };
    Ok(json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                    "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": ignore_merges,
                  "vocab": vocab, "merges": merges}
    }))
}

/// Turns a growing list of generated ids into text pieces, holding back bytes of an
/// unfinished UTF-8 character (the method of text-generation-inference).
#[derive(Debug, Default, Clone)]
pub struct IncrementalDecoder {
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl IncrementalDecoder {
    /// Adds one id and returns the text it completes (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String, ModelError> {
        self.ids.push(id);
        let before = tokenizer.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let now = tokenizer.decode(&self.ids[self.prefix_offset..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') {
            let piece = now
                .get(before.len()..)
                .map_or_else(String::new, str::to_owned);
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Ok(piece)
        } else {
            Ok(String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte-level tokenizer of the 256 bytes alone, built as from GGUF metadata.
    fn bytes_only() -> Tokenizer {
        let tokens: Vec<String> = latam_core::BYTE_CHARS
            .into_iter()
            .map(String::from)
            .collect();
        let json = byte_level_bpe_json(&tokens, &[], &[1; 256], "gpt2", None).unwrap();
        Tokenizer::from_json(&json.to_string()).unwrap()
    }

    #[test]
    fn token_text_spells_bytes_of_a_broken_character() {
        let t = bytes_only();
        assert_eq!(t.token_text(u32::from(b'a')), "a");
        assert_eq!(t.token_text(u32::from(b' ')), " ");
        assert_eq!(t.token_text(u32::from(b'\n')), "\n");
        // The first byte of "€" (e2 82 ac) alone is no character.
        assert_eq!(t.token_text(0xE2), "bytes:\\xe2");
        assert_eq!(t.encode("€", false).unwrap(), [0xE2, 0x82, 0xAC]);
    }
}
