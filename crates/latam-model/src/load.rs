//! Loading a model from a GGUF file or a Hugging Face checkpoint folder.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use candle_core::quantized::GgmlDType;
use candle_core::{Device, Tensor};
use serde_json::Value;

use crate::chat::ChatTemplate;
use crate::config::ModelConfig;
use crate::llama::{
    GGUF_NAMES, GgufSource, HF_NAMES, KvCache, Llama, RopeLayout, SafetensorsSource,
};
use crate::tokenizer::Tokenizer;
use crate::{ChatMessage, ModelError};

/// The type that GGUF weights without a fast CPU kernel (Q5_0, Q5_1) become at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Requantize {
    /// 8-bit blocks: near-lossless, about 1.6× the size of Q5_0.
    #[default]
    Q8_0,
    /// 4-bit blocks: smaller than Q5_0, with some loss.
    Q4_0,
}

/// How to load a model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// A Jinja chat template that replaces the model's own.
    pub chat_template: Option<String>,
    /// What Q5_0/Q5_1 GGUF weights become.
    pub requantize: Requantize,
    /// CPU threads of the matrix kernels (`None`: one per core).
    pub threads: Option<usize>,
}

/// A model ready to run: weights, tokenizer, chat template and end-of-generation ids.
pub struct Model {
    pub(crate) llama: Llama,
    tokenizer: Tokenizer,
    chat_template: Option<ChatTemplate>,
    eos: Vec<u32>,
    name: String,
    /// The threads the forward pass runs on; the caller's thread only waits, so the kernels'
    /// parallel loops never hand work across threads more than once per pass.
    pool: rayon::ThreadPool,
}

impl Model {
    /// Loads a `.gguf` file or a folder with `config.json`, `*.safetensors` and
    /// `tokenizer.json` (a `.safetensors` file stands for its folder).
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Self, ModelError> {
        // The first CUDA GPU when built with the `cuda` feature, the CPU otherwise.
        let device = Device::cuda_if_available(0)?;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut model = if is_gguf(path)? {
            load_gguf(path, options, &device)?
        } else {
            let folder = if path.is_dir() {
                path
            } else {
                path.parent().unwrap_or(Path::new("."))
            };
            load_hf(folder, &device)?
        };
        model.name = name;
        model.pool = thread_pool(options.threads)?;
        if let Some(source) = &options.chat_template {
            model.chat_template = Some(model.compile_template(source)?);
        }
        Ok(model)
    }

    fn compile_template(&self, source: &str) -> Result<ChatTemplate, ModelError> {
        ChatTemplate::new(
            source,
            self.tokenizer.bos_text().unwrap_or_default(),
            self.tokenizer.eos_text().unwrap_or_default(),
        )
    }

    /// Runs `tokens` after what `cache` holds and returns the logits `[n, vocab]` of every
    /// position (`all_positions`) or of the last one only.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_positions: bool,
    ) -> Result<Tensor, ModelError> {
        self.pool
            .install(|| self.llama.forward(tokens, cache, all_positions))
    }

    /// Runs one new token of each of several sequences: logits `[sequences, vocab]`.
    pub fn forward_batch(
        &self,
        tokens: &[u32],
        caches: &mut [&mut KvCache],
    ) -> Result<Tensor, ModelError> {
        self.pool
            .install(|| self.llama.forward_batch(tokens, caches))
    }

    /// An empty cache for a new sequence.
    pub fn new_cache(&self) -> KvCache {
        self.llama.new_cache()
    }

    /// Threads of the forward pass.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// The file or folder name the model was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The dimensions of the network.
    pub fn config(&self) -> &ModelConfig {
        self.llama.config()
    }

    /// The longest sequence (prompt and completion) the model runs.
    pub fn context_length(&self) -> usize {
        self.llama.config().max_position_embeddings
    }

    /// Ids that end a generation.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// The prompt text of a conversation, by the model's chat template.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<String, ModelError> {
        self.chat_template
            .as_ref()
            .ok_or_else(|| {
                ModelError::Template(
                    "the model has no chat template; give one with --chat-template or use \
                     plain completions"
                        .into(),
                )
            })?
            .render(messages)
    }

    /// Token ids of a conversation's prompt (the template writes BOS itself).
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, ModelError> {
        self.tokenizer.encode(&self.chat_prompt(messages)?, false)
    }
}

fn thread_pool(threads: Option<usize>) -> Result<rayon::ThreadPool, ModelError> {
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("latam-model-{i}"))
        .build()
        .map_err(|e| ModelError::Config(format!("starting {threads} threads: {e}")))
}

fn is_gguf(path: &Path) -> Result<bool, ModelError> {
    if path.is_dir() {
        return Ok(false);
    }
    let mut magic = [0u8; 4];
    let mut file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    Ok(file.read_exact(&mut magic).is_ok() && &magic == b"GGUF")
}

fn load_gguf(path: &Path, options: &LoadOptions, device: &Device) -> Result<Model, ModelError> {
    let file = File::open(path).map_err(|e| ModelError::io(path, e))?;
    let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let content = crate::gguf::read_header(&mut reader, len).map_err(|e| {
        ModelError::Weights(format!("{}: not a readable GGUF file: {e}", path.display()))
    })?;
    let tokenizer = Tokenizer::from_gguf(&content)?;
    let config = ModelConfig::from_gguf(&content, tokenizer.vocab_size())?;
    let template = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok())
        .cloned();
    let mut eos = tokenizer.end_of_generation_ids();
    for key in [
        "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.eot_token_id",
        "tokenizer.ggml.eom_token_id",
    ] {
        if let Some(id) = content.metadata.get(key).and_then(|v| v.to_u32().ok()) {
            eos.push(id);
        }
    }
    let mut source = GgufSource {
        content,
        reader,
        device: device.clone(),
        requantize: match options.requantize {
            Requantize::Q8_0 => GgmlDType::Q8_0,
            Requantize::Q4_0 => GgmlDType::Q4_0,
        },
    };
    let llama = Llama::build(
        config,
        &mut source,
        &GGUF_NAMES,
        RopeLayout::Interleaved,
        device,
    )?;
    finish(llama, tokenizer, template.as_deref(), eos)
}

fn load_hf(folder: &Path, device: &Device) -> Result<Model, ModelError> {
    let read = |name: &str| -> Result<String, ModelError> {
        let path = folder.join(name);
        std::fs::read_to_string(&path).map_err(|e| ModelError::io(&path, e))
    };
    let optional_json = |name: &str| -> Result<Value, ModelError> {
        let path = folder.join(name);
        if !path.exists() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&read(name)?)
            .map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))
    };
    let config_text = read("config.json")?;
    let config = ModelConfig::from_hf_json(&config_text)?;
    let tokenizer_config = optional_json("tokenizer_config.json")?;
    let special = |key: &str| {
        let v = &tokenizer_config[key];
        v.as_str()
            .or_else(|| v["content"].as_str())
            .map(str::to_owned)
    };
    let tokenizer = Tokenizer::from_json(&read("tokenizer.json")?)?.with_special(
        special("bos_token").as_deref(),
        special("eos_token").as_deref(),
    );
    let template = match &tokenizer_config["chat_template"] {
        Value::String(s) => Some(s.clone()),
        // A list of named templates: the "default" one.
        Value::Array(list) => list
            .iter()
            .find(|t| t["name"] == "default")
            .and_then(|t| t["template"].as_str())
            .map(str::to_owned),
        _ => None,
    };
    let mut eos = tokenizer.end_of_generation_ids();
    let config_json: Value = serde_json::from_str(&config_text)
        .map_err(|e| ModelError::Config(format!("config.json: {e}")))?;
    for value in [
        &config_json["eos_token_id"],
        &optional_json("generation_config.json")?["eos_token_id"],
    ] {
        match value {
            Value::Number(n) => eos.extend(n.as_u64().map(|n| n as u32)),
            Value::Array(ids) => eos.extend(ids.iter().filter_map(Value::as_u64).map(|n| n as u32)),
            _ => {}
        }
    }
    let mut source = SafetensorsSource::read(&safetensors_files(folder)?, device)?;
    let llama = Llama::build(config, &mut source, &HF_NAMES, RopeLayout::Halves, device)?;
    finish(llama, tokenizer, template.as_deref(), eos)
}

/// `model.safetensors`, or the shards that `model.safetensors.index.json` lists.
fn safetensors_files(folder: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let index = folder.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).map_err(|e| ModelError::io(&index, e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| ModelError::Weights(format!("{}: {e}", index.display())))?;
        let mut files: Vec<PathBuf> = value["weight_map"]
            .as_object()
            .ok_or_else(|| ModelError::Weights(format!("{}: no weight_map", index.display())))?
            .values()
            .filter_map(Value::as_str)
            .map(|f| folder.join(f))
            .collect();
        files.sort();
        files.dedup();
        return Ok(files);
    }
    let single = folder.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    Err(ModelError::Weights(format!(
        "{} has neither model.safetensors nor model.safetensors.index.json",
        folder.display()
    )))
}

fn finish(
    llama: Llama,
    tokenizer: Tokenizer,
    template: Option<&str>,
    mut eos: Vec<u32>,
) -> Result<Model, ModelError> {
    eos.sort_unstable();
    eos.dedup();
    let mut model = Model {
        llama,
        tokenizer,
        chat_template: None,
        eos,
        name: String::new(),
        pool: thread_pool(Some(1))?,
    };
    if let Some(source) = template {
        model.chat_template = Some(model.compile_template(source)?);
    }
    Ok(model)
}
