//! The shape of a Llama-architecture model, read from Hugging Face `config.json` or from GGUF
//! metadata.

use candle_core::quantized::gguf_file;
use serde::Deserialize;

use crate::ModelError;

/// Llama 3.1's RoPE frequency scaling (`rope_scaling` with `rope_type: "llama3"`).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Llama3Scaling {
    /// How much longer the context is than in pre-training.
    pub factor: f32,
    /// Wavelengths longer than `original / low_freq_factor` are divided by `factor`.
    pub low_freq_factor: f32,
    /// Wavelengths shorter than `original / high_freq_factor` are kept.
    pub high_freq_factor: f32,
    /// The context length of pre-training.
    pub original_max_position_embeddings: usize,
}

/// The dimensions and constants of a Llama-architecture model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Number of transformer blocks.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than `num_heads`).
    pub num_kv_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Rows of the embedding matrix.
    pub vocab_size: usize,
    /// Epsilon of the RMS norms.
    pub rms_norm_eps: f64,
    /// RoPE base frequency.
    pub rope_theta: f32,
    /// Llama 3.1 frequency scaling, when the model uses it.
    pub rope_scaling: Option<Llama3Scaling>,
    /// The longest context the model was trained for.
    pub max_position_embeddings: usize,
}

/// `config.json` as written by `transformers` for `LlamaForCausalLM`.
#[derive(Deserialize)]
struct HfConfig {
    model_type: Option<String>,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    vocab_size: usize,
    #[serde(default = "default_eps")]
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f32,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default = "default_context")]
    max_position_embeddings: usize,
}

fn default_eps() -> f64 {
    1e-5
}

fn default_theta() -> f32 {
    10_000.0
}

fn default_context() -> usize {
    4096
}

impl ModelConfig {
    /// Parses a Hugging Face `config.json`.
    pub fn from_hf_json(text: &str) -> Result<Self, ModelError> {
        let hf: HfConfig = serde_json::from_str(text)
            .map_err(|e| ModelError::Config(format!("config.json: {e}")))?;
        if let Some(kind) = hf.model_type.as_deref().filter(|k| *k != "llama") {
            return Err(ModelError::Config(format!(
                "config.json: model_type {kind:?} is not supported (only \"llama\")"
            )));
        }
        let rope_scaling = match hf.rope_scaling {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => {
                let kind = value
                    .get("rope_type")
                    .or_else(|| value.get("type"))
                    .and_then(serde_json::Value::as_str);
                if kind != Some("llama3") {
                    return Err(ModelError::Config(format!(
                        "config.json: rope_scaling {value} is not supported (only rope_type \"llama3\")"
                    )));
                }
                Some(
                    serde_json::from_value(value).map_err(|e| {
                        ModelError::Config(format!("config.json rope_scaling: {e}"))
                    })?,
                )
            }
        };
        let config = Self {
            head_dim: hf
                .head_dim
                .unwrap_or(hf.hidden_size / hf.num_attention_heads.max(1)),
            num_kv_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            hidden_size: hf.hidden_size,
            intermediate_size: hf.intermediate_size,
            num_layers: hf.num_hidden_layers,
            num_heads: hf.num_attention_heads,
            vocab_size: hf.vocab_size,
            rms_norm_eps: hf.rms_norm_eps,
            rope_theta: hf.rope_theta,
            rope_scaling,
            max_position_embeddings: hf.max_position_embeddings,
        };
        config.validate()
    }

    /// Reads the `llama.*` keys of a GGUF file. Llama 3.1's frequency scaling travels in GGUF
    /// as the `rope_freqs.weight` tensor, which the loader applies.
    pub fn from_gguf(content: &gguf_file::Content, vocab_size: usize) -> Result<Self, ModelError> {
        let arch = gguf_str(content, "general.architecture")?;
        if arch != "llama" {
            return Err(ModelError::Config(format!(
                "GGUF architecture {arch:?} is not supported (only \"llama\")"
            )));
        }
        let get = |key: &str| gguf_usize(content, &format!("llama.{key}"));
        let hidden_size = get("embedding_length")?;
        let num_heads = get("attention.head_count")?;
        let config = Self {
            hidden_size,
            intermediate_size: get("feed_forward_length")?,
            num_layers: get("block_count")?,
            num_heads,
            num_kv_heads: get("attention.head_count_kv").unwrap_or(num_heads),
            head_dim: get("attention.key_length").unwrap_or(hidden_size / num_heads.max(1)),
            vocab_size: get("vocab_size").unwrap_or(vocab_size),
            rms_norm_eps: content
                .metadata
                .get("llama.attention.layer_norm_rms_epsilon")
                .and_then(|v| v.to_f32().ok())
                .map_or(1e-5, f64::from),
            rope_theta: content
                .metadata
                .get("llama.rope.freq_base")
                .and_then(|v| v.to_f32().ok())
                .unwrap_or(10_000.0),
            rope_scaling: None,
            max_position_embeddings: get("context_length").unwrap_or(4096),
        };
        config.validate()
    }

    fn validate(self) -> Result<Self, ModelError> {
        let fail = |what: &str| Err(ModelError::Config(what.to_owned()));
        if self.num_heads == 0 || self.num_kv_heads == 0 || self.num_layers == 0 {
            return fail("the model has no heads or no layers");
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return fail("the number of query heads is not a multiple of the key/value heads");
        }
        if !self.head_dim.is_multiple_of(2) {
            return fail("the head width is odd, which RoPE cannot rotate");
        }
        Ok(self)
    }

    /// RoPE inverse frequencies (`head_dim / 2` of them), with Llama 3.1's scaling applied.
    pub fn inverse_frequencies(&self) -> Vec<f32> {
        let d = self.head_dim as f32;
        (0..self.head_dim / 2)
            .map(|i| {
                let freq = 1.0 / self.rope_theta.powf(2.0 * i as f32 / d);
                self.rope_scaling.map_or(freq, |s| s.scale(freq))
            })
            .collect()
    }
}

impl Llama3Scaling {
    /// The scaled frequency, as `transformers`' `_compute_llama3_parameters`.
    fn scale(&self, freq: f32) -> f32 {
        let original = self.original_max_position_embeddings as f32;
        let low_wavelen = original / self.low_freq_factor;
        let high_wavelen = original / self.high_freq_factor;
        let wavelen = 2.0 * std::f32::consts::PI / freq;
        if wavelen < high_wavelen {
            freq
        } else if wavelen > low_wavelen {
            freq / self.factor
        } else {
            let smooth = (original / wavelen - self.low_freq_factor)
                / (self.high_freq_factor - self.low_freq_factor);
            (1.0 - smooth) * freq / self.factor + smooth * freq
        }
    }
}

pub(crate) fn gguf_str<'a>(
    content: &'a gguf_file::Content,
    key: &str,
) -> Result<&'a str, ModelError> {
    content
        .metadata
        .get(key)
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .ok_or_else(|| ModelError::Config(format!("GGUF metadata has no string {key:?}")))
}

pub(crate) fn gguf_usize(content: &gguf_file::Content, key: &str) -> Result<usize, ModelError> {
    let value = content
        .metadata
        .get(key)
        .ok_or_else(|| ModelError::Config(format!("GGUF metadata has no {key:?}")))?;
    value
        .to_u64()
        .ok()
        .or_else(|| value.to_u32().ok().map(u64::from))
        .or_else(|| value.to_i32().ok().and_then(|v| u64::try_from(v).ok()))
        .map(|v| v as usize)
        .ok_or_else(|| ModelError::Config(format!("GGUF metadata {key:?} is not an integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama31_scaling_matches_transformers() {
        // Llama 3.1 8B: theta 500000, head 128; transformers' inv_freq[0] stays 1.0 and the
        // last (longest wavelength) is divided by 8.
        let config = ModelConfig::from_hf_json(
            r#"{"model_type":"llama","hidden_size":4096,"intermediate_size":14336,
            "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,
            "vocab_size":128256,"rms_norm_eps":1e-5,"rope_theta":500000.0,
            "max_position_embeddings":131072,
            "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
            "original_max_position_embeddings":8192,"rope_type":"llama3"}}"#,
        )
        .unwrap();
        let inv = config.inverse_frequencies();
        assert_eq!(inv.len(), 64);
        assert!((inv[0] - 1.0).abs() < 1e-7);
        let plain = 1.0 / 500_000f32.powf(126.0 / 128.0);
        assert!((inv[63] - plain / 8.0).abs() < plain * 1e-5);
        // A frequency in the smooth band lies strictly between the two.
        let i = 32;
        let plain = 1.0 / 500_000f32.powf(2.0 * i as f32 / 128.0);
        assert!(
            inv[i] < plain && inv[i] > plain / 8.0,
            "{} vs {plain}",
            inv[i]
        );
    }

    #[test]
    fn unsupported_models_are_named() {
        let err = ModelConfig::from_hf_json(
            r#"{"model_type":"gemma","hidden_size":8,"intermediate_size":8,"num_hidden_layers":1,
            "num_attention_heads":2,"vocab_size":10}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("gemma"), "{err}");
    }
}
