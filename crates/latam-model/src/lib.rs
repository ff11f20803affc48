//! The model runtime of latam: Llama-architecture models (Llama 3.1, Latam-GPT, SmolLM2) from
//! Hugging Face safetensors or GGUF, run on CPU with candle.
//!
//! ```no_run
//! use latam_model::{GenerationRequest, Model, LoadOptions, SamplingParams};
//! let model = Model::load("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(), &LoadOptions::default())?;
//! let prompt = model.tokenizer().encode("La capital de Chile es", true)?;
//! let text = model.complete(GenerationRequest::new(prompt, 16), |_| {})?;
//! # Ok::<(), latam_model::ModelError>(())
//! ```

mod blocks;
mod chat;
mod config;
mod generate;
mod gguf;
mod llama;
mod load;
mod sampling;
pub mod synthetic;
mod tokenizer;

pub use candle_core::quantized::GgmlDType;
pub use chat::{ChatMessage, ChatTemplate};
pub use config::{Llama3Scaling, ModelConfig};
pub use generate::{Event, FinishReason, Generation, GenerationRequest, TokenLogprob};
pub use llama::{KvCache, Llama, RopeLayout, log_softmax};
pub use load::{LoadOptions, Model, Requantize};
pub use sampling::{InvalidSampling, Sampler, SamplingParams, argmax};
pub use tokenizer::{IncrementalDecoder, Tokenizer};

/// What can go wrong loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The model's configuration is missing, malformed or of an unsupported architecture.
    #[error("model configuration: {0}")]
    Config(String),
    /// A weight is missing or malformed.
    #[error("model weights: {0}")]
    Weights(String),
    /// The tokenizer is missing, malformed or unsupported.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template does not compile or render.
    #[error("chat template: {0}")]
    Template(String),
    /// A request the model cannot run (too long, unknown token ids).
    #[error("{0}")]
    Input(String),
    /// A tensor operation failed.
    #[error("tensor computation: {0}")]
    Candle(String),
}

impl From<candle_core::Error> for ModelError {
    /// The error's message, without the backtrace candle attaches when `RUST_BACKTRACE` is set
    /// (it would reach users through the server's error messages).
    fn from(mut e: candle_core::Error) -> Self {
        while let candle_core::Error::WithBacktrace { inner, .. } = e {
            e = *inner;
        }
        Self::Candle(e.to_string())
    }
}

impl ModelError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ModelError;

    #[test]
    fn candle_errors_lose_their_backtrace() {
        let inner = candle_core::Error::Msg("shape mismatch".into());
        let e = candle_core::Error::WithBacktrace {
            inner: Box::new(inner),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        assert_eq!(
            ModelError::from(e).to_string(),
            "tensor computation: shape mismatch"
        );
    }
}
