//! Random Llama checkpoints, written as a Hugging Face folder and as GGUF with the same weights
//! and a byte-level tokenizer: for tests and benchmarks of the runtime and the server without
//! downloading a model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use latam_core::Rng;
use serde_json::json;

use crate::ModelError;
use crate::config::ModelConfig;
use crate::llama::{GGUF_NAMES, HF_NAMES};
use crate::tokenizer::byte_level_bpe_json;

/// BOS of the synthetic vocabulary: 256 byte tokens, then `<s>`, `</s>`.
pub const BOS: &str = "<s>";
/// EOS of the synthetic vocabulary.
pub const EOS: &str = "</s>";

/// A small configuration: 2 layers, 4 query and 2 key/value heads of 16, vocabulary of 258.
pub fn tiny_config() -> ModelConfig {
    ModelConfig {
        hidden_size: 64,
        intermediate_size: 128,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        head_dim: 16,
        vocab_size: 258,
        rms_norm_eps: 1e-5,
        rope_theta: 10_000.0,
        rope_scaling: None,
        max_position_embeddings: 512,
    }
}

/// The weights of a random model under Hugging Face names, as `f32`.
pub fn random_weights(config: &ModelConfig, seed: u64) -> HashMap<String, Tensor> {
    let mut rng = Rng::new(seed);
    let mut weights = HashMap::new();
    let mut matrix = |rows: usize, cols: usize, scale: f32| {
        let values: Vec<f32> = (0..rows * cols)
            .map(|_| (rng.unit_f32() * 2.0 - 1.0) * scale)
            .collect();
        Tensor::from_vec(values, (rows, cols), &Device::Cpu).expect("shape matches")
    };
    let (d, f) = (config.hidden_size, config.intermediate_size);
    let q = config.num_heads * config.head_dim;
    let kv = config.num_kv_heads * config.head_dim;
    let width = |n: usize| 1.7 / (n as f32).sqrt();
    weights.insert(HF_NAMES.embed.to_owned(), matrix(config.vocab_size, d, 1.0));
    weights.insert(
        HF_NAMES.lm_head.to_owned(),
        matrix(config.vocab_size, d, width(d)),
    );
    let shapes = [
        (1, d, 0.2),
        (q, d, width(d)),
        (kv, d, width(d)),
        (kv, d, width(d)),
        (d, q, width(q)),
        (1, d, 0.2),
        (f, d, width(d)),
        (f, d, width(d)),
        (d, f, width(f)),
    ];
    for layer in 0..config.num_layers {
        for (name, &(rows, cols, scale)) in HF_NAMES.block.iter().zip(&shapes) {
            let mut t = matrix(rows, cols, scale);
            if rows == 1 {
                // RMS norm gains around 1.
                t = (t + 1.0).and_then(|t| t.squeeze(0)).expect("shape matches");
            }
            weights.insert(name.replace("{}", &layer.to_string()), t);
        }
    }
    let norm = (matrix(1, d, 0.2) + 1.0).and_then(|t| t.squeeze(0));
    weights.insert(HF_NAMES.norm.to_owned(), norm.expect("shape matches"));
    weights
}

/// GGUF token types: bytes are normal (1), BOS and EOS control tokens (3).
fn token_type(id: usize) -> i32 {
    if id < 256 { 1 } else { 3 }
}

fn vocabulary() -> Vec<String> {
    latam_core::BYTE_CHARS
        .into_iter()
        .map(String::from)
        .chain([BOS.to_owned(), EOS.to_owned()])
        .collect()
}

/// Writes `config.json`, `tokenizer.json`, `tokenizer_config.json` (with a ChatML template) and
/// `model.safetensors` into `folder`; without `lm_head.weight` in `weights` the embeddings are
/// tied.
#[allow(clippy::implicit_hasher)] // candle's safetensors writer takes the std hasher
pub fn write_hf(
    folder: &Path,
    config: &ModelConfig,
    weights: &HashMap<String, Tensor>,
) -> Result<(), ModelError> {
    let write = |name: &str, text: String| {
        let path = folder.join(name);
        std::fs::write(&path, text).map_err(|e| ModelError::io(&path, e))
    };
    std::fs::create_dir_all(folder).map_err(|e| ModelError::io(folder, e))?;
    write(
        "config.json",
        json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "hidden_size": config.hidden_size, "intermediate_size": config.intermediate_size,
            "num_hidden_layers": config.num_layers, "num_attention_heads": config.num_heads,
            "num_key_value_heads": config.num_kv_heads, "head_dim": config.head_dim,
            "vocab_size": config.vocab_size, "rms_norm_eps": config.rms_norm_eps,
            "rope_theta": config.rope_theta,
            "max_position_embeddings": config.max_position_embeddings,
            "tie_word_embeddings": !weights.contains_key(HF_NAMES.lm_head), "bos_token_id": 256, "eos_token_id": 257,
        })
        .to_string(),
    )?;
    let vocab = vocabulary();
    let types: Vec<i32> = (0..vocab.len()).map(token_type).collect();
    let bos = (256, BOS.to_owned());
    let tokenizer = byte_level_bpe_json(&vocab, &[], &types, "gpt2", Some(&bos))?;
    write("tokenizer.json", tokenizer.to_string())?;
    write(
        "tokenizer_config.json",
        json!({"bos_token": BOS, "eos_token": EOS, "chat_template": CHATML}).to_string(),
    )?;
    let path = folder.join("model.safetensors");
    candle_core::safetensors::save(weights, &path)
        .map_err(|e| ModelError::Weights(format!("{}: {e}", path.display())))
}

/// The ChatML template of the synthetic model (as SmolLM2's, without its default system).
const CHATML: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + \
    message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}\
    {{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Writes the same model as a GGUF file with weights of `dtype` (F32, F16, Q8_0, Q4_0, Q4_1…;
/// norms stay F32), the query and key rows permuted as `convert_hf_to_gguf.py` does, and the
/// tokenizer in `tokenizer.ggml.*` (no `output.weight` when the embeddings are tied).
#[allow(clippy::implicit_hasher)] // as `write_hf`
pub fn write_gguf(
    path: &Path,
    config: &ModelConfig,
    weights: &HashMap<String, Tensor>,
    dtype: GgmlDType,
) -> Result<(), ModelError> {
    use gguf_file::Value;
    let candle = ModelError::from;
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, t: &Tensor, dtype: GgmlDType| -> Result<(), ModelError> {
        tensors.push((name, QTensor::quantize(t, dtype).map_err(candle)?));
        Ok(())
    };
    let get = |name: &str| {
        weights
            .get(name)
            .ok_or_else(|| ModelError::Weights(format!("no {name}")))
    };
    add(GGUF_NAMES.embed.to_owned(), get(HF_NAMES.embed)?, dtype)?;
    if let Some(head) = weights.get(HF_NAMES.lm_head) {
        add(GGUF_NAMES.lm_head.to_owned(), head, dtype)?;
    }
    add(
        GGUF_NAMES.norm.to_owned(),
        get(HF_NAMES.norm)?,
        GgmlDType::F32,
    )?;
    for layer in 0..config.num_layers {
        for (i, (hf, gguf)) in HF_NAMES.block.iter().zip(GGUF_NAMES.block).enumerate() {
            let layer_name = |n: &str| n.replace("{}", &layer.to_string());
            let mut t = get(&layer_name(hf))?.clone();
            let heads = match i {
                1 => Some(config.num_heads),
                2 => Some(config.num_kv_heads),
                _ => None,
            };
            if let Some(heads) = heads {
                t = interleave_rope_rows(&t, heads).map_err(candle)?;
            }
            let kind = if t.rank() == 1 { GgmlDType::F32 } else { dtype };
            add(layer_name(gguf), &t, kind)?;
        }
    }
    let vocab = vocabulary();
    let u32v = |n: usize| Value::U32(n as u32);
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("llama.context_length", u32v(config.max_position_embeddings)),
        ("llama.embedding_length", u32v(config.hidden_size)),
        ("llama.block_count", u32v(config.num_layers)),
        ("llama.feed_forward_length", u32v(config.intermediate_size)),
        ("llama.attention.head_count", u32v(config.num_heads)),
        ("llama.attention.head_count_kv", u32v(config.num_kv_heads)),
        ("llama.attention.key_length", u32v(config.head_dim)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(config.rms_norm_eps as f32),
        ),
        ("llama.rope.freq_base", Value::F32(config.rope_theta)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(vocab.iter().map(|t| Value::String(t.clone())).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            Value::Array(
                (0..vocab.len())
                    .map(|i| Value::I32(token_type(i)))
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.merges", Value::Array(Vec::new())),
        ("tokenizer.ggml.bos_token_id", Value::U32(256)),
        ("tokenizer.ggml.eos_token_id", Value::U32(257)),
        ("tokenizer.ggml.add_bos_token", Value::Bool(true)),
        ("tokenizer.chat_template", Value::String(CHATML.into())),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).map_err(|e| ModelError::io(path, e))?;
    gguf_file::write(&mut file, &metadata, &tensors)
        .map_err(|e| ModelError::Weights(format!("{}: {e}", path.display())))
}

/// Hugging Face's rotate-half row order → GGUF's interleaved pairs, per head.
fn interleave_rope_rows(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    w.reshape((heads, 2, rows / heads / 2, cols))?
        .transpose(1, 2)?
        .reshape((rows, cols))?
        .contiguous()
}
