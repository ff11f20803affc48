//! `latam bench generate` and `latam bench serve`: prefill and decode speed of the runtime, and
//! the throughput of any OpenAI-compatible server (ours or llama.cpp's) under concurrent streams.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow};
use clap::Args;
use latam_eval::{Client, EndpointConfig};
use latam_model::{Event, Generation, GenerationRequest, Model};
use serde_json::{Value, json};

use crate::Failure;
use crate::model::ModelArgs;

/// Spanish text the benchmark prompts are cut from.
const PROMPT_TEXT: &str = "La cordillera de los Andes recorre Chile de norte a sur y separa el país \
    de Argentina. En el valle central se cultivan uvas, trigo y frutas que se exportan a todo el \
    mundo. Santiago, la capital, reúne a casi la mitad de la población y concentra la actividad \
    económica, política y cultural. ";

#[derive(Args)]
pub(crate) struct GenerateBenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Tokens of the prompt.
    #[arg(long, default_value_t = 128)]
    prompt_tokens: usize,
    /// Tokens generated (end-of-generation tokens are ignored).
    #[arg(long, default_value_t = 128)]
    tokens: usize,
    /// Runs of each measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn prompt(model: &Model, tokens: usize) -> Result<Vec<u32>, Failure> {
    let text = PROMPT_TEXT.repeat(tokens / 40 + 2);
    let mut ids = model.tokenizer().encode(&text, true)?;
    ids.truncate(tokens.max(1));
    Ok(ids)
}

/// Runs a generation to the end; returns the time of its first token and of its end.
fn timed(model: &Model, request: GenerationRequest) -> Result<(f64, f64), Failure> {
    let started = Instant::now();
    let mut generation = Generation::new(model, request)?;
    let mut first = None;
    while !generation.is_finished() {
        for event in generation.step(model)? {
            if matches!(event, Event::Token { .. }) {
                first.get_or_insert_with(|| started.elapsed().as_secs_f64());
            }
        }
    }
    let end = started.elapsed().as_secs_f64();
    Ok((first.unwrap_or(end), end))
}

pub(crate) fn generate(args: &GenerateBenchArgs) -> Result<u8, Failure> {
    let model = args.model.load()?;
    let ids = prompt(&model, args.prompt_tokens)?;
    let decode_request = GenerationRequest {
        ignore_eos: true,
        ..GenerationRequest::new(ids.clone(), args.tokens.max(2))
    };
    // Warm-up: first touches of the weights and allocations.
    timed(&model, GenerationRequest::new(ids.clone(), 4))?;
    let (mut prefill, mut first, mut decode) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.repeat.max(1) {
        let (_, end) = timed(&model, GenerationRequest::new(ids.clone(), 0))?;
        prefill.push(ids.len() as f64 / end);
        let (ttft, end) = timed(&model, decode_request.clone())?;
        first.push(ttft);
        decode.push((decode_request.max_tokens - 1) as f64 / (end - ttft));
    }
    let threads = model.threads();
    println!(
        "{}: {threads} threads, prompt {} tokens, {} generated, median of {}",
        model.name(),
        ids.len(),
        decode_request.max_tokens,
        args.repeat.max(1)
    );
    println!("  prefill             {:8.1} tokens/s", median(prefill));
    println!("  time to first token {:8.1} ms", median(first) * 1000.0);
    println!("  decode              {:8.1} tokens/s", median(decode));
    Ok(0)
}

#[derive(Args)]
pub(crate) struct ServeBenchArgs {
    /// Base URL of an OpenAI-compatible server.
    #[arg(long, default_value = "http://127.0.0.1:8080/v1")]
    endpoint: String,
    /// Model name sent in requests (default: the first of /v1/models).
    #[arg(long)]
    model: Option<String>,
    /// Concurrent streams, one measurement each.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    concurrency: Vec<usize>,
    /// Tokens asked of each stream (end-of-generation tokens are ignored: `ignore_eos`).
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    /// Requests each stream sends, one after the other.
    #[arg(long, default_value_t = 1)]
    requests_per_stream: usize,
    /// Start every prompt with a number of its own, so that no request reuses another's
    /// cached prompt (each one is prefilled in full).
    #[arg(long)]
    unique_prompts: bool,
    /// Print one JSON object per concurrency instead of the table.
    #[arg(long)]
    json: bool,
}

/// One streamed completion, timed from the request.
struct Timed {
    /// Seconds to the first text.
    first: f64,
    /// Seconds to the end of the stream.
    end: f64,
    /// `usage.completion_tokens`.
    tokens: u64,
    /// `usage.prompt_tokens`.
    prompt_tokens: u64,
}

/// Streams one completion, counting tokens from the `usage` the server reports at the end
/// (`stream_options.include_usage`); an error chunk fails it.
fn stream_once(client: &Client, body: &Value) -> Result<Timed, Failure> {
    let started = Instant::now();
    let (mut first, mut usage) = (None, None);
    client.post_stream("completions", body, |chunk| {
        if let Some(error) = chunk.get("error") {
            return Err(Failure::from(anyhow!(
                "{} reported an error mid-stream: {error}",
                client.base()
            )));
        }
        if chunk["choices"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            first.get_or_insert_with(|| started.elapsed().as_secs_f64());
        }
        if chunk["usage"].is_object() {
            usage = Some(chunk["usage"].clone());
        }
        Ok(())
    })?;
    let end = started.elapsed().as_secs_f64();
    let usage = usage.ok_or_else(|| {
        anyhow!(
            "{} sent no `usage` in its stream (asked with stream_options.include_usage), so the \
             generated tokens cannot be counted",
            client.base()
        )
    })?;
    let count = |key: &str| {
        usage[key]
            .as_u64()
            .ok_or_else(|| anyhow!("`usage.{key}` is missing: {usage}"))
    };
    Ok(Timed {
        first: first.unwrap_or(end),
        end,
        tokens: count("completion_tokens")?,
        prompt_tokens: count("prompt_tokens")?,
    })
}

/// The `q`-quantile (nearest rank) of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// What one concurrency level measured.
fn summary(streams: usize, wall: f64, results: &[Timed]) -> Value {
    let ms = |s: f64| (s * 1000.0).round();
    let firsts: Vec<f64> = results.iter().map(|r| r.first).collect();
    let ends: Vec<f64> = results.iter().map(|r| r.end).collect();
    let tokens: u64 = results.iter().map(|r| r.tokens).sum();
    let per_stream: Vec<f64> = results
        .iter()
        .map(|r| r.tokens.saturating_sub(1) as f64 / (r.end - r.first).max(1e-9))
        .collect();
    let n = results.len().max(1) as f64;
    json!({
        "streams": streams, "requests": results.len(), "completion_tokens": tokens,
        "prompt_tokens_min": results.iter().map(|r| r.prompt_tokens).min(),
        "prompt_tokens_max": results.iter().map(|r| r.prompt_tokens).max(),
        "wall_s": wall, "tokens_per_s": tokens as f64 / wall,
        "first_token_ms_mean": ms(firsts.iter().sum::<f64>() / n),
        "first_token_ms_max": ms(quantile(&firsts, 1.0)),
        "latency_s_p50": quantile(&ends, 0.5), "latency_s_p99": quantile(&ends, 0.99),
        "decode_tokens_per_s_per_stream": per_stream.iter().sum::<f64>() / n,
    })
}

/// `streams` clients sending `per_stream` requests each, one after the other.
fn measure(
    client: &Client,
    streams: usize,
    per_stream: usize,
    body: &(dyn Fn() -> Value + Sync),
) -> Result<Value, Failure> {
    let started = Instant::now();
    let results: Vec<Result<Vec<Timed>, Failure>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..streams)
            .map(|_| {
                scope.spawn(|| {
                    (0..per_stream)
                        .map(|_| stream_once(client, &body()))
                        .collect()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow!("a client thread panicked").into()))
            })
            .collect()
    });
    let wall = started.elapsed().as_secs_f64();
    let results: Vec<Timed> = results
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    Ok(summary(streams, wall, &results))
}

pub(crate) fn serve(args: &ServeBenchArgs) -> Result<u8, Failure> {
    let client = Client::new(&EndpointConfig {
        timeout_s: 600,
        max_retries: 0,
        ..EndpointConfig::new(&args.endpoint, None)
    });
    let base = client.base().to_owned();
    let model = if let Some(m) = &args.model {
        m.clone()
    } else {
        let models = client
            .get_json("models")
            .with_context(|| format!("GET {base}/models: is the server running?"))?;
        models["data"][0]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("{base}/models lists no model"))?
            .to_owned()
    };
    let sent = AtomicUsize::new(0);
    let body = || {
        let prompt = if args.unique_prompts {
            format!("{:05}. {PROMPT_TEXT}", sent.fetch_add(1, Ordering::Relaxed))
        } else {
            PROMPT_TEXT.to_owned()
        };
        json!({"model": model, "prompt": prompt, "max_tokens": args.max_tokens,
            "temperature": 0, "stream": true, "ignore_eos": true,
            "stream_options": {"include_usage": true}})
    };
    // Warm-up: first touches of the weights, and the shared prompt cached if not unique.
    stream_once(&client, &body())?;
    if !args.json {
        println!(
            "{model} at {base}: {} tokens per request, {} per stream, {} prompts",
            args.max_tokens,
            args.requests_per_stream.max(1),
            if args.unique_prompts {
                "unique"
            } else {
                "identical"
            }
        );
        println!(
            "  streams  tokens/s (all)  first token ms (mean, max)  latency s (p50, p99)  \
             tokens/s per stream"
        );
    }
    for &streams in &args.concurrency {
        let m = measure(
            &client,
            streams.max(1),
            args.requests_per_stream.max(1),
            &body,
        )?;
        if args.json {
            println!("{m}");
            continue;
        }
        let f = |key: &str| m[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "  {streams:7}  {:14.1}  {:12.0}, {:6.0}            {:6.2}, {:6.2}        {:8.1}",
            f("tokens_per_s"),
            f("first_token_ms_mean"),
            f("first_token_ms_max"),
            f("latency_s_p50"),
            f("latency_s_p99"),
            f("decode_tokens_per_s_per_stream"),
        );
    }
    Ok(0)
}
