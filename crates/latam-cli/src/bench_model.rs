//! `latam bench generate` and `latam bench serve`: prefill and decode speed of the runtime, and
//! the throughput of any OpenAI-compatible server (ours or llama.cpp's) under concurrent streams.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::Args;
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
    /// Tokens asked of each stream.
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
}

/// One streamed completion: time to first text, time to the end, pieces of text received.
fn stream_once(url: &str, body: &Value) -> Result<(f64, f64, usize), Failure> {
    let started = Instant::now();
    let response = ureq::post(url)
        .timeout(Duration::from_secs(600))
        .send_json(body.clone())
        .with_context(|| format!("POST {url}"))?;
    let mut first = None;
    let mut pieces = 0;
    for line in BufReader::new(response.into_reader()).lines() {
        let line = line?;
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let chunk: Value = serde_json::from_str(data).with_context(|| format!("chunk {data}"))?;
        if let Some(error) = chunk.get("error") {
            return Err(anyhow!("{url} reported an error mid-stream: {error}").into());
        }
        if chunk["choices"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        {
            first.get_or_insert_with(|| started.elapsed().as_secs_f64());
            pieces += 1;
        }
    }
    let end = started.elapsed().as_secs_f64();
    Ok((first.unwrap_or(end), end, pieces))
}

pub(crate) fn serve(args: &ServeBenchArgs) -> Result<u8, Failure> {
    let base = args.endpoint.trim_end_matches('/');
    let model = if let Some(m) = &args.model {
        m.clone()
    } else {
        let models: Value = ureq::get(&format!("{base}/models"))
            .call()
            .with_context(|| format!("GET {base}/models: is the server running?"))?
            .into_json()?;
        models["data"][0]["id"]
            .as_str()
            .ok_or_else(|| anyhow!("{base}/models lists no model"))?
            .to_owned()
    };
    let url = format!("{base}/completions");
    let body = json!({"model": model, "prompt": PROMPT_TEXT, "max_tokens": args.max_tokens,
        "temperature": 0, "stream": true, "ignore_eos": true});
    stream_once(&url, &body)?;
    println!("{model} at {base}: {} tokens per stream", args.max_tokens);
    println!("  streams  tokens/s (all)  time to first token (mean, max)  tokens/s per stream");
    for &streams in &args.concurrency {
        let started = Instant::now();
        let results: Vec<Result<(f64, f64, usize), Failure>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..streams.max(1))
                .map(|_| scope.spawn(|| stream_once(&url, &body)))
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
        let results = results.into_iter().collect::<Result<Vec<_>, _>>()?;
        let pieces: usize = results.iter().map(|r| r.2).sum();
        let firsts: Vec<f64> = results.iter().map(|r| r.0).collect();
        let per_stream: Vec<f64> = results
            .iter()
            .map(|&(first, end, n)| n.saturating_sub(1) as f64 / (end - first).max(1e-9))
            .collect();
        println!(
            "  {streams:7}  {:14.1}  {:10.0} ms, {:6.0} ms              {:8.1}",
            pieces as f64 / wall,
            firsts.iter().sum::<f64>() / firsts.len() as f64 * 1000.0,
            firsts.iter().copied().fold(0.0, f64::max) * 1000.0,
            per_stream.iter().sum::<f64>() / per_stream.len() as f64
        );
    }
    Ok(0)
}
