//! `latam generate` and `latam serve`: run a Llama-architecture model (Latam-GPT, Llama 3.1,
//! SmolLM2) on this machine's CPU.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use latam_model::{ChatMessage, GenerationRequest, LoadOptions, Model, Requantize, SamplingParams};
use latam_serve::ServeConfig;

use crate::Failure;

/// Where the model comes from and how to load it.
#[derive(Args)]
pub(crate) struct ModelArgs {
    /// A GGUF file (Q4_K_M, Q8_0, Q4_0, Q4_1, F16…) or a Hugging Face folder with
    /// config.json, *.safetensors and tokenizer.json.
    #[arg(long)]
    model: PathBuf,
    /// CPU threads of the matrix kernels (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// A Jinja chat template file that replaces the model's own.
    #[arg(long)]
    chat_template: Option<PathBuf>,
    /// What GGUF types without a fast CPU kernel (Q5_0, Q5_1) become at load: q8_0
    /// (near-lossless) or q4_0 (smaller and faster, but lossy).
    #[arg(long, value_enum, default_value = "q8_0")]
    requantize: RequantizeArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum RequantizeArg {
    #[value(name = "q8_0", alias = "q8-0")]
    Q8_0,
    #[value(name = "q4_0", alias = "q4-0")]
    Q4_0,
}

impl ModelArgs {
    pub(crate) fn load(&self) -> Result<Model, Failure> {
        let chat_template = self
            .chat_template
            .as_deref()
            .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
            .transpose()
            .map_err(Failure::usage)?;
        let options = LoadOptions {
            chat_template,
            requantize: match self.requantize {
                RequantizeArg::Q8_0 => Requantize::Q8_0,
                RequantizeArg::Q4_0 => Requantize::Q4_0,
            },
            threads: self.threads,
        };
        let started = Instant::now();
        // A model that cannot be loaded is a wrong file or path: retrying will not help.
        let model = Model::load(&self.model, &options)
            .with_context(|| format!("loading {}", self.model.display()))
            .map_err(Failure::usage)?;
        let c = model.config();
        tracing::info!(
            "loaded {} ({} layers, width {}, {}/{} heads, context {}) in {:.1} s",
            model.name(),
            c.num_layers,
            c.hidden_size,
            c.num_heads,
            c.num_kv_heads,
            model.context_length(),
            started.elapsed().as_secs_f64()
        );
        Ok(model)
    }
}

/// Continues a prompt with the model and prints the completion as it is generated.
///
/// By default the prompt is continued as plain text (BOS added when the model wants one); with
/// --chat it is sent as a user message through the model's chat template, as a chat app would.
/// Greedy by default (--temperature 0); the same --seed gives the same sample.
///
/// Examples:
///   latam generate --model SmolLM2-135M-Instruct.Q4_1.gguf --prompt "La capital de Chile es"
///   latam generate --model latam-gpt-8b/ --chat --prompt "¿Qué es el curanto?" --max-tokens 200
///   latam generate --model m.gguf --prompt "Había una vez" --temperature 0.8 --top-p 0.95 --seed 7
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The text to continue (or the user message with --chat).
    #[arg(long)]
    prompt: String,
    /// Send the prompt as a user message through the chat template.
    #[arg(long)]
    chat: bool,
    /// A system message before the prompt (with --chat).
    #[arg(long, requires = "chat")]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 is greedy; higher values sample more freely.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Keep only the k most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to this probability.
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Drop tokens less likely than this fraction of the most likely one.
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    /// Penalty for tokens already in the prompt or the completion (1: none).
    #[arg(long, default_value_t = 1.0)]
    repetition_penalty: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop before this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Print prompt and generation speed on stderr.
    #[arg(long)]
    verbose: bool,
}

pub(crate) fn generate(args: &GenerateArgs) -> Result<u8, Failure> {
    let model = args.model.load()?;
    let prompt = if args.chat {
        let mut messages = Vec::new();
        if let Some(system) = &args.system {
            messages.push(ChatMessage::new("system", system));
        }
        messages.push(ChatMessage::new("user", &args.prompt));
        model.encode_chat(&messages)?
    } else {
        model.tokenizer().encode(&args.prompt, true)?
    };
    let prompt_tokens = prompt.len();
    let request = GenerationRequest {
        sampling: SamplingParams {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            min_p: args.min_p,
            repetition_penalty: args.repetition_penalty,
            seed: args.seed,
            ..SamplingParams::default()
        },
        stop: args.stop.clone(),
        ..GenerationRequest::new(
            prompt,
            args.max_tokens
                .min(model.context_length().saturating_sub(prompt_tokens)),
        )
    };
    let started = Instant::now();
    let mut first: Option<f64> = None;
    let mut stdout = std::io::stdout().lock();
    let mut write_error = None;
    let (text, reason) = model.complete(request, |piece| {
        first.get_or_insert_with(|| started.elapsed().as_secs_f64());
        if let Err(e) = stdout
            .write_all(piece.as_bytes())
            .and_then(|()| stdout.flush())
        {
            write_error.get_or_insert(e);
        }
    })?;
    writeln!(stdout)?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    if args.verbose {
        let generated = model.tokenizer().encode(&text, false)?.len();
        let total = started.elapsed().as_secs_f64();
        let first = first.unwrap_or(total);
        eprintln!(
            "prompt {prompt_tokens} tokens, first text after {:.0} ms; ~{generated} tokens in \
             {total:.2} s ({:.1} tokens/s after the first); stopped by {}",
            first * 1000.0,
            generated.saturating_sub(1) as f64 / (total - first).max(1e-9),
            reason.as_str()
        );
    }
    Ok(0)
}

/// Serves the model with an OpenAI-compatible API until Ctrl-C.
///
/// Endpoints: POST /v1/chat/completions and /v1/completions (streaming with "stream": true;
/// completions accept "echo" with "logprobs" for the log-probabilities of the prompt, which
/// `latam eval --task mc|perplexity` uses), GET /v1/models (the model under its file name),
/// /health and /metrics (Prometheus). Up to --max-running requests run at once: prompts in
/// chunks of 256 tokens in turn, and the decoding steps of all of them in one pass over the
/// weights (continuous batching); --max-waiting more wait; beyond that the server answers 429.
/// Prompts that start like a recent one reuse its cache. A request whose client disconnects
/// stops at its next token.
///
/// Examples:
///   latam serve --model SmolLM2-135M-Instruct.Q4_1.gguf
///   latam serve --model latam-gpt-8b/ --host 0.0.0.0 --port 8000 --threads 16
///   curl localhost:8080/v1/chat/completions -d '{"messages":[{"role":"user","content":"Hola"}]}'
#[derive(Args)]
#[command(verbatim_doc_comment)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port (0: any free port; the address is printed when ready).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Requests generated at once, interleaved token by token (each holds its key/value cache).
    #[arg(long, default_value_t = 16)]
    max_running: usize,
    /// Requests that may wait for a turn; more are refused with 429.
    #[arg(long, default_value_t = 64)]
    max_waiting: usize,
}

pub(crate) fn serve(args: &ServeArgs) -> Result<u8, Failure> {
    let model = args.model.load()?;
    let name = model.name().to_owned();
    let config = ServeConfig {
        host: args.host.clone(),
        port: args.port,
        max_running: args.max_running,
        max_waiting: args.max_waiting,
    };
    latam_serve::serve(model, &config, |address| {
        println!("latam serve: {name} on http://{address}/v1 (Ctrl-C to stop)");
        let _ = std::io::stdout().flush();
    })?;
    Ok(0)
}
